using System.Globalization;

namespace Rpoi.Benchmarks;

/// <summary>
/// CPU time per operation, measured on the calling thread (Linux <c>/proc/thread-self/schedstat</c>). On a shared,
/// overloaded machine wall-clock benchmarks mostly measure the neighbours; the 1.5 ms target is "of one core", which is
/// what thread CPU time measures. Run: <c>dotnet run -c Release --project tests/Rpoi.Benchmarks -- --protocol-cpu-time</c>.
/// </summary>
public static class ProtocolCpuTime
{
    private const int Rounds = 7;

    public static int Run(TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (!File.Exists("/proc/thread-self/schedstat"))
        {
            output.WriteLine("thread CPU time needs Linux /proc/thread-self/schedstat");
            return 1;
        }

        var b = new ProtocolBenchmarks();
        b.Setup();
        (string Name, int N, Action Op)[] ops =
        [
            ("raw BC Ed25519 sign", 400, () => b.RawEd25519Sign()),
            ("STJ serialize m (no JCS)", 2000, () => b.SerializeOnly()),
            ("JCS of m's JSON bytes", 2000, () => b.CanonicalizeOnly()),
            ("Signed.Create (JCS + sign)", 400, () => b.Sign()),
            ("raw BC Ed25519 verify (key reused)", 300, () => b.RawEd25519Verify()),
            ("raw BC Ed25519 verify (key decoded each time)", 300, () => b.RawEd25519VerifyFreshKey()),
            ("Signed.VerifySignature (uncached)", 300, () => b.Verify()),
            ("E(m) JSON → parse → VerifyRequest", 300, () => b.ParseAndVerify()),
            ("raw SHA-256 of canonical E(m)", 5000, () => b.RawSha256()),
            ("H from a Signed object", 5000, () => b.HashFromObject()),
            ("H from E(m) JSON text", 2000, () => b.HashFromJson()),
            ("raw X25519+HKDF+AES-256-GCM seal", 300, () => b.RawSealBenchmark()),
            ("Hpke.Seal (RFC 9180)", 300, () => b.HpkeSeal()),
            ("raw X25519+HKDF+AES-256-GCM open", 300, () => b.RawOpen()),
            ("Hpke.TryOpen", 300, () => b.HpkeOpen()),
            ("SealedMessage.Open (HPKE + parse m')", 300, () => b.SealedOpen()),
            ("full lease lifecycle crypto", 60, () => b.Lifecycle()),
        ];

        var results = new Dictionary<string, double>();
        output.WriteLine("| operation | CPU µs/op (median of 7 rounds) | min | max |");
        output.WriteLine("| --- | ---: | ---: | ---: |");
        foreach (var (name, n, op) in ops)
        {
            // Warm up for at least a second: tiered JIT promotes hot methods to optimised code only after a
            // delay, so a short warm-up would measure tier-0 code.
            var warm = System.Diagnostics.Stopwatch.StartNew();
            while (warm.ElapsedMilliseconds < 1000)
            {
                op();
            }

            var samples = new double[Rounds];
            for (var r = 0; r < Rounds; r++)
            {
                var start = ThreadCpuNanoseconds();
                for (var i = 0; i < n; i++)
                {
                    op();
                }

                samples[r] = (ThreadCpuNanoseconds() - start) / 1000.0 / n;
            }

            Array.Sort(samples);
            results[name] = samples[Rounds / 2];
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {samples[Rounds / 2]:F1} | {samples[0]:F1} | {samples[^1]:F1} |"));
        }

        output.WriteLine();
        output.WriteLine("| wrapper / primitive | ratio |");
        output.WriteLine("| --- | ---: |");
        Ratio(output, results, "Signed.Create (JCS + sign)", "raw BC Ed25519 sign");
        Ratio(output, results, "Signed.VerifySignature (uncached)", "raw BC Ed25519 verify (key reused)");
        Ratio(output, results, "E(m) JSON → parse → VerifyRequest", "raw BC Ed25519 verify (key reused)");
        Ratio(output, results, "H from a Signed object", "raw SHA-256 of canonical E(m)");
        Ratio(output, results, "Hpke.Seal (RFC 9180)", "raw X25519+HKDF+AES-256-GCM seal");
        Ratio(output, results, "Hpke.TryOpen", "raw X25519+HKDF+AES-256-GCM open");
        Ratio(output, results, "SealedMessage.Open (HPKE + parse m')", "raw X25519+HKDF+AES-256-GCM open");
        return 0;
    }

    private static void Ratio(TextWriter output, Dictionary<string, double> r, string wrapper, string primitive) =>
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {wrapper} / {primitive} | {r[wrapper] / r[primitive]:F2} |"));

    /// <summary>Nanoseconds this thread has run on a CPU (first field of schedstat).</summary>
    private static long ThreadCpuNanoseconds()
    {
        var text = File.ReadAllText("/proc/thread-self/schedstat");
        return long.Parse(text.AsSpan(0, text.IndexOf(' ', StringComparison.Ordinal)), CultureInfo.InvariantCulture);
    }
}
