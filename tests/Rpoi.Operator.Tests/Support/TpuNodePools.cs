using k8s;
using k8s.Models;
using Rpoi.Operator.PhaseOne.Allocation;

namespace Rpoi.Operator.Tests.Support;

/// <summary>
/// Simulated GKE TPU node pools on the test API server, labelled, tainted and sized as GKE does: v5e single-host
/// (2x2 with 4 chips, 2x4 with 8 chips per host), v5e multi-host 4x4 (4 hosts of 4 chips), v6e single-host 2x2.
/// </summary>
public static class TpuNodePools
{
    /// <summary>A single-host v5e pool: <paramref name="hosts"/> nodes, each its own 2x2 slice of 4 chips.</summary>
    public static Task<IReadOnlyList<string>> V5eSingleHostAsync(IKubernetes client, string pool, int hosts, string topology = "2x2") =>
        CreatePoolAsync(client, pool, LeaseBuilder.V5e, topology, hosts, TpuShape.ChipsOf(topology));

    /// <summary>A multi-host v5e 4x4 slice: one pool of 4 hosts with 4 chips each (16 chips).</summary>
    public static Task<IReadOnlyList<string>> V5eMultiHost4x4Async(IKubernetes client, string pool) =>
        CreatePoolAsync(client, pool, LeaseBuilder.V5e, "4x4", 4, 4);

    /// <summary>A single-host v6e pool of 2x2 slices (4 chips per host).</summary>
    public static Task<IReadOnlyList<string>> V6eSingleHostAsync(IKubernetes client, string pool, int hosts) =>
        CreatePoolAsync(client, pool, LeaseBuilder.V6e, "2x2", hosts, 4);

    /// <summary>Creates <paramref name="hosts"/> TPU nodes of one pool; returns their names.</summary>
    public static async Task<IReadOnlyList<string>> CreatePoolAsync(IKubernetes client, string pool, string accelerator, string topology, int hosts, int chipsPerHost)
    {
        ArgumentNullException.ThrowIfNull(client);
        var names = new List<string>();
        for (var i = 0; i < hosts; i++)
        {
            var name = $"gke-{pool}-{i}";
            var node = new V1Node
            {
                Metadata = new V1ObjectMeta
                {
                    Name = name,
                    Labels = new Dictionary<string, string>
                    {
                        [TpuLabels.Accelerator] = accelerator,
                        [TpuLabels.Topology] = topology,
                        [TpuLabels.NodePool] = pool,
                        ["kubernetes.io/hostname"] = name,
                    },
                },
                Spec = new V1NodeSpec
                {
                    Taints = [new V1Taint { Key = TpuLabels.GkeTpuTaintKey, Value = TpuLabels.GkeTpuTaintValue, Effect = TpuLabels.NoSchedule }],
                },
                Status = Status(chipsPerHost),
            };
            var created = await client.CoreV1.CreateNodeAsync(node).ConfigureAwait(false);
            if (TpuSlices.ChipsOn(created) != chipsPerHost)
            {
                // Like a real API server, the test server may ignore status on create: the kubelet's part is a status write.
                created.Status = Status(chipsPerHost);
                await client.CoreV1.ReplaceNodeStatusAsync(created, name).ConfigureAwait(false);
            }

            names.Add(name);
        }

        return names;
    }

    private static V1NodeStatus Status(int chips) => new()
    {
        Capacity = new Dictionary<string, ResourceQuantity> { [TpuLabels.TpuResource] = new(chips.ToString(System.Globalization.CultureInfo.InvariantCulture)) },
        Allocatable = new Dictionary<string, ResourceQuantity> { [TpuLabels.TpuResource] = new(chips.ToString(System.Globalization.CultureInfo.InvariantCulture)) },
        Conditions = [new V1NodeCondition { Type = "Ready", Status = "True" }],
    };

    /// <summary>True when the node carries no RPOI mark at all (label, annotation or taint) and keeps GKE's TPU taint.</summary>
    public static bool IsClean(V1Node node)
    {
        ArgumentNullException.ThrowIfNull(node);
        var labels = node.Metadata.Labels ?? new Dictionary<string, string>();
        var annotations = node.Metadata.Annotations ?? new Dictionary<string, string>();
        var taints = node.Spec?.Taints ?? [];
        return !labels.Keys.Any(k => k.StartsWith("rpoi.io/", StringComparison.Ordinal))
            && !annotations.Keys.Any(k => k.StartsWith("rpoi.io/", StringComparison.Ordinal))
            && !taints.Any(t => t.Key == TpuLabels.LeaseTaintKey)
            && taints.Any(t => t.Key == TpuLabels.GkeTpuTaintKey);
    }
}
