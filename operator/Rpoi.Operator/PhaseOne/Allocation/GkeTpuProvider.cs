using System.Globalization;
using System.Runtime.InteropServices;
using System.Net;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Rpoi.Kube.Informers;

namespace Rpoi.Operator.PhaseOne.Allocation;

/// <summary>
/// Claims TPU nodes that GKE already runs, as GKE labels them (<see cref="TpuLabels"/>). A claim is a label,
/// an annotation with the lease's UID and a <c>rpoi.io/lease=&lt;namespace&gt;:NoSchedule</c> taint, written as a
/// patch carrying the node's resourceVersion: the API server refuses a write based on a stale read (409), so
/// two leases or two operator replicas can never both believe they hold one node.
/// Because that precondition is the guard, nodes are picked from the Node informer's cache (when one is given and
/// synced), overlaid with the nodes this process wrote or re-read since (until the cache shows that very version), so
/// a claim costs one patch per host and no list. Inside this process, nodes picked by a claim in flight are reserved,
/// so concurrent claims of one shape pick different nodes instead of racing into 409s. Releases list from the API
/// server, so an unsynced cache can never leave a claim behind.
/// </summary>
public sealed class GkeTpuProvider : ITpuProvider
{
    // Rounds of pick → mark before giving up for this reconcile (the lease is retried later).
    private const int MaxRounds = 5;
    // Conflicts on one node where the node stayed free (someone else touched an unrelated field) before moving on.
    private const int MaxConflictsPerNode = 5;
    // An overlay entry the cache never caught up with exactly (a re-list skipped that version) stops hiding the cache.
    private static readonly TimeSpan OverlayLifetime = TimeSpan.FromSeconds(30);

    private readonly IKubernetes client;
    private readonly TimeProvider time;
    private readonly ILogger<GkeTpuProvider> logger;
    private readonly Informer<V1Node>? nodeCache;
    // The cache's free slices by shape, in claim order (null without a cache).
    private readonly TpuSliceIndex? slices;
    private readonly Lock gate = new();
    // Node name → the node as this process last wrote or read it, until the cache delivers that resourceVersion.
    private readonly Dictionary<string, (V1Node Node, DateTimeOffset At)> overlay = new(StringComparer.Ordinal);
    // Lease UID → how many overlay entries it owns, kept with the overlay, so asking whether a lease holds nodes does not
    // copy the overlay (a claim asks it of each lease ahead).
    private readonly Dictionary<string, int> overlayHolds = new(StringComparer.Ordinal);
    // Node name → UID of the lease whose claim in flight picked it.
    private readonly Dictionary<string, string> reserved = new(StringComparer.Ordinal);
    // Lease UID → how many nodes it has reserved (the same reservations, by lease).
    private readonly Dictionary<string, int> reservedBy = new(StringComparer.Ordinal);

    /// <summary>Creates the provider.</summary>
    /// <param name="client">The API client (claims, releases, and reads when there is no synced cache).</param>
    /// <param name="time">The clock.</param>
    /// <param name="logger">The logger.</param>
    /// <param name="nodeCache">The Node informer; when given, picks and look-ups read its cache instead of listing nodes.</param>
    public GkeTpuProvider(IKubernetes client, TimeProvider time, ILogger<GkeTpuProvider> logger, Informer<V1Node>? nodeCache = null)
    {
        this.client = client;
        this.time = time;
        this.logger = logger;
        this.nodeCache = nodeCache;
        if (nodeCache is not null)
        {
            // The slice index hears of a node before the overlay entry of that version is dropped (handlers run in order),
            // so no claim reads a node as neither our copy nor the index's.
            var index = new TpuSliceIndex();
            nodeCache.AddEventHandler(new ResourceEventHandler<V1Node>((n, _) => index.Upsert(n), (_, n) => index.Upsert(n), n => index.Remove(n.Metadata.Name)));
            // Whatever the cache already holds (a provider made after the informer synced); events from here on follow.
            index.Rebuild(nodeCache.Store.List);
            slices = index;
            nodeCache.AddEventHandler(new ResourceEventHandler<V1Node>((n, _) => CacheCaughtUp(n), (_, n) => CacheCaughtUp(n), Deleted));
            // Look-ups by shape and by owner read an index instead of scanning every node of the cluster.
            TryAddIndex(nodeCache.Store, ShapeIndex, n => ShapeKeyOf(n) is { } key ? [key] : []);
            TryAddIndex(nodeCache.Store, OwnerIndex, n => TpuSlices.OwnerOf(n) is { } uid ? [uid] : []);
            TryAddIndex(nodeCache.Store, LeaseKeyIndex, n => LeaseKeyOf(n) is { } key ? [key] : []);
        }
    }

    private const string ShapeIndex = "rpoi.io/tpu-shape";
    private const string OwnerIndex = "rpoi.io/lease-uid";
    private const string LeaseKeyIndex = "rpoi.io/lease-key";

    private static string? LeaseKeyOf(V1Node node) =>
        TpuSlices.LabelOf(node, TpuLabels.LeaseNamespaceLabel) is { } ns && TpuSlices.LabelOf(node, TpuLabels.LeaseNameLabel) is { } name ? $"{ns}/{name}" : null;

    private static void TryAddIndex(Store<V1Node> store, string name, Func<V1Node, IEnumerable<string>> index)
    {
        try
        {
            store.AddIndex(name, index);
        }
        catch (ArgumentException)
        {
            // Another provider on the same informer (a test, a second controller) already added the same index.
        }
    }

    private static string ShapeKey(TpuShape shape) => $"{shape.Accelerator}/{shape.Topology}";

    private static string? ShapeKeyOf(V1Node node) =>
        TpuSlices.LabelOf(node, TpuLabels.Accelerator) is { } accelerator && TpuSlices.LabelOf(node, TpuLabels.Topology) is { } topology
            ? $"{accelerator}/{topology}"
            : null;

    /// <inheritdoc/>
    public async Task<IReadOnlyList<TpuCapacity>> GetCapacityAsync(CancellationToken cancellationToken)
    {
        IEnumerable<V1Node> nodes = View(null, n => n.Metadata.Labels?.ContainsKey(TpuLabels.Accelerator) == true)
            ?? (await client.CoreV1.ListNodeAsync(labelSelector: TpuLabels.Accelerator, cancellationToken: cancellationToken).ConfigureAwait(false)).Items;
        var result = new List<TpuCapacity>();
        var byShape = nodes
            .Where(n => n.Metadata.Labels?.ContainsKey(TpuLabels.Topology) == true)
            .GroupBy(n => new TpuShape(n.Metadata.Labels[TpuLabels.Accelerator], n.Metadata.Labels[TpuLabels.Topology]));
        foreach (var group in byShape.OrderBy(g => g.Key.Accelerator, StringComparer.Ordinal).ThenBy(g => g.Key.Topology, StringComparer.Ordinal))
        {
            var shape = group.Key;
            if (shape.ChipsPerSlice <= 0)
            {
                continue;
            }

            result.Add(CapacityOf(shape, group));
        }

        return result;
    }

    /// <inheritdoc/>
    public async Task<TpuCapacity?> GetCapacityAsync(TpuShape shape, bool fresh, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.ChipsPerSlice <= 0)
        {
            return null;
        }

        if (!fresh && nodeCache is { HasSynced: true } && slices is { } index)
        {
            // Asked for every new request: read the index's sums, with the slices our own copies touch judged again,
            // instead of grouping every node of the shape.
            var (affected, hostsOf) = OwnSlices(ShapeKey(shape), OwnCopies());
            var replaced = affected.ToDictionary(id => id, id => TpuSliceIndex.SliceOf(shape, hostsOf(id)));
            return index.RoomOf(ShapeKey(shape), replaced) is not var (room, hosts) ? null
                : new TpuCapacity(shape, hosts, room.UsableChips, room.FreeChips, room.FreeSlices, room.Slices - room.UsableSlices);
        }

        var nodes = (fresh ? null : View([(ShapeIndex, ShapeKey(shape))], n => IsOfShape(n, shape))) ?? await ListShapeAsync(shape, cancellationToken).ConfigureAwait(false);
        return nodes.Count == 0 ? null : CapacityOf(shape, nodes);
    }

    private static TpuCapacity CapacityOf(TpuShape shape, IEnumerable<V1Node> nodes)
    {
        var all = TpuSlices.Group(shape, nodes);
        var slices = all.Where(s => s.Usable).ToList();
        var free = slices.Where(s => s.IsFree).ToList();
        var hosts = slices.Count == 0 ? 0 : slices[0].Nodes.Count;
        return new TpuCapacity(shape, hosts, slices.Sum(s => s.Chips), free.Sum(s => s.Chips), free.Count, all.Count - slices.Count);
    }

    /// <inheritdoc/>
    public async Task<TpuClaimOutcome> ClaimAsync(TpuClaimRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var shape = request.Shape;
        if (shape.ChipsPerSlice <= 0)
        {
            return new TpuClaimOutcome.Impossible($"topology '{shape.Topology}' is not a TPU topology such as 2x2, 2x4 or 4x4");
        }

        if (request.Chips <= 0 || request.Chips % shape.ChipsPerSlice != 0)
        {
            return new TpuClaimOutcome.Impossible(
                $"{request.Chips} chips is not a whole number of {shape.Topology} slices ({shape.ChipsPerSlice} chips each); ask for a multiple of {shape.ChipsPerSlice}");
        }

        var uid = request.Lease.Uid;
        var lostRaces = 0;
        for (var round = 0; round < MaxRounds; round++)
        {
            // With a synced cache a claim reads the slice index (the free slices it takes and its own); otherwise it lists
            // the shape's nodes and scans them.
            var listed = nodeCache is { HasSynced: true } && slices is not null ? null : await ListShapeAsync(shape, cancellationToken).ConfigureAwait(false);
            var pick = Pick(request, listed);
            try
            {
                // Marks of ours on slices we will not keep (unusable now, lost to someone else, or surplus) go first.
                await UnmarkAsync(pick.Stray, uid, cancellationToken).ConfigureAwait(false);
                if (pick.Insufficient is { } insufficient)
                {
                    // All or nothing: never sit on part of a multi-host slice while waiting.
                    await UnmarkAsync(pick.Chosen, uid, cancellationToken).ConfigureAwait(false);
                    return insufficient;
                }

                var marked = new List<V1Node>();
                var lost = false;
                foreach (var node in pick.Chosen)
                {
                    var result = TpuSlices.OwnerOf(node) == uid ? node : await TryMarkAsync(node, request.Lease, cancellationToken).ConfigureAwait(false);
                    if (result is null)
                    {
                        lost = true;
                        break;
                    }

                    marked.Add(result);
                }

                if (!lost)
                {
                    var claim = ToClaim(shape, marked);
                    logger.LogInformation("Lease {Lease} claimed {Chips} chips on {Nodes}", request.Lease, claim.Chips, string.Join(",", claim.Nodes));
                    return new TpuClaimOutcome.Claimed(claim);
                }

                // All or nothing: a slice (or lease) that lost a race gives back every host it already marked.
                lostRaces++;
                await UnmarkAsync(marked, uid, cancellationToken).ConfigureAwait(false);
                logger.LogInformation("Lease {Lease} lost a race for {Shape} nodes (round {Round}); rolled back {Count} marks", request.Lease, shape, round + 1, marked.Count);
            }
            finally
            {
                Unreserve(pick.Chosen, uid);
            }
        }

        return new TpuClaimOutcome.Insufficient(0, request.Chips,
            $"{request.Chips} chips of {shape.Accelerator} {shape.Topology}: lost {lostRaces} races for free slices to other claims; will retry");
    }

    private sealed record Picked(List<V1Node> Chosen, List<V1Node> Stray, TpuClaimOutcome.Insufficient? Insufficient);

    /// <summary>
    /// Chooses the nodes to mark, atomically with respect to other claims in this process: slices the lease already
    /// holds or partly holds first, then free slices nobody has reserved, leaving room for the unserved leases ahead.
    /// The chosen nodes are reserved for the lease until <see cref="Unreserve"/>. With <paramref name="listed"/> (no synced
    /// cache) the shape's listed nodes are scanned; otherwise the slice index and this process's own writes are read, so
    /// the cost is the slices taken (and those passed over as reserved or kept for older leases), not the free nodes.
    /// </summary>
    private Picked Pick(TpuClaimRequest request, IList<V1Node>? listed)
    {
        var uid = request.Lease.Uid;
        var shape = request.Shape;
        var need = request.Chips / shape.ChipsPerSlice;
        // Older leases ahead that already hold nodes need nothing more; without a cache the rest are found by elimination while scanning.
        var unserved = new HashSet<string>(StringComparer.Ordinal);
        foreach (var ahead in request.Ahead ?? [])
        {
            if (ahead.Uid != uid && !HoldsAny(ahead.Uid))
            {
                unserved.Add(ahead.Uid);
            }
        }

        // Read outside the lock: the slices this lease touches, and how to read the free ones in claim order.
        var source = listed is null ? Indexed(shape, uid) : Scanned(shape, uid, listed, unserved);
        var touched = source.Touched;
        lock (gate)
        {
            // A node another claim marked after our view was read: its reservation is gone, but the newest copy we know
            // (our own write, kept by Remember before Unreserve, or the cache once it caught up) shows the new owner.
            var store = nodeCache?.Store;
            bool ReservedByOther(TpuSlice s) => s.Nodes.Any(n =>
            {
                if (reserved.TryGetValue(n.Metadata.Name, out var who) && who != uid)
                {
                    return true;
                }

                var newest = overlay.TryGetValue(n.Metadata.Name, out var mine) ? mine.Node : store?.Get(ObjectKey.Of(n));
                return newest is not null && newest.Metadata.ResourceVersion != n.Metadata.ResourceVersion
                    && TpuSlices.OwnerOf(newest) is { } owner && owner != uid;
            });
            var held = touched.Where(s => s.Usable && s.IsHeldWhollyBy(uid)).ToList();
            var partial = touched.Where(s => s.Usable && s.IsTouchedBy(uid) && !s.IsHeldWhollyBy(uid) && s.IsCompletableBy(uid) && !ReservedByOther(s)).ToList();
            // Lazy: the reservation/staleness check (a cache read per host) runs only until enough free slices are found,
            // not for every free slice of the shape on each claim; the count is taken in full only when short.
            List<TpuSlice> Free(int skip, int take) => source.Free(s => !ReservedByOther(s), skip, take);

            // Strict FIFO: an older lease that holds and reserves nothing yet still needs its slices from the free ones,
            // unless it asks for more than the shape's usable slices hold (room it cannot use is not kept from others).
            int KeptForOlder(int usableChips)
            {
                var kept = 0;
                foreach (var ahead in request.Ahead ?? [])
                {
                    if (unserved.Contains(ahead.Uid) && !reservedBy.ContainsKey(ahead.Uid) && ahead.Chips <= usableChips)
                    {
                        kept += (ahead.Chips + shape.ChipsPerSlice - 1) / shape.ChipsPerSlice;
                    }
                }

                return kept;
            }

            var keptForOlder = KeptForOlder(int.MaxValue);
            var ours = held.Concat(partial).Take(need).ToList();
            var chosen = ours.Concat(Free(keptForOlder, need - ours.Count)).ToList();
            // Every slice of the shape, read only when short (the message, and the room older leases can use, need it).
            IReadOnlyList<TpuSlice>? all = null;
            if (chosen.Count < need && keptForOlder > 0)
            {
                all = TpuSlices.Group(shape, View([(ShapeIndex, ShapeKey(shape))], n => IsOfShape(n, shape)) ?? listed ?? []);
                var usable = KeptForOlder(all.Where(s => s.Usable).Sum(s => s.Chips));
                if (usable < keptForOlder)
                {
                    keptForOlder = usable;
                    chosen = ours.Concat(Free(keptForOlder, need - ours.Count)).ToList();
                }
            }

            var freeCount = chosen.Count < need ? Free(0, int.MaxValue).Count : 0;
            var stray = touched.Where(s => s.IsTouchedBy(uid) && !chosen.Contains(s)).SelectMany(s => s.Nodes).ToList();
            if (chosen.Count < need)
            {
                var room = Math.Max(0, freeCount - keptForOlder);
                var available = Math.Min(room, need) * shape.ChipsPerSlice;
                all ??= TpuSlices.Group(shape, View([(ShapeIndex, ShapeKey(shape))], n => IsOfShape(n, shape)) ?? listed ?? []);
                var hosts = all.FirstOrDefault(s => s.Usable)?.Nodes.Count ?? 0;
                var sliceWord = hosts > 1 ? $"{hosts}-host {shape.Topology} slices" : $"{shape.Topology} slices";
                var forOlder = keptForOlder > 0 ? $", {keptForOlder} more kept for older leases ahead in the queue" : string.Empty;
                var message = all.Count == 0
                    ? $"no node in this cluster has {TpuLabels.Accelerator}={shape.Accelerator} and {TpuLabels.Topology}={shape.Topology}"
                    : $"{request.Chips} chips of {shape.Accelerator} {shape.Topology} asked ({need} {sliceWord}); {freeCount * shape.ChipsPerSlice} free now ({freeCount} slices of {all.Count(s => s.Usable)} usable{forOlder})";
                // Our partial marks are rolled back by the caller; they are not reserved.
                return new Picked(ours.SelectMany(s => s.Nodes).ToList(), stray, new TpuClaimOutcome.Insufficient(available, request.Chips, message)
                {
                    UsableChips = all.Where(s => s.Usable).Sum(s => s.Chips),
                });
            }

            var chosenNodes = chosen.SelectMany(s => s.Nodes).ToList();
            foreach (var node in chosenNodes)
            {
                reserved[node.Metadata.Name] = uid;
                reservedBy[uid] = reservedBy.GetValueOrDefault(uid) + 1;
            }

            return new Picked(chosenNodes, stray, null);
        }
    }

    /// <summary>
    /// What a claim reads: the slices the lease touches (sorted by key) and the free, usable slices in claim order, of
    /// which <c>Free(accept, skip, take)</c> passes over the first <c>skip</c> accepted and returns at most <c>take</c>.
    /// </summary>
    private sealed record SliceSource(IReadOnlyList<TpuSlice> Touched, Func<Func<TpuSlice, bool>, int, int, List<TpuSlice>> Free);

    /// <summary>
    /// The slices of a shape that have a host in this process's own copies (where the cache's copy sits, and where ours
    /// does), and a slice's hosts as this process sees them: the cache's, each replaced by our newer copy, plus copies that
    /// moved in. Only nodes the cache still holds count, as in <see cref="View"/>.
    /// </summary>
    private (HashSet<TpuSliceId> Affected, Func<TpuSliceId, List<V1Node>> HostsOf) OwnSlices(string shapeKey, Dictionary<string, V1Node> mine)
    {
        var index = slices!;
        var store = nodeCache!.Store;
        var affected = new HashSet<TpuSliceId>();
        var mineAt = new Dictionary<TpuSliceId, List<V1Node>>();
        foreach (var (name, node) in mine)
        {
            if (store.Get(ObjectKey.Of(node)) is null)
            {
                continue;
            }

            if (index.WhereIs(name) is { } cached && cached.ShapeKey == shapeKey)
            {
                affected.Add(cached.Id);
            }

            if (TpuSliceIndex.Locate(node) is { } at && at.ShapeKey == shapeKey)
            {
                affected.Add(at.Id);
                if (!mineAt.TryGetValue(at.Id, out var list))
                {
                    mineAt[at.Id] = list = [];
                }

                list.Add(node);
            }
        }

        List<V1Node> HostsOf(TpuSliceId id)
        {
            var hosts = new List<V1Node>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var cached in index.Hosts(shapeKey, id))
            {
                // Our copy decides where such a node sits; it is added below if it is still in this slice.
                if (!mine.ContainsKey(cached.Metadata.Name))
                {
                    names.Add(cached.Metadata.Name);
                    hosts.Add(cached);
                }
            }

            foreach (var node in mineAt.GetValueOrDefault(id) ?? [])
            {
                if (names.Add(node.Metadata.Name))
                {
                    hosts.Add(node);
                }
            }

            return hosts;
        }

        return (affected, HostsOf);
    }

    /// <summary>Without a synced cache: groups the listed nodes of the shape (free ones and the lease's own).</summary>
    private static SliceSource Scanned(TpuShape shape, string uid, IList<V1Node> nodes, HashSet<string> unserved)
    {
        // Only free nodes and our own can end up in a claim; a multi-host slice with another lease's host in it groups
        // short of hosts and so is unusable, exactly as it is not free.
        var candidates = new List<V1Node>(nodes.Count);
        foreach (var node in nodes)
        {
            var owner = TpuSlices.OwnerOf(node);
            if (owner is null || owner == uid)
            {
                candidates.Add(node);
            }
            else if (unserved.Count > 0)
            {
                unserved.Remove(owner);
            }
        }

        var slices = TpuSlices.Group(shape, candidates);
        return new SliceSource(
            slices.Where(s => s.IsTouchedBy(uid)).ToList(),
            (accept, skip, take) => take <= 0 ? [] : slices.Where(s => s.Usable && s.IsFree && accept(s)).Skip(skip).Take(take).ToList());
    }

    /// <summary>
    /// With a synced cache: the slice index, with every slice that has a host in this process's own copies (a node it
    /// wrote or re-read that the cache has not caught up with) judged again from the newest copies, so the result is what
    /// grouping the free nodes of the shape in <see cref="View"/> would give, at the cost of the slices read.
    /// </summary>
    private SliceSource Indexed(TpuShape shape, string uid)
    {
        var index = slices!;
        var store = nodeCache!.Store;
        var shapeKey = ShapeKey(shape);
        // Our copies first, then the cache (as View reads them).
        var mine = OwnCopies();
        var (affected, hostsOf) = OwnSlices(shapeKey, mine);
        var touchedIds = new HashSet<TpuSliceId>();
        foreach (var node in mine.Values)
        {
            if (TpuSlices.OwnerOf(node) == uid && store.Get(ObjectKey.Of(node)) is not null && TpuSliceIndex.Locate(node) is { } at && at.ShapeKey == shapeKey)
            {
                touchedIds.Add(at.Id);
            }
        }

        foreach (var cached in store.ByIndex(OwnerIndex, uid))
        {
            var current = mine.GetValueOrDefault(cached.Metadata.Name) ?? cached;
            if (TpuSlices.OwnerOf(current) == uid && TpuSliceIndex.Locate(current) is { } at && at.ShapeKey == shapeKey)
            {
                touchedIds.Add(at.Id);
            }
        }

        var touched = new List<TpuSlice>();
        foreach (var id in touchedIds)
        {
            touched.AddRange(TpuSlices.Group(shape, hostsOf(id).Where(n => FreeOrHeldBy(n, uid))).Where(s => s.IsTouchedBy(uid)));
        }

        touched.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        var extra = new List<(TpuSliceId Id, TpuSlice Slice)>();
        foreach (var id in affected)
        {
            if (!touchedIds.Contains(id) && TpuSliceIndex.FreeSliceOf(shape, hostsOf(id)) is { } slice)
            {
                extra.Add((id, slice));
            }
        }

        extra.Sort((a, b) => TpuSliceId.Order.Compare(a.Id, b.Id));
        affected.UnionWith(touchedIds);
        return new SliceSource(touched, (accept, skip, take) => index.TakeFree(shapeKey, affected, extra, accept, skip, take));
    }

    /// <summary>
    /// Whether a lease holds any node, by the cache's owner index or this process's own writes (a claim view reads only
    /// free nodes, so other leases' nodes are not in it).
    /// </summary>
    private bool HoldsAny(string uid)
    {
        if (nodeCache is not { HasSynced: true } cache)
        {
            return false; // Without a cache the claim lists every node of the shape, and the scan finds the holders.
        }

        // Our own writes first, then the cache (as View does): CacheCaughtUp drops an overlay entry only once the cache
        // holds its version, so a node this lease marked is in the copy or in the cache read after it. Read the other way
        // round, the cache can be read just before it catches up and the overlay just after, and a served lease looks
        // unserved (it then keeps a younger lease from nodes it does not need).
        bool held;
        lock (gate)
        {
            held = overlayHolds.ContainsKey(uid);
        }

        BetweenOverlayAndCacheReads?.Invoke();
        if (held)
        {
            return true;
        }

        var cached = cache.Store.ByIndex(OwnerIndex, uid);
        if (cached.Count == 0)
        {
            return false;
        }

        // Held by the cache's account, unless this process has since seen that node change hands (its copy is newer until
        // the cache catches up, and a copy dropped meanwhile means the cache read above already showed that version).
        lock (gate)
        {
            foreach (var n in cached)
            {
                if (!overlay.TryGetValue(n.Metadata.Name, out var mine) || TpuSlices.OwnerOf(mine.Node) == uid)
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>The free-slice index this provider claims from (null without a cache); tests compare it with a full scan.</summary>
    internal TpuSliceIndex? SliceIndex => slices;

    /// <summary>
    /// Test hook: what a claim of <paramref name="shape"/> by <paramref name="uid"/> would read now, once through the slice
    /// index and once by grouping the same view of the cache plus own copies (the scan claims made before the index):
    /// the keys of the free, usable slices in claim order and of the slices the lease touches.
    /// </summary>
    internal ((IReadOnlyList<string> Free, IReadOnlyList<string> Touched) Indexed, (IReadOnlyList<string> Free, IReadOnlyList<string> Touched) Scanned) CompareSources(TpuShape shape, string uid)
    {
        var view = View([(ShapeIndex, ShapeKey(shape))], n => IsOfShape(n, shape) && FreeOrHeldBy(n, uid))
            ?? throw new InvalidOperationException("the node cache has not synced");
        var scanned = Scanned(shape, uid, view, []);
        var indexed = Indexed(shape, uid);
        static (IReadOnlyList<string>, IReadOnlyList<string>) Keys(SliceSource source) =>
            (source.Free(_ => true, 0, int.MaxValue).Select(s => s.Key).ToList(), source.Touched.Select(s => s.Key).ToList());
        return (Keys(indexed), Keys(scanned));
    }

    /// <summary>Test hook: a shape's capacity from the slice index and from grouping the same view (as before the index).</summary>
    internal async Task<(TpuCapacity? Indexed, TpuCapacity? Scanned)> CompareCapacityAsync(TpuShape shape)
    {
        var view = View([(ShapeIndex, ShapeKey(shape))], n => IsOfShape(n, shape)) ?? throw new InvalidOperationException("the node cache has not synced");
        var indexed = await GetCapacityAsync(shape, fresh: false, CancellationToken.None).ConfigureAwait(false);
        return (indexed, view.Count == 0 ? null : CapacityOf(shape, view));
    }

    /// <summary>Test hook: called by the owner look-up between its copy of this process's writes and its read of the cache.</summary>
    internal Action? BetweenOverlayAndCacheReads { get; set; }

    private void Unreserve(IEnumerable<V1Node> nodes, string uid)
    {
        lock (gate)
        {
            foreach (var node in nodes)
            {
                if (reserved.TryGetValue(node.Metadata.Name, out var who) && who == uid)
                {
                    reserved.Remove(node.Metadata.Name);
                    if (--CollectionsMarshal.GetValueRefOrNullRef(reservedBy, uid) <= 0)
                    {
                        reservedBy.Remove(uid);
                    }
                }
            }
        }
    }

    /// <inheritdoc/>
    public async Task<TpuClaim?> FindClaimAsync(LeaseIdentity lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        // The cache plus this process's own writes is at least as new as every mark this process made, so a lease
        // claimed here never looks unallocated or partly allocated; only without a synced cache does this list.
        var nodes = View([(OwnerIndex, lease.Uid)], n => IsHeldBy(n, lease)) is { } cached
            ? cached.OrderBy(n => n.Metadata.Name, StringComparer.Ordinal).ToList()
            : await ListHeldAsync(lease, cancellationToken).ConfigureAwait(false);
        if (nodes.Count == 0)
        {
            return null;
        }

        var shape = new TpuShape(
            TpuSlices.LabelOf(nodes[0], TpuLabels.Accelerator) ?? string.Empty,
            TpuSlices.LabelOf(nodes[0], TpuLabels.Topology) ?? string.Empty);
        return ToClaim(shape, nodes);
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<string>> ReleaseAsync(LeaseIdentity lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var nodes = await ListHeldAsync(lease, cancellationToken).ConfigureAwait(false);
        await UnmarkAsync(nodes, lease.Uid, cancellationToken).ConfigureAwait(false);
        if (nodes.Count > 0)
        {
            logger.LogInformation("Lease {Lease} released {Nodes}", lease, string.Join(",", nodes.Select(n => n.Metadata.Name)));
        }

        return nodes.Select(n => n.Metadata.Name).Order(StringComparer.Ordinal).ToList();
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<TpuShape>> ReleaseOrphansAsync(string @namespace, string name, string? liveUid, CancellationToken cancellationToken)
    {
        // A synced cache (with this process's own writes) that shows no such mark answers without a request, so this is
        // cheap enough to ask on every reconcile; otherwise the marks are listed from the API server, and only marks that
        // are really there are removed, each with its resourceVersion.
        if (View([(LeaseKeyIndex, $"{@namespace}/{name}")], n => LeaseKeyOf(n) == $"{@namespace}/{name}" && TpuSlices.OwnerOf(n) is { } o && o != liveUid) is { Count: 0 })
        {
            return [];
        }

        var selector = $"{TpuLabels.LeaseNamespaceLabel}={@namespace},{TpuLabels.LeaseNameLabel}={name}";
        var list = await client.CoreV1.ListNodeAsync(labelSelector: selector, cancellationToken: cancellationToken).ConfigureAwait(false);
        var orphans = list.Items.Where(n => TpuSlices.OwnerOf(n) is { } owner && owner != liveUid && owner != TpuSlices.UnknownOwner).ToList();
        foreach (var group in orphans.GroupBy(n => TpuSlices.OwnerOf(n)!))
        {
            await UnmarkAsync(group.ToList(), group.Key, cancellationToken).ConfigureAwait(false);
            logger.LogWarning("Released {Nodes}, still claimed by Lease {Namespace}/{Name} (uid {Uid}) which no longer exists; its finalizer never ran",
                string.Join(",", group.Select(n => n.Metadata.Name)), @namespace, name, group.Key);
        }

        return orphans.Select(n => ShapeKeyOf(n) is null ? null : new TpuShape(TpuSlices.LabelOf(n, TpuLabels.Accelerator)!, TpuSlices.LabelOf(n, TpuLabels.Topology)!))
            .OfType<TpuShape>().Distinct().ToList();
    }

    private async Task<IList<V1Node>> ListShapeAsync(TpuShape shape, CancellationToken cancellationToken)
    {
        var selector = $"{TpuLabels.Accelerator}={shape.Accelerator},{TpuLabels.Topology}={shape.Topology}";
        var list = await client.CoreV1.ListNodeAsync(labelSelector: selector, cancellationToken: cancellationToken).ConfigureAwait(false);
        return list.Items;
    }

    private async Task<List<V1Node>> ListHeldAsync(LeaseIdentity lease, CancellationToken cancellationToken)
    {
        var selector = $"{TpuLabels.LeaseNamespaceLabel}={lease.Namespace},{TpuLabels.LeaseNameLabel}={lease.Name}";
        var list = await client.CoreV1.ListNodeAsync(labelSelector: selector, cancellationToken: cancellationToken).ConfigureAwait(false);
        return HeldBy(list.Items, lease);
    }

    /// <summary>The nodes marked for <paramref name="lease"/> (labels and UID annotation), by name.</summary>
    private static List<V1Node> HeldBy(IEnumerable<V1Node> nodes, LeaseIdentity lease) =>
        nodes.Where(n => IsHeldBy(n, lease)).OrderBy(n => n.Metadata.Name, StringComparer.Ordinal).ToList();

    private static bool IsHeldBy(V1Node node, LeaseIdentity lease) =>
        TpuSlices.LabelOf(node, TpuLabels.LeaseNamespaceLabel) == lease.Namespace
        && TpuSlices.LabelOf(node, TpuLabels.LeaseNameLabel) == lease.Name
        && TpuSlices.OwnerOf(node) == lease.Uid;

    private static bool FreeOrHeldBy(V1Node node, string uid) => TpuSlices.OwnerOf(node) is not { } owner || owner == uid;

    private static bool IsOfShape(V1Node node, TpuShape shape) =>
        TpuSlices.LabelOf(node, TpuLabels.Accelerator) == shape.Accelerator && TpuSlices.LabelOf(node, TpuLabels.Topology) == shape.Topology;

    /// <summary>
    /// The informer's nodes (those under the given index values, or all) that match
    /// <paramref name="filter"/>, each replaced by this process's newer copy when it has one; null when there is no cache
    /// or it has not synced yet (then callers list from the API server).
    /// </summary>
    private List<V1Node>? View(IReadOnlyList<(string Index, string Value)>? sources, Func<V1Node, bool> filter)
    {
        if (nodeCache is not { HasSynced: true } cache)
        {
            return null;
        }

        // Copy our own writes first, then read the cache: CacheCaughtUp drops an entry only after the cache holds its
        // version, so whatever interleaves, each node is seen at least as new as this process's last write.
        var mine = OwnCopies();
        IReadOnlyList<V1Node> cached = sources is null ? cache.Store.List()
            : sources.Count == 1 ? cache.Store.ByIndex(sources[0].Index, sources[0].Value)
            : sources.SelectMany(source => cache.Store.ByIndex(source.Index, source.Value)).DistinctBy(n => n.Metadata.Name, StringComparer.Ordinal).ToList();
        var result = new List<V1Node>(cached.Count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in cached)
        {
            var current = mine.GetValueOrDefault(node.Metadata.Name) ?? node;
            seen.Add(node.Metadata.Name);
            if (filter(current))
            {
                result.Add(current);
            }
        }

        // Our copy may match where the cache's does not yet (a node this process just claimed is not in the cache's
        // owner index until the watch delivers the claim).
        if (sources is not null)
        {
            foreach (var (name, node) in mine)
            {
                if (!seen.Contains(name) && cache.Store.Get(ObjectKey.Of(node)) is not null && filter(node))
                {
                    result.Add(node);
                }
            }
        }

        return result;
    }

    /// <summary>This process's own copies of nodes (written or re-read) that have not expired, dropping the expired ones.</summary>
    private Dictionary<string, V1Node> OwnCopies()
    {
        var now = time.GetUtcNow();
        Dictionary<string, V1Node> mine;
        lock (gate)
        {
            mine = new Dictionary<string, V1Node>(overlay.Count, StringComparer.Ordinal);
            List<string>? expired = null;
            foreach (var (name, entry) in overlay)
            {
                if (now - entry.At < OverlayLifetime)
                {
                    mine[name] = entry.Node;
                }
                else
                {
                    (expired ??= []).Add(name);
                }
            }

            foreach (var name in expired ?? [])
            {
                RemoveOwnCopyLocked(name);
            }
        }

        return mine;
    }

    /// <summary>Keeps a node as this process just wrote or read it, until the cache shows that version.</summary>
    private void Remember(V1Node node)
    {
        if (nodeCache is null)
        {
            return;
        }

        lock (gate)
        {
            RemoveOwnCopyLocked(node.Metadata.Name);
            overlay[node.Metadata.Name] = (node, time.GetUtcNow());
            if (TpuSlices.OwnerOf(node) is { } owner)
            {
                overlayHolds[owner] = overlayHolds.GetValueOrDefault(owner) + 1;
            }
        }
    }

    private void RemoveOwnCopyLocked(string name)
    {
        if (overlay.Remove(name, out var old) && TpuSlices.OwnerOf(old.Node) is { } owner && overlayHolds.TryGetValue(owner, out var count))
        {
            if (count <= 1)
            {
                overlayHolds.Remove(owner);
            }
            else
            {
                overlayHolds[owner] = count - 1;
            }
        }
    }

    /// <summary>The cache delivered a node: an overlay entry of exactly that version is no longer needed.</summary>
    private void CacheCaughtUp(V1Node node)
    {
        lock (gate)
        {
            if (overlay.TryGetValue(node.Metadata.Name, out var mine) && mine.Node.Metadata.ResourceVersion == node.Metadata.ResourceVersion)
            {
                RemoveOwnCopyLocked(node.Metadata.Name);
            }
        }
    }

    private void Deleted(V1Node node)
    {
        lock (gate)
        {
            RemoveOwnCopyLocked(node.Metadata.Name);
        }
    }

    private static TpuClaim ToClaim(TpuShape shape, IEnumerable<V1Node> nodes)
    {
        var list = nodes.OrderBy(n => n.Metadata.Name, StringComparer.Ordinal).ToList();
        var pools = list.Select(n => TpuSlices.LabelOf(n, TpuLabels.NodePool)).OfType<string>().Distinct().Order(StringComparer.Ordinal).ToList();
        return new TpuClaim(shape, list.Select(n => n.Metadata.Name).ToList(), pools, list.Sum(TpuSlices.ChipsOn));
    }

    /// <summary>Marks a free node for the lease. Returns the updated node, or null when the node is no longer free.</summary>
    private async Task<V1Node?> TryMarkAsync(V1Node node, LeaseIdentity lease, CancellationToken cancellationToken)
    {
        var current = node;
        for (var attempt = 0; attempt < MaxConflictsPerNode; attempt++)
        {
            var owner = TpuSlices.OwnerOf(current);
            if (owner == lease.Uid)
            {
                return current;
            }

            if (owner is not null || !TpuSlices.IsSchedulable(current))
            {
                return null;
            }

            try
            {
                var marked = await client.CoreV1.PatchNodeAsync(MarkPatch(current, lease, time.GetUtcNow()), current.Metadata.Name, cancellationToken: cancellationToken).ConfigureAwait(false);
                Remember(marked);
                return marked;
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
            {
                var fresh = await ReadNodeAsync(current.Metadata.Name, cancellationToken).ConfigureAwait(false);
                if (fresh is null)
                {
                    return null;
                }

                current = fresh;
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
            {
                return null;
            }
        }

        return null;
    }

    /// <summary>Removes the lease's marks from every node in <paramref name="nodes"/> that still carries them.</summary>
    private async Task UnmarkAsync(IReadOnlyCollection<V1Node> nodes, string uid, CancellationToken cancellationToken)
    {
        foreach (var node in nodes)
        {
            var current = node;
            for (var attempt = 0; ; attempt++)
            {
                if (TpuSlices.OwnerOf(current) != uid)
                {
                    break;
                }

                try
                {
                    Remember(await client.CoreV1.PatchNodeAsync(UnmarkPatch(current), current.Metadata.Name, cancellationToken: cancellationToken).ConfigureAwait(false));
                    break;
                }
                catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict && attempt < MaxConflictsPerNode * 4)
                {
                    var fresh = await ReadNodeAsync(current.Metadata.Name, cancellationToken).ConfigureAwait(false);
                    if (fresh is null)
                    {
                        break;
                    }

                    current = fresh;
                }
                catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
                {
                    break;
                }
            }
        }
    }

    private async Task<V1Node?> ReadNodeAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            var node = await client.CoreV1.ReadNodeAsync(name, cancellationToken: cancellationToken).ConfigureAwait(false);
            Remember(node);
            return node;
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>
    /// A merge patch adding the lease marks, conditional on the node's resourceVersion (409 when the node changed since
    /// it was read). The taint list is replaced whole, computed from the node as read, which the precondition makes safe.
    /// </summary>
    internal static V1Patch MarkPatch(V1Node node, LeaseIdentity lease, DateTimeOffset now)
    {
        var marked = KubernetesJson.Deserialize<V1Node>(KubernetesJson.Serialize(node));
        AddMarks(marked, lease, now);
        var body = new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["resourceVersion"] = node.Metadata.ResourceVersion,
                ["labels"] = new JsonObject
                {
                    [TpuLabels.LeaseNamespaceLabel] = lease.Namespace,
                    [TpuLabels.LeaseNameLabel] = lease.Name,
                },
                ["annotations"] = new JsonObject
                {
                    [TpuLabels.LeaseUidAnnotation] = lease.Uid,
                    [TpuLabels.ClaimedAtAnnotation] = marked.Metadata.Annotations[TpuLabels.ClaimedAtAnnotation],
                },
            },
            ["spec"] = new JsonObject { ["taints"] = JsonNode.Parse(KubernetesJson.Serialize(marked.Spec.Taints)) },
        };
        return new V1Patch(body.ToJsonString(), V1Patch.PatchType.MergePatch);
    }

    /// <summary>A merge patch removing the lease marks (and nothing else), conditional on the node's resourceVersion.</summary>
    internal static V1Patch UnmarkPatch(V1Node node)
    {
        var kept = node.Spec?.Taints?.Where(t => t.Key != TpuLabels.LeaseTaintKey).ToList() ?? [];
        var body = new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["resourceVersion"] = node.Metadata.ResourceVersion,
                ["labels"] = new JsonObject { [TpuLabels.LeaseNamespaceLabel] = null, [TpuLabels.LeaseNameLabel] = null },
                ["annotations"] = new JsonObject { [TpuLabels.LeaseUidAnnotation] = null, [TpuLabels.ClaimedAtAnnotation] = null },
            },
            ["spec"] = new JsonObject { ["taints"] = kept.Count == 0 ? null : JsonNode.Parse(KubernetesJson.Serialize(kept)) },
        };
        return new V1Patch(body.ToJsonString(), V1Patch.PatchType.MergePatch);
    }

    /// <summary>Adds exactly the marks <see cref="RemoveMarks"/> takes away.</summary>
    internal static void AddMarks(V1Node node, LeaseIdentity lease, DateTimeOffset now)
    {
        node.Metadata.Labels ??= new Dictionary<string, string>();
        node.Metadata.Labels[TpuLabels.LeaseNamespaceLabel] = lease.Namespace;
        node.Metadata.Labels[TpuLabels.LeaseNameLabel] = lease.Name;
        node.Metadata.Annotations ??= new Dictionary<string, string>();
        node.Metadata.Annotations[TpuLabels.LeaseUidAnnotation] = lease.Uid;
        node.Metadata.Annotations[TpuLabels.ClaimedAtAnnotation] = now.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        node.Spec ??= new V1NodeSpec();
        var taints = node.Spec.Taints?.Where(t => t.Key != TpuLabels.LeaseTaintKey).ToList() ?? [];
        taints.Add(new V1Taint { Key = TpuLabels.LeaseTaintKey, Value = lease.Namespace, Effect = TpuLabels.NoSchedule });
        node.Spec.Taints = taints;
    }

    /// <summary>Removes the lease marks and nothing else (GKE's own <c>google.com/tpu</c> taint stays).</summary>
    internal static void RemoveMarks(V1Node node)
    {
        node.Metadata.Labels?.Remove(TpuLabels.LeaseNamespaceLabel);
        node.Metadata.Labels?.Remove(TpuLabels.LeaseNameLabel);
        node.Metadata.Annotations?.Remove(TpuLabels.LeaseUidAnnotation);
        node.Metadata.Annotations?.Remove(TpuLabels.ClaimedAtAnnotation);
        if (node.Spec?.Taints is { } taints)
        {
            var kept = taints.Where(t => t.Key != TpuLabels.LeaseTaintKey).ToList();
            node.Spec.Taints = kept.Count == 0 ? null : kept;
        }
    }
}
