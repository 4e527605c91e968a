using k8s.Models;
using Rpoi.Operator.PhaseOne.Allocation;

namespace Rpoi.Operator.PhaseOne.Nodes;

/// <summary>
/// What phase I keeps of a Node in its cache. A GKE node carries kilobytes the operator never reads (cached image lists,
/// node info, addresses, a dozen problem-detector conditions, GKE's annotations); with thousands of nodes that is most of
/// the operator's memory (issue 14, BENCHMARKS.md "Operator memory"). Kept: identity and labels, the rpoi.io annotations,
/// taints and unschedulable (claims patch the taint list whole), the TPU count, and the Ready condition (node health).
/// The operator only ever patches nodes, so nothing it drops is written back.
/// </summary>
public static class NodeCache
{
    /// <summary>Trims <paramref name="node"/> in place to what the allocator, node health and the lease watch read.</summary>
    public static V1Node Trim(V1Node node)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (node.Metadata is { } meta)
        {
            meta.Annotations = Keep(meta.Annotations, static k => k.StartsWith("rpoi.io/", StringComparison.Ordinal));
            meta.OwnerReferences = null;
        }

        if (node.Spec is { } spec)
        {
            spec.ConfigSource = null;
            spec.PodCIDRs = null;
            spec.PodCIDR = null;
            spec.ProviderID = null;
        }

        if (node.Status is { } status)
        {
            status.Allocatable = Keep(status.Allocatable, static k => k == TpuLabels.TpuResource);
            status.Capacity = Keep(status.Capacity, static k => k == TpuLabels.TpuResource);
            status.Conditions = status.Conditions?.Where(static c => c.Type == "Ready").ToList();
            status.Images = null;
            status.NodeInfo = null;
            status.Addresses = null;
            status.DaemonEndpoints = null;
            status.VolumesAttached = null;
            status.VolumesInUse = null;
            status.Config = null;
            status.Features = null;
            status.RuntimeHandlers = null;
        }

        return node;
    }

    private static Dictionary<string, TValue>? Keep<TValue>(IDictionary<string, TValue>? map, Func<string, bool> keep)
    {
        if (map is null)
        {
            return null;
        }

        var kept = map.Where(kv => keep(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        return kept.Count == 0 ? null : kept;
    }
}
