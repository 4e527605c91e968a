using System.Text.Json.Nodes;
using Rpoi.Cli.Support;
using Rpoi.Cli.Tests.Support;
using Rpoi.Sandbox;

namespace Rpoi.Cli.Tests;

/// <summary>
/// The quickstart against a real sandbox: `sandbox up` in this process, real kubectl and the CLI, phase I from
/// request to an opened grant that works against the sandbox's API, the return, the renter's rating, π's ledger
/// surviving a restart, and an Active lease (nodes, access Secret, pledge) surviving `sandbox down` / `sandbox up`.
/// </summary>
public sealed class SandboxTests : IDisposable
{
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(60);
    private readonly TempHome home = new();

    private string Dir => home.File(".rpoi/sandbox");

    private async Task<(Task<CliResult> Up, CancellationTokenSource Stop, SandboxState State)> UpAsync(params string[] extra)
    {
        var stop = new CancellationTokenSource();
        var up = home.RunAsync(null, stop.Token, ["sandbox", "up", .. extra]);
        var state = await Eventually.ValueAsync(() => Task.FromResult(up.IsCompleted ? throw new InvalidOperationException($"sandbox up ended: {up.Result}") : SandboxState.Load(Dir)), Startup, "sandbox.json written");
        return (up, stop, state);
    }

    private static async Task<CliResult> DownAsync(Task<CliResult> up, CancellationTokenSource stop)
    {
        await stop.CancelAsync();
        var result = await up;
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("stopping the sandbox", result.Out, StringComparison.Ordinal);
        stop.Dispose();
        return result;
    }

    private Task<CliResult> Kubectl(string kubeconfig, params string[] args) => Processes.KubectlAsync(home.Path, kubeconfig, args);

    [Fact]
    public async Task Quickstart_from_request_to_grant_and_rating_with_real_kubectl()
    {
        var (up, stop, state) = await UpAsync();
        var kc = state.Kubeconfig;
        Assert.Equal(Path.Combine(Dir, "kubeconfig"), kc);
        home.Variables["KUBECONFIG"] = kc;
        home.Variables["RPOI_KEY"] = state.RenterKey;

        var nodes = await Kubectl(kc, "get", "nodes", "-L", "cloud.google.com/gke-tpu-accelerator,cloud.google.com/gke-tpu-topology");
        Assert.True(nodes.ExitCode == 0, nodes.ToString());
        Assert.Contains("gke-sandbox-tpu-v5e-4x4-3", nodes.Out, StringComparison.Ordinal);
        Assert.Contains("tpu-v6e-slice", nodes.Out, StringComparison.Ordinal);

        var offers = await home.RunAsync("offers");
        Assert.True(offers.ExitCode == 0, offers.ToString());
        Assert.Contains("tpu-v5-lite-podslice", offers.Out, StringComparison.Ordinal);

        var request = await home.RunAsync("request", "--name", "train-1", "-n", "team-a", "--accelerator", "tpu-v5-lite-podslice", "--topology", "2x4",
            "--chips", "8", "--duration", "1h", "--deposit", "1500000uusd", "--rent", "9000000uusd");
        Assert.True(request.ExitCode == 0, request.ToString());
        File.WriteAllText(home.File("lease.yaml"), request.Out);

        var apply = await Kubectl(kc, "apply", "-f", home.File("lease.yaml"));
        Assert.True(apply.ExitCode == 0, apply.ToString());
        var get = await Kubectl(kc, "get", "tpulease", "-n", "team-a");
        Assert.True(get.ExitCode == 0, get.ToString());
        Assert.Contains("train-1", get.Out, StringComparison.Ordinal);
        var wait = await Kubectl(kc, "wait", "--for=condition=Ready", "tpulease/train-1", "-n", "team-a", "--timeout=60s");
        Assert.True(wait.ExitCode == 0, wait.ToString());

        var access = await home.RunAsync("access", "train-1", "-n", "team-a", "--wait");
        Assert.True(access.ExitCode == 0, access.ToString());
        Assert.Contains("node pool tpu-v5e-2x4", access.Out, StringComparison.Ordinal);
        var pods = await Kubectl(home.File("train-1.kubeconfig"), "get", "pods");
        Assert.True(pods.ExitCode == 0, pods.ToString());

        var balance = await home.RunAsync("balance");
        Assert.True(balance.ExitCode == 0, balance.ToString());
        Assert.Contains("89500000 uusd", balance.Out, StringComparison.Ordinal);

        var ret = await Kubectl(kc, "patch", "tpulease", "train-1", "-n", "team-a", "--type=merge", "-p", "{\"spec\":{\"returnRequested\":true}}");
        Assert.True(ret.ExitCode == 0, ret.ToString());
        var returned = await Kubectl(kc, "wait", "--for=jsonpath={.status.phase}=AwaitingRatings", "tpulease/train-1", "-n", "team-a", "--timeout=60s");
        Assert.True(returned.ExitCode == 0, returned.ToString());

        var rate = await home.RunAsync("rate", "train-1", "-n", "team-a", "--score", "5", "--comment", "fast", "--apply");
        Assert.True(rate.ExitCode == 0, rate.ToString());
        var ratings = await Kubectl(kc, "get", "tpurating", "-n", "team-a");
        Assert.Contains("train-1-renter", ratings.Out, StringComparison.Ordinal);

        var status = await home.RunAsync("status", "train-1", "-n", "team-a");
        Assert.True(status.ExitCode == 0, status.ToString());
        Assert.Contains("returned", status.Out, StringComparison.Ordinal);

        var refused = await home.RunAsync("balance", "--address", "not-an-address");
        Assert.Equal(ExitCodes.EscrowRefused, refused.ExitCode);
        Assert.Contains("π refused", refused.Err, StringComparison.Ordinal);

        var sandboxStatus = await home.RunAsync("sandbox", "status");
        Assert.True(sandboxStatus.ExitCode == 0, sandboxStatus.ToString());

        await DownAsync(up, stop);
        Assert.Null(SandboxState.Load(Dir));
        Assert.Equal(ExitCodes.NotFound, (await home.RunAsync("sandbox", "status")).ExitCode);

        // π's ledger is a SQLite file in the sandbox directory: the pledge is still held after a restart.
        var (up2, stop2, state2) = await UpAsync();
        Assert.Equal(state.RenterAddress, state2.RenterAddress);
        var again = await home.RunAsync("balance");
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("89500000 uusd", again.Out, StringComparison.Ordinal);
        await DownAsync(up2, stop2);
    }

    [Fact]
    public async Task A_second_sandbox_on_the_same_directory_is_refused()
    {
        var (up, stop, _) = await UpAsync();

        var second = await home.RunAsync("sandbox", "up");

        Assert.Equal(ExitCodes.Conflict, second.ExitCode);
        Assert.Contains("already runs", second.Err, StringComparison.Ordinal);
        await DownAsync(up, stop);
    }

    [Fact]
    public async Task Cancel_of_an_active_lease_is_refused_through_the_real_operator_and_nothing_changes_until_return()
    {
        var (up, stop, state) = await UpAsync();
        var kc = state.Kubeconfig;
        home.Variables["KUBECONFIG"] = kc;
        home.Variables["RPOI_KEY"] = state.RenterKey;
        var request = await home.RunAsync("request", "--name", "train-1", "-n", "team-a", "--accelerator", "tpu-v5-lite-podslice", "--topology", "2x4",
            "--chips", "8", "--duration", "1h", "--deposit", "1500000uusd", "--rent", "9000000uusd", "--apply");
        Assert.True(request.ExitCode == 0, request.ToString());
        var access = await home.RunAsync("access", "train-1", "-n", "team-a", "--wait");
        Assert.True(access.ExitCode == 0, access.ToString());
        var before = await LeaseAsync(kc, "train-1");
        Assert.Equal("Active", At(before, "status", "phase"));
        var claimed = await ClaimedNodesAsync(kc, "train-1");

        var cancel = await home.RunAsync("cancel", "train-1", "-n", "team-a");

        Assert.Equal(ExitCodes.Conflict, cancel.ExitCode);
        Assert.Contains("is Active: it cannot be cancelled, only returned (kubectl rpoi return train-1 -n team-a)", cancel.Err, StringComparison.Ordinal);
        var after = await LeaseAsync(kc, "train-1");
        Assert.Equal("Active", At(after, "status", "phase"));
        Assert.Null(At(after, "spec", "returnRequested"));
        Assert.Equal(At(before, "metadata", "resourceVersion"), At(after, "metadata", "resourceVersion"));
        Assert.Equal(claimed, await ClaimedNodesAsync(kc, "train-1"));
        Assert.Contains("89500000 uusd", (await home.RunAsync("balance")).Out, StringComparison.Ordinal);
        using (var http = new HttpClient())
        {
            var audit = JsonNode.Parse(await http.GetStringAsync(new Uri(new Uri(state.Escrow), "v1/ledger/verify")))!;
            Assert.True(audit["ok"]!.GetValue<bool>(), audit.ToJsonString());
        }

        // `return` is the way out of an Active lease: nodes released, the rating window opens, the pledge still held.
        var ret = await home.RunAsync("return", "train-1", "-n", "team-a", "--wait");
        Assert.True(ret.ExitCode == 0, ret.ToString());
        Assert.Equal("AwaitingRatings", At(await LeaseAsync(kc, "train-1"), "status", "phase"));
        Assert.Equal("", await ClaimedNodesAsync(kc, "train-1"));
        Assert.Contains("89500000 uusd", (await home.RunAsync("balance")).Out, StringComparison.Ordinal);
        await DownAsync(up, stop);
    }

    /// <summary>The Lease as kubectl shows it (JSON).</summary>
    private async Task<JsonObject> LeaseAsync(string kubeconfig, string name)
    {
        var get = await Kubectl(kubeconfig, "get", "tpulease", name, "-n", "team-a", "-o", "json");
        Assert.True(get.ExitCode == 0, get.ToString());
        return JsonNode.Parse(get.Out)!.AsObject();
    }

    /// <summary>The nodes whose claim labels name the lease, sorted.</summary>
    private async Task<string> ClaimedNodesAsync(string kubeconfig, string lease)
    {
        var nodes = await Kubectl(kubeconfig, "get", "nodes", "-l", $"rpoi.io/lease-name={lease}", "-o", "jsonpath={.items[*].metadata.name}");
        Assert.True(nodes.ExitCode == 0, nodes.ToString());
        return nodes.Out.Trim();
    }

    private static string? At(JsonNode node, params string[] path) =>
        path.Aggregate<string, JsonNode?>(node, (n, p) => n?[p]) is JsonValue v ? v.ToString() : null;

    [Fact]
    public async Task An_active_lease_survives_down_and_up_with_its_nodes_secret_and_single_pledge_and_settles_after()
    {
        var (up, stop, state) = await UpAsync("--save-interval", "1");
        Assert.True(state.Settles, "the sandbox's operator does not run phase II");
        var kc = state.Kubeconfig;
        home.Variables["KUBECONFIG"] = kc;
        home.Variables["RPOI_KEY"] = state.RenterKey;
        var request = await home.RunAsync("request", "--name", "train-1", "-n", "team-a", "--accelerator", "tpu-v5-lite-podslice", "--topology", "2x4",
            "--chips", "8", "--duration", "1h", "--deposit", "1500000uusd", "--rent", "9000000uusd", "--rating-window", "1h", "--apply");
        Assert.True(request.ExitCode == 0, request.ToString());
        var access = await home.RunAsync("access", "train-1", "-n", "team-a", "--wait");
        Assert.True(access.ExitCode == 0, access.ToString());
        var before = await LeaseAsync(kc, "train-1");
        Assert.Equal("Active", At(before, "status", "phase"));
        var claimed = await ClaimedNodesAsync(kc, "train-1");
        Assert.StartsWith("gke-sandbox-tpu-v5e-2x4-", claimed, StringComparison.Ordinal);
        Assert.Contains("89500000 uusd", (await home.RunAsync("balance")).Out, StringComparison.Ordinal);

        // The periodic save (every second here) already holds the Active lease before any stop: a crash loses little.
        var snapshot = Path.Combine(Dir, Sandbox.Sandbox.SnapshotFile);
        await Eventually.TrueAsync(() => File.Exists(snapshot) && JsonNode.Parse(File.ReadAllText(snapshot))!["resources"]!.AsArray()
            .SelectMany(r => r!["items"]!.AsArray())
            .Any(o => At(o!, "metadata", "uid") == At(before, "metadata", "uid") && At(o!, "status", "phase") == "Active"), Startup, "the periodic snapshot holds the Active lease");

        var down = await DownAsync(up, stop);
        Assert.Contains($"API objects saved to {snapshot}", down.Out, StringComparison.Ordinal);

        var (up2, stop2, state2) = await UpAsync();
        Assert.NotEqual(state.ApiServer, state2.ApiServer); // a new server process on a new port, not the old one
        var after = await LeaseAsync(state2.Kubeconfig, "train-1");
        foreach (var path in new[] { new[] { "metadata", "uid" }, ["metadata", "creationTimestamp"], ["status", "phase"], ["status", "transactionHash"],
            ["status", "activeSince"], ["status", "expiresAt"], ["status", "grantDigest"] })
        {
            Assert.Equal(At(before, path), At(after, path));
        }

        Assert.True(JsonNode.DeepEquals(before["status"]!["nodes"], after["status"]!["nodes"]));
        Assert.Equal(claimed, await ClaimedNodesAsync(state2.Kubeconfig, "train-1"));
        var secret = await Kubectl(state2.Kubeconfig, "get", "secret", "train-1-access", "-n", "team-a", "-o", "name");
        Assert.True(secret.ExitCode == 0, secret.ToString());
        var reopened = await home.RunAsync("access", "train-1", "-n", "team-a", "--kubeconfig-out", home.File("train-1-again.kubeconfig"));
        Assert.True(reopened.ExitCode == 0, reopened.ToString());
        Assert.Contains("89500000 uusd", (await home.RunAsync("balance")).Out, StringComparison.Ordinal);

        // The operator carries on from the restored status: return, both ratings, settlement with π, exactly once.
        var ret = await Kubectl(state2.Kubeconfig, "patch", "tpulease", "train-1", "-n", "team-a", "--type=merge", "-p", "{\"spec\":{\"returnRequested\":true}}");
        Assert.True(ret.ExitCode == 0, ret.ToString());
        var returned = await Kubectl(state2.Kubeconfig, "wait", "--for=jsonpath={.status.phase}=AwaitingRatings", "tpulease/train-1", "-n", "team-a", "--timeout=60s");
        Assert.True(returned.ExitCode == 0, returned.ToString());
        Assert.Equal("", await ClaimedNodesAsync(state2.Kubeconfig, "train-1"));
        var rate = await home.RunAsync("rate", "train-1", "-n", "team-a", "--score", "5", "--apply");
        Assert.True(rate.ExitCode == 0, rate.ToString());
        // Not settled until β's rating is in: no proof yet, and nothing written.
        var early = await home.RunAsync("proof", "train-1", "-n", "team-a", "-o", "early.json");
        Assert.Equal(ExitCodes.NotFound, early.ExitCode);
        Assert.Contains("lease team-a/train-1 is not settled yet (phase AwaitingRatings", early.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(home.File("early.json")));
        var leaserRating = await Kubectl(state2.Kubeconfig, "apply", "-f", Path.Combine(RepositoryRoot(), "config", "samples", "sandbox", "rating-leaser.yaml"));
        Assert.True(leaserRating.ExitCode == 0, leaserRating.ToString());
        var settled = await Kubectl(state2.Kubeconfig, "wait", "--for=jsonpath={.status.phase}=Settled", "tpulease/train-1", "-n", "team-a", "--timeout=60s");
        Assert.True(settled.ExitCode == 0, settled.ToString());
        Assert.Contains("91000000 uusd", (await home.RunAsync("balance")).Out, StringComparison.Ordinal);
        Assert.Contains("  9000000 uusd", (await home.RunAsync("balance", "--leaser")).Out, StringComparison.Ordinal);

        // The operator's m_final went to π, which kept m''': the proof of this lease verifies, offline, after the sandbox stops.
        var proof = await home.RunAsync("proof", "train-1", "-n", "team-a", "-o", "bundle.json");
        Assert.True(proof.ExitCode == 0, proof.ToString());
        Assert.Contains("settled by LeaserFinal, all 13 checks ok", proof.Out, StringComparison.Ordinal);
        await DownAsync(up2, stop2);
        var bundle = Rpoi.Protocol.Proof.ProofBundle.Parse(File.ReadAllText(home.File("bundle.json"))).Value;
        Assert.Equal(At(after, "status", "grantDigest"), bundle.LeaserFinal!.Payload.GrantDigest);
        Assert.Equal(5, bundle.RenterRating!.Payload.Rating.Score);
        var verify = await home.RunAsync("verify", "bundle.json");
        Assert.True(verify.ExitCode == 0, verify.ToString());
        Assert.Contains("verified: lease team-a/train-1", verify.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stop_that_comes_as_the_sandbox_finishes_starting_is_a_clean_stop()
    {
        // The interleaving 'sandbox down' (or Ctrl-C) can hit under load: the stop arrives after the last start step,
        // before 'up' has written its pid file and begun to wait. Cancelling from inside the last start line's write makes
        // that order certain. It must still be a clean stop, not an "interrupted" exit half-way through.
        using var stop = new CancellationTokenSource();
        using var stdout = new CancelOnLine("operator β", stop);
        using var stderr = new StringWriter();

        var code = await Rpoi.Cli.Cli.RunAsync(["sandbox", "up"], stdout, TextWriter.Synchronized(stderr), home.Environment(), stop.Token);

        var result = new CliResult(code, stdout.ToString(), stderr.ToString());
        Assert.True(stop.IsCancellationRequested, result.ToString());
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("stopping the sandbox", result.Out, StringComparison.Ordinal);
        Assert.Null(SandboxState.Load(Dir));
        Assert.False(File.Exists(Path.Combine(Dir, "sandbox.pid")), "the pid file outlived the sandbox");
    }

    /// <summary>Stdout that cancels <paramref name="stop"/> while it writes the first line containing <paramref name="marker"/>.</summary>
    private sealed class CancelOnLine(string marker, CancellationTokenSource stop) : StringWriter
    {
        private readonly Lock gate = new();

        public override void WriteLine(string? value)
        {
            lock (gate)
            {
                base.WriteLine(value);
            }

            if (value?.Contains(marker, StringComparison.Ordinal) == true)
            {
                stop.Cancel();
            }
        }

        public override void Write(char value)
        {
            lock (gate)
            {
                base.Write(value);
            }
        }

        public override void Write(string? value)
        {
            lock (gate)
            {
                base.Write(value);
            }
        }

        public override string ToString()
        {
            lock (gate)
            {
                return base.ToString();
            }
        }
    }

    [Fact]
    public async Task A_corrupt_snapshot_stops_sandbox_up_with_the_file_and_the_fix()
    {
        Directory.CreateDirectory(Dir);
        var snapshot = Path.Combine(Dir, Sandbox.Sandbox.SnapshotFile);
        File.WriteAllText(snapshot, "{\"format\":\"Rpoi.Kube.ApiServer/snapshot\",\"version\":1,\"resources\":[");

        var up = await home.RunAsync("sandbox", "up");

        Assert.Equal(ExitCodes.Conflict, up.ExitCode);
        Assert.Contains(snapshot, up.Err, StringComparison.Ordinal);
        Assert.Contains("delete it", up.Err, StringComparison.Ordinal);
        Assert.Null(SandboxState.Load(Dir));
        Assert.Equal("{\"format\":\"Rpoi.Kube.ApiServer/snapshot\",\"version\":1,\"resources\":[", File.ReadAllText(snapshot));
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Rpoi.Operator.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Rpoi.Operator.sln not found above " + AppContext.BaseDirectory);
    }

    public void Dispose() => home.Dispose();
}
