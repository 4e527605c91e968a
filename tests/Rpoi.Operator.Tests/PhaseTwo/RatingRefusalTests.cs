using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseTwo;
using Rpoi.Operator.Tests.Support;
using Rpoi.Protocol.Keys;

namespace Rpoi.Operator.Tests.PhaseTwo;

/// <summary>
/// Bad renter ratings are refused with their reason, accepted ratings are final, one rating per side, and none of it
/// moves money: the ledger's head stays put, and the refused ratings are not part of the settlement.
/// </summary>
public sealed class RatingRefusalTests
{
    [Fact]
    public async Task Tampered_wrong_key_wrong_lease_wrong_digest_and_score_mismatch_are_refused_and_nothing_moves()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        var phaseTwo = await env.StartOperatorAsync();
        var lease = await env.ReturnedLeaseAsync("train", ratingWindow: TimeSpan.FromHours(1));
        var other = await env.ReturnedLeaseAsync("other", ratingWindow: TimeSpan.FromHours(1));
        var before = await env.AuditAsync();

        var cases = new (string Name, Entities.Rating Rating, string Reason, string MessagePart)[]
        {
            // The comment changed after R signed: the signature no longer covers the payload.
            ("tampered", PhaseTwoEnvironment.RenterRatingResource("tampered", "train", env.SignRenterRating(lease, 1, "slow"),
                tamper: p => p["rating"]!["comment"] = "great"), "BadSignature", "spec.signedRating"),
            // Signed by someone else's key over this lease's request.
            ("wrong-key", PhaseTwoEnvironment.RenterRatingResource("wrong-key", "train",
                env.SignRenterRating(lease, 1, signer: PartyKeyPair.Generate(PartyRole.Renter))), "SignerMismatch", "expected renter key"),
            // R's valid rating of another lease, put on this one.
            ("wrong-lease", PhaseTwoEnvironment.RenterRatingResource("wrong-lease", "train", env.SignRenterRating(other, 1)), PhaseTwoReasons.WrongLease, "another lease"),
            // R rates against a σ this lease never received.
            ("wrong-digest", PhaseTwoEnvironment.RenterRatingResource("wrong-digest", "train",
                env.SignRenterRating(lease, 1, digest: new string('a', 64))), "GrantDigestMismatch", "not the digest of the grant"),
            // The spec's score is not the signed one.
            ("score-mismatch", PhaseTwoEnvironment.RenterRatingResource("score-mismatch", "train", env.SignRenterRating(lease, 2), specScore: 5), PhaseTwoReasons.ScoreMismatch, "signed score 2"),
        };
        foreach (var c in cases)
        {
            await env.ApplyAsync(c.Rating);
        }

        foreach (var c in cases)
        {
            var decided = await env.WaitForDecisionAsync(c.Name);
            Assert.False(decided.Status!.Accepted, $"{c.Name}: {decided.Status.Message}");
            Assert.Equal(c.Reason, decided.Status.Reason);
            Assert.Contains(c.MessagePart, decided.Status.Message, StringComparison.Ordinal);
            var condition = Assert.Single(decided.Status.Conditions!, x => x.Type == PhaseTwoReasons.AcceptedCondition);
            Assert.Equal("False", condition.Status);
            Assert.Equal(c.Reason, condition.Reason);
            await Eventually.HoldsAsync(() => Task.FromResult(phaseTwo.Metrics.RatingCount("Renter", "rejected", c.Reason) == 1), "the metric counts it once (it is updated right after the status write)", env.Time);
        }

        // Nothing moved, and the lease still waits: a refused rating does not trigger a settlement.
        Assert.Equal(before.Head, (await env.AuditAsync()).Head);
        Assert.Equal(LeasePhase.AwaitingRatings, (await env.GetLeaseAsync("train"))!.Status!.Phase);

        // With a leaser rating only, the refused renter ratings are not in m_final: the deposit is withheld.
        await env.ApplyAsync(PhaseTwoEnvironment.LeaserRatingResource("train-leaser", "train", 4));
        await env.WaitForDecisionAsync("train-leaser");
        await Requeues.AdvanceAsync(env.Time, TimeSpan.FromHours(1), "settlement of both leases at the rating deadline", [phaseTwo.SettlementController], keys: 2);
        var settled = await env.WaitForPhaseAsync("train", LeasePhase.Settled);
        Assert.False(settled.Status!.Settlement!.RenterRated);
        Assert.Equal(DepositOutcome.Withheld, settled.Status.Settlement.Deposit);
        Assert.Equal(lease.Deposit, await env.WithheldAsync(lease.H));
        await env.AuditAsync();
    }

    [Fact]
    public async Task A_replayed_rating_is_refused_as_a_duplicate_and_the_first_stays_accepted()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        var phaseTwo = await env.StartOperatorAsync();
        var lease = await env.ReturnedLeaseAsync("train", ratingWindow: TimeSpan.FromHours(1));
        var signed = env.SignRenterRating(lease, 5, "solid");

        await env.ApplyAsync(PhaseTwoEnvironment.RenterRatingResource("first", "train", signed));
        Assert.True((await env.WaitForDecisionAsync("first")).Status!.Accepted);
        var head = await env.AuditAsync();

        // The same E(m'') again, and a fresh second renter rating: one rating per side.
        await env.ApplyAsync(PhaseTwoEnvironment.RenterRatingResource("replay", "train", signed));
        await env.ApplyAsync(PhaseTwoEnvironment.RenterRatingResource("second", "train", env.SignRenterRating(lease, 1, "changed my mind")));
        foreach (var name in new[] { "replay", "second" })
        {
            var refused = await env.WaitForDecisionAsync(name);
            Assert.False(refused.Status!.Accepted);
            Assert.Equal(PhaseTwoReasons.Duplicate, refused.Status.Reason);
            Assert.Contains("Rating first already carries the Renter rating", refused.Status.Message, StringComparison.Ordinal);
        }

        await Eventually.HoldsAsync(() => Task.FromResult(phaseTwo.Metrics.RatingCount("Renter", "rejected", PhaseTwoReasons.Duplicate) == 2), "the metric counts it once (it is updated right after the status write)", env.Time);
        Assert.Equal(head.Head, (await env.AuditAsync()).Head);
        var first = await env.GetRatingAsync("first");
        Assert.True(first!.Status!.Accepted);

        // A second leaser rating is refused the same way; then both sides are in and the lease settles at once.
        await env.ApplyAsync(PhaseTwoEnvironment.LeaserRatingResource("leaser-a", "train", 4));
        Assert.True((await env.WaitForDecisionAsync("leaser-a")).Status!.Accepted);
        await env.ApplyAsync(PhaseTwoEnvironment.LeaserRatingResource("leaser-b", "train", 1));
        var leaserB = await env.WaitForDecisionAsync("leaser-b");
        Assert.False(leaserB.Status!.Accepted);
        Assert.Contains(leaserB.Status.Reason, new[] { PhaseTwoReasons.Duplicate, PhaseTwoReasons.WindowClosed });
        var settled = await env.WaitForPhaseAsync("train", LeasePhase.Settled);
        Assert.True(settled.Status!.Settlement!.RenterRated);
        Assert.True(settled.Status.Settlement.LeaserRated);
        Assert.Equal(lease.Rent, await env.BalanceAsync(env.Parties.Leaser.Identity.Address));
    }

    [Fact]
    public async Task A_rating_waits_while_its_lease_is_missing_or_active_and_is_decided_once_the_lease_is_returned()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        await env.StartOperatorAsync();
        await env.ApplyAsync(PhaseTwoEnvironment.LeaserRatingResource("early", "later", 5));
        var pending = await Eventually.ReturnsAsync(() => env.GetRatingAsync("early"), r => r.Status?.Reason == PhaseTwoReasons.LeaseNotFound, "the rating waits for its lease", env.Time);
        Assert.Null(pending.Status!.Accepted);
        Assert.Contains("spec.leaseRef.name", pending.Status.Message, StringComparison.Ordinal);
        Assert.Equal("Unknown", Assert.Single(pending.Status.Conditions!).Status);

        await env.ReturnedLeaseAsync("later");
        Assert.True((await env.WaitForDecisionAsync("early")).Status!.Accepted);
    }

    [Fact]
    public void A_renter_rating_is_checked_against_the_lease_request_even_when_the_cache_has_no_siblings()
    {
        var parties = new TestParties();
        var builder = LeaseBuilder.For(parties.Renter).In(PhaseTwoEnvironment.Namespace, "unit").To(parties.Leaser, parties.Escrow);
        var request = builder.BuildRequest();
        var lease = builder.Build(request);
        var now = DateTimeOffset.UtcNow;
        var digest = Protocol.RpoiEquations.GrantDigest(PhaseTwoEnvironment.GrantFor("unit"));
        lease.Status = new LeaseStatus { Phase = LeasePhase.AwaitingRatings, RatingDeadline = now.AddHours(1).UtcDateTime, ActiveSince = now.AddHours(-1).UtcDateTime, GrantDigest = digest };
        var signed = Protocol.RpoiEquations.SignRenterRating(request, digest, new Protocol.Messages.Rating(3, "", now), parties.Renter);

        var ok = RatingVerification.Decide(PhaseTwoEnvironment.RenterRatingResource("r", "unit", signed), lease, [], now, TimeSpan.FromHours(72));
        Assert.Equal(RatingVerdictKind.Accepted, ok.Kind);

        var missing = PhaseTwoEnvironment.RenterRatingResource("m", "unit", signed);
        missing.Spec.SignedRating = null;
        Assert.Equal(PhaseTwoReasons.MissingSignedRating, RatingVerification.Decide(missing, lease, [], now, TimeSpan.FromHours(72)).Reason);

        var late = RatingVerification.Decide(PhaseTwoEnvironment.RenterRatingResource("l", "unit", signed), lease, [], now.AddHours(2), TimeSpan.FromHours(72));
        Assert.Equal((RatingVerdictKind.Rejected, PhaseTwoReasons.WindowClosed), (late.Kind, late.Reason));

        lease.Status.Phase = LeasePhase.Active;
        Assert.Equal((RatingVerdictKind.Pending, PhaseTwoReasons.LeaseNotReturned), Pair(RatingVerification.Decide(PhaseTwoEnvironment.RenterRatingResource("a", "unit", signed), lease, [], now, TimeSpan.FromHours(72))));
        lease.Status.Phase = LeasePhase.Failed;
        Assert.Equal((RatingVerdictKind.Rejected, PhaseTwoReasons.LeaseFailed), Pair(RatingVerification.Decide(PhaseTwoEnvironment.RenterRatingResource("f", "unit", signed), lease, [], now, TimeSpan.FromHours(72))));

        // An unparseable E(m'') names the field.
        var malformed = PhaseTwoEnvironment.RenterRatingResource("x", "unit", signed, tamper: p => p.Remove("rating"));
        lease.Status.Phase = LeasePhase.AwaitingRatings;
        var refused = RatingVerification.Decide(malformed, lease, [], now, TimeSpan.FromHours(72));
        Assert.Equal(RatingVerdictKind.Rejected, refused.Kind);
        Assert.Equal("MalformedMessage", refused.Reason);
        Assert.Contains("spec.signedRating", refused.Message, StringComparison.Ordinal);
    }

    private static (RatingVerdictKind, string) Pair(RatingVerdict v) => (v.Kind, v.Reason);
}
