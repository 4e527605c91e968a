using k8s.Models;
using Rpoi.Kube.Informers;

namespace Rpoi.Operator.PhaseOne.Allocation;

/// <summary>Names one slice within a shape: a node name (single host) or a node pool name (multi-host).</summary>
/// <param name="Key">The slice's key, as <see cref="TpuSlice.Key"/>.</param>
/// <param name="MultiHost">Whether the key is a node pool (a node and a pool may share a name).</param>
internal readonly record struct TpuSliceId(string Key, bool MultiHost)
{
    /// <summary>The order claims take free slices in: by key, as <see cref="TpuSlices.Group"/> sorts them.</summary>
    public static readonly IComparer<TpuSliceId> Order = Comparer<TpuSliceId>.Create((a, b) =>
    {
        var byKey = string.CompareOrdinal(a.Key, b.Key);
        return byKey != 0 ? byKey : a.MultiHost.CompareTo(b.MultiHost);
    });
}

/// <summary>
/// The Node cache's TPU slices by shape, with each shape's free, usable slices kept in claim order, so a claim reads
/// the few slices it takes instead of grouping and sorting every free node of the shape. It follows the Node informer's
/// events (added, changed, deleted, and the re-list's own events), and is built from the cache's contents when it is
/// made, so a restarted operator or a new leader starts from what its cache holds, never from memory.
/// A slice's judgement (free and usable) is <see cref="TpuSlices.Group"/>'s on its free hosts, the same nodes a full scan
/// of the shape's free nodes would group. Thread-safe; callers may hold their own lock around calls (never the reverse).
/// </summary>
internal sealed class TpuSliceIndex
{
    private sealed class ShapeSlices(TpuShape shape)
    {
        public TpuShape Shape { get; } = shape;

        // Every slice of the shape with its hosts as cached (free or not), so one host's change re-judges its slice alone. A
        // list, not a map by name: most slices are one host, and a dictionary per slice cost ~250 bytes per cached node.
        public Dictionary<TpuSliceId, List<V1Node>> Members { get; } = [];

        // The free, usable slices, in the order claims take them.
        public SortedDictionary<TpuSliceId, TpuSlice> Free { get; } = new(TpuSliceId.Order);

        // Every slice grouped from all its hosts (the room check's view), the usable ones in key order, and their sums.
        public Dictionary<TpuSliceId, TpuSlice> All { get; } = [];

        public SortedSet<TpuSliceId> Usable { get; } = new(TpuSliceId.Order);

        public TpuRoom Room { get; set; }
    }

    private readonly Lock gate = new();
    private readonly Dictionary<string, ShapeSlices> shapes = new(StringComparer.Ordinal);
    // Node name → where it sits now, so an update or delete finds the slice it leaves.
    private readonly Dictionary<string, (string Shape, TpuSliceId Id)> where = new(StringComparer.Ordinal);

    /// <summary>The shape key (<c>accelerator/topology</c>) and slice a node belongs to, or null when it is not a TPU node of a slice shape.</summary>
    public static (string ShapeKey, TpuShape Shape, TpuSliceId Id)? Locate(V1Node node)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (TpuSlices.LabelOf(node, TpuLabels.Accelerator) is not { } accelerator || TpuSlices.LabelOf(node, TpuLabels.Topology) is not { } topology)
        {
            return null;
        }

        var shape = new TpuShape(accelerator, topology);
        if (shape.ChipsPerSlice <= 0)
        {
            return null;
        }

        // The same split as TpuSlices.Group: a host with a whole slice (or no chips) is its own slice, the rest group by pool.
        var perHost = TpuSlices.ChipsOn(node);
        var id = perHost >= shape.ChipsPerSlice || perHost <= 0
            ? new TpuSliceId(node.Metadata.Name, false)
            : new TpuSliceId(TpuSlices.LabelOf(node, TpuLabels.NodePool) ?? string.Empty, true);
        // Pooled: the index keeps this key for every node it holds.
        return (StringPool.Shared.Intern($"{accelerator}/{topology}")!, shape, id);
    }

    /// <summary>The slice made of <paramref name="hosts"/>' free hosts when it is usable and free, else null.</summary>
    public static TpuSlice? FreeSliceOf(TpuShape shape, IEnumerable<V1Node> hosts)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(hosts);
        // A host someone holds is left out, as a claim's view leaves it out: the rest of a multi-host pool then groups
        // short of hosts and is unusable.
        var free = hosts.Where(n => TpuSlices.OwnerOf(n) is null).ToList();
        if (free.Count == 0)
        {
            return null;
        }

        var slices = TpuSlices.Group(shape, free);
        return slices.Count == 1 && slices[0] is { Usable: true, IsFree: true } slice ? slice : null;
    }

    /// <summary>The slice all of <paramref name="hosts"/> make (one slice id's hosts), or null when there are none.</summary>
    public static TpuSlice? SliceOf(TpuShape shape, IEnumerable<V1Node> hosts)
    {
        var slices = TpuSlices.Group(shape, hosts);
        return slices.Count == 1 ? slices[0] : null;
    }

    /// <summary>
    /// A shape's room (what the room check groups every node of the shape for), with the slices in
    /// <paramref name="replaced"/> judged by the caller from newer copies (null: no such slice now). Costs the
    /// replacements, not the shape's size; null when the shape has no slice at all.
    /// </summary>
    public (TpuRoom Room, int HostsPerSlice)? RoomOf(string shapeKey, IReadOnlyDictionary<TpuSliceId, TpuSlice?> replaced)
    {
        ArgumentNullException.ThrowIfNull(replaced);
        lock (gate)
        {
            var found = shapes.TryGetValue(shapeKey, out var s);
            var room = found ? s!.Room : default;
            TpuSliceId? first = null;
            foreach (var (id, slice) in replaced)
            {
                if (found && s!.All.TryGetValue(id, out var was))
                {
                    room -= TpuRoom.Of(was);
                }

                if (slice is not null)
                {
                    room += TpuRoom.Of(slice);
                    if (slice.Usable && (first is null || TpuSliceId.Order.Compare(id, first.Value) < 0))
                    {
                        first = id;
                    }
                }
            }

            // Hosts per slice as the scan gives them: those of the first usable slice by key.
            foreach (var id in found ? s!.Usable : [])
            {
                if (first is { } mine && TpuSliceId.Order.Compare(mine, id) < 0)
                {
                    break;
                }

                if (!replaced.ContainsKey(id))
                {
                    first = id;
                    break;
                }
            }

            var hosts = first is { } at ? (replaced.TryGetValue(at, out var newer) ? newer! : s!.All[at]).Nodes.Count : 0;
            return room.Slices == 0 ? null : (room, hosts);
        }
    }

    /// <summary>
    /// Replaces the index's contents with the cache's, read by <paramref name="nodes"/> under the index's lock: an event
    /// the informer delivers meanwhile waits and is applied after, so an older snapshot never overwrites a newer event.
    /// </summary>
    public void Rebuild(Func<IEnumerable<V1Node>> nodes)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        lock (gate)
        {
            shapes.Clear();
            where.Clear();
            foreach (var node in nodes())
            {
                UpsertLocked(node);
            }
        }
    }

    /// <summary>A node was added or changed in the cache.</summary>
    public void Upsert(V1Node node)
    {
        ArgumentNullException.ThrowIfNull(node);
        lock (gate)
        {
            UpsertLocked(node);
        }
    }

    /// <summary>A node left the cache.</summary>
    public void Remove(string name)
    {
        lock (gate)
        {
            RemoveLocked(name);
        }
    }

    /// <summary>Where the index has the node named <paramref name="name"/>, or null when it is not indexed.</summary>
    public (string ShapeKey, TpuSliceId Id)? WhereIs(string name)
    {
        lock (gate)
        {
            return where.TryGetValue(name, out var at) ? at : null;
        }
    }

    /// <summary>The hosts of one slice as cached (free or not), or none.</summary>
    public IReadOnlyList<V1Node> Hosts(string shapeKey, TpuSliceId id)
    {
        lock (gate)
        {
            return shapes.TryGetValue(shapeKey, out var s) && s.Members.TryGetValue(id, out var members) ? [.. members] : [];
        }
    }

    /// <summary>
    /// The free, usable slices of a shape in claim order, skipping those in <paramref name="excluded"/> and merging in
    /// <paramref name="extra"/> (slices judged by the caller from newer copies, sorted by <see cref="TpuSliceId.Order"/>);
    /// of those <paramref name="accept"/> takes, the first <paramref name="skip"/> are passed over and at most
    /// <paramref name="take"/> returned. Costs the slices visited, not the shape's size.
    /// </summary>
    public List<TpuSlice> TakeFree(
        string shapeKey, IReadOnlySet<TpuSliceId> excluded, IReadOnlyList<(TpuSliceId Id, TpuSlice Slice)> extra, Func<TpuSlice, bool> accept, int skip, int take)
    {
        ArgumentNullException.ThrowIfNull(excluded);
        ArgumentNullException.ThrowIfNull(extra);
        ArgumentNullException.ThrowIfNull(accept);
        var result = new List<TpuSlice>();
        if (take <= 0)
        {
            return result;
        }

        bool Offer(TpuSlice slice)
        {
            if (!accept(slice))
            {
                return false;
            }

            if (skip > 0)
            {
                skip--;
                return false;
            }

            result.Add(slice);
            return result.Count >= take;
        }

        lock (gate)
        {
            var next = 0;
            if (shapes.TryGetValue(shapeKey, out var s))
            {
                foreach (var (id, slice) in s.Free)
                {
                    for (; next < extra.Count && TpuSliceId.Order.Compare(extra[next].Id, id) < 0; next++)
                    {
                        if (Offer(extra[next].Slice))
                        {
                            return result;
                        }
                    }

                    if (!excluded.Contains(id) && Offer(slice))
                    {
                        return result;
                    }
                }
            }

            for (; next < extra.Count; next++)
            {
                if (Offer(extra[next].Slice))
                {
                    return result;
                }
            }
        }

        return result;
    }

    /// <summary>Every free, usable slice key of every shape (for tests comparing with a full scan).</summary>
    internal IReadOnlyDictionary<string, IReadOnlyList<string>> Snapshot()
    {
        lock (gate)
        {
            return shapes.Where(s => s.Value.Free.Count > 0)
                .ToDictionary(s => s.Key, s => (IReadOnlyList<string>)[.. s.Value.Free.Values.Select(v => v.Key)], StringComparer.Ordinal);
        }
    }

    private void UpsertLocked(V1Node node)
    {
        var name = node.Metadata.Name;
        var located = Locate(node);
        if (where.TryGetValue(name, out var old) && (located is null || old.Shape != located.Value.ShapeKey || old.Id != located.Value.Id))
        {
            RemoveLocked(name);
        }

        if (located is not { } at)
        {
            return;
        }

        if (!shapes.TryGetValue(at.ShapeKey, out var s))
        {
            shapes[at.ShapeKey] = s = new ShapeSlices(at.Shape);
        }

        if (!s.Members.TryGetValue(at.Id, out var members))
        {
            s.Members[at.Id] = members = new List<V1Node>(1);
        }

        var i = members.FindIndex(n => n.Metadata.Name == name);
        if (i >= 0)
        {
            members[i] = node;
        }
        else
        {
            members.Add(node);
        }

        where[name] = (at.ShapeKey, at.Id);
        JudgeLocked(s, at.Id);
    }

    private void RemoveLocked(string name)
    {
        if (!where.Remove(name, out var at) || !shapes.TryGetValue(at.Shape, out var s))
        {
            return;
        }

        if (s.Members.TryGetValue(at.Id, out var members))
        {
            members.RemoveAll(n => n.Metadata.Name == name);
        }

        JudgeLocked(s, at.Id);
        if (s.Members.Count == 0)
        {
            shapes.Remove(at.Shape);
        }
    }

    private static void JudgeLocked(ShapeSlices s, TpuSliceId id)
    {
        if (s.All.Remove(id, out var was))
        {
            s.Room -= TpuRoom.Of(was);
            s.Usable.Remove(id);
        }

        if (!s.Members.TryGetValue(id, out var members) || members.Count == 0)
        {
            s.Members.Remove(id);
            s.Free.Remove(id);
            return;
        }

        if (SliceOf(s.Shape, members) is { } whole)
        {
            s.All[id] = whole;
            s.Room += TpuRoom.Of(whole);
            if (whole.Usable)
            {
                s.Usable.Add(id);
            }
        }

        // A wholly free, usable slice is its own free slice: one object for both views instead of two per cached slice.
        var free = s.All.TryGetValue(id, out var all) && all is { Usable: true, IsFree: true } ? all : FreeSliceOf(s.Shape, members);
        if (free is not null)
        {
            s.Free[id] = free;
        }
        else
        {
            s.Free.Remove(id);
        }
    }
}

/// <summary>Sums over a shape's slices: all of them, the usable ones and their chips, the free usable ones and their chips.</summary>
internal readonly record struct TpuRoom(int Slices, int UsableSlices, int UsableChips, int FreeSlices, int FreeChips)
{
    public static TpuRoom Of(TpuSlice slice) => slice.Usable
        ? new TpuRoom(1, 1, slice.Chips, slice.IsFree ? 1 : 0, slice.IsFree ? slice.Chips : 0)
        : new TpuRoom(1, 0, 0, 0, 0);

    public static TpuRoom operator +(TpuRoom a, TpuRoom b) =>
        new(a.Slices + b.Slices, a.UsableSlices + b.UsableSlices, a.UsableChips + b.UsableChips, a.FreeSlices + b.FreeSlices, a.FreeChips + b.FreeChips);

    public static TpuRoom operator -(TpuRoom a, TpuRoom b) =>
        new(a.Slices - b.Slices, a.UsableSlices - b.UsableSlices, a.UsableChips - b.UsableChips, a.FreeSlices - b.FreeSlices, a.FreeChips - b.FreeChips);
}
