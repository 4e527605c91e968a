using k8s.Models;
using Rpoi.Operator.PhaseOne.Allocation;

namespace Rpoi.Sandbox;

/// <summary>One simulated GKE TPU node pool.</summary>
/// <param name="Name">Node pool name (the <c>cloud.google.com/gke-nodepool</c> label).</param>
/// <param name="Accelerator">GKE accelerator type.</param>
/// <param name="Topology">Slice topology.</param>
/// <param name="ChipsPerHost">Allocatable <c>google.com/tpu</c> per node.</param>
/// <param name="Nodes">Nodes in the pool.</param>
public sealed record SimulatedNodePool(string Name, string Accelerator, string Topology, int ChipsPerHost, int Nodes);

/// <summary>The sandbox's simulated TPU node pools, labelled and tainted as GKE does.</summary>
public static class SandboxNodes
{
    /// <summary>
    /// v5e single-host (two 2x4 hosts of 8 chips, each its own slice), v5e multi-host (one 4x4 slice on four hosts of
    /// 4 chips: GKE gives a multi-host slice its own node pool) and v6e single-host (two 2x2 hosts of 4 chips).
    /// </summary>
    public static IReadOnlyList<SimulatedNodePool> DefaultPools { get; } =
    [
        new("tpu-v5e-2x4", "tpu-v5-lite-podslice", "2x4", 8, 2),
        new("tpu-v5e-4x4", "tpu-v5-lite-podslice", "4x4", 4, 4),
        new("tpu-v6e-2x2", "tpu-v6e-slice", "2x2", 4, 2),
    ];

    /// <summary>The Node objects of <paramref name="pools"/>, named <c>gke-sandbox-&lt;pool&gt;-&lt;i&gt;</c>.</summary>
    public static IReadOnlyList<V1Node> Create(IEnumerable<SimulatedNodePool> pools)
    {
        ArgumentNullException.ThrowIfNull(pools);
        var nodes = new List<V1Node>();
        foreach (var pool in pools)
        {
            for (var i = 0; i < pool.Nodes; i++)
            {
                var chips = new ResourceQuantity(pool.ChipsPerHost.ToString(System.Globalization.CultureInfo.InvariantCulture));
                nodes.Add(new V1Node
                {
                    ApiVersion = "v1",
                    Kind = "Node",
                    Metadata = new V1ObjectMeta
                    {
                        Name = $"gke-sandbox-{pool.Name}-{i}",
                        Labels = new Dictionary<string, string>
                        {
                            [TpuLabels.Accelerator] = pool.Accelerator,
                            [TpuLabels.Topology] = pool.Topology,
                            [TpuLabels.NodePool] = pool.Name,
                            ["kubernetes.io/hostname"] = $"gke-sandbox-{pool.Name}-{i}",
                            ["kubernetes.io/os"] = "linux",
                            ["kubernetes.io/arch"] = "amd64",
                        },
                    },
                    Spec = new V1NodeSpec
                    {
                        Taints = [new V1Taint { Key = TpuLabels.GkeTpuTaintKey, Value = TpuLabels.GkeTpuTaintValue, Effect = TpuLabels.NoSchedule }],
                    },
                    Status = new V1NodeStatus
                    {
                        Capacity = new Dictionary<string, ResourceQuantity> { [TpuLabels.TpuResource] = chips, ["cpu"] = new("96"), ["memory"] = new("192Gi"), ["pods"] = new("110") },
                        Allocatable = new Dictionary<string, ResourceQuantity> { [TpuLabels.TpuResource] = chips, ["cpu"] = new("95"), ["memory"] = new("180Gi"), ["pods"] = new("110") },
                        Conditions = [new V1NodeCondition { Type = "Ready", Status = "True", Reason = "KubeletReady", Message = "simulated by the RPOI sandbox" }],
                    },
                });
            }
        }

        return nodes;
    }
}
