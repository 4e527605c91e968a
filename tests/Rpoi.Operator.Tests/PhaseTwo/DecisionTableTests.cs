using k8s;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseTwo;
using Rpoi.Operator.Tests.Support;
using Rpoi.Protocol;
using Rpoi.Protocol.Messages;

namespace Rpoi.Operator.Tests.PhaseTwo;

/// <summary>
/// Each row of the failure table (PROTOCOL.md), end to end: a returned Lease on the test API server, Ratings, the
/// operator's m_final to the real π on SQLite, and π's ledger afterwards.
/// </summary>
public sealed class DecisionTableTests
{
    [Theory]
    [InlineData(true, true, "both_rated", "BothRated")]
    [InlineData(false, true, "renter_missing", "RenterRatingMissing")]
    [InlineData(true, false, "leaser_missing", "LeaserRatingMissing")]
    [InlineData(false, false, "none_rated", "NoRatings")]
    public async Task Each_row_of_the_decision_table_settles_once_with_the_right_balances(bool renterRates, bool leaserRates, string outcome, string reason)
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        var phaseTwo = await env.StartOperatorAsync();
        var lease = await env.ReturnedLeaseAsync("train", ratingWindow: TimeSpan.FromHours(2), deposit: 1_000_000, rent: 400_000);
        var renter = env.Parties.Renter.Identity.Address;
        var leaser = env.Parties.Leaser.Identity.Address;
        Assert.Equal(PhaseTwoEnvironment.RenterFunds - 1_400_000, await env.BalanceAsync(renter));

        if (renterRates)
        {
            await env.ApplyAsync(PhaseTwoEnvironment.RenterRatingResource("train-renter", "train", env.SignRenterRating(lease, 4, "fast nodes")));
            Assert.True((await env.WaitForDecisionAsync("train-renter")).Status!.Accepted);
        }

        if (leaserRates)
        {
            await env.ApplyAsync(PhaseTwoEnvironment.LeaserRatingResource("train-leaser", "train", 5, "clean return"));
            Assert.True((await env.WaitForDecisionAsync("train-leaser")).Status!.Accepted);
        }

        if (!(renterRates && leaserRates))
        {
            // A missing rating: the lease waits, with a requeue at the deadline, and nothing moves before it.
            var waiting = await Eventually.ReturnsAsync(() => env.GetLeaseAsync("train"),
                l => l.Status?.Conditions?.Any(c => c.Type == PhaseTwoReasons.SettledCondition && c.Reason == PhaseTwoReasons.AwaitingRatings) == true,
                "the lease reports that it waits for ratings");
            Assert.Equal(LeasePhase.AwaitingRatings, waiting.Status!.Phase);
            Assert.Null(await env.Anyone.GetSettlementAsync(lease.H.Hex));
            await Requeues.AdvanceAsync(env.Time, TimeSpan.FromHours(2), "settlement at the rating deadline", [phaseTwo.SettlementController]);
        }

        var settled = await env.WaitForPhaseAsync("train", LeasePhase.Settled);
        var s = settled.Status!.Settlement!;
        Assert.Equal(renterRates, s.RenterRated);
        Assert.Equal(leaserRates, s.LeaserRated);
        Assert.Equal(renterRates ? DepositOutcome.ReturnedToRenter : DepositOutcome.Withheld, s.Deposit);
        Assert.Equal(leaserRates ? RentOutcome.PaidToLeaser : RentOutcome.ReturnedToRenter, s.Rent);
        var condition = Assert.Single(settled.Status.Conditions!, c => c.Type == PhaseTwoReasons.SettledCondition);
        Assert.Equal("True", condition.Status);
        Assert.Equal(reason, condition.Reason);

        // The stored receipt is π's, signed for this H, and names the row.
        var receipt = Signed<SettlementReceipt>.Parse(s.Receipt!);
        Assert.True(receipt.IsOk, receipt.Message);
        var verified = RpoiEquations.VerifyReceipt(receipt.Value, env.Parties.Escrow.Identity, lease.H);
        Assert.True(verified.IsOk, verified.Message);
        Assert.Equal(RpoiEquations.Decide(renterRates, leaserRates), verified.Value.Decision);
        Assert.Equal(SettlementSource.LeaserFinal, verified.Value.Source);
        Assert.Equal(s.Receipt, (await env.Anyone.GetSettlementAsync(lease.H.Hex))!.Receipt.GetRawText());

        // Balances on π's ledger: ρ back to R only with R's rating, ω to β only with β's rating (else back to R).
        Assert.Equal(PhaseTwoEnvironment.RenterFunds - 1_400_000 + (renterRates ? 1_000_000 : 0) + (leaserRates ? 0 : 400_000), await env.BalanceAsync(renter));
        Assert.Equal(leaserRates ? 400_000 : 0, await env.BalanceAsync(leaser));
        Assert.Equal(renterRates ? 0 : 1_000_000, await env.WithheldAsync(lease.H));
        var pledge = await env.Anyone.GetPledgeAsync(lease.H.Hex);
        Assert.NotEqual("Held", pledge!.State);
        var audit = await env.AuditAsync();
        var totals = Assert.Single(audit.Totals, t => t.Denom == "uusd");
        Assert.Equal("0", totals.Held);
        Assert.Equal(renterRates ? "0" : "1000000", totals.Withheld);

        await Eventually.HoldsAsync(() => Task.FromResult(phaseTwo.Metrics.SettlementCount(outcome) == 1), "the metric counts it once (it is updated right after the status write)", env.Time);
        Assert.Equal(2, (await env.LedgerEntriesAsync(lease.H)).Count(e => e.Kind.StartsWith("settle.", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Ratings_after_settlement_are_refused_and_move_nothing()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        var phaseTwo = await env.StartOperatorAsync();
        var lease = await env.ReturnedLeaseAsync("late", ratingWindow: TimeSpan.FromMinutes(30));
        await env.ApplyAsync(PhaseTwoEnvironment.LeaserRatingResource("late-leaser", "late", 3));
        await env.WaitForDecisionAsync("late-leaser");
        await Requeues.AdvanceAsync(env.Time, TimeSpan.FromMinutes(30), "settlement at the rating deadline", [phaseTwo.SettlementController]);
        await env.WaitForPhaseAsync("late", LeasePhase.Settled);
        var head = await env.AuditAsync();

        await env.ApplyAsync(PhaseTwoEnvironment.RenterRatingResource("late-renter", "late", env.SignRenterRating(lease, 5)));
        var refused = await env.WaitForDecisionAsync("late-renter");
        Assert.False(refused.Status!.Accepted);
        Assert.Equal(PhaseTwoReasons.WindowClosed, refused.Status.Reason);
        Assert.Contains("Settled", refused.Status.Message, StringComparison.Ordinal);
        Assert.Equal(head.Head, (await env.AuditAsync()).Head);
        Assert.Equal(1_000_000, await env.WithheldAsync(lease.H));
    }

    [Fact]
    public async Task A_lease_that_never_received_a_grant_settles_against_the_no_grant_digest()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        var phaseTwo = await env.StartOperatorAsync();
        // Returned before it was Active (e.g. deleted while queued): no σ, no annotation.
        var lease = await env.ReturnedLeaseAsync("never-active", everActive: false);

        await env.ApplyAsync(PhaseTwoEnvironment.RenterRatingResource("never-active-renter", "never-active", env.SignRenterRating(lease, 1, "never got nodes", digest: GrantDigests.NoGrant)));
        var rating = await env.WaitForDecisionAsync("never-active-renter");
        Assert.True(rating.Status!.Accepted, rating.Status.Message);
        Assert.Contains("no-grant digest", rating.Status.Message, StringComparison.Ordinal);

        await Requeues.AdvanceAsync(env.Time, TimeSpan.FromHours(1), "settlement at the rating deadline", [phaseTwo.SettlementController]);
        var settled = await env.WaitForPhaseAsync("never-active", LeasePhase.Settled);
        Assert.Equal(DepositOutcome.ReturnedToRenter, settled.Status!.Settlement!.Deposit);
        Assert.Equal(RentOutcome.ReturnedToRenter, settled.Status.Settlement.Rent);
        Assert.Equal(PhaseTwoEnvironment.RenterFunds, await env.BalanceAsync(env.Parties.Renter.Identity.Address));
        await env.AuditAsync();
    }

    [Fact]
    public void Outcome_labels_name_each_row_once()
    {
        var rows = new[] { (true, true), (false, true), (true, false), (false, false) };
        var labels = rows.Select(r => PhaseTwoMetrics.OutcomeOf(RpoiEquations.Decide(r.Item1, r.Item2))).ToList();
        var reasons = rows.Select(r => SettlementStep.OutcomeReason(RpoiEquations.Decide(r.Item1, r.Item2))).ToList();
        Assert.Equal(["both_rated", "renter_missing", "leaser_missing", "none_rated"], labels);
        Assert.Equal(["BothRated", "RenterRatingMissing", "LeaserRatingMissing", "NoRatings"], reasons);
    }
}
