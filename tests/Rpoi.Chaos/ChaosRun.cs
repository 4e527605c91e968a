using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using k8s;
using k8s.Models;
using Rpoi.Escrow.Client;
using Rpoi.Kube.ApiServer;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Chaos;

/// <summary>The figures of one run; <see cref="Problems"/> is empty when every end check held.</summary>
public sealed record ChaosReport(
    ChaosOptions Options,
    int Leases,
    int Settled,
    int Failed,
    int Stuck,
    int OperatorKills,
    int LeaderKills,
    int LeaderTransitions,
    int EscrowRestarts,
    int FaultsArmed,
    int FaultsFired,
    IReadOnlyDictionary<int, int> FaultsByCode,
    int WatchesCut,
    int DoubleSettlements,
    int LostSettlements,
    int NodeClaims,
    IReadOnlyDictionary<string, int> Outcomes,
    TimeSpan Duration,
    IReadOnlyList<string> Problems)
{
    public string Summary() => string.Join(
        '\n',
        [
            $"chaos run seed {Options.Seed}, π on {Options.Store}, {Leases} leases, {Options.Nodes} nodes, leader lease {Options.LeaderLeaseSeconds} s, {Duration.TotalSeconds:0} s",
            $"  leases: {Settled} settled, {Failed} failed, {Stuck} stuck; outcomes: {string.Join(", ", Outcomes.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => $"{o.Key} {o.Value}"))}",
            $"  kills: {OperatorKills} operator SIGKILLs ({LeaderKills} of the leader; {LeaderTransitions} leader changes), {EscrowRestarts} π SIGKILL+restart",
            $"  faults: {FaultsArmed} API errors armed, {FaultsFired} answered ({string.Join(", ", FaultsByCode.OrderBy(f => f.Key).Select(f => $"{f.Key}: {f.Value}"))}), {WatchesCut} watches cut",
            $"  node claims: {NodeClaims}; node problems (a claim not released exactly once, marks left): {Problems.Count(p => p.StartsWith("node", StringComparison.Ordinal))}",
            $"  double settlements: {DoubleSettlements}, lost settlements: {LostSettlements}",
            Problems.Count == 0 ? "  all end checks passed" : $"  {Problems.Count} problem(s):\n    " + string.Join("\n    ", Problems.Take(50)),
        ]);
}

/// <summary>
/// The chaos lifecycle run: the API test server (in this process, so its fault injector is at hand), π and two
/// operator replicas as real child processes, a renter simulator, and a chaos driver that SIGKILLs operator replicas
/// and π at seeded moments and injects API errors and watch cuts. Then the end checks.
/// </summary>
public static class ChaosRun
{
    /// <summary>The renter's namespace.</summary>
    public const string Ns = "team-chaos";
    private const string OperatorNs = "rpoi-system";
    private const string AdminToken = "chaos-admin";
    private static readonly int[] FaultCodes = [409, 429, 500];
    private static readonly string?[] FaultVerbs = [null, "get", "list", "watch", "create", "update", "patch", "delete"];
    private static readonly string?[] FaultResources = [null, "leases", "leases/status", "ratings", "ratings/status", "nodes", "secrets", "serviceaccounts", "rolebindings", "events"];

    public static async Task<ChaosReport> RunAsync(ChaosOptions options, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var log = options.Log;
        var clock = Stopwatch.StartNew();
        var random = new Random(options.Seed);
        var plans = LeasePlan.Draw(random, options.Leases).Append(LeasePlan.Blocker).ToList();
        // A kubeconfig's cluster is checked before anything is made, here or there.
        var external = options.Kubeconfig is { } kubeconfigFile ? await ChaosCluster.ConnectAsync(kubeconfigFile, options.Seed, ct).ConfigureAwait(false) : null;
        var dir = Directory.CreateTempSubdirectory($"rpoi-chaos-{options.Seed}-").FullName;
        await using var cluster = external ?? await ChaosCluster.StartInProcessAsync(dir, options.Seed, Ns, OperatorNs, ct).ConfigureAwait(false);
        var apiFaults = options.ApiFaults && cluster.Faults is not null;
        log.WriteLine(cluster.IsExternal
            ? $"[chaos] real-cluster mode: {cluster.ServerUrl} from kubeconfig {cluster.KubeconfigPath}; run {cluster.RunId} in namespaces {cluster.RenterNamespace} and {cluster.OperatorNamespace}, nodes labelled {cluster.NodeSelector}. No server-side fault injection and no watch cuts (the cluster's own API server answers); operator SIGKILLs and π restarts as usual"
            : $"[chaos] in-process API test server {cluster.ServerUrl}; API faults {(apiFaults ? "on" : "off")}");
        try
        {
            return await RunOnAsync(options, cluster, apiFaults, dir, plans, random, clock, ct).ConfigureAwait(false);
        }
        finally
        {
            var left = await cluster.CleanupAsync(CancellationToken.None).ConfigureAwait(false);
            if (cluster.IsExternal)
            {
                log.WriteLine(left.Count == 0
                    ? $"[chaos] cleaned up run {cluster.RunId}: its nodes and namespaces are deleted"
                    : $"[chaos] cleanup of run {cluster.RunId} left: {string.Join("; ", left)}");
            }

            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static async Task<ChaosReport> RunOnAsync(ChaosOptions options, ChaosCluster cluster, bool apiFaults, string dir, List<LeasePlan> plans, Random random, Stopwatch clock, CancellationToken ct)
    {
        var log = options.Log;
        var problems = new List<string>();
        var ns = cluster.RenterNamespace;
        var operatorNs = cluster.OperatorNamespace;
        var renterKeys = PartyKeyPair.Generate(PartyRole.Renter);
        var leaserKeys = PartyKeyPair.Generate(PartyRole.Leaser);
        var escrowKeys = PartyKeyPair.Generate(PartyRole.Escrow);
        var leaserKeyFile = Path.Combine(dir, "leaser.key.json");
        var escrowKeyFile = Path.Combine(dir, "escrow.key.json");
        var leaserIdentityFile = Path.Combine(dir, "leaser.identity.json");
        KeyFile.Save(leaserKeyFile, leaserKeys, DateTimeOffset.UtcNow);
        KeyFile.Save(escrowKeyFile, escrowKeys, DateTimeOffset.UtcNow);
        await File.WriteAllTextAsync(leaserIdentityFile, leaserKeys.Identity.ToJson(), ct).ConfigureAwait(false);

        var client = cluster.Client;
        await cluster.PrepareAsync(ct).ConfigureAwait(false);
        await cluster.CreateNodesAsync([new Sandbox.SimulatedNodePool("chaos-v5e-2x2", Renter.ServedAccelerator, "2x2", 4, options.Nodes),
            new Sandbox.SimulatedNodePool("chaos-v6e-2x2", Renter.QueuedAccelerator, "2x2", 4, 1)], log, ct).ConfigureAwait(false);
        var kubeconfig = cluster.KubeconfigPath;
        // π's own schema of the PostgreSQL, dropped at the end unless the run failed or --keep asks to keep it.
        var schema = options.Store == ChaosStore.Postgres ? $"chaos_{options.Seed}_{Guid.NewGuid():N}" : null;
        var escrowPort = FreePort();
        var escrowUrl = new Uri($"http://127.0.0.1:{escrowPort}/");
        var escrowEnv = new Dictionary<string, string>
        {
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{escrowPort}",
            ["Escrow__KeyFile"] = escrowKeyFile,
            ["Escrow__GenerateKeyFile"] = "false",
            ["Escrow__AdminToken"] = AdminToken,
            ["Escrow__LeaserIdentityFiles__0"] = leaserIdentityFile,
            [options.Store == ChaosStore.Sqlite ? "Escrow__Database" : "Escrow__ConnectionString"] = options.Store == ChaosStore.Sqlite
                ? Path.Combine(dir, "escrow.db")
                : PostgresConnection(schema!),
        };
        var escrowDll = Outputs.Dll("Rpoi.Escrow");
        var operatorDll = Outputs.Dll("Rpoi.Operator");

        using var http = new HttpClient();
        var admin = new EscrowClient(http, new EscrowClientOptions { BaseAddress = escrowUrl, Credentials = EscrowCredentials.Admin(AdminToken) });
        var anyone = new EscrowClient(http, new EscrowClientOptions { BaseAddress = escrowUrl, Credentials = EscrowCredentials.None });
        // The children die with the run, also when it throws: an operator left running would keep writing to the cluster
        // while it is cleaned up.
        ChildProcess? escrow = null;
        ChildProcess[] replicas = [];
        var passed = false;
        try
        {
            escrow = await StartEscrowAsync(escrowDll, escrowEnv, dir, log, anyone, ct).ConfigureAwait(false);
            var funds = plans.Sum(p => p.Deposit + p.Rent) + 1_000_000;
            await admin.DepositAsync(new DepositRequest("chaos-fund", renterKeys.Identity.Address, new EscrowAmount(funds.ToString(CultureInfo.InvariantCulture), "uusd")), ct).ConfigureAwait(false);

            string[] OperatorArgs() =>
            [
                "run", "--leaser-key-file", leaserKeyFile, "--escrow-url", escrowUrl.ToString(), "--escrow-address", escrowKeys.Identity.Address,
                "--cluster-server", cluster.ServerUrl, "--kubeconfig", kubeconfig, "--namespace", operatorNs, "--metrics-port", "-1", "--workers", "4",
                "--rating-window", "5s", "--leader-election-lease-duration", $"{options.LeaderLeaseSeconds}s",
            ];
            var noEnv = new Dictionary<string, string>();
            replicas = new[] { "operator-a", "operator-b" }.Select(n => ChildProcess.Start(n, operatorDll, OperatorArgs(), noEnv, dir, log)).ToArray();

            await WaitForLeaderAsync(client, operatorNs, replicas, ct).ConfigureAwait(false);
            var claims = new NodeClaims(client, cluster.NodeSelector);
            using var stopWatchers = new CancellationTokenSource();
            var claimWatch = Task.Run(() => claims.RunAsync(stopWatchers.Token), CancellationToken.None);

            var renter = new Renter(client, renterKeys, leaserKeys.Identity.Address, escrowKeys.Identity.Address, ns, options.StepTimeout);
            var outcomes = plans.Select(p => new LeaseOutcome(p, renter.Sign(p))).ToArray();

            // The chaos schedule, drawn from the seed: at which lease count each kill and π restart happens.
            var killAt = Thresholds(random, options.Kills, options.Leases);
            var escrowAt = Thresholds(random, Math.Max(1, options.EscrowRestarts), options.Leases);
            var chaosRandom = new Random(random.Next());
            var started = 0;
            int kills = 0, leaderKills = 0, escrowRestarts = 0, faultsArmed = 0, watchesCut = 0;
            var chaosGate = new SemaphoreSlim(1, 1);

            async Task ChaosAtAsync(int leaseIndex)
            {
                await chaosGate.WaitAsync(ct).ConfigureAwait(false);
                try
                {
                    while (kills < killAt.Count && killAt[kills] <= leaseIndex)
                    {
                        // The first kill always hits the leader, so a take-over by the other replica is certain.
                        var holder = await LeaderHolderAsync(client, operatorNs, ct).ConfigureAwait(false);
                        var leader = Array.FindIndex(replicas, r => r.LeaderIdentity is not null && r.LeaderIdentity == holder && !r.HasExited);
                        var victim = leader >= 0 && (kills == 0 || chaosRandom.Next(2) == 0) ? leader : chaosRandom.Next(replicas.Length);
                        if (victim == leader)
                        {
                            leaderKills++;
                        }

                        await replicas[victim].KillAsync().ConfigureAwait(false);
                        await replicas[victim].DisposeAsync().ConfigureAwait(false);
                        replicas[victim] = ChildProcess.Start(replicas[victim].Name, operatorDll, OperatorArgs(), noEnv, dir, log);
                        kills++;
                        log.WriteLine($"[chaos] SIGKILL {replicas[victim].Name}{(victim == leader ? " (leader)" : string.Empty)} at lease {leaseIndex}, restarted ({kills}/{killAt.Count})");
                    }

                    while (escrowRestarts < escrowAt.Count && escrowAt[escrowRestarts] <= leaseIndex)
                    {
                        await escrow.KillAsync().ConfigureAwait(false);
                        await escrow.DisposeAsync().ConfigureAwait(false);
                        escrow = await StartEscrowAsync(escrowDll, escrowEnv, dir, log, anyone, ct).ConfigureAwait(false);
                        escrowRestarts++;
                        log.WriteLine($"[chaos] SIGKILL π at lease {leaseIndex}, restarted on the same {options.Store} ledger");
                    }

                    if (apiFaults && cluster.Faults is { } faults)
                    {
                        var n = chaosRandom.Next(1, 4);
                        faults.FailNext(n, FaultCodes[chaosRandom.Next(FaultCodes.Length)], FaultVerbs[chaosRandom.Next(FaultVerbs.Length)], FaultResources[chaosRandom.Next(FaultResources.Length)]);
                        faultsArmed += n;
                        if (chaosRandom.Next(5) == 0)
                        {
                            watchesCut += faults.CutWatches();
                        }
                    }
                }
                finally
                {
                    chaosGate.Release();
                }
            }

            // The blocker takes the queued shape's one node first and gives it back after every other lease has ended.
            var blocker = outcomes.Single(o => o.Plan == LeasePlan.Blocker);
            var othersDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var blockerRun = Task.Run(() => renter.RunAsync(blocker, ct, othersDone.Task), CancellationToken.None);
            await Api.RetryAsync(
                async () =>
                {
                    while ((await Api.GetLeaseAsync(client, ns, blocker.Plan.Name, ct).ConfigureAwait(false))?.Status?.ActiveSince is null && !blockerRun.IsCompleted)
                    {
                        await Task.Delay(100, ct).ConfigureAwait(false);
                    }

                    return true;
                },
                ct).ConfigureAwait(false);
            using (var slots = new SemaphoreSlim(options.Concurrency))
            {
                var tasks = new List<Task>(outcomes.Length);
                foreach (var outcome in outcomes.Where(o => o != blocker))
                {
                    await slots.WaitAsync(ct).ConfigureAwait(false);
                    var index = Interlocked.Increment(ref started);
                    await ChaosAtAsync(index).ConfigureAwait(false);
                    if (index % 50 == 0)
                    {
                        log.WriteLine($"[renter] {index}/{outcomes.Length} leases started, {clock.Elapsed.TotalSeconds:0} s");
                    }

                    tasks.Add(Task.Run(
                        async () =>
                        {
                            try
                            {
                                await renter.RunAsync(outcome, ct).ConfigureAwait(false);
                            }
                            finally
                            {
                                slots.Release();
                            }
                        },
                        CancellationToken.None));
                }

                await Task.WhenAll(tasks).ConfigureAwait(false);
            }

            othersDone.SetResult();
            await blockerRun.ConfigureAwait(false);

            // The end checks run against a quiet system: no more faults, both replicas and π up.
            cluster.Faults?.Clear();
            var injected = cluster.Faults?.Injected ?? new Dictionary<int, int>();
            await stopWatchers.CancelAsync().ConfigureAwait(false);
            await claimWatch.ConfigureAwait(false);
            var leaderTransitions = await LeaderTransitionsAsync(client, operatorNs, ct).ConfigureAwait(false);
            if (options.Sabotage is { } sabotage)
            {
                await sabotage(client, admin, renterKeys.Identity.Address).ConfigureAwait(false);
            }

            var report = await CheckAsync(options, cluster, outcomes, client, anyone, claims, renterKeys, leaserKeys, escrowKeys, funds, problems, ct).ConfigureAwait(false);
            passed = report.Problems.Count == 0;
            return report with
            {
                OperatorKills = kills,
                LeaderKills = leaderKills,
                LeaderTransitions = leaderTransitions,
                EscrowRestarts = escrowRestarts,
                FaultsArmed = faultsArmed,
                FaultsFired = injected.Values.Sum(),
                FaultsByCode = injected,
                WatchesCut = watchesCut,
                Duration = clock.Elapsed,
            };
        }
        finally
        {
            foreach (var r in replicas)
            {
                await r.DisposeAsync().ConfigureAwait(false);
            }

            if (escrow is not null)
            {
                await escrow.DisposeAsync().ConfigureAwait(false);
            }

            if (schema is not null)
            {
                await DropOrKeepSchemaAsync(schema, keep: options.Keep || !passed, log).ConfigureAwait(false);
            }
        }
    }

    private static async Task<ChaosReport> CheckAsync(
        ChaosOptions options, ChaosCluster cluster, LeaseOutcome[] outcomes, Kubernetes client, EscrowClient pi, NodeClaims claims, PartyKeyPair renter, PartyKeyPair leaser, PartyKeyPair escrow,
        long funds, List<string> problems, CancellationToken ct)
    {
        var byOutcome = new Dictionary<string, int>();
        int settled = 0, failed = 0, stuck = 0, doubles = 0, lost = 0;
        long renterExpected = funds, leaserExpected = 0;
        var withheldExpected = new Dictionary<string, long>();

        // Money moved per H, read from π's ledger: what left held:<H> (the settlement or refund) and where it went.
        var outOfHeld = new Dictionary<string, long>();
        var settleEntries = new Dictionary<string, int>();
        long after = 0;
        while (true)
        {
            var page = await pi.GetLedgerAsync(after, 1000, ct).ConfigureAwait(false);
            foreach (var e in page.Entries.Where(e => e.H is not null && e.Debit == "held:" + e.H))
            {
                outOfHeld[e.H!] = outOfHeld.GetValueOrDefault(e.H!) + long.Parse(e.Amount.Amount, CultureInfo.InvariantCulture);
                settleEntries[e.H!] = settleEntries.GetValueOrDefault(e.H!) + 1;
            }

            if (page.Next is not { } next)
            {
                break;
            }

            after = next;
        }

        foreach (var o in outcomes)
        {
            var name = o.Plan.Name;
            var lease = await Api.GetLeaseAsync(client, cluster.RenterNamespace, name, ct).ConfigureAwait(false) ?? o.Final;
            o.Final = lease;
            var phase = lease?.Status?.Phase;
            if (phase == LeasePhase.Settled)
            {
                settled++;
            }
            else if (phase == LeasePhase.Failed)
            {
                failed++;
                problems.Add($"{name}: Failed ({string.Join("; ", lease!.Status!.Conditions?.Where(c => c.Status == "False").Select(c => $"{c.Type} {c.Reason}: {c.Message}") ?? [])})");
            }
            else
            {
                stuck++;
                problems.Add($"{name}: stuck in {phase?.ToString() ?? "no phase"}: {o.Stuck ?? "did not reach a terminal phase"}");
            }

            var h = o.H.Hex;
            var pledge = await pi.GetPledgeAsync(h, ct).ConfigureAwait(false);
            var total = o.Plan.Deposit + o.Plan.Rent;
            if (pledge is null)
            {
                if (phase == LeasePhase.Settled)
                {
                    problems.Add($"{name}: Settled but π holds no pledge under {h}");
                }

                continue;
            }

            renterExpected -= total;
            var moved = outOfHeld.GetValueOrDefault(h);
            if (moved > total || settleEntries.GetValueOrDefault(h) > 2)
            {
                doubles++;
                problems.Add($"{name}: π moved {moved} out of held:{h} in {settleEntries.GetValueOrDefault(h)} entries; the pledge was {total}");
            }
            else if (pledge.State != "Settled" || moved < total)
            {
                lost++;
                problems.Add($"{name}: pledge {pledge.State}, {moved} of {total} released at π (lease phase {phase})");
            }

            // What the decision table gives this lease, from the ratings the operator accepted (never-served: all back to R).
            string row;
            IReadOnlyList<Transfer> transfers;
            if (!o.Served)
            {
                row = "never_served";
                transfers = [new Transfer("refund", new Money(total.ToString(CultureInfo.InvariantCulture), "uusd"), escrow.Identity.Address, renter.Identity.Address, TransferStatus.Transferred)];
            }
            else
            {
                var decision = RpoiEquations.Decide(o.RenterRatingAccepted == true, o.LeaserRatingAccepted == true);
                row = (decision.RenterRated, decision.LeaserRated) switch
                {
                    (true, true) => "both_rated",
                    (false, true) => "renter_missing",
                    (true, false) => "leaser_missing",
                    _ => "none_rated",
                };
                transfers = RpoiEquations.TransfersFor(o.Request.Payload, decision, escrow.Identity.Address);
                var recorded = lease?.Status?.Settlement;
                if (phase == LeasePhase.Settled && (recorded?.RenterRated != decision.RenterRated || recorded?.LeaserRated != decision.LeaserRated))
                {
                    problems.Add($"{name}: settled as renterRated={recorded?.RenterRated} leaserRated={recorded?.LeaserRated}, but the accepted ratings give {row}");
                }
            }

            byOutcome[row] = byOutcome.GetValueOrDefault(row) + 1;
            foreach (var t in transfers)
            {
                var amount = long.Parse(t.Amount.Amount, CultureInfo.InvariantCulture);
                if (t.Status == TransferStatus.Withheld)
                {
                    withheldExpected[h] = withheldExpected.GetValueOrDefault(h) + amount;
                }
                else if (t.To == renter.Identity.Address)
                {
                    renterExpected += amount;
                }
                else if (t.To == leaser.Identity.Address)
                {
                    leaserExpected += amount;
                }
            }
        }

        var renterBalance = await BalanceAsync(pi, renter.Identity.Address, ct).ConfigureAwait(false);
        var leaserBalance = await BalanceAsync(pi, leaser.Identity.Address, ct).ConfigureAwait(false);
        if (renterBalance != renterExpected)
        {
            problems.Add($"balance: renter has {renterBalance} uusd at π, the decision table gives {renterExpected}");
        }

        if (leaserBalance != leaserExpected)
        {
            problems.Add($"balance: leaser has {leaserBalance} uusd at π, the decision table gives {leaserExpected}");
        }

        var withheld = (await pi.GetWithheldAsync(ct).ConfigureAwait(false)).Where(w => w.State == "Withheld")
            .GroupBy(w => w.H).ToDictionary(g => g.Key, g => g.Sum(w => long.Parse(w.Amount.Amount, CultureInfo.InvariantCulture)));
        foreach (var h in withheld.Keys.Union(withheldExpected.Keys))
        {
            if (withheld.GetValueOrDefault(h) != withheldExpected.GetValueOrDefault(h))
            {
                problems.Add($"balance: π withholds {withheld.GetValueOrDefault(h)} under {h}, the decision table gives {withheldExpected.GetValueOrDefault(h)}");
            }
        }

        var audit = await pi.VerifyLedgerAsync(ct).ConfigureAwait(false);
        if (!audit.Ok)
        {
            problems.Add($"ledger: /v1/ledger/verify not ok: {string.Join("; ", audit.Problems)}");
        }

        // Nodes: every claim released exactly once, and nothing of RPOI left on any node.
        var counts = claims.Counts;
        foreach (var ((uid, node), (c, r)) in counts)
        {
            if (c != 1 || r != 1)
            {
                problems.Add($"node {node}: lease uid {uid} claimed {c} time(s), released {r} time(s)");
            }
        }

        if (claims.Gaps > 0)
        {
            problems.Add($"node watch: {claims.Gaps} gap(s) where the watch history no longer reached back; claim counts may be short");
        }

        foreach (var node in (await Api.NodesAsync(client, cluster.NodeSelector, ct).ConfigureAwait(false)).Items)
        {
            var marks = (node.Metadata.Labels?.Keys ?? []).Concat(node.Metadata.Annotations?.Keys ?? []).Where(k => k.StartsWith("rpoi.io/", StringComparison.Ordinal))
                .Concat((node.Spec?.Taints ?? []).Where(t => t.Key == TpuLabels.LeaseTaintKey).Select(t => "taint " + t.Key)).ToList();
            if (marks.Count > 0)
            {
                problems.Add($"node {node.Metadata.Name}: still marked for a lease ({string.Join(", ", marks)})");
            }
        }

        // Access: no Secret, ServiceAccount or RoleBinding left for an ended lease.
        var secrets = await Api.RetryAsync(() => client.CoreV1.ListNamespacedSecretAsync(cluster.RenterNamespace, cancellationToken: ct), ct).ConfigureAwait(false);
        foreach (var s in secrets.Items.Where(s => s.Type == "rpoi.io/access"))
        {
            problems.Add($"secret {s.Metadata.Name}: access Secret left after its lease ended");
        }

        var accounts = await Api.RetryAsync(() => client.CoreV1.ListNamespacedServiceAccountAsync(cluster.RenterNamespace, cancellationToken: ct), ct).ConfigureAwait(false);
        foreach (var a in accounts.Items.Where(a => a.Metadata.Name.StartsWith("rpoi-", StringComparison.Ordinal)))
        {
            problems.Add($"serviceaccount {a.Metadata.Name}: left after its lease ended");
        }

        return new ChaosReport(options, outcomes.Length, settled, failed, stuck, 0, 0, 0, 0, 0, 0, new Dictionary<int, int>(), 0, doubles, lost, counts.Count, byOutcome, TimeSpan.Zero, problems);
    }

    private static async Task<long> BalanceAsync(EscrowClient pi, string address, CancellationToken ct)
    {
        var account = await pi.GetAccountAsync(address, ct).ConfigureAwait(false);
        var uusd = account.Balances.SingleOrDefault(b => b.Denom == "uusd");
        return uusd is null ? 0 : long.Parse(uusd.Amount, CultureInfo.InvariantCulture);
    }

    private static async Task<ChildProcess> StartEscrowAsync(string dll, Dictionary<string, string> env, string dir, TextWriter log, EscrowClient anyone, CancellationToken ct)
    {
        var child = ChildProcess.Start("escrow", dll, [], env, dir, log);
        var deadline = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            try
            {
                await anyone.GetIdentityAsync(ct).ConfigureAwait(false);
                return child;
            }
            catch (Exception e) when ((e is HttpRequestException or EscrowException) && DateTimeOffset.UtcNow < deadline && !child.HasExited)
            {
                await Task.Delay(100, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpRequestException or EscrowException)
            {
                throw new InvalidOperationException($"π did not come up within 60 s ({e.Message}); its last output:\n{child.Tail()}", e);
            }
        }
    }

    private static async Task<string?> LeaderHolderAsync(Kubernetes client, string operatorNs, CancellationToken ct)
    {
        try
        {
            var lease = await Api.RetryAsync(() => client.CoordinationV1.ReadNamespacedLeaseAsync("rpoi-operator-leader", operatorNs, cancellationToken: ct), ct).ConfigureAwait(false);
            return lease.Spec?.HolderIdentity;
        }
        catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Waits until one replica leads, so the first kill can hit the leader.</summary>
    private static async Task WaitForLeaderAsync(Kubernetes client, string operatorNs, ChildProcess[] replicas, CancellationToken ct)
    {
        var deadline = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(90);
        while (true)
        {
            var holder = await LeaderHolderAsync(client, operatorNs, ct).ConfigureAwait(false);
            if (holder is not null && replicas.Any(r => r.LeaderIdentity == holder))
            {
                return;
            }

            if (DateTimeOffset.UtcNow > deadline || replicas.All(r => r.HasExited))
            {
                throw new InvalidOperationException($"no operator replica became leader within 90 s; their last output:\n{string.Join("\n", replicas.Select(r => $"[{r.Name}]\n{r.Tail()}"))}");
            }

            await Task.Delay(200, ct).ConfigureAwait(false);
        }
    }

    private static async Task<int> LeaderTransitionsAsync(Kubernetes client, string operatorNs, CancellationToken ct)
    {
        var lease = await Api.RetryAsync(() => client.CoordinationV1.ReadNamespacedLeaseAsync("rpoi-operator-leader", operatorNs, cancellationToken: ct), ct).ConfigureAwait(false);
        return lease.Spec?.LeaseTransitions ?? 0;
    }

    /// <summary><paramref name="count"/> sorted lease indexes in the middle 90 % of the run.</summary>
    private static List<int> Thresholds(Random random, int count, int leases)
    {
        var list = new List<int>();
        for (var i = 0; i < count; i++)
        {
            list.Add(Math.Max(2, (int)(leases * (0.05 + (0.85 * random.NextDouble())))));
        }

        list.Sort();
        return list;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string PostgresConnection(string schema) =>
        new Npgsql.NpgsqlConnectionStringBuilder(PostgresBase()) { SearchPath = schema }.ToString();

    private static string PostgresBase()
    {
        var baseConnection = Environment.GetEnvironmentVariable("RPOI_TEST_POSTGRES");
        return string.IsNullOrWhiteSpace(baseConnection)
            ? throw new ChaosSetupException("RPOI_TEST_POSTGRES is not set, so π cannot run on PostgreSQL; run 'bash .ci/install-tools && source .ci/env' (it starts PostgreSQL and sets RPOI_TEST_POSTGRES), or use --store sqlite")
            : baseConnection;
    }

    /// <summary>Drops the run's schema (π is stopped by now), or keeps it and says which, to look into a failure.</summary>
    internal static async Task DropOrKeepSchemaAsync(string schema, bool keep, TextWriter log)
    {
        if (keep)
        {
            log.WriteLine($"[chaos] kept π's PostgreSQL schema {schema} (search path of RPOI_TEST_POSTGRES' database)");
            return;
        }

        try
        {
            await using var connection = new Npgsql.NpgsqlConnection(PostgresBase());
            await connection.OpenAsync().ConfigureAwait(false);
            await using var drop = new Npgsql.NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE", connection);
            await drop.ExecuteNonQueryAsync().ConfigureAwait(false);
            log.WriteLine($"[chaos] dropped π's PostgreSQL schema {schema}");
        }
        catch (Npgsql.NpgsqlException e)
        {
            log.WriteLine($"[chaos] could not drop π's PostgreSQL schema {schema}: {e.Message}");
        }
    }
}
