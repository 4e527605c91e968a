using System.Collections.Concurrent;
using System.Globalization;
using k8s;
using k8s.Models;
using Rpoi.Escrow.Client;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Nodes;
using Rpoi.Operator.PhaseTwo;
using Rpoi.Operator.Tests.Support;
using Rpoi.Protocol;
using Rpoi.Protocol.Messages;

namespace Rpoi.Operator.Tests.PhaseTwo;

/// <summary>
/// A node incident during the lease reaches the ratings: β's Ra_β, as sealed into m_final and opened by π's key, lists
/// it; the renter's rating cites it from the Lease's status; the money follows the default decision table (both rated:
/// ρ back to R, ω to β) on the real π, whose ledger audit holds.
/// </summary>
public sealed class LostNodeRatingTests
{
    [Fact]
    public async Task A_node_incident_is_in_the_leasers_signed_rating_and_the_default_row_applies()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        var pi = new CapturingEscrow(env.Escrow);
        await env.StartOperatorAsync(pi, withPhaseOne: true);
        var builder = LeaseBuilder.For(env.Parties.Renter).In(PhaseTwoEnvironment.Namespace, "train").To(env.Parties.Leaser, env.Parties.Escrow)
            .SignedAt(env.Time.GetUtcNow()).Shape(LeaseBuilder.V5e, "2x2").Chips(4).Duration(TimeSpan.FromHours(1))
            .Amounts("2000000", "700000").RatingWindow(TimeSpan.FromHours(3));
        var request = builder.BuildRequest();
        var h = RpoiEquations.TransactionHashOf(request);
        await env.Client.CustomObjects.CreateNamespacedCustomObjectAsync(builder.Build(request), Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural);
        var active = await env.WaitForPhaseAsync("train", LeasePhase.Active);
        var node = Assert.Single(active.Status!.Nodes!);

        // The node is NotReady for five minutes of the lease (the fake clock stands still while the operator reacts).
        var broke = Second(env.Time.GetUtcNow());
        await SetReadyAsync(env, node, false);
        await Eventually.HoldsAsync(async () => Degraded(await env.GetLeaseAsync("train")) == "True", "the lease is Degraded");
        env.Time.Advance(TimeSpan.FromMinutes(5));
        await SetReadyAsync(env, node, true);
        await Eventually.HoldsAsync(async () => Degraded(await env.GetLeaseAsync("train")) == "False", "the lease recovered");

        await env.Client.CustomObjects.PatchNamespacedCustomObjectAsync(new V1Patch("{\"spec\":{\"returnRequested\":true}}", V1Patch.PatchType.MergePatch),
            Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural, "train");
        var returned = await env.WaitForPhaseAsync("train", LeasePhase.AwaitingRatings);
        var incident = Assert.Single(returned.Status!.NodeIncidents!);
        Assert.Equal((node, NodeIncidentReasons.NodeNotReady, 300L), (incident.Node, incident.Reason, incident.DurationSeconds!.Value));

        // R cites the incident from the Lease's status in its own signed rating.
        var cited = $"node {incident.Node} was {incident.Reason} for {incident.DurationSeconds} s";
        var mm = RpoiEquations.SignRenterRating(request, returned.Status.GrantDigest!, new Protocol.Messages.Rating(3, cited, env.Time.GetUtcNow()), env.Parties.Renter);
        await env.ApplyAsync(PhaseTwoEnvironment.RenterRatingResource("train-renter", "train", mm));
        await env.ApplyAsync(PhaseTwoEnvironment.LeaserRatingResource("train-leaser", "train", 4, "returned on time"));
        var settled = await env.WaitForPhaseAsync("train", LeasePhase.Settled);

        // What π received: Ra_β, signed by β inside m_final, carries the incident with its times.
        var final = Assert.Single(pi.Finals.Distinct());
        var opened = RpoiEquations.OpenFinal(final, env.Parties.Escrow, env.Parties.Leaser.Identity);
        Assert.True(opened.IsOk, opened.Message);
        var comment = opened.Value.LeaserRating!.Comment;
        Assert.StartsWith("returned on time\n\n" + LeaserRatingFacts.Header, comment, StringComparison.Ordinal);
        Assert.Contains(
            $"- NodeNotReady node {node} from {Format(broke)} to {Format(broke + TimeSpan.FromMinutes(5))} (300 s, Recovered)", comment, StringComparison.Ordinal);
        Assert.Contains("degraded for 300 s in all", comment, StringComparison.Ordinal);
        Assert.Equal(cited, opened.Value.RenterRating!.Payload.Rating.Comment);

        // Evidence only: the default row (both rated) moved the money.
        Assert.Equal((true, true), (settled.Status!.Settlement!.RenterRated!.Value, settled.Status.Settlement.LeaserRated!.Value));
        Assert.Equal(RpoiEquations.Decide(true, true), RpoiEquations.VerifyReceipt(Signed<SettlementReceipt>.Parse(settled.Status.Settlement.Receipt!).Value, env.Parties.Escrow.Identity, h).Value.Decision);
        Assert.Equal(PhaseTwoEnvironment.RenterFunds - 700_000, await env.BalanceAsync(env.Parties.Renter.Identity.Address));
        Assert.Equal(700_000, await env.BalanceAsync(env.Parties.Leaser.Identity.Address));
        Assert.Equal(0, await env.WithheldAsync(h));
        var totals = Assert.Single((await env.AuditAsync()).Totals, t => t.Denom == "uusd");
        Assert.Equal("0", totals.Held);
    }

    private static string? Degraded(Lease? lease) => lease?.Status?.Conditions?.SingleOrDefault(c => c.Type == NodeIncidentReasons.Degraded)?.Status;

    private static async Task SetReadyAsync(PhaseTwoEnvironment env, string name, bool ready)
    {
        var node = await env.Client.CoreV1.ReadNodeAsync(name);
        var condition = node.Status.Conditions.Single(c => c.Type == "Ready");
        condition.Status = ready ? "True" : "False";
        condition.Reason = ready ? "KubeletReady" : "KubeletNotReady";
        await env.Client.CoreV1.ReplaceNodeStatusAsync(node, name);
    }

    private static DateTimeOffset Second(DateTimeOffset t) => new(t.UtcTicks - (t.UtcTicks % TimeSpan.TicksPerSecond), TimeSpan.Zero);

    private static string Format(DateTimeOffset t) => t.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>β's client of π that keeps every m_final it submits, for the test to open with π's key.</summary>
    private sealed class CapturingEscrow(IEscrowClient inner) : IEscrowClient
    {
        private readonly ConcurrentQueue<SealedMessage> finals = new();

        public IReadOnlyList<SealedMessage> Finals => [.. finals];

        public Task<SettlementView> SettleAsync(SealedMessage final, CancellationToken ct = default)
        {
            finals.Enqueue(final);
            return inner.SettleAsync(final, ct);
        }

        public Task<EscrowIdentity> GetIdentityAsync(CancellationToken ct = default) => inner.GetIdentityAsync(ct);

        public Task<DepositReceipt> DepositAsync(DepositRequest request, CancellationToken ct = default) => inner.DepositAsync(request, ct);

        public Task<AccountView> GetAccountAsync(string address, CancellationToken ct = default) => inner.GetAccountAsync(address, ct);

        public Task<PledgeView> PledgeAsync(Signed<LeaseRequest> signedRequest, CancellationToken ct = default) => inner.PledgeAsync(signedRequest, ct);

        public Task<PledgeView?> GetPledgeAsync(string h, CancellationToken ct = default) => inner.GetPledgeAsync(h, ct);

        public Task<SettlementView?> GetSettlementAsync(string h, CancellationToken ct = default) => inner.GetSettlementAsync(h, ct);

        public Task<SettlementView> ClaimAsync(Signed<RenterRating> renterRating, CancellationToken ct = default) => inner.ClaimAsync(renterRating, ct);

        public Task<SettlementView> NeverServedAsync(Signed<NeverServedNotice> notice, CancellationToken ct = default) => inner.NeverServedAsync(notice, ct);

        public Task<IReadOnlyList<WithheldView>> GetWithheldAsync(CancellationToken ct = default) => inner.GetWithheldAsync(ct);

        public Task<WithheldView> ReleaseWithheldAsync(ReleaseRequest request, CancellationToken ct = default) => inner.ReleaseWithheldAsync(request, ct);

        public Task<LedgerPage> GetLedgerAsync(long after = 0, int limit = 100, CancellationToken ct = default) => inner.GetLedgerAsync(after, limit, ct);

        public Task<LedgerAudit> VerifyLedgerAsync(CancellationToken ct = default) => inner.VerifyLedgerAsync(ct);
    }
}
