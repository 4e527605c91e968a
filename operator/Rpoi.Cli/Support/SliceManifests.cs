using System.Globalization;
using System.Text.Json.Nodes;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Protocol.Messages;

namespace Rpoi.Cli.Support;

/// <summary>
/// What <c>access --pod-template-out</c> writes: σ's pod template as it is for a single-host slice, and for a multi-host
/// slice one Pod per host, the way GKE runs multi-host TPU workloads: an indexed Job (or a JobSet) whose completion index
/// is the host's TPU worker id, and a headless Service so that the hosts resolve each other by name.
/// </summary>
public static class SliceManifests
{
    /// <summary>Port the TPU runtime of each host listens on for the others (GKE's multi-host examples open it).</summary>
    public const int TpuRuntimePort = 8471;

    /// <summary>Port of the TPU runtime's metrics (GKE's multi-host examples open it too).</summary>
    public const int TpuMetricsPort = 8431;

    /// <summary>The Job controller's annotation holding a pod's completion index (Kubernetes 1.28+ also sets it as a label).</summary>
    public const string CompletionIndexAnnotation = "batch.kubernetes.io/job-completion-index";

    /// <summary>The Job controller's label naming a pod's Job, which the headless Service selects.</summary>
    public const string JobNameLabel = "batch.kubernetes.io/job-name";

    /// <summary>JobSet's API (the JobSet controller must be installed in the cluster to run it).</summary>
    public const string JobSetApiVersion = "jobset.x-k8s.io/v1alpha2";

    /// <summary>The name of the one replicated job in a JobSet manifest: one slice.</summary>
    public const string JobSetReplicatedJob = "slice";

    /// <summary>The longest DNS label: each pod's hostname must fit in one.</summary>
    private const int MaxLabel = 63;

    /// <summary>How a multi-host slice is split: hosts and chips per host, read from σ.</summary>
    public sealed record Slice(int Hosts, int ChipsPerHost);

    /// <summary>
    /// Hosts = the nodes β claimed for the lease (a multi-host node pool is one slice, one node per host); chips per host =
    /// what σ's pod template requests of <c>google.com/tpu</c> (β writes chips / nodes there).
    /// </summary>
    public static Slice SliceOf(AccessGrant grant)
    {
        ArgumentNullException.ThrowIfNull(grant);
        var container = FirstContainer(PodOf(grant));
        var limit = container["resources"]?["limits"]?[TpuLabels.TpuResource]?.GetValue<string>();
        if (!int.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out var perHost) || perHost <= 0)
        {
            throw new CliException(ExitCodes.VerificationFailed,
                $"the access grant's pod template has no positive resources.limits[\"{TpuLabels.TpuResource}\"] (found '{limit}'): β's grant is malformed; ask the platform team");
        }

        return new Slice(Math.Max(1, grant.NodeNames.Count), perHost);
    }

    /// <summary>
    /// The documents to apply for <paramref name="grant"/>: one Pod for a single host; for several hosts a headless
    /// Service and an indexed Job, or with <paramref name="jobSet"/> one JobSet (which makes its own headless Service).
    /// </summary>
    public static IReadOnlyList<JsonObject> For(AccessGrant grant, string leaseName, bool jobSet)
    {
        ArgumentNullException.ThrowIfNull(grant);
        ArgumentException.ThrowIfNullOrEmpty(leaseName);
        var slice = SliceOf(grant);
        var pod = PodOf(grant);
        if (slice.Hosts == 1)
        {
            return [pod];
        }

        var ns = pod["metadata"]?["namespace"]?.GetValue<string>();
        return jobSet ? [JobSet(pod, ns, leaseName, slice)] : IndexedJob(pod, ns, leaseName, slice);
    }

    /// <summary>The documents as one multi-document YAML stream.</summary>
    public static string ToYaml(IReadOnlyList<JsonObject> documents)
    {
        ArgumentNullException.ThrowIfNull(documents);
        return string.Join("---\n", documents.Select(Yaml.Write));
    }

    private static List<JsonObject> IndexedJob(JsonObject pod, string? ns, string leaseName, Slice slice)
    {
        var job = leaseName;
        var service = leaseName + "-hosts";
        CheckHostnames(job, service, slice.Hosts, "a pod hostname <job>-<index>");

        // Pods of an indexed Job with a subdomain get the hostname <job>-<index> and resolve as <job>-<index>.<service>.
        var hostnames = Enumerable.Range(0, slice.Hosts).Select(i => $"{job}-{i}.{service}");
        var template = WorkerPod(pod, job, service, hostnames);
        var headless = new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Service",
            ["metadata"] = Metadata(service, ns, leaseName),
            ["spec"] = new JsonObject
            {
                ["clusterIP"] = "None",
                // The hosts look each other up while starting, before any of them is Ready.
                ["publishNotReadyAddresses"] = true,
                ["selector"] = new JsonObject { [JobNameLabel] = job },
            },
        };
        var indexed = new JsonObject
        {
            ["apiVersion"] = "batch/v1",
            ["kind"] = "Job",
            ["metadata"] = Metadata(job, ns, leaseName),
            ["spec"] = JobSpec(template, slice.Hosts),
        };
        return [headless, indexed];
    }

    private static JsonObject JobSet(JsonObject pod, string? ns, string leaseName, Slice slice)
    {
        // JobSet names its pods <jobset>-<replicatedJob>-<job index>-<completion index> and its headless Service <jobset>.
        var prefix = $"{leaseName}-{JobSetReplicatedJob}-0";
        CheckHostnames(prefix, leaseName, slice.Hosts, "a pod hostname <jobset>-slice-0-<index>");
        var hostnames = Enumerable.Range(0, slice.Hosts).Select(i => $"{prefix}-{i}.{leaseName}");
        var template = WorkerPod(pod, null, null, hostnames);
        return new JsonObject
        {
            ["apiVersion"] = JobSetApiVersion,
            ["kind"] = "JobSet",
            ["metadata"] = Metadata(leaseName, ns, leaseName),
            ["spec"] = new JsonObject
            {
                ["network"] = new JsonObject { ["enableDNSHostnames"] = true, ["publishNotReadyAddresses"] = true },
                ["replicatedJobs"] = new JsonArray(new JsonObject
                {
                    ["name"] = JobSetReplicatedJob,
                    ["replicas"] = 1,
                    ["template"] = new JsonObject { ["spec"] = JobSpec(template, slice.Hosts) },
                }),
            },
        };
    }

    private static JsonObject JobSpec(JsonObject podTemplate, int hosts) => new()
    {
        // One host failing fails the slice's program: JAX on a multi-host slice cannot carry on with fewer hosts.
        ["backoffLimit"] = 0,
        ["completionMode"] = "Indexed",
        ["completions"] = hosts,
        ["parallelism"] = hosts,
        ["template"] = podTemplate,
    };

    /// <summary>σ's pod, turned into the template of one worker: same placement and chips, plus the TPU worker environment.</summary>
    private static JsonObject WorkerPod(JsonObject pod, string? job, string? service, IEnumerable<string> hostnames)
    {
        var spec = (JsonObject)pod["spec"]!.DeepClone();
        if (service is not null)
        {
            spec["subdomain"] = service;
        }

        foreach (var node in (JsonArray?)spec["containers"] ?? [])
        {
            var container = (JsonObject)node!;
            container["ports"] = new JsonArray(
                new JsonObject { ["containerPort"] = TpuRuntimePort, ["name"] = "tpu-runtime" },
                new JsonObject { ["containerPort"] = TpuMetricsPort, ["name"] = "tpu-metrics" });
            var env = container["env"] as JsonArray ?? [];
            env.Add(new JsonObject
            {
                ["name"] = "TPU_WORKER_ID",
                ["valueFrom"] = new JsonObject
                {
                    ["fieldRef"] = new JsonObject { ["fieldPath"] = $"metadata.annotations['{CompletionIndexAnnotation}']" },
                },
            });
            env.Add(new JsonObject { ["name"] = "TPU_WORKER_HOSTNAMES", ["value"] = string.Join(",", hostnames) });
            container["env"] = env;
        }

        var labels = pod["metadata"]?["labels"]?.DeepClone() as JsonObject ?? [];
        var metadata = new JsonObject { ["labels"] = labels };
        if (job is not null)
        {
            labels[JobNameLabel] = job;
        }

        return new JsonObject { ["metadata"] = metadata, ["spec"] = spec };
    }

    private static JsonObject Metadata(string name, string? ns, string leaseName)
    {
        var metadata = new JsonObject { ["name"] = name };
        if (ns is not null)
        {
            metadata["namespace"] = ns;
        }

        metadata["labels"] = new JsonObject { [TpuLabels.LeaseNameLabel] = leaseName };
        return metadata;
    }

    private static void CheckHostnames(string prefix, string service, int hosts, string what)
    {
        var longest = $"{prefix}-{hosts - 1}";
        if (longest.Length > MaxLabel || service.Length > MaxLabel)
        {
            throw new CliException(ExitCodes.Usage,
                $"lease name too long for a multi-host manifest: {what} ('{longest}') and the Service name ('{service}') must each be at most {MaxLabel} characters; write the manifest by hand from the single-pod template in the access output");
        }
    }

    private static JsonObject PodOf(AccessGrant grant) =>
        JsonNode.Parse(grant.PodTemplate.GetRawText()) as JsonObject
        ?? throw new CliException(ExitCodes.VerificationFailed, "the access grant's pod template is not a JSON object: β's grant is malformed; ask the platform team");

    private static JsonObject FirstContainer(JsonObject pod) =>
        pod["spec"]?["containers"] is JsonArray { Count: > 0 } containers && containers[0] is JsonObject first
            ? first
            : throw new CliException(ExitCodes.VerificationFailed, "the access grant's pod template has no spec.containers[0]: β's grant is malformed; ask the platform team");
}
