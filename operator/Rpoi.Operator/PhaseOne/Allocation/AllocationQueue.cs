namespace Rpoi.Operator.PhaseOne.Allocation;

/// <summary>A lease waiting for chips, ordered by creation time (oldest first), then namespace and name.</summary>
/// <param name="Lease">The lease.</param>
/// <param name="Shape">What it waits for.</param>
/// <param name="CreatedAt">The Lease's <c>metadata.creationTimestamp</c>: stable across operator restarts.</param>
public sealed record QueuedLease(LeaseIdentity Lease, TpuShape Shape, DateTimeOffset CreatedAt);

/// <summary>
/// Strict FIFO per shape: only the oldest lease waiting for an accelerator and topology may claim, so a large
/// request is never starved by a stream of small ones (shapes never share nodes, so queues are independent).
/// The order is creation time, which survives restarts: the host seeds the queue from the informer cache
/// before the first claim (<see cref="Seed"/>) and the reconciler keeps it current with <see cref="Enter"/> and
/// <see cref="Leave"/>. State lives in the leader's memory only; a new leader rebuilds it the same way.
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
    private readonly Dictionary<TpuShape, List<QueuedLease>> byShape = [];
    private readonly Dictionary<string, QueuedLease> byUid = new(StringComparer.Ordinal);

    /// <summary>
    /// Raised (outside the lock) with the leases still waiting for a shape whenever the head of its queue may have
    /// changed or capacity was freed; the host re-enqueues them so the new head claims and positions are refreshed.
    /// </summary>
    public event Action<IReadOnlyList<LeaseIdentity>>? Changed;

    private Func<IEnumerable<QueuedLease>>? seedSource;

    /// <summary>
    /// Where to read the leases already waiting (the informer cache) the first time a lease enters the queue, so a
    /// younger lease reconciled first after a restart cannot overtake an older one that was queued before.
    /// </summary>
    public void SeedFrom(Func<IEnumerable<QueuedLease>> source) => seedSource = source;

    /// <summary>Adds leases known to be waiting (from the informer cache after a restart). Existing entries stay.</summary>
    public void Seed(IEnumerable<QueuedLease> waiting)
    {
        ArgumentNullException.ThrowIfNull(waiting);
        lock (gate)
        {
            foreach (var entry in waiting)
            {
                AddLocked(entry);
            }
        }
    }

    /// <summary>Puts the lease in its shape's queue (no-op when already there) and returns its 1-based position.</summary>
    public int Enter(QueuedLease entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (Interlocked.Exchange(ref seedSource, null) is { } source)
        {
            Seed(source());
        }

        int position;
        IReadOnlyList<LeaseIdentity> behind = [];
        lock (gate)
        {
            var added = AddLocked(entry);
            var queue = byShape[entry.Shape];
            position = queue.IndexOf(byUid[entry.Lease.Uid]) + 1;

            // An older lease reconciled after younger ones moves them back a place: wake those so the positions they
            // recorded stay true. Leases usually enter in creation order (appended), so this is rare.
            if (added && position < queue.Count)
            {
                behind = queue.Skip(position).Select(e => e.Lease).ToList();
            }
        }

        if (behind.Count > 0)
        {
            Changed?.Invoke(behind);
        }

        return position;
    }

    /// <summary>1-based position of the lease in its queue, or 0 when it is not waiting.</summary>
    public int PositionOf(LeaseIdentity lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        lock (gate)
        {
            return byUid.TryGetValue(lease.Uid, out var entry) ? byShape[entry.Shape].IndexOf(entry) + 1 : 0;
        }
    }

    /// <summary>
    /// Removes the lease (it claimed its chips, failed or was deleted). Wakes only the new head of its queue: under
    /// strict FIFO nobody else may claim, and waking every waiter made each claim cost O(waiting) reconciles and status
    /// writes, O(n²) for n queued leases (BENCHMARKS.md, phase I).
    /// </summary>
    public void Leave(LeaseIdentity lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        IReadOnlyList<LeaseIdentity> wake = [];
        lock (gate)
        {
            if (!byUid.Remove(lease.Uid, out var entry))
            {
                return;
            }

            var queue = byShape[entry.Shape];
            queue.Remove(entry);
            wake = queue.Take(1).Select(e => e.Lease).ToList();
        }

        if (wake.Count > 0)
        {
            Changed?.Invoke(wake);
        }
    }

    /// <summary>Removes the lease by namespace and name (when only its key is known, after it was deleted).</summary>
    public void Forget(string @namespace, string name)
    {
        LeaseIdentity? found;
        lock (gate)
        {
            found = byUid.Values.FirstOrDefault(e => e.Lease.Namespace == @namespace && e.Lease.Name == name)?.Lease;
        }

        if (found is not null)
        {
            Leave(found);
        }
    }

    /// <summary>Capacity of <paramref name="shape"/> was freed: wakes the head of its queue, the only lease that may claim.</summary>
    public void CapacityFreed(TpuShape shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        IReadOnlyList<LeaseIdentity> wake;
        lock (gate)
        {
            wake = byShape.TryGetValue(shape, out var queue) ? queue.Take(1).Select(e => e.Lease).ToList() : [];
        }

        if (wake.Count > 0)
        {
            Changed?.Invoke(wake);
        }
    }

    /// <summary>The leases waiting for <paramref name="shape"/>, head first.</summary>
    public IReadOnlyList<QueuedLease> Waiting(TpuShape shape)
    {
        lock (gate)
        {
            return byShape.TryGetValue(shape, out var queue) ? [.. queue] : [];
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
            queue = [];
            byShape[entry.Shape] = queue;
        }

        var index = queue.BinarySearch(entry, Order);
        queue.Insert(index < 0 ? ~index : index, entry);
        byUid[entry.Lease.Uid] = entry;
        return true;
    }
}
