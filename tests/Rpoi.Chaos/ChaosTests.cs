using Xunit.Abstractions;

namespace Rpoi.Chaos;

/// <summary>The CI-size chaos runs (docs/reliability.md): the real operator and π as child processes, killed and restarted.</summary>
public sealed class ChaosTests(ITestOutputHelper output)
{
    [Fact]
    public Task Sqlite_100_leases_10_operator_kills_settle_exactly_once() =>
        RunAsync(new ChaosOptions { Seed = 16, Leases = 100, Kills = 10, EscrowRestarts = 2, Store = ChaosStore.Sqlite, LeaderLeaseSeconds = 4 });

    [Fact]
    public Task Postgres_60_leases_6_operator_kills_settle_exactly_once() =>
        RunAsync(new ChaosOptions { Seed = 17, Leases = 60, Kills = 6, EscrowRestarts = 2, Store = ChaosStore.Postgres, LeaderLeaseSeconds = 4 });

    private async Task RunAsync(ChaosOptions options)
    {
        var log = new StringWriter();
        var report = await ChaosRun.RunAsync(options with { Log = TextWriter.Synchronized(log) });
        output.WriteLine(log.ToString());
        output.WriteLine(report.Summary());
        Assert.True(report.Problems.Count == 0, report.Summary());
        // The run must really have been chaotic: kills (one at least of the leader, so the other replica took over),
        // π restarts and injected API errors, or passing proves nothing.
        Assert.Equal(options.Kills, report.OperatorKills);
        Assert.True(report.LeaderKills >= 1 && report.LeaderTransitions >= 1, report.Summary());
        Assert.Equal(options.EscrowRestarts, report.EscrowRestarts);
        Assert.True(report.FaultsFired > 0, report.Summary());
        Assert.Equal(options.Leases, report.Settled);
    }
}
