using System.Globalization;

namespace Rpoi.Benchmarks;

/// <summary>
/// The <c>--flags</c> of <c>phase-one</c>, taken out of the argument list before the positional arguments are read.
/// A bad flag is an <see cref="ArgumentException"/> naming it (Program.cs turns that into exit code 2).
/// </summary>
/// <param name="Rate">Steady mode: leases created per second; null with <see cref="Duration"/> means half the capacity the burst rounds measured.</param>
/// <param name="Duration">Steady mode: how long leases keep arriving; null runs no steady round.</param>
/// <param name="Kubeconfig">Run against the cluster this file points at instead of an in-repo API server.</param>
/// <param name="FakeNodes">With <see cref="Kubeconfig"/>: create (and afterwards delete) one fake v5e 2x2 node per lease.</param>
/// <param name="Escrow"><c>sqlite</c> (π over HTTP on SQLite, the default) or <c>memory</c> (the in-memory π, no HTTP).</param>
/// <param name="RawWrites">Creates sent to measure the API server's raw write ceiling; null: as many as leases, at least 500.</param>
/// <param name="WriteLatencyMs">
/// In-repo API server only: each write (create, update, patch, delete) waits this long before it is served, as on a real
/// kube-apiserver whose etcd commit takes milliseconds; null: no delay (the test server then writes 10,000+/s and the
/// ratio to the floor measures the operator's CPU rather than its concurrency).
/// </param>
/// <param name="PlainLeases">Leases as small as the signed request alone (~860 B), without the labels and kubectl annotation users' manifests carry.</param>
internal sealed record PhaseOneFlags(double? Rate, int? Duration, string? Kubeconfig, bool FakeNodes, string Escrow, int? RawWrites, int? WriteLatencyMs = null, bool PlainLeases = false)
{
    public const string Usage = "flags: --escrow sqlite|memory, --rate <leases/s> --duration <seconds> (steady arrivals after the burst rounds; "
        + "without --rate, half the capacity the burst measured), --kubeconfig <file> [--fake-nodes], --raw-writes <n>, "
        + "--write-latency <ms> (the in-repo API server delays each write), --plain-leases (no labels or last-applied annotation)";

    /// <summary>Splits <paramref name="args"/> into the flags and the positional arguments (in their order).</summary>
    public static (PhaseOneFlags Flags, string[] Positional) Parse(string[] args)
    {
        double? rate = null;
        int? duration = null, rawWrites = null, writeLatency = null;
        var plainLeases = false;
        string? kubeconfig = null;
        var fakeNodes = false;
        var escrow = "sqlite";
        var positional = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                positional.Add(arg);
                continue;
            }

            string Value() => i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal)
                ? args[++i]
                : throw new ArgumentException($"{arg} needs a value; {Usage}");

            switch (arg)
            {
                case "--rate":
                    var text = Value();
                    rate = double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var r) && r > 0 && double.IsFinite(r)
                        ? r
                        : throw new ArgumentException($"--rate must be a positive number of leases per second (e.g. 20 or 7.5), not '{text}'");
                    break;
                case "--duration":
                    duration = PhaseOneBenchmark.Positive(Value(), "--duration (seconds)");
                    break;
                case "--raw-writes":
                    rawWrites = PhaseOneBenchmark.Positive(Value(), "--raw-writes");
                    break;
                case "--kubeconfig":
                    var file = Value();
                    kubeconfig = File.Exists(file)
                        ? Path.GetFullPath(file)
                        : throw new ArgumentException($"--kubeconfig: no file '{file}'; give the path of a kubeconfig for the cluster to measure");
                    break;
                case "--write-latency":
                    writeLatency = PhaseOneBenchmark.Positive(Value(), "--write-latency (milliseconds each write of the in-repo API server waits, e.g. 10)");
                    break;
                case "--plain-leases":
                    plainLeases = true;
                    break;
                case "--fake-nodes":
                    fakeNodes = true;
                    break;
                case "--escrow":
                    escrow = Value() switch
                    {
                        "sqlite" => "sqlite",
                        "memory" => "memory",
                        var other => throw new ArgumentException($"--escrow must be 'sqlite' (π over HTTP on SQLite) or 'memory' (the in-memory π), not '{other}'"),
                    };
                    break;
                default:
                    throw new ArgumentException($"unknown flag '{arg}'; {Usage}");
            }
        }

        if (rate is not null && duration is null)
        {
            throw new ArgumentException("--rate needs --duration <seconds> (how long leases keep arriving)");
        }

        if (fakeNodes && kubeconfig is null)
        {
            throw new ArgumentException("--fake-nodes is for --kubeconfig <file>; against the in-repo API server the benchmark always makes its nodes");
        }

        if (writeLatency is not null && kubeconfig is not null)
        {
            throw new ArgumentException("--write-latency delays the in-repo API server's writes; a cluster's API server has its own latency, so leave --write-latency out with --kubeconfig");
        }

        return (new PhaseOneFlags(rate, duration, kubeconfig, fakeNodes, escrow, rawWrites, writeLatency, plainLeases), [.. positional]);
    }
}
