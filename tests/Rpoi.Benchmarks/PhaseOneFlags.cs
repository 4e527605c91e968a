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
internal sealed record PhaseOneFlags(double? Rate, int? Duration, string? Kubeconfig, bool FakeNodes, string Escrow, int? RawWrites)
{
    public const string Usage = "flags: --escrow sqlite|memory, --rate <leases/s> --duration <seconds> (steady arrivals after the burst rounds; "
        + "without --rate, half the capacity the burst measured), --kubeconfig <file> [--fake-nodes], --raw-writes <n>";

    /// <summary>Splits <paramref name="args"/> into the flags and the positional arguments (in their order).</summary>
    public static (PhaseOneFlags Flags, string[] Positional) Parse(string[] args)
    {
        double? rate = null;
        int? duration = null, rawWrites = null;
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

        return (new PhaseOneFlags(rate, duration, kubeconfig, fakeNodes, escrow, rawWrites), [.. positional]);
    }
}
