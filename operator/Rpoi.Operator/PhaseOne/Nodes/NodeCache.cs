using System.Collections.Concurrent;
using System.Collections.ObjectModel;
using System.Globalization;
using k8s.Models;
using Rpoi.Kube.Informers;
using Rpoi.Operator.PhaseOne.Allocation;

namespace Rpoi.Operator.PhaseOne.Nodes;

/// <summary>
/// What phase I keeps of a Node in its cache. A GKE node carries kilobytes the operator never reads (cached image lists,
/// node info, addresses, a dozen problem-detector conditions, two dozen labels, GKE's annotations); with thousands of nodes
/// that is most of the operator's memory (issue 14, BENCHMARKS.md "Operator memory"). Kept: identity, the labels of
/// <see cref="KeptLabels"/>, the rpoi.io annotations, taints and unschedulable (claims patch the taint list whole), the TPU
/// count, and the Ready condition (node health). Strings that many nodes share (label keys and values, taints, the Ready
/// condition's words) come from <see cref="StringPool.Shared"/>, so 10,000 nodes of one shape hold one copy of each.
/// The parts most nodes have alike (the taint list, the TPU resource maps, the Ready condition without its heartbeat times)
/// are one shared, read-only instance per distinct value, so a cached node costs little more than its identity and
/// labels (BENCHMARKS.md "memcache"). The operator only ever patches nodes (computed on copies), so nothing it drops is
/// written back and nothing changes a cached node in place.
/// </summary>
public static class NodeCache
{
    /// <summary>
    /// The node labels the operator reads (the allocator, the slice index, node health, the lease watch); every other
    /// label is dropped from the cache. A new reader of a node label must add it here.
    /// </summary>
    public static IReadOnlySet<string> KeptLabels { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        TpuLabels.Accelerator,
        TpuLabels.Topology,
        TpuLabels.NodePool,
        TpuLabels.LeaseNamespaceLabel,
        TpuLabels.LeaseNameLabel,
        GkeMaintenance.ActiveMaintenanceLabel,
        GkeMaintenance.ScheduledMaintenanceLabel,
    };

    /// <summary>Trims <paramref name="node"/> in place to what the allocator, node health and the lease watch read.</summary>
    public static V1Node Trim(V1Node node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var pool = StringPool.Shared;
        if (node.Metadata is { } meta)
        {
            meta.Labels = pool.Keep(meta.Labels, KeptLabels.Contains);
            meta.Annotations = pool.Keep(meta.Annotations, static k => k.StartsWith("rpoi.io/", StringComparison.Ordinal), poolValues: false);
            meta.OwnerReferences = null;
            // Nothing reads a node's UID (claims are guarded by its resourceVersion, owners are lease UIDs in annotations).
            meta.Uid = null;
            // Node names are pooled too: a claimed node's name is also in its Lease's status.nodes.
            meta.Name = pool.Intern(meta.Name);
        }

        if (node.Spec is { } spec)
        {
            spec.ConfigSource = null;
            spec.PodCIDRs = null;
            spec.PodCIDR = null;
            spec.ProviderID = null;
            spec.ExternalID = null;
            var taints = TaintsKey(spec.Taints);
            spec.Taints = SharedTaints(spec.Taints, taints, pool);
            // What is left (taints, unschedulable) is alike on most nodes: the whole spec is shared too.
            node.Spec = Share(Specs, $"{taints}\u0001{spec.Unschedulable}", () => spec);
        }

        if (node.Status is { } status)
        {
            status.Allocatable = KeepTpu(status.Allocatable, out var allocatable);
            status.Capacity = KeepTpu(status.Capacity, out var capacity);
            status.Conditions = ReadyOnly(status.Conditions, out var ready);
            status.Images = null;
            status.NodeInfo = null;
            status.Addresses = null;
            status.DaemonEndpoints = null;
            status.VolumesAttached = null;
            status.VolumesInUse = null;
            status.Config = null;
            status.Features = null;
            status.RuntimeHandlers = null;
            status.Phase = pool.Intern(status.Phase);
            // Every field left is one of the shared values above (or the phase): the whole status is shared too.
            node.Status = Share(Statuses, $"{allocatable}\u0001{capacity}\u0001{ready}\u0001{status.Phase}", () => status);
        }

        return node;
    }

    // Most distinct shared values of each kind: beyond it (a cluster of unusual nodes) values are kept per node, unshared.
    private const int SharedCapacity = 4096;
    private static readonly ConcurrentDictionary<string, IList<V1Taint>> Taints = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, IList<V1NodeCondition>> ReadyConditions = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, IDictionary<string, ResourceQuantity>> TpuResources = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, V1NodeSpec> Specs = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, V1NodeStatus> Statuses = new(StringComparer.Ordinal);

    private static string TaintsKey(IList<V1Taint>? taints) => taints is null ? "-" :
        string.Join('\n', taints.Select(static t => $"{t.Key}\t{t.Value}\t{t.Effect}\t{t.TimeAdded?.ToString("O", CultureInfo.InvariantCulture)}"));

    /// <summary>The taint list as one shared read-only list per distinct list (all fields, in order); claims copy it.</summary>
    private static IList<V1Taint>? SharedTaints(IList<V1Taint>? taints, string key, StringPool pool)
    {
        if (taints is null || taints.Count == 0)
        {
            return taints is null ? null : [];
        }

        return Share(Taints, key, () =>
        {
            foreach (var taint in taints)
            {
                taint.Key = pool.Intern(taint.Key);
                taint.Value = pool.Intern(taint.Value);
                taint.Effect = pool.Intern(taint.Effect);
            }

            return new ReadOnlyCollection<V1Taint>([.. taints]);
        });
    }

    /// <summary>
    /// Only the Ready condition, shared per distinct (status, reason, message), without its heartbeat and transition times:
    /// node health and claims read its status, reason and message, and the heartbeat would make every node's copy distinct.
    /// </summary>
    private static IList<V1NodeCondition>? ReadyOnly(IList<V1NodeCondition>? conditions, out string key)
    {
        if (conditions?.FirstOrDefault(static c => c.Type == "Ready") is not { } ready)
        {
            key = "-";
            return null;
        }

        key = $"{ready.Status}\t{ready.Reason}\t{ready.Message}";
        return Share(ReadyConditions, key, () =>
            new ReadOnlyCollection<V1NodeCondition>([new V1NodeCondition { Type = "Ready", Status = ready.Status, Reason = ready.Reason, Message = ready.Message }]));
    }

    /// <summary>Only the TPU resource, one shared read-only map per distinct quantity.</summary>
    private static IDictionary<string, ResourceQuantity>? KeepTpu(IDictionary<string, ResourceQuantity>? map, out string key)
    {
        if (map is null || !map.TryGetValue(TpuLabels.TpuResource, out var chips) || chips is null)
        {
            key = "-";
            return null;
        }

        key = chips.ToString();
        return Share(TpuResources, key, () => new ReadOnlyDictionary<string, ResourceQuantity>(
            new Dictionary<string, ResourceQuantity>(1, StringComparer.Ordinal) { [TpuLabels.TpuResource] = chips }));
    }

    private static T Share<T>(ConcurrentDictionary<string, T> shared, string key, Func<T> make) =>
        shared.TryGetValue(key, out var value) ? value
        : shared.Count < SharedCapacity ? shared.GetOrAdd(key, _ => make())
        : make();
}
