namespace Rpoi.Operator.PhaseOne.Allocation;

/// <summary>A lease waiting for chips, ordered by creation time (oldest first), then namespace and name.</summary>
/// <param name="Lease">The lease.</param>
/// <param name="Shape">What it waits for.</param>
/// <param name="CreatedAt">The Lease's <c>metadata.creationTimestamp</c>: stable across operator restarts.</param>
/// <param name="Chips">How many chips it asks for (what must stay free for it while it is ahead of others).</param>
public sealed record QueuedLease(LeaseIdentity Lease, TpuShape Shape, DateTimeOffset CreatedAt, int Chips = 0);

/// <summary>
/// FIFO per shape: a lease may claim only what is left after every older lease waiting for the same accelerator and
/// topology has been served, so a large request is never starved by a stream of small ones (shapes never share nodes,
/// so queues are independent). An older lease that asks for more than the shape's usable slices hold keeps its place
/// but no room (see <see cref="WakeBehind"/>); requests the cluster can never hold fail before they are queued. Leases that fit claim at once, side by side; a lease that does not fit is
/// <em>parked</em> and woken when the leases ahead of it move or capacity is freed.
/// The order is creation time, which survives restarts: the host seeds the queue from the informer cache before the
/// first claim (<see cref="SeedFrom"/>) and the reconciler keeps it current with <see cref="Enter"/>, <see cref="Park"/>
/// and <see cref="Leave"/>. State lives in the leader's memory only; a new leader rebuilds it the same way.
/// </summary>
public sealed class AllocationQueue
{
    private static readonly Comparer<QueuedLease> Order = Comparer<QueuedLease>.Create((a, b) =>
    {
        var byTime = a.CreatedAt.CompareTo(b.CreatedAt);
        if (byTime != 0)
        {
            return byTime;
        }

        var byNamespace = string.CompareOrdinal(a.Lease.Namespace, b.Lease.Namespace);
        return byNamespace != 0 ? byNamespace : string.CompareOrdinal(a.Lease.Name, b.Lease.Name);
    });

    private readonly Lock gate = new();
    private readonly Dictionary<TpuShape, RankedQueue> byShape = [];
    private readonly Dictionary<string, Slot> byUid = new(StringComparer.Ordinal);
    // Leases that found no room and wait for a wake-up; only these are ever woken (the rest are being reconciled).
    private readonly HashSet<string> parked = new(StringComparer.Ordinal);
    // Bumped per shape whenever room may have appeared (a lease left, capacity was freed), so a lease that decided to
    // park on an older view learns it must look again instead of sleeping through the wake-up it missed.
    private readonly Dictionary<TpuShape, long> versions = [];

    /// <summary>
    /// Raised (outside the lock) with parked leases that should look again: the first parked lease of a shape when the
    /// leases ahead of it move or capacity is freed, and parked leases whose recorded position went stale. The host
    /// re-enqueues them.
    /// </summary>
    public event Action<IReadOnlyList<LeaseIdentity>>? Changed;

    private Func<IEnumerable<QueuedLease>>? seedSource;

    /// <summary>
    /// Where to read the leases already waiting (the informer cache) the first time a lease enters the queue, so a
    /// younger lease reconciled first after a restart cannot overtake an older one that was queued before.
    /// </summary>
    public void SeedFrom(Func<IEnumerable<QueuedLease>> source)
    {
        lock (gate)
        {
            seedSource = source;
        }
    }

    /// <summary>Adds leases known to be waiting (from the informer cache after a restart), parked. Existing entries stay.</summary>
    public void Seed(IEnumerable<QueuedLease> waiting)
    {
        ArgumentNullException.ThrowIfNull(waiting);
        lock (gate)
        {
            SeedLocked(waiting);
        }
    }

    /// <summary>
    /// Puts the lease in its shape's queue (no-op when already there; it is no longer parked, it is being looked at) and
    /// returns its 1-based position.
    /// </summary>
    public int Enter(QueuedLease entry) => Look(entry).Position;

    /// <summary>
    /// <see cref="Enter"/>, plus what the lease needs to decide whether it may claim: the demands of the older leases
    /// ahead of it and a version to hand back to <see cref="Park"/>.
    /// </summary>
    public QueueView Look(QueuedLease entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        QueueView view;
        IReadOnlyList<LeaseIdentity> behind = [];
        lock (gate)
        {
            // Seeded under the gate, in the same step as this entry: a lease looking at the same moment waits for the
            // older leases read from the cache instead of taking a place ahead of them while they are being read.
            if (seedSource is { } source)
            {
                SeedLocked(source());
                seedSource = null;
            }

            var added = AddLocked(entry);
            parked.Remove(entry.Lease.Uid);
            var queue = byShape[entry.Shape];
            var position = queue.IndexOf(byUid[entry.Lease.Uid]) + 1;
            // The blocks as they are now (never changed once handed out): no copy of the leases ahead per look.
            var ahead = queue.Head(position - 1);

            // An older lease reconciled after younger ones moves them back a place: wake the parked ones so the positions
            // they recorded stay true, and move the shape's version so a younger lease that looked but has not parked yet
            // is told by Park to look again (it would otherwise park with its old position and never be woken).
            // Leases usually enter in creation order (appended), so this is rare.
            if (added && position < queue.Count)
            {
                versions[entry.Shape] = versions.GetValueOrDefault(entry.Shape) + 1;
                behind = queue.From(position).Where(e => parked.Contains(e.Entry.Lease.Uid)).Select(e => e.Entry.Lease).ToList();
            }

            view = new QueueView(position, ahead, versions.GetValueOrDefault(entry.Shape));
        }

        if (behind.Count > 0)
        {
            Changed?.Invoke(behind);
        }

        return view;
    }

    /// <summary>
    /// Parks the lease until it is woken. Returns false (and leaves it unparked) when room may have appeared since
    /// <paramref name="seen"/> was read: the caller should look again now rather than wait for a wake-up already sent.
    /// With <paramref name="seen"/> null the lease is parked whatever happened (a caller that looked often enough).
    /// </summary>
    public bool Park(LeaseIdentity lease, QueueView? seen)
    {
        ArgumentNullException.ThrowIfNull(lease);
        lock (gate)
        {
            if (!byUid.TryGetValue(lease.Uid, out var entry))
            {
                return seen is null;
            }

            if (seen is not null && versions.GetValueOrDefault(entry.Entry.Shape) != seen.Version)
            {
                return false;
            }

            parked.Add(lease.Uid);
            return true;
        }
    }

    /// <summary>1-based position of the lease in its queue, or 0 when it is not waiting.</summary>
    public int PositionOf(LeaseIdentity lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        lock (gate)
        {
            return byUid.TryGetValue(lease.Uid, out var slot) ? byShape[slot.Entry.Shape].IndexOf(slot) + 1 : 0;
        }
    }

    /// <summary>
    /// Removes the lease (it claimed its chips, failed or was deleted) and wakes the first parked lease of its shape:
    /// the room kept for the leaver is either taken (nothing changes for those behind) or given back, and the first
    /// parked lease is the one that may now fit. Waking every waiter instead made each claim cost O(waiting) reconciles
    /// and status writes, O(n²) for n queued leases (BENCHMARKS.md, phase I).
    /// </summary>
    public void Leave(LeaseIdentity lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        IReadOnlyList<LeaseIdentity> wake;
        lock (gate)
        {
            if (!byUid.Remove(lease.Uid, out var slot))
            {
                return;
            }

            parked.Remove(lease.Uid);
            byShape[slot.Entry.Shape].Remove(slot);
            wake = BumpLocked(slot.Entry.Shape);
        }

        Wake(wake);
    }

    /// <summary>Removes the lease by namespace and name (when only its key is known, after it was deleted).</summary>
    public void Forget(string @namespace, string name)
    {
        LeaseIdentity? found;
        lock (gate)
        {
            found = byUid.Values.FirstOrDefault(e => e.Entry.Lease.Namespace == @namespace && e.Entry.Lease.Name == name)?.Entry.Lease;
        }

        if (found is not null)
        {
            Leave(found);
        }
    }

    /// <summary>Capacity of <paramref name="shape"/> was freed or changed: wakes the first parked lease of its queue.</summary>
    public void CapacityFreed(TpuShape shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        IReadOnlyList<LeaseIdentity> wake;
        lock (gate)
        {
            wake = BumpLocked(shape);
        }

        Wake(wake);
    }

    /// <summary>
    /// The lease waits without holding room (it asks for more than its shape's usable slices hold now): wakes the first
    /// parked lease behind it, which may fit in the room this one cannot use, and moves the shape's version so a lease
    /// behind that looked but has not parked yet looks again.
    /// </summary>
    public void WakeBehind(LeaseIdentity lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        IReadOnlyList<LeaseIdentity> wake = [];
        lock (gate)
        {
            if (!byUid.TryGetValue(lease.Uid, out var slot))
            {
                return;
            }

            versions[slot.Entry.Shape] = versions.GetValueOrDefault(slot.Entry.Shape) + 1;
            var queue = byShape[slot.Entry.Shape];
            var next = queue.From(queue.IndexOf(slot) + 1).FirstOrDefault(e => parked.Contains(e.Entry.Lease.Uid));
            if (next is not null)
            {
                wake = [next.Entry.Lease];
            }
        }

        Wake(wake);
    }

    /// <summary>
    /// A lease of <paramref name="shape"/> became Active, so its expiry is known: wakes the first parked lease, whose
    /// earliest free-up time (<c>status.earliestFreeAt</c>) may now be told. It was woken by that lease's claim, before the
    /// expiry was written. The host calls it when its Lease cache shows the Active status, so the woken lease reads it.
    /// </summary>
    public void ExpiryKnown(TpuShape shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        IReadOnlyList<LeaseIdentity> wake;
        lock (gate)
        {
            wake = FirstParkedLocked(shape);
        }

        Wake(wake);
    }

    /// <summary>The leases waiting for <paramref name="shape"/>, head first.</summary>
    public IReadOnlyList<QueuedLease> Waiting(TpuShape shape)
    {
        lock (gate)
        {
            return byShape.TryGetValue(shape, out var queue) ? [.. queue.From(0).Select(e => e.Entry)] : [];
        }
    }

    /// <summary>The first parked lease of <paramref name="shape"/>, if any: the one to wake when its nodes change.</summary>
    public IReadOnlyList<LeaseIdentity> FirstParked(TpuShape shape)
    {
        lock (gate)
        {
            return FirstParkedLocked(shape);
        }
    }

    private IReadOnlyList<LeaseIdentity> BumpLocked(TpuShape shape)
    {
        versions[shape] = versions.GetValueOrDefault(shape) + 1;
        return FirstParkedLocked(shape);
    }

    private IReadOnlyList<LeaseIdentity> FirstParkedLocked(TpuShape shape)
    {
        if (!byShape.TryGetValue(shape, out var queue))
        {
            return [];
        }

        foreach (var slot in queue.From(0))
        {
            if (parked.Contains(slot.Entry.Lease.Uid))
            {
                return [slot.Entry.Lease];
            }
        }

        return [];
    }

    private void Wake(IReadOnlyList<LeaseIdentity> leases)
    {
        if (leases.Count > 0)
        {
            Changed?.Invoke(leases);
        }
    }

    private void SeedLocked(IEnumerable<QueuedLease> waiting)
    {
        foreach (var entry in waiting)
        {
            if (AddLocked(entry))
            {
                parked.Add(entry.Lease.Uid);
            }
        }
    }

    private bool AddLocked(QueuedLease entry)
    {
        if (byUid.ContainsKey(entry.Lease.Uid))
        {
            return false;
        }

        if (!byShape.TryGetValue(entry.Shape, out var queue))
        {
            queue = new RankedQueue();
            byShape[entry.Shape] = queue;
        }

        var slot = new Slot(entry, new QueuedDemand(entry.Lease.Uid, entry.Chips));
        queue.Insert(slot);
        byUid[entry.Lease.Uid] = slot;
        return true;
    }

    /// <summary>A queued lease and its demand, made once when it enters (a look hands out the demands, not copies).</summary>
    private sealed record Slot(QueuedLease Entry, QueuedDemand Demand);

    /// <summary>
    /// One shape's queue in order, in ranked blocks: each block a sorted array that is never changed once made (an insert or
    /// a removal makes a new block), with the count of entries before each block. A position is a binary search over the
    /// blocks and one inside a block, an insert or a removal costs a block plus the block list (O(√n) with blocks of about
    /// √n), and a look keeps the arrays it saw as its list of leases ahead instead of copying them (a list copy per look
    /// made a burst of n leases O(n²)).
    /// </summary>
    private sealed class RankedQueue
    {
        // A block splits in two above this; ~√n for the 10,000 leases the benchmark queues at once.
        private const int MaxBlock = 128;

        private Slot[][] blocks = [];
        // starts[b]: entries in the blocks before b.
        private int[] starts = [];

        public int Count { get; private set; }

        public void Insert(Slot slot)
        {
            if (blocks.Length == 0)
            {
                Publish([[slot]]);
                return;
            }

            var b = BlockFor(slot.Entry);
            var block = blocks[b];
            var i = Array.BinarySearch(block, slot, SlotOrder);
            i = i < 0 ? ~i : i;
            var grown = new Slot[block.Length + 1];
            Array.Copy(block, grown, i);
            grown[i] = slot;
            Array.Copy(block, i, grown, i + 1, block.Length - i);
            if (grown.Length <= MaxBlock)
            {
                Replace(b, [grown]);
            }
            else
            {
                var half = grown.Length / 2;
                Replace(b, [grown[..half], grown[half..]]);
            }
        }

        public void Remove(Slot slot)
        {
            var (b, i) = Find(slot);
            if (b < 0)
            {
                return;
            }

            var block = blocks[b];
            if (block.Length == 1)
            {
                Replace(b, []);
                return;
            }

            var shrunk = new Slot[block.Length - 1];
            Array.Copy(block, shrunk, i);
            Array.Copy(block, i + 1, shrunk, i, block.Length - i - 1);
            Replace(b, [shrunk]);
        }

        /// <summary>0-based index of <paramref name="slot"/>, or -1.</summary>
        public int IndexOf(Slot slot)
        {
            var (b, i) = Find(slot);
            return b < 0 ? -1 : starts[b] + i;
        }

        /// <summary>The first <paramref name="count"/> demands, over the blocks as they are now.</summary>
        public IReadOnlyList<QueuedDemand> Head(int count) => count == 0 ? [] : new HeadView(blocks, starts, count);

        /// <summary>The entries from index <paramref name="index"/> on (read under the queue's lock).</summary>
        public IEnumerable<Slot> From(int index)
        {
            var seen = 0;
            foreach (var block in blocks)
            {
                if (seen + block.Length <= index)
                {
                    seen += block.Length;
                    continue;
                }

                for (var i = Math.Max(0, index - seen); i < block.Length; i++)
                {
                    yield return block[i];
                }

                seen += block.Length;
            }
        }

        // The first block whose last entry is not before the slot (the last block when the slot goes at the end).
        private int BlockFor(QueuedLease entry)
        {
            int lo = 0, hi = blocks.Length - 1;
            while (lo < hi)
            {
                var mid = (lo + hi) / 2;
                if (Order.Compare(blocks[mid][^1].Entry, entry) < 0)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }

            return lo;
        }

        // The slot itself, not only an equal key: a Lease deleted and made again under its name in the same second
        // compares equal to the old one, so the neighbours of equal order are searched for this very slot.
        private (int Block, int Index) Find(Slot slot)
        {
            if (blocks.Length == 0)
            {
                return (-1, -1);
            }

            for (var b = BlockFor(slot.Entry); b < blocks.Length; b++)
            {
                var block = blocks[b];
                var i = Array.BinarySearch(block, slot, SlotOrder);
                if (i < 0)
                {
                    return (-1, -1);
                }

                while (i > 0 && SlotOrder.Compare(block[i - 1], slot) == 0)
                {
                    i--;
                }

                for (; i < block.Length && SlotOrder.Compare(block[i], slot) == 0; i++)
                {
                    if (ReferenceEquals(block[i], slot))
                    {
                        return (b, i);
                    }
                }

                if (i < block.Length)
                {
                    return (-1, -1);
                }
            }

            return (-1, -1);
        }

        private void Replace(int b, Slot[][] with)
        {
            var next = new Slot[blocks.Length - 1 + with.Length][];
            Array.Copy(blocks, next, b);
            Array.Copy(with, 0, next, b, with.Length);
            Array.Copy(blocks, b + 1, next, b + with.Length, blocks.Length - b - 1);
            Publish(next);
        }

        private void Publish(Slot[][] next)
        {
            var counts = new int[next.Length];
            var total = 0;
            for (var b = 0; b < next.Length; b++)
            {
                counts[b] = total;
                total += next[b].Length;
            }

            blocks = next;
            starts = counts;
            Count = total;
        }
    }

    private static readonly Comparer<Slot> SlotOrder = Comparer<Slot>.Create((a, b) => Order.Compare(a.Entry, b.Entry));

    /// <summary>The leases ahead as a look saw them: the queue's blocks of that moment, read on demand.</summary>
    private sealed class HeadView(Slot[][] blocks, int[] starts, int count) : IReadOnlyList<QueuedDemand>
    {
        public int Count => count;

        public QueuedDemand this[int index]
        {
            get
            {
                ArgumentOutOfRangeException.ThrowIfNegative(index);
                ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, count);
                var b = Array.BinarySearch(starts, index);
                b = b < 0 ? ~b - 1 : b;
                // Blocks are never empty, so starts is strictly increasing and the match is the block itself.
                return blocks[b][index - starts[b]].Demand;
            }
        }

        public IEnumerator<QueuedDemand> GetEnumerator()
        {
            var left = count;
            foreach (var block in blocks)
            {
                for (var i = 0; i < block.Length && left > 0; i++, left--)
                {
                    yield return block[i].Demand;
                }

                if (left == 0)
                {
                    yield break;
                }
            }
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}

/// <summary>What a lease saw when it looked at its queue.</summary>
/// <param name="Position">Its 1-based place.</param>
/// <param name="Ahead">The older leases of the same shape, head first, whose chips must stay free for them.</param>
/// <param name="Version">The queue's version, to hand back to <see cref="AllocationQueue.Park"/>.</param>
public sealed record QueueView(int Position, IReadOnlyList<QueuedDemand> Ahead, long Version);
