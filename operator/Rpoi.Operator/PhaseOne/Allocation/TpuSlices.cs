using System.Runtime.CompilerServices;
using k8s.Models;

namespace Rpoi.Operator.PhaseOne.Allocation;

/// <summary>
/// One TPU slice: a single host, or every host of a multi-host node pool (GKE puts exactly one multi-host
/// slice in a node pool). A slice is the unit of claiming: all of its hosts or none.
/// </summary>
/// <param name="Key">The node name (single host) or the node pool name (multi-host).</param>
/// <param name="Nodes">The slice's nodes, sorted by name.</param>
/// <param name="Chips">Chips on all hosts of the slice.</param>
/// <param name="Usable">Complete (every host present), schedulable and not reported NotReady.</param>
/// <param name="Owners">Distinct owner UIDs of claimed hosts; empty when no host is claimed.</param>
internal sealed record TpuSlice(string Key, IReadOnlyList<V1Node> Nodes, int Chips, bool Usable, IReadOnlyList<string> Owners)
{
    /// <summary>No host of the slice is claimed.</summary>
    public bool IsFree => Owners.Count == 0;

    /// <summary>Every host of the slice is claimed by <paramref name="uid"/>.</summary>
    public bool IsHeldWhollyBy(string uid) => Nodes.All(n => TpuSlices.OwnerOf(n) == uid);

    /// <summary>Some host is claimed by <paramref name="uid"/>.</summary>
    public bool IsTouchedBy(string uid) => Owners.Contains(uid);

    /// <summary>Hosts are claimed only by <paramref name="uid"/> or by nobody, so the slice can be completed.</summary>
    public bool IsCompletableBy(string uid) => Owners.All(o => o == uid);
}

/// <summary>Groups TPU nodes into slices and reads claim marks. Pure: no API calls.</summary>
internal static class TpuSlices
{
    /// <summary>Marker used as owner when a node carries the lease taint but no UID (set by hand or by an unknown tool).</summary>
    public const string UnknownOwner = "?";

    /// <summary>The UID of the lease holding <paramref name="node"/>, or null when the node is free.</summary>
    public static string? OwnerOf(V1Node node)
    {
        if (node.Metadata?.Annotations?.TryGetValue(TpuLabels.LeaseUidAnnotation, out var uid) == true && !string.IsNullOrEmpty(uid))
        {
            return uid;
        }

        // A lease taint without our annotation still means "not free": never take a node someone else marked.
        var tainted = node.Spec?.Taints?.Any(t => t.Key == TpuLabels.LeaseTaintKey) == true;
        var labelled = node.Metadata?.Labels?.ContainsKey(TpuLabels.LeaseNameLabel) == true;
        return tainted || labelled ? UnknownOwner : null;
    }

    /// <summary>The value of label <paramref name="key"/>, or null.</summary>
    public static string? LabelOf(V1Node node, string key) =>
        node.Metadata?.Labels is { } labels && labels.TryGetValue(key, out var value) ? value : null;

    /// <summary>Chips on a host: allocatable <c>google.com/tpu</c>, else capacity, else 0.</summary>
    public static int ChipsOn(V1Node node)
    {
        var allocatable = ChipsIn(node.Status?.Allocatable);
        return allocatable > 0 ? allocatable : ChipsIn(node.Status?.Capacity);
    }

    // Reading a ResourceQuantity is costly (it formats through fractions), while claims look at every free node: count once
    // per resource map. A map is never changed in place (informer caches replace objects, and the Node cache shares one
    // read-only map per distinct TPU count), so the table holds one entry per distinct map, not one per node.
    private static readonly ConditionalWeakTable<IDictionary<string, ResourceQuantity>, StrongBox<int>> ChipCounts = new();

    private static int ChipsIn(IDictionary<string, ResourceQuantity>? resources) =>
        resources is null ? 0 : ChipCounts.GetValue(resources, static r => new StrongBox<int>(TryQuantity(r, out var chips) ? chips : 0)).Value;

    private static bool TryQuantity(IDictionary<string, ResourceQuantity>? resources, out int chips)
    {
        chips = 0;
        if (resources is null || !resources.TryGetValue(TpuLabels.TpuResource, out var quantity) || quantity is null)
        {
            return false;
        }

        try
        {
            chips = (int)quantity.ToInt64();
            return chips > 0;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>Whether the node takes new pods: not cordoned, not reported NotReady, not under GKE maintenance, has TPU chips.</summary>
    public static bool IsSchedulable(V1Node node)
    {
        if (node.Spec?.Unschedulable == true || ChipsOn(node) <= 0 || Nodes.NodeHealth.InMaintenance(node))
        {
            return false;
        }

        var ready = node.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready");
        // Nodes without a Ready condition (fresh, or simulated) count as usable; only an explicit non-True excludes.
        return ready is null || string.Equals(ready.Status, "True", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Hosts one slice of <paramref name="shape"/> spans, given <paramref name="chipsPerHost"/>.</summary>
    public static int HostsPerSlice(TpuShape shape, int chipsPerHost) =>
        chipsPerHost <= 0 ? 0 : Math.Max(1, (shape.ChipsPerSlice + chipsPerHost - 1) / chipsPerHost);

    /// <summary>
    /// Groups nodes of one shape into slices, sorted by key so that every replica picks slices in the same order
    /// (which lowers the chance that two replicas chase the same slice at once).
    /// </summary>
    public static IReadOnlyList<TpuSlice> Group(TpuShape shape, IEnumerable<V1Node> nodes)
    {
        var slices = new List<TpuSlice>();
        var multiHost = new Dictionary<string, List<V1Node>>(StringComparer.Ordinal);
        foreach (var node in nodes)
        {
            var perHost = ChipsOn(node);
            if (perHost >= shape.ChipsPerSlice || perHost <= 0)
            {
                // A single-host slice: the common case, built without the multi-host bookkeeping (claims group every
                // free node of a shape, so this runs for each of them).
                var owner = OwnerOf(node);
                slices.Add(new TpuSlice(node.Metadata.Name, [node], perHost, perHost == shape.ChipsPerSlice && IsSchedulable(node), owner is null ? [] : [owner]));
                continue;
            }

            var pool = LabelOf(node, TpuLabels.NodePool) ?? string.Empty;
            if (!multiHost.TryGetValue(pool, out var members))
            {
                members = [];
                multiHost[pool] = members;
            }

            members.Add(node);
        }

        foreach (var (pool, members) in multiHost)
        {
            // Sorted first so the hosts a slice wants never depend on the order the nodes came in (an index and a scan agree).
            members.Sort((a, b) => string.CompareOrdinal(a.Metadata.Name, b.Metadata.Name));
            var hostsWanted = HostsPerSlice(shape, ChipsOn(members[0]));
            // Without a pool label hosts cannot be grouped into a slice safely; the empty key makes it unusable.
            slices.Add(Make(shape, pool, members, pool.Length == 0 ? -1 : hostsWanted));
        }

        slices.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        return slices;
    }

    private static TpuSlice Make(TpuShape shape, string key, List<V1Node> nodes, int hostsWanted)
    {
        nodes.Sort((a, b) => string.CompareOrdinal(a.Metadata.Name, b.Metadata.Name));
        var chips = nodes.Sum(ChipsOn);
        var usable = nodes.Count == hostsWanted && chips == shape.ChipsPerSlice && nodes.All(IsSchedulable);
        var owners = nodes.Select(OwnerOf).OfType<string>().Distinct(StringComparer.Ordinal).ToList();
        return new TpuSlice(key, nodes, chips, usable, owners);
    }
}
