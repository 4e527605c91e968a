using System.Text.Json;
using System.Text.Json.Nodes;
using Rpoi.Operator.PhaseOne.Allocation;

namespace Rpoi.Operator.PhaseOne.Grant;

/// <summary>
/// What a renter's pod needs to land on the leased nodes and nowhere else: the node selector, the two
/// tolerations (GKE's TPU taint and the lease taint) and a ready pod template that requests the chips.
/// </summary>
public static class PodPlacement
{
    /// <summary>Default container image of the pod template: JAX on TPU, enough to run <c>jax.device_count()</c>.</summary>
    public const string DefaultImage = "us-docker.pkg.dev/cloud-tpu-images/jax-stable-stack/tpu:latest";

    /// <summary>Labels a pod must select: the shape (GKE's labels) and this lease's claim labels.</summary>
    public static IReadOnlyDictionary<string, string> NodeSelector(LeaseIdentity lease, TpuShape shape)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(shape);
        return new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            [TpuLabels.Accelerator] = shape.Accelerator,
            [TpuLabels.Topology] = shape.Topology,
            [TpuLabels.LeaseNamespaceLabel] = lease.Namespace,
            [TpuLabels.LeaseNameLabel] = lease.Name,
        };
    }

    /// <summary>The toleration of the lease taint (<c>rpoi.io/lease=&lt;namespace&gt;:NoSchedule</c>).</summary>
    public static Protocol.Messages.Toleration LeaseToleration(LeaseIdentity lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        return new Protocol.Messages.Toleration(TpuLabels.LeaseTaintKey, "Equal", lease.Namespace, TpuLabels.NoSchedule);
    }

    /// <summary>
    /// A Pod manifest (JSON object) that runs on one leased host and requests all of its chips. For a multi-host
    /// slice the renter runs one such pod per host (e.g. an indexed Job with as many completions as hosts).
    /// </summary>
    public static JsonElement PodTemplate(LeaseIdentity lease, TpuShape shape, int chipsPerHost, string image)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(shape);
        var selector = new JsonObject();
        foreach (var (key, value) in NodeSelector(lease, shape))
        {
            selector[key] = value;
        }

        var chips = chipsPerHost.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var pod = new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Pod",
            ["metadata"] = new JsonObject
            {
                ["generateName"] = $"{lease.Name}-",
                ["namespace"] = lease.Namespace,
                ["labels"] = new JsonObject { [TpuLabels.LeaseNameLabel] = lease.Name },
            },
            ["spec"] = new JsonObject
            {
                ["restartPolicy"] = "Never",
                ["nodeSelector"] = selector,
                ["tolerations"] = new JsonArray(
                    new JsonObject { ["key"] = TpuLabels.GkeTpuTaintKey, ["operator"] = "Equal", ["value"] = TpuLabels.GkeTpuTaintValue, ["effect"] = TpuLabels.NoSchedule },
                    new JsonObject { ["key"] = TpuLabels.LeaseTaintKey, ["operator"] = "Equal", ["value"] = lease.Namespace, ["effect"] = TpuLabels.NoSchedule }),
                ["containers"] = new JsonArray(new JsonObject
                {
                    ["name"] = "tpu",
                    ["image"] = image,
                    ["command"] = new JsonArray("python", "-c", "import jax; print('TPU devices:', jax.device_count())"),
                    ["resources"] = new JsonObject
                    {
                        ["requests"] = new JsonObject { [TpuLabels.TpuResource] = chips },
                        ["limits"] = new JsonObject { [TpuLabels.TpuResource] = chips },
                    },
                }),
            },
        };
        return JsonSerializer.SerializeToElement(pod);
    }
}
