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
/// The operator only ever patches nodes, so nothing it drops is written back.
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
            foreach (var taint in spec.Taints ?? [])
            {
                taint.Key = pool.Intern(taint.Key);
                taint.Value = pool.Intern(taint.Value);
                taint.Effect = pool.Intern(taint.Effect);
            }
        }

        if (node.Status is { } status)
        {
            status.Allocatable = KeepTpu(status.Allocatable);
            status.Capacity = KeepTpu(status.Capacity);
            status.Conditions = ReadyOnly(status.Conditions, pool);
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
        }

        return node;
    }

    private static List<V1NodeCondition>? ReadyOnly(IList<V1NodeCondition>? conditions, StringPool pool)
    {
        if (conditions?.FirstOrDefault(static c => c.Type == "Ready") is not { } ready)
        {
            return null;
        }

        ready.Type = pool.Intern(ready.Type);
        ready.Status = pool.Intern(ready.Status);
        ready.Reason = pool.Intern(ready.Reason);
        ready.Message = pool.Intern(ready.Message);
        return [ready];
    }

    private static Dictionary<string, ResourceQuantity>? KeepTpu(IDictionary<string, ResourceQuantity>? map) =>
        map is not null && map.TryGetValue(TpuLabels.TpuResource, out var chips)
            ? new Dictionary<string, ResourceQuantity>(1, StringComparer.Ordinal) { [TpuLabels.TpuResource] = chips }
            : null;
}
