using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Rpoi.Cli.Support;
using Rpoi.Cli.Tests.Support;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Operator.PhaseOne.Grant;
using Rpoi.Protocol.Messages;

namespace Rpoi.Cli.Tests;

/// <summary>
/// <c>access --pod-template-out</c> for single- and multi-host slices: the manifest's shape per topology, that it is
/// what the Kubernetes models read (no misspelt field dropped), that the real kubectl applies it to the API test server
/// with <c>--dry-run=server</c>, and the whole command on a 4x4 lease.
/// </summary>
public sealed class SliceManifestTests(ClusterFixture cluster) : IClassFixture<ClusterFixture>, IDisposable
{
    private readonly TempHome home = new();

    /// <summary>A grant as β builds it: hosts = chips / chips per node (GKE's node size for the shape), one node each.</summary>
    private static AccessGrant GrantFor(string accelerator, string topology, int chipsPerNode, string lease = "train-1")
    {
        var shape = new TpuShape(accelerator, topology);
        var hosts = shape.ChipsPerSlice / chipsPerNode;
        var id = new LeaseIdentity("team-a", lease, "uid-1");
        var now = DateTimeOffset.UtcNow;
        return new AccessGrant(Enumerable.Range(0, hosts).Select(i => $"node-{i}").ToArray(), "pool-a", accelerator, topology,
            PodPlacement.NodeSelector(id, shape), PodPlacement.LeaseToleration(id), "kubeconfig",
            PodPlacement.PodTemplate(id, shape, shape.ChipsPerSlice / hosts, "img"), now, now.AddHours(1));
    }

    [Theory]
    [InlineData("tpu-v5-lite-podslice", "2x4", 8, 1, 8)]
    [InlineData("tpu-v5-lite-podslice", "4x4", 4, 4, 4)]
    [InlineData("tpu-v5-lite-podslice", "4x8", 4, 8, 4)]
    [InlineData("tpu-v6e-slice", "2x2", 4, 1, 4)]
    [InlineData("tpu-v6e-slice", "4x4", 4, 4, 4)]
    [InlineData("tpu-v6e-slice", "8x8", 4, 16, 4)]
    public void Hosts_and_chips_per_host_follow_the_slice(string accelerator, string topology, int chipsPerNode, int hosts, int chipsPerHost)
    {
        var grant = GrantFor(accelerator, topology, chipsPerNode);

        Assert.Equal(new SliceManifests.Slice(hosts, chipsPerHost), SliceManifests.SliceOf(grant));
        var docs = Yaml.ReadAll(SliceManifests.ToYaml(SliceManifests.For(grant, "train-1", jobSet: false)));
        if (hosts == 1)
        {
            var pod = Assert.Single(docs)!;
            Assert.Equal("Pod", (string?)pod["kind"]);
            Assert.Equal(chipsPerHost.ToString(System.Globalization.CultureInfo.InvariantCulture), (string?)pod["spec"]!["containers"]![0]!["resources"]!["limits"]!["google.com/tpu"]);
            return;
        }

        Assert.Equal(["Service", "Job"], docs.Select(d => (string?)d!["kind"]));
        var service = KubernetesJson.Deserialize<V1Service>(docs[0]!.ToJsonString());
        var job = KubernetesJson.Deserialize<V1Job>(docs[1]!.ToJsonString());
        Assert.Equal("None", service.Spec.ClusterIP);
        Assert.Equal("train-1", service.Spec.Selector["batch.kubernetes.io/job-name"]);
        Assert.Equal(("Indexed", hosts, hosts), (job.Spec.CompletionMode, job.Spec.Completions, job.Spec.Parallelism));
        var podSpec = job.Spec.Template.Spec;
        Assert.Equal(service.Metadata.Name, podSpec.Subdomain);
        Assert.Equal("train-1", job.Spec.Template.Metadata.Labels["batch.kubernetes.io/job-name"]);
        Assert.Equal(accelerator, podSpec.NodeSelector[TpuLabels.Accelerator]);
        Assert.Equal(topology, podSpec.NodeSelector[TpuLabels.Topology]);
        Assert.Equal("train-1", podSpec.NodeSelector[TpuLabels.LeaseNameLabel]);
        Assert.Equal("team-a", podSpec.NodeSelector[TpuLabels.LeaseNamespaceLabel]);
        Assert.Contains(podSpec.Tolerations, t => t.Key == "google.com/tpu" && t.Effect == "NoSchedule");
        Assert.Contains(podSpec.Tolerations, t => t.Key == TpuLabels.LeaseTaintKey && t.Value == "team-a");
        var container = Assert.Single(podSpec.Containers);
        Assert.Equal(new ResourceQuantity(chipsPerHost.ToString(System.Globalization.CultureInfo.InvariantCulture)), container.Resources.Limits["google.com/tpu"]);
        Assert.Equal(container.Resources.Limits["google.com/tpu"], container.Resources.Requests["google.com/tpu"]);
        var workerId = Assert.Single(container.Env, e => e.Name == "TPU_WORKER_ID");
        Assert.Equal("metadata.annotations['batch.kubernetes.io/job-completion-index']", workerId.ValueFrom.FieldRef.FieldPath);
        var hostnames = Assert.Single(container.Env, e => e.Name == "TPU_WORKER_HOSTNAMES").Value.Split(',');
        Assert.Equal(Enumerable.Range(0, hosts).Select(i => $"train-1-{i}.train-1-hosts"), hostnames);
        Assert.Contains(container.Ports, p => p.ContainerPort == SliceManifests.TpuRuntimePort);
    }

    [Fact]
    public void The_manifest_uses_only_fields_the_kubernetes_models_know()
    {
        // A field the API does not know would be dropped (or refused by a strict server): a round trip through the
        // client's models must give back exactly what we wrote.
        var docs = SliceManifests.For(GrantFor("tpu-v5-lite-podslice", "4x4", 4), "train-1", jobSet: false);
        var service = JsonNode.Parse(KubernetesJson.Serialize(KubernetesJson.Deserialize<V1Service>(docs[0].ToJsonString())));
        var job = JsonNode.Parse(KubernetesJson.Serialize(KubernetesJson.Deserialize<V1Job>(docs[1].ToJsonString())));

        Assert.True(JsonNode.DeepEquals(docs[0], service), service!.ToJsonString());
        Assert.True(JsonNode.DeepEquals(docs[1], job), job!.ToJsonString());
    }

    [Fact]
    public void A_jobset_runs_the_same_pods_and_lets_jobset_make_the_service()
    {
        var docs = SliceManifests.For(GrantFor("tpu-v6e-slice", "4x4", 4), "train-1", jobSet: true);

        var jobSet = Assert.Single(docs);
        Assert.Equal((SliceManifests.JobSetApiVersion, "JobSet"), ((string?)jobSet["apiVersion"], (string?)jobSet["kind"]));
        Assert.True((bool)jobSet["spec"]!["network"]!["enableDNSHostnames"]!);
        var replicated = Assert.Single(jobSet["spec"]!["replicatedJobs"]!.AsArray())!;
        Assert.Equal(1, (int)replicated["replicas"]!);
        var job = KubernetesJson.Deserialize<V1JobSpec>(replicated["template"]!["spec"]!.ToJsonString());
        Assert.Equal(("Indexed", 4, 4), (job.CompletionMode, job.Completions, job.Parallelism));
        Assert.Null(job.Template.Spec.Subdomain);
        var env = job.Template.Spec.Containers.Single().Env;
        Assert.Equal(Enumerable.Range(0, 4).Select(i => $"train-1-slice-0-{i}.train-1"), env.Single(e => e.Name == "TPU_WORKER_HOSTNAMES").Value.Split(','));
        Assert.Equal("4", job.Template.Spec.Containers.Single().Resources.Limits["google.com/tpu"].ToString());
    }

    [Fact]
    public void A_lease_name_too_long_for_the_pod_hostnames_is_refused_with_the_reason()
    {
        var name = new string('a', 62);
        var e = Assert.Throws<CliException>(() => SliceManifests.For(GrantFor("tpu-v5-lite-podslice", "4x4", 4, name), name, jobSet: false));

        Assert.Equal(ExitCodes.Usage, e.ExitCode);
        Assert.Contains("at most 63 characters", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Access_on_a_4x4_lease_writes_a_job_and_service_that_kubectl_applies_with_a_server_dry_run()
    {
        Assert.Equal(0, (await home.RunAsync("keygen")).ExitCode);
        var request = await Run("request", "--name", "wide-1", "--chips", "16", "--accelerator", "tpu-v5-lite-podslice", "--topology", "4x4",
            "--duration", "1h", "--deposit", "1uusd", "--rent", "1uusd", "--apply");
        Assert.True(request.ExitCode == 0, request.ToString());
        await cluster.ActivateAsync("wide-1", hosts: 4);

        var access = await Run("access", "wide-1", "--pod-template-out", "slice.yaml");

        Assert.True(access.ExitCode == 0, access.ToString());
        Assert.Contains("slice:              4 host(s) x 4 chips", access.Out, StringComparison.Ordinal);
        Assert.Contains("a headless Service and an indexed Job of 4 pods", access.Out, StringComparison.Ordinal);
        var applied = await Processes.KubectlAsync(home.Path, cluster.Kubeconfig, "apply", "--dry-run=server", "-f", home.File("slice.yaml"));
        Assert.True(applied.ExitCode == 0, applied.ToString());
        Assert.Contains("service/wide-1-hosts created (server dry run)", applied.Out, StringComparison.Ordinal);
        Assert.Contains("job.batch/wide-1 created (server dry run)", applied.Out, StringComparison.Ordinal);
        // A dry run stores nothing.
        await Assert.ThrowsAsync<k8s.Autorest.HttpOperationException>(() => cluster.Client.BatchV1.ReadNamespacedJobAsync("wide-1", ClusterFixture.Namespace));
    }

    [Fact]
    public async Task Access_with_jobset_on_a_4x4_lease_writes_a_jobset_that_kubectl_reads()
    {
        Assert.Equal(0, (await home.RunAsync("keygen")).ExitCode);
        var request = await Run("request", "--name", "wide-js", "--chips", "16", "--accelerator", "tpu-v5-lite-podslice", "--topology", "4x4",
            "--duration", "1h", "--deposit", "1uusd", "--rent", "1uusd", "--apply");
        Assert.True(request.ExitCode == 0, request.ToString());
        await cluster.ActivateAsync("wide-js", hosts: 4);

        var access = await Run("access", "wide-js", "--pod-template-out", "slice.yaml", "--jobset");

        Assert.True(access.ExitCode == 0, access.ToString());
        Assert.Contains("a JobSet of 4 pods (needs the JobSet controller)", access.Out, StringComparison.Ordinal);
        // The test server has no JobSet CRD (nor has a cluster without the JobSet controller): kubectl parses the file
        // and names the missing kind, which is what a renter without JobSet sees. (--validate=false: kubectl 1.32's
        // client-side schema check otherwise stops first on the test server's OpenAPI answer.)
        var applied = await Processes.KubectlAsync(home.Path, cluster.Kubeconfig, "apply", "--dry-run=client", "--validate=false", "-f", home.File("slice.yaml"));
        Assert.NotEqual(0, applied.ExitCode);
        Assert.True(applied.Err.Contains("no matches for kind \"JobSet\" in version \"jobset.x-k8s.io/v1alpha2\"", StringComparison.Ordinal), applied.ToString());
    }

    [Fact]
    public async Task Access_on_a_single_host_lease_still_writes_one_pod_that_kubectl_creates_with_a_server_dry_run()
    {
        Assert.Equal(0, (await home.RunAsync("keygen")).ExitCode);
        var request = await Run("request", "--name", "one-host", "--chips", "8", "--accelerator", "tpu-v5-lite-podslice", "--topology", "2x4",
            "--duration", "1h", "--deposit", "1uusd", "--rent", "1uusd", "--apply");
        Assert.True(request.ExitCode == 0, request.ToString());
        await cluster.ActivateAsync("one-host");

        var access = await Run("access", "one-host", "--pod-template-out", "pod.yaml", "--jobset");

        Assert.True(access.ExitCode == 0, access.ToString());
        var pod = Assert.Single(Yaml.ReadAll(File.ReadAllText(home.File("pod.yaml"))))!;
        Assert.Equal("Pod", (string?)pod["kind"]);
        var applied = await Processes.KubectlAsync(home.Path, cluster.Kubeconfig, "create", "--dry-run=server", "-f", home.File("pod.yaml"));
        Assert.True(applied.ExitCode == 0, applied.ToString());
    }

    private async Task<CliResult> Run(params string[] args) => await home.RunAsync(["--kubeconfig", cluster.Kubeconfig, .. args]);

    public void Dispose() => home.Dispose();
}
