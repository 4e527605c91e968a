using System.Globalization;
using Rpoi.Chaos;

// Console mode: dotnet run --project tests/Rpoi.Chaos -- --seed 7 --leases 1000 --kills 50 [--store sqlite|postgres]
//   [--escrow-restarts N] [--concurrency N] [--nodes N] [--leader-lease SECONDS] [--kubeconfig FILE] [--keep].
//   Exit 0 when every end check held, 1 otherwise, 2 on bad flags or a cluster that cannot be used.
// Hidden: serve-api <kubeconfig-path> runs the API test server as a process of its own (for the real-cluster mode's test).
if (args is ["serve-api", var kubeconfigOut])
{
    return await ServeApi.RunAsync(kubeconfigOut);
}

var options = new ChaosOptions { Log = Console.Out, Kubeconfig = Environment.GetEnvironmentVariable("RPOI_TEST_KUBECONFIG") is { Length: > 0 } k ? k : null };
for (var i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    int Int(string flag)
    {
        var text = Next();
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v >= 0
            ? v
            : throw new ArgumentException($"{flag}: '{text}' is not a non-negative whole number");
    }

    try
    {
        options = args[i] switch
        {
            "--seed" => options with { Seed = Int("--seed") },
            "--leases" => options with { Leases = Int("--leases") },
            "--kills" => options with { Kills = Int("--kills") },
            "--escrow-restarts" => options with { EscrowRestarts = Int("--escrow-restarts") },
            "--concurrency" => options with { Concurrency = Math.Max(1, Int("--concurrency")) },
            "--nodes" => options with { Nodes = Math.Max(1, Int("--nodes")) },
            "--leader-lease" => options with { LeaderLeaseSeconds = Int("--leader-lease") },
            "--kubeconfig" => options with { Kubeconfig = Next() },
            "--keep" => options with { Keep = true },
            "--store" => Next() switch
            {
                "sqlite" => options with { Store = ChaosStore.Sqlite },
                "postgres" => options with { Store = ChaosStore.Postgres },
                var s => throw new ArgumentException($"--store: '{s}' is not sqlite or postgres"),
            },
            var f => throw new ArgumentException($"unknown flag {f}; flags: --seed, --leases, --kills, --escrow-restarts, --store sqlite|postgres, --concurrency, --nodes, --leader-lease <seconds>, --kubeconfig <file>, --keep"),
        };
    }
    catch (ArgumentException e)
    {
        Console.Error.WriteLine(e.Message);
        return 2;
    }
}

ChaosReport report;
try
{
    report = await ChaosRun.RunAsync(options);
}
catch (ChaosSetupException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

Console.WriteLine(report.Summary());
return report.Problems.Count == 0 ? 0 : 1;
