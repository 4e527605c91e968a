using k8s;
using Xunit.Abstractions;

namespace Rpoi.Chaos;

/// <summary>The CI-size chaos runs (docs/reliability.md): the real operator and π as child processes, killed and restarted.</summary>
public sealed class ChaosTests(ITestOutputHelper output)
{
    [Fact]
    public Task Sqlite_100_leases_10_operator_kills_settle_exactly_once() =>
        RunAsync(new ChaosOptions { Seed = 16, Leases = 100, Kills = 10, EscrowRestarts = 2, Store = ChaosStore.Sqlite, LeaderLeaseSeconds = 4 });

    [Fact]
    public Task Postgres_100_leases_10_operator_kills_settle_exactly_once() =>
        RunAsync(new ChaosOptions { Seed = 17, Leases = 100, Kills = 10, EscrowRestarts = 2, Store = ChaosStore.Postgres, LeaderLeaseSeconds = 4 });

    [Fact]
    public async Task The_end_checks_catch_money_paid_outside_the_table_a_node_left_marked_and_a_left_access_secret()
    {
        // A small quiet run, then the world is broken behind the operator's back: the checks must say so, each by name.
        var report = await ChaosRun.RunAsync(new ChaosOptions
        {
            Seed = 3,
            Leases = 6,
            Kills = 0,
            ApiFaults = false,
            LeaderLeaseSeconds = 4,
            Sabotage = async (kube, admin, renter) =>
            {
                await admin.DepositAsync(new Rpoi.Escrow.Client.DepositRequest("sabotage", renter, new Rpoi.Escrow.Client.EscrowAmount("1", "uusd")));
                var node = (await kube.CoreV1.ListNodeAsync()).Items[0].Metadata.Name;
                await kube.CoreV1.PatchNodeAsync(new k8s.Models.V1Patch("{\"metadata\":{\"labels\":{\"rpoi.io/lease-name\":\"ghost\"}}}", k8s.Models.V1Patch.PatchType.MergePatch), node);
                await kube.CoreV1.CreateNamespacedSecretAsync(new k8s.Models.V1Secret { Metadata = new k8s.Models.V1ObjectMeta { Name = "ghost-access" }, Type = "rpoi.io/access" }, ChaosRun.Ns);
            },
        });
        output.WriteLine(report.Summary());
        Assert.Equal(6 + 1, report.Settled); // and the blocker (LeasePlan.Blocker)
        Assert.Contains(report.Problems, p => p.StartsWith("node ", StringComparison.Ordinal) && p.Contains("still marked for a lease (rpoi.io/lease-name)", StringComparison.Ordinal));
        Assert.Contains("secret ghost-access: access Secret left after its lease ended", report.Problems);
        Assert.Contains(report.Problems, p => p.StartsWith("balance: renter has", StringComparison.Ordinal));
        Assert.Equal(3, report.Problems.Count);
    }

    private async Task RunAsync(ChaosOptions options)
    {
        // With RPOI_TEST_KUBECONFIG set, the same runs go against that cluster (docs/reliability.md).
        var kubeconfig = Environment.GetEnvironmentVariable("RPOI_TEST_KUBECONFIG") is { Length: > 0 } k ? k : null;
        var log = new StringWriter();
        var report = await ChaosRun.RunAsync(options with { Log = TextWriter.Synchronized(log), Kubeconfig = kubeconfig });
        output.WriteLine(log.ToString());
        output.WriteLine(report.Summary());
        Assert.True(report.Problems.Count == 0, report.Summary());
        // The run must really have been chaotic: kills (one at least of the leader, so the other replica took over),
        // π restarts and injected API errors (none against a real cluster), or passing proves nothing.
        Assert.Equal(options.Kills, report.OperatorKills);
        Assert.True(report.LeaderKills >= 1 && report.LeaderTransitions >= 1, report.Summary());
        Assert.Equal(options.EscrowRestarts, report.EscrowRestarts);
        Assert.True(kubeconfig is null ? report.FaultsFired > 0 : report.FaultsFired == 0, report.Summary());
        // Every planned lease and the blocker that holds the queued shape's node (LeasePlan.Blocker) settled.
        Assert.Equal(options.Leases + 1, report.Settled);
    }
}
