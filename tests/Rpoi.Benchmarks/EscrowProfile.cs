using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Rpoi.Escrow;
using Rpoi.Escrow.Api;
using Rpoi.Escrow.Client;
using Rpoi.Escrow.Storage;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Benchmarks;

/// <summary>
/// Where π's CPU goes per settlement (issue 14 item 4), in process and without HTTP: each stage of POST /v1/settlements
/// run over every prepared settlement in turn, priced in CPU µs per settlement. The strict body check, the DTO read, the
/// call signature, parsing m_final, OpenFinal, the whole EscrowService.SettleAsync (which includes the parse and
/// OpenFinal again, the receipt signature, the store and the answer's view) and the store alone, one at a time and 16 at
/// a time (group commit). What the HTTP benchmark's "π CPU ms/settlement" adds beyond the service is Kestrel, routing
/// and the response. Run: <c>dotnet run -c Release --project tests/Rpoi.Benchmarks -- escrow-profile [settlements]</c>.
/// </summary>
public static class EscrowProfile
{
    public static async Task<int> RunAsync(string[] args)
    {
        var count = args.Length > 0 ? PhaseOneBenchmark.Positive(args[0], "settlements (1st argument)") : 3000;
        var dir = Directory.CreateTempSubdirectory("rpoi-escrow-profile-");
        try
        {
            return await ProfileAsync(count, Path.Combine(dir.FullName, "escrow.db"));
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            dir.Delete(recursive: true);
        }
    }

    private static async Task<int> ProfileAsync(int count, string database)
    {
        var escrowKeys = PartyKeyPair.Generate(PartyRole.Escrow);
        var leaser = PartyKeyPair.Generate(PartyRole.Leaser);
        var renters = Enumerable.Range(0, 32).Select(_ => PartyKeyPair.Generate(PartyRole.Renter)).ToArray();
        await using var store = new SqliteEscrowStore(database);
        await store.InitializeAsync();
        var options = new EscrowOptions { Database = database };
        var service = new EscrowService(store, escrowKeys, options, TimeProvider.System);
        service.TrustLeasers([leaser.Identity]);
        var auth = new CallAuthenticator(null, [leaser.Identity], TimeProvider.System, options.MaxClockSkew);
        foreach (var renter in renters)
        {
            await service.DepositAsync(new DepositRequest("p-" + renter.Identity.KeyId, renter.Identity.Address, new EscrowAmount("1000000000", "uusd")), CancellationToken.None);
        }

        // Three sets of settlements: a warm-up, the service path, and the store alone (a settled H cannot be settled again).
        var total = 3 * count;
        var leases = Enumerable.Range(0, total).Select(i => EscrowBenchmarkParts.NewLease(renters[i % renters.Length], leaser.Identity.Address, escrowKeys.Identity.Address)).ToArray();
        foreach (var batch in leases.Chunk(16))
        {
            await Task.WhenAll(batch.Select(l => service.PledgeAsync(Problems.ReadJson<PledgeRequest>(Encoding.UTF8.GetBytes("{\"signedRequest\":" + l.ToJson() + "}"), JsonShape.Bodies.Pledge, "pledge", EscrowEndpoints.Json), leaser.Identity, CancellationToken.None)));
        }

        var bodies = leases.Select((l, i) => Encoding.UTF8.GetBytes("{\"final\":" + EscrowBenchmarkParts.Final(l, renters[i % renters.Length], leaser, escrowKeys.Identity).ToJson() + "}")).ToArray();
        var headers = bodies.Select(b => EscrowBenchmarkParts.SignCall("/v1/settlements", b, leaser)).ToArray();
        Console.WriteLine($"escrow-profile: {count} settlements a stage, {Environment.ProcessorCount} cores, load average {LoadAverage()}");

        // Warm-up: the whole service path on the first set, so every stage below runs tier-1 code.
        for (var i = 0; i < count; i++)
        {
            await service.SettleAsync(JsonSerializer.Deserialize<SettlementRequest>(bodies[i], EscrowEndpoints.Json)!, leaser.Identity, CancellationToken.None);
        }

        var set = Enumerable.Range(count, count).ToArray();
        var rows = new List<(string Stage, double Us)>();
        var requests = new SettlementRequest[total];
        var finals = new SealedMessage[total];
        rows.Add(("StrictJson.Check (shape, names, duplicates)", ThreadCpuPer(set, i => StrictJson.Check(bodies[i], JsonShape.Bodies.Settlement, "settlement"))));
        rows.Add(("JsonSerializer.Deserialize<SettlementRequest>", ThreadCpuPer(set, i => requests[i] = JsonSerializer.Deserialize<SettlementRequest>(bodies[i], EscrowEndpoints.Json)!)));
        rows.Add(("call signature (parse header, verify, SHA-256 of body)", ThreadCpuPer(set, i =>
        {
            var http = new DefaultHttpContext();
            http.Request.Method = "POST";
            http.Request.Path = "/v1/settlements";
            http.Request.Headers.Authorization = headers[i];
            auth.RequireLeaserOrAdmin(http.Request, bodies[i]);
        })));
        rows.Add(("final.GetRawText + SealedMessage.Parse", ThreadCpuPer(set, i => finals[i] = SealedMessage.Parse(requests[i].Final.GetRawText()).Value)));
        rows.Add(("RpoiEquations.OpenFinal (HPKE open, 3 verifies, parsing)", ThreadCpuPer(set, i => GC.KeepAlive(RpoiEquations.OpenFinal(finals[i], escrowKeys, leaser.Identity).Value))));
        var opened = RpoiEquations.OpenFinal(finals[count], escrowKeys, leaser.Identity).Value;
        SettlementReceipt Receipt(long seq) => new(
            MessageKinds.Receipt, opened.H.Hex, escrowKeys.Identity.Address, opened.Source, opened.Decision,
            RpoiEquations.TransfersFor(opened.Request.Payload, opened.Decision, escrowKeys.Identity.Address), DateTimeOffset.UtcNow, "ledger:" + seq.ToString(CultureInfo.InvariantCulture));
        var receipt = RpoiEquations.SignReceipt(Receipt(1), escrowKeys).ToJson();
        rows.Add(("receipt: SignReceipt + ToJson", ThreadCpuPer(set, i => RpoiEquations.SignReceipt(Receipt(i), escrowKeys).ToJson())));
        var final = opened.Final!.ToJson();
        var views = new (JsonElement, JsonElement)[total];
        rows.Add(("answer view: parse receipt + m''' into JsonElements", ThreadCpuPer(set, i =>
        {
            using var r = JsonDocument.Parse(receipt);
            using var f = JsonDocument.Parse(final);
            views[i] = (r.RootElement.Clone(), f.RootElement.Clone());
        })));

        // The whole service call, one at a time: process CPU (the store's writer runs on its own thread).
        var serviceUs = await ProcessCpuPerAsync(set, 1, i => service.SettleAsync(requests[i], leaser.Identity, CancellationToken.None));
        rows.Add(("EscrowService.SettleAsync, one at a time (all of the above but the body check, DTO and call signature, + store)", serviceUs));

        // The store alone, with a ready receipt: one at a time (a group of one each) and 16 at a time (groups form).
        var storeSet = Enumerable.Range(2 * count, count).ToArray();
        var half = storeSet.Length / 2;
        SettleCommand Command(int i) => new(RpoiEquations.TransactionHashOf(leases[i]).Hex, DepositDisposition.ToRenter, RentDisposition.ToLeaser, _ => receipt, DateTimeOffset.UtcNow, final);
        var commands = storeSet.ToDictionary(i => i, Command);
        rows.Add(("store.SettleAsync alone, one at a time (a commit each)", await ProcessCpuPerAsync(storeSet[..half], 1, i => store.SettleAsync(commands[i]))));
        rows.Add(("store.SettleAsync alone, 16 at a time (group commit)", await ProcessCpuPerAsync(storeSet[half..], 16, i => store.SettleAsync(commands[i]))));

        Console.WriteLine("| stage (π, per settlement) | CPU µs |");
        Console.WriteLine("| --- | ---: |");
        foreach (var (stage, us) in rows)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {stage} | {us:F1} |"));
        }

        var audit = await store.AuditAsync();
        Console.WriteLine($"ledger audit: {(audit.Ok ? "ok" : "FAILED " + string.Join("; ", audit.Problems))}; load average at the end {LoadAverage()}");
        return audit.Ok ? 0 : 1;
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?";

    /// <summary>Thread CPU µs per item of <paramref name="items"/>, the stage run over all of them in turn.</summary>
    private static double ThreadCpuPer(int[] items, Action<int> stage)
    {
        var start = ThreadCpuNanoseconds();
        foreach (var i in items)
        {
            stage(i);
        }

        return (ThreadCpuNanoseconds() - start) / 1000.0 / items.Length;
    }

    /// <summary>Process CPU µs (every thread) per item, <paramref name="parallel"/> calls in flight.</summary>
    private static async Task<double> ProcessCpuPerAsync(int[] items, int parallel, Func<int, Task> call)
    {
        using var self = Process.GetCurrentProcess();
        self.Refresh();
        var start = self.TotalProcessorTime;
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, parallel).Select(async _ =>
        {
            int k;
            while ((k = Interlocked.Increment(ref next)) < items.Length)
            {
                await call(items[k]);
            }
        }));
        self.Refresh();
        return (self.TotalProcessorTime - start).TotalMicroseconds / items.Length;
    }

    private static long ThreadCpuNanoseconds()
    {
        var text = File.ReadAllText("/proc/thread-self/schedstat");
        return long.Parse(text.AsSpan(0, text.IndexOf(' ', StringComparison.Ordinal)), CultureInfo.InvariantCulture);
    }
}

/// <summary>The lease, m_final and signed call the escrow benchmark and profile both build.</summary>
internal static class EscrowBenchmarkParts
{
    public static Signed<LeaseRequest> NewLease(PartyKeyPair renter, string leaser, string escrow) =>
        RpoiEquations.SignRequest(
            new LeaseRequest(
                MessageKinds.Request,
                renter.Identity.ToPublicKeys(),
                leaser,
                escrow,
                "tpu-v5-lite-podslice",
                "2x4",
                8,
                3600,
                DateTimeOffset.UtcNow,
                Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)),
                new Money("100", "uusd"),
                new Money("900", "uusd"),
                new LeaseRef("bench", "lease-" + Guid.NewGuid().ToString("N")[..12])),
            renter);

    /// <summary>m_final with both ratings: the settlement with the most to verify.</summary>
    public static SealedMessage Final(Signed<LeaseRequest> request, PartyKeyPair renter, PartyKeyPair leaser, PartyIdentity escrow)
    {
        var digest = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(request.Payload.Lease.Name)));
        var rating = RpoiEquations.SignRenterRating(request, digest, new Rating(5, "bench", DateTimeOffset.UtcNow), renter);
        return RpoiEquations.SealFinal(request, digest, rating, new Rating(4, "bench", DateTimeOffset.UtcNow), leaser, escrow);
    }

    /// <summary>The Authorization header Rpoi.Escrow.Client sends: β's signature over method, path, time and the body's hash.</summary>
    public static string SignCall(string path, byte[] body, PartyKeyPair signer) =>
        EscrowCall.Authorization(signer, "POST", path, body, DateTimeOffset.UtcNow);
}
