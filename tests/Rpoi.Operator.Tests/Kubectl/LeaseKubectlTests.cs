using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Rpoi.Kube.Events;
using Rpoi.Operator.Tests.Support;
using Rpoi.Protocol;
using Rpoi.Protocol.Messages;
using Rpoi.Tests.Shared;
using KubectlRunner = Rpoi.Tests.Shared.Kubectl;

namespace Rpoi.Operator.Tests.Kubectl;

/// <summary>
/// The real kubectl (1.32, and 1.35 when present) against the real Lease and Rating CRDs from <c>crds/</c>:
/// on the in-memory API server, or on the cluster named by <c>RPOI_TEST_KUBECONFIG</c>. The test plays the
/// operator with the C# client (status, conditions, finalizer removal); kubectl plays the user.
/// </summary>
public sealed class LeaseKubectlTests
{
    private static readonly TimeSpan KubectlTimeout = TimeSpan.FromSeconds(60);

    public static IEnumerable<object[]> Binaries() => KubectlRunner.Binaries();

    /// <summary>A fresh namespace with the CRDs applied by kubectl itself (as a user installs them) and one signed Lease.</summary>
    private static async Task<(TestCluster Cluster, KubectlRunner Kubectl, LeaseManifests Lease)> StartWithLeaseAsync(string binary)
    {
        var cluster = await TestCluster.StartAsync(new TestClusterOptions { NamespacePrefix = "kubectl-lease" });
        cluster.Track(LeaseManifests.Leases);
        cluster.Track(LeaseManifests.Ratings);
        var kubectl = new KubectlRunner(binary, cluster);
        try
        {
            // crds/ also holds kustomization.yaml (not a Kubernetes object): apply the CRD files, as the docs say.
            foreach (var file in Directory.GetFiles(RepoPaths.Crds, "rpoi.io_*.yaml").Order(StringComparer.Ordinal))
            {
                var applied = KubectlAssert.Succeeded(await kubectl.RunAsync(KubectlTimeout, "apply", "-f", file));
                Assert.Matches(new Regex(@"customresourcedefinition\.apiextensions\.k8s\.io/(leases|ratings)\.rpoi\.io (created|configured|unchanged)"), applied.Stdout);
            }

            KubectlAssert.Contains("condition met", KubectlAssert.Succeeded(await kubectl.RunAsync(KubectlTimeout,
                "wait", "--for=condition=Established", "--timeout=30s", "crd/leases.rpoi.io", "crd/ratings.rpoi.io")));

            var lease = new LeaseManifests(cluster.Namespace, "train-1");
            var path = kubectl.WriteFile("lease.yaml", lease.LeaseYaml());
            KubectlAssert.Contains("lease.rpoi.io/train-1 created", KubectlAssert.Succeeded(await kubectl.RunAsync(KubectlTimeout, "apply", "-f", path)));
            return (cluster, kubectl, lease);
        }
        catch
        {
            kubectl.Dispose();
            await cluster.DisposeAsync();
            throw;
        }
    }

    private static Task<KubectlResult> Run(KubectlRunner kubectl, TestCluster cluster, params string[] args) =>
        kubectl.RunAsync(KubectlTimeout, ["-n", cluster.Namespace, .. args]);

    private static async Task<JsonObject?> GetLeaseAsync(TestCluster cluster, string name)
    {
        try
        {
            var e = await cluster.Client.CustomObjects.GetNamespacedCustomObjectAsync<JsonElement>(LeaseManifests.Group, LeaseManifests.Version, cluster.Namespace, "leases", name);
            return JsonNode.Parse(e.GetRawText())!.AsObject();
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>
    /// On the test server, waits until kubectl has opened its watch, so the watch (not the first GET) must deliver the
    /// change. A real cluster does not expose its watchers: there the change may also arrive through the first GET.
    /// </summary>
    private static async Task WhenWatchingAsync(TestCluster cluster, Task<KubectlResult> run)
    {
        if (!cluster.IsReal)
        {
            await Eventually.HoldsAsync(() => Task.FromResult(cluster.Server.OpenWatches > 0 || run.IsCompleted), "kubectl opens a watch", timeout: KubectlTimeout);
        }

        if (run.IsCompleted)
        {
            Assert.Fail($"kubectl ended before the test changed anything:\n{await run}");
        }
    }

    [Theory]
    [MemberData(nameof(Binaries))]
    public async Task Applied_signed_request_survives_byte_for_byte_and_get_shows_the_printer_columns(string binary)
    {
        var (cluster, kubectl, lease) = await StartWithLeaseAsync(binary);
        await using var _ = cluster;
        using var __ = kubectl;

        // The stored request still verifies: nothing in spec.request.payload was pruned or reformatted.
        var stored = (await GetLeaseAsync(cluster, "train-1"))!;
        var parsed = Signed<LeaseRequest>.Parse(stored["spec"]!["request"]!.ToJsonString());
        Assert.True(parsed.IsOk, parsed.Message);
        var verified = parsed.Value.VerifySignature(lease.Parties.Renter.Identity);
        Assert.True(verified.IsOk, verified.Message);
        Assert.Equal(RpoiEquations.TransactionHashOf(lease.Signed).Hex, RpoiEquations.TransactionHashOf(parsed.Value).Hex);
        Assert.Equal(259200, stored["spec"]!["ratingWindowSeconds"]!.GetValue<long>()); // schema default applied

        await lease.SetStatusAsync(cluster.Client, "Active", "True");
        var get = KubectlAssert.Succeeded(await Run(kubectl, cluster, "get", "tpulease"));
        Assert.Matches(new Regex(@"^NAME\s+PHASE\s+CHIPS\s+ACCELERATOR\s+RENTER\s+QUEUE\s+AGE\s*$", RegexOptions.Multiline), get.Stdout);
        Assert.True(Regex.IsMatch(get.Stdout, $@"^train-1\s+Active\s+8\s+{LeaseManifests.Accelerator}\s+{lease.Parties.Renter.Identity.Address}\s+(?:<none>\s+)?\d+s\s*$", RegexOptions.Multiline),
            $"no printer-column row for train-1:\n{get}");

        // While waiting, the place in the queue is a default column and the free-up time a wide one (a time, not an age).
        await cluster.Client.CustomObjects.PatchNamespacedCustomObjectStatusAsync<JsonElement>(
            new V1Patch("{\"status\":{\"phase\":\"Pending\",\"queuePosition\":2,\"earliestFreeAt\":\"2030-01-02T03:04:05Z\"}}", V1Patch.PatchType.MergePatch),
            Rpoi.Operator.Entities.Lease.Group, Rpoi.Operator.Entities.Lease.Version, lease.Namespace, Rpoi.Operator.Entities.Lease.Plural, "train-1");
        get = KubectlAssert.Succeeded(await Run(kubectl, cluster, "get", "tpulease"));
        Assert.True(Regex.IsMatch(get.Stdout, @"^train-1\s+Pending\s+8\s+\S+\s+\S+\s+2\s+\d+s\s*$", RegexOptions.Multiline), $"no queue position for train-1:\n{get}");
        var wide = KubectlAssert.Succeeded(await Run(kubectl, cluster, "get", "tpulease", "-o", "wide"));
        Assert.Matches(new Regex(@"^NAME\s+PHASE\s+CHIPS\s+ACCELERATOR\s+RENTER\s+QUEUE\s+FREE AT\s+AGE\s*$", RegexOptions.Multiline), wide.Stdout);
        Assert.True(Regex.IsMatch(wide.Stdout, @"^train-1\s+Pending\s+8\s+\S+\s+\S+\s+2\s+2030-01-02T03:04:05Z\s+\d+s\s*$", RegexOptions.Multiline), $"no free-up time for train-1:\n{wide}");
        await lease.SetStatusAsync(cluster.Client, "Active", "True");

        // The category lists Leases and Ratings together; plain "leases" stays coordination.k8s.io.
        var rating = kubectl.WriteFile("rating.yaml", lease.RatingYaml("train-1-leaser", "Leaser", 4));
        KubectlAssert.Contains("rating.rpoi.io/train-1-leaser created", KubectlAssert.Succeeded(await kubectl.RunAsync(KubectlTimeout, "apply", "-f", rating)));
        var category = KubectlAssert.Succeeded(await Run(kubectl, cluster, "get", "rpoi", "-o", "name"));
        Assert.Equal(["lease.rpoi.io/train-1", "rating.rpoi.io/train-1-leaser"], category.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));
        var coordination = await Run(kubectl, cluster, "get", "leases", "-o", "name");
        KubectlAssert.Succeeded(coordination);
        Assert.DoesNotContain("train-1", coordination.Stdout, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Binaries))]
    public async Task Explain_prints_the_field_descriptions(string binary)
    {
        var (cluster, kubectl, _) = await StartWithLeaseAsync(binary);
        await using var _ = cluster;
        using var __ = kubectl;

        var spec = KubectlAssert.Succeeded(await kubectl.RunAsync(KubectlTimeout, "explain", "tpulease.spec"));
        KubectlAssert.Contains("The renter's signed request and the lease policy.", spec);
        KubectlAssert.Contains("ratingWindowSeconds", spec);
        KubectlAssert.Contains("returnRequested", spec);
        KubectlAssert.Contains("Set to true to end the lease early", spec);
        var chips = KubectlAssert.Succeeded(await kubectl.RunAsync(KubectlTimeout, "explain", "tpulease.spec.request.payload.chips"));
        KubectlAssert.Contains("Number of TPU chips M asked for; at least 1.", chips);

        // A real server publishes metadata as a reference to ObjectMeta, whatever the CRD says there.
        var metadata = KubectlAssert.Succeeded(await kubectl.RunAsync(KubectlTimeout, "explain", "tpulease.metadata"));
        Assert.Matches(new Regex(@"FIELD:\s+metadata <ObjectMeta>"), metadata.Stdout);
        KubectlAssert.Contains("ObjectMeta is metadata that all persisted resources must have", metadata);
        var name = KubectlAssert.Succeeded(await kubectl.RunAsync(KubectlTimeout, "explain", "tpulease.metadata.name"));
        KubectlAssert.Contains("Name must be unique within a namespace.", name);
    }

    [Theory]
    [MemberData(nameof(Binaries))]
    public async Task Wait_for_Ready_returns_when_the_operator_sets_the_condition(string binary)
    {
        var (cluster, kubectl, lease) = await StartWithLeaseAsync(binary);
        await using var _ = cluster;
        using var __ = kubectl;

        await lease.SetStatusAsync(cluster.Client, "Allocating", "False");
        var wait = Run(kubectl, cluster, "wait", "--for=condition=Ready", "--timeout=30s", "tpulease/train-1");
        await WhenWatchingAsync(cluster, wait);
        await lease.SetStatusAsync(cluster.Client, "Active", "True");
        KubectlAssert.Contains("lease.rpoi.io/train-1 condition met", KubectlAssert.Succeeded(await wait));
    }

    [Theory]
    [MemberData(nameof(Binaries))]
    public async Task Describe_prints_the_request_and_the_status(string binary)
    {
        var (cluster, kubectl, lease) = await StartWithLeaseAsync(binary);
        await using var _ = cluster;
        using var __ = kubectl;

        await lease.SetStatusAsync(cluster.Client, "Active", "True");
        var describe = KubectlAssert.Succeeded(await Run(kubectl, cluster, "describe", "tpulease", "train-1"));
        KubectlAssert.Contains("API Version:  rpoi.io/v1alpha1", describe);
        KubectlAssert.Contains(lease.Signed.Sig, describe);
        KubectlAssert.Contains(RpoiEquations.TransactionHashOf(lease.Signed).Hex, describe);
        Assert.Matches(new Regex(@"Phase:\s+Active"), describe.Stdout);
        Assert.Matches(new Regex(@"Type:\s+Ready"), describe.Stdout);
        Assert.Matches(new Regex(@"^Events:\s+<none>\s*$", RegexOptions.Multiline), describe.Stdout);
    }

    [Theory]
    [MemberData(nameof(Binaries))]
    public async Task Events_the_operator_records_show_in_get_events_and_describe(string binary)
    {
        var (cluster, kubectl, _) = await StartWithLeaseAsync(binary);
        await using var _ = cluster;
        using var __ = kubectl;

        // The operator's own recorder writes events.k8s.io/v1 Events; kubectl reads core/v1 Events. A real server
        // stores both as one resource, so the operator's events show where users look for them.
        var lease = KubernetesJson.Deserialize<Rpoi.Operator.Entities.Lease>((await GetLeaseAsync(cluster, "train-1"))!.ToJsonString());
        await using (var recorder = new KubeEventRecorder(cluster.Client, "rpoi.io/operator", "operator-0"))
        {
            await recorder.RecordAsync(lease, EventTypes.Normal, "Verified", "Verify", "signed request verified", CancellationToken.None);
            await recorder.RecordAsync(lease, EventTypes.Warning, "EscrowUnreachable", "Hold", "escrow did not answer; retrying", CancellationToken.None);
            Assert.True(await recorder.FlushAsync(CancellationToken.None), "the recorder wrote both events");
        }

        var events = KubectlAssert.Succeeded(await Run(kubectl, cluster, "get", "events"));
        Assert.Matches(new Regex(@"^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE\s*$", RegexOptions.Multiline), events.Stdout);
        Assert.True(Regex.IsMatch(events.Stdout, @"^\S+\s+Normal\s+Verified\s+lease/train-1\s+signed request verified\s*$", RegexOptions.Multiline),
            $"no row for the Verified event:\n{events}");
        Assert.True(Regex.IsMatch(events.Stdout, @"^\S+\s+Warning\s+EscrowUnreachable\s+lease/train-1\s+escrow did not answer; retrying\s*$", RegexOptions.Multiline),
            $"no row for the EscrowUnreachable event:\n{events}");

        // describe finds them with core/v1 field selectors on involvedObject (name, namespace, kind, uid); From is
        // the reporting controller, as the events.k8s.io API has no source.
        var describe = KubectlAssert.Succeeded(await Run(kubectl, cluster, "describe", "tpulease", "train-1"));
        Assert.Matches(new Regex(@"^Events:\s*$", RegexOptions.Multiline), describe.Stdout);
        Assert.Matches(new Regex(@"^\s+Type\s+Reason\s+Age\s+From\s+Message\s*$", RegexOptions.Multiline), describe.Stdout);
        Assert.True(Regex.IsMatch(describe.Stdout, @"^\s+Normal\s+Verified\s+\S+\s+rpoi\.io/operator\s+signed request verified\s*$", RegexOptions.Multiline),
            $"describe does not list the Verified event:\n{describe}");
        Assert.True(Regex.IsMatch(describe.Stdout, @"^\s+Warning\s+EscrowUnreachable\s+\S+\s+rpoi\.io/operator\s+escrow did not answer; retrying\s*$", RegexOptions.Multiline),
            $"describe does not list the EscrowUnreachable event:\n{describe}");
    }

    [Theory]
    [MemberData(nameof(Binaries))]
    public async Task Delete_waits_until_the_operator_removes_its_finalizer(string binary)
    {
        var (cluster, kubectl, _) = await StartWithLeaseAsync(binary);
        await using var _ = cluster;
        using var __ = kubectl;

        KubectlAssert.Succeeded(await Run(kubectl, cluster, "patch", "tpulease", "train-1", "--type=merge", "-p", """{"metadata":{"finalizers":["rpoi.io/settle"]}}"""));
        var delete = Run(kubectl, cluster, "delete", "tpulease", "train-1", "--timeout=30s");
        await Eventually.HoldsAsync(async () => delete.IsCompleted || (await GetLeaseAsync(cluster, "train-1"))?["metadata"]?["deletionTimestamp"] is not null,
            "the delete marks the Lease", timeout: KubectlTimeout);
        await WhenWatchingAsync(cluster, delete);
        Assert.NotNull(await GetLeaseAsync(cluster, "train-1")); // held by the finalizer

        await cluster.Client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(new V1Patch("""{"metadata":{"finalizers":null}}""", V1Patch.PatchType.MergePatch),
            LeaseManifests.Group, LeaseManifests.Version, cluster.Namespace, "leases", "train-1");
        KubectlAssert.Contains("\"train-1\" deleted", KubectlAssert.Succeeded(await delete));
        Assert.Null(await GetLeaseAsync(cluster, "train-1"));
    }

    [Theory]
    [MemberData(nameof(Binaries))]
    public async Task Invalid_leases_and_ratings_are_refused_with_the_field_named(string binary)
    {
        var (cluster, kubectl, lease) = await StartWithLeaseAsync(binary);
        await using var _ = cluster;
        using var __ = kubectl;

        async Task<KubectlResult> Refused(string file, string yaml)
        {
            var result = await kubectl.RunAsync(KubectlTimeout, "apply", "-f", kubectl.WriteFile(file, yaml));
            Assert.True(result.ExitCode != 0, $"expected a refusal:\n{result}");
            return result;
        }

        // minimum: 1 holds inside the payload although it preserves unknown fields (known fields are still validated).
        var zeroChips = new LeaseManifests(cluster.Namespace, "zero");
        // kubectl prints an Invalid Status as 'The <kind> "<name>" is invalid: ' and then each cause as 'field: message';
        // the causes are the real server's field errors (kube-openapi's wording; CEL errors show the rule schema's type).
        var chips = await Refused("zero.yaml", zeroChips.LeaseYaml(zeroChips.RequestWith("chips", 0)));
        KubectlAssert.Contains("The Lease \"zero\" is invalid: spec.request.payload.chips: Invalid value: 0: spec.request.payload.chips in body should be greater than or equal to 1", chips);
        Assert.Null(await GetLeaseAsync(cluster, "zero"));

        // maximum: 5 and the CEL range rule both fail (a maximum is not a blocking error, so CEL still runs).
        var score = await Refused("score.yaml", lease.RatingYaml("bad-score", "Leaser", 7));
        KubectlAssert.Contains("The Rating \"bad-score\" is invalid: ", score);
        KubectlAssert.Contains("* spec.score: Invalid value: 7: spec.score in body should be less than or equal to 5", score);
        KubectlAssert.Contains("* spec.score: Invalid value: \"integer\": score must be between 1 and 5", score);

        // CEL with has() and ||: a renter's rating must carry the renter's signature (the rule sits on spec).
        var unsigned = await Refused("unsigned.yaml", lease.RatingYaml("unsigned", "Renter", 5));
        KubectlAssert.Contains("The Rating \"unsigned\" is invalid: spec: Invalid value: \"object\": spec.signedRating is required when rater is Renter", unsigned);

        // CEL transition rules: the signed request is immutable, and a return cannot be withdrawn.
        var other = new LeaseManifests(cluster.Namespace, "train-1");
        var immutable = await Refused("changed.yaml", other.LeaseYaml());
        KubectlAssert.Contains("The Lease \"train-1\" is invalid: spec.request: Invalid value: \"object\": spec.request is immutable", immutable);

        KubectlAssert.Succeeded(await Run(kubectl, cluster, "patch", "tpulease", "train-1", "--type=merge", "-p", """{"spec":{"returnRequested":true}}"""));
        var withdraw = await Run(kubectl, cluster, "patch", "tpulease", "train-1", "--type=merge", "-p", """{"spec":{"returnRequested":false}}""");
        Assert.True(withdraw.ExitCode != 0, $"expected a refusal:\n{withdraw}");
        KubectlAssert.Contains("The Lease \"train-1\" is invalid: spec: Invalid value: \"object\": spec.returnRequested cannot be withdrawn once set to true", withdraw);
        Assert.True((await GetLeaseAsync(cluster, "train-1"))!["spec"]!["returnRequested"]!.GetValue<bool>());
    }
}
