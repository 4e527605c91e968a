using k8s.Models;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Operator.PhaseTwo;
using Rpoi.Operator.Tests.Support;
using Rpoi.Protocol;

namespace Rpoi.Operator.Tests.PhaseTwo;

/// <summary>
/// Phase II takes digest(σ) from <c>status.grantDigest</c>, and from the legacy <c>rpoi.io/grant-digest</c> annotation
/// for Leases that operator versions before status.grantDigest made Active, so such a lease still rates and settles.
/// </summary>
public sealed class GrantDigestSourceTests
{
    private static readonly string StatusDigest = new('b', 64);
    private static readonly string LegacyDigest = new('c', 64);

    [Fact]
    public void Status_wins_the_legacy_annotation_is_the_fallback_and_a_lease_never_active_has_the_no_grant_digest()
    {
        Assert.Equal((StatusDigest, GrantDigests.Source.Status), GrantDigests.Of(Returned(StatusDigest, LegacyDigest)));
        Assert.Equal((StatusDigest, GrantDigests.Source.Status), GrantDigests.Of(Returned(StatusDigest, null)));
        Assert.Equal((LegacyDigest, GrantDigests.Source.LegacyAnnotation), GrantDigests.Of(Returned(null, LegacyDigest)));
        // A malformed annotation is no digest; with no status digest either, a lease that was Active cannot be checked.
        Assert.Equal((null, GrantDigests.Source.Unknown), GrantDigests.Of(Returned(null, "not-hex")));
        Assert.Equal((null, GrantDigests.Source.Unknown), GrantDigests.Of(Returned(null, null)));

        var neverActive = Returned(null, null);
        neverActive.Status!.ActiveSince = null;
        neverActive.Status.AccessSecretName = null;
        Assert.Equal((GrantDigests.NoGrant, GrantDigests.Source.NoGrantIssued), GrantDigests.Of(neverActive));
    }

    [Fact]
    public void The_acceptance_message_says_where_the_digest_came_from()
    {
        var parties = new TestParties();
        var builder = LeaseBuilder.For(parties.Renter).In(PhaseTwoEnvironment.Namespace, "unit").To(parties.Leaser, parties.Escrow);
        var request = builder.BuildRequest();
        var now = DateTimeOffset.UtcNow;
        string Decide(string? statusDigest, string? legacyDigest, string signedDigest)
        {
            var lease = builder.Build(request);
            lease.Status = Returned(statusDigest, null).Status;
            lease.Status!.RatingDeadline = now.AddHours(1).UtcDateTime;
            if (legacyDigest is not null)
            {
                lease.Metadata.Annotations = new Dictionary<string, string> { [LeaseReconciler.GrantDigestAnnotation] = legacyDigest };
            }

            var signed = RpoiEquations.SignRenterRating(request, signedDigest, new Protocol.Messages.Rating(4, "", now), parties.Renter);
            var verdict = RatingVerification.Decide(PhaseTwoEnvironment.RenterRatingResource("r", "unit", signed), lease, [], now, TimeSpan.FromHours(72));
            Assert.True(verdict.Kind == RatingVerdictKind.Accepted, verdict.Message);
            return verdict.Message;
        }

        Assert.Contains("the digest of the grant this lease received (status.grantDigest)", Decide(StatusDigest, null, StatusDigest), StringComparison.Ordinal);
        Assert.Contains("legacy rpoi.io/grant-digest annotation", Decide(null, LegacyDigest, LegacyDigest), StringComparison.Ordinal);
        Assert.Contains("the Lease has no status.grantDigest, so it could not be compared", Decide(null, null, StatusDigest), StringComparison.Ordinal);
    }

    [Fact]
    public void A_rating_decided_again_after_its_record_keeps_the_account_of_what_was_verified()
    {
        // The Rating's status write can be lost after the Lease records it (a 409 on a stale cached Rating, a crash);
        // the next pass accepts by the record, after the window too, and must still say what E(m'') was checked against.
        var parties = new TestParties();
        var builder = LeaseBuilder.For(parties.Renter).In(PhaseTwoEnvironment.Namespace, "unit").To(parties.Leaser, parties.Escrow);
        var request = builder.BuildRequest();
        var now = DateTimeOffset.UtcNow;
        var lease = builder.Build(request);
        lease.Status = Returned(null, null).Status;
        lease.Status!.ActiveSince = null;
        lease.Status.AccessSecretName = null;
        lease.Status.RatingDeadline = now.AddHours(1).UtcDateTime;
        lease.Status.AcceptedRatings = new LeaseAcceptedRatings { Renter = "r" };
        var signed = RpoiEquations.SignRenterRating(request, GrantDigests.NoGrant, new Protocol.Messages.Rating(1, "", now), parties.Renter);

        foreach (var at in new[] { now, now.AddHours(2) })
        {
            var verdict = RatingVerification.Decide(PhaseTwoEnvironment.RenterRatingResource("r", "unit", signed), lease, [], at, TimeSpan.FromHours(72));
            Assert.Equal(RatingVerdictKind.Accepted, verdict.Kind);
            Assert.Contains("no-grant digest", verdict.Message, StringComparison.Ordinal);
            Assert.Contains("recorded in status.acceptedRatings.renter", verdict.Message, StringComparison.Ordinal);
        }

        // Another rating of the same side is still refused by the record.
        var other = RatingVerification.Decide(PhaseTwoEnvironment.RenterRatingResource("r2", "unit", signed), lease, [], now, TimeSpan.FromHours(72));
        Assert.Equal((RatingVerdictKind.Rejected, PhaseTwoReasons.Duplicate), (other.Kind, other.Reason));
    }

    [Fact]
    public async Task A_lease_made_active_by_an_older_operator_rates_and_settles_with_its_legacy_annotation()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        await env.StartOperatorAsync();
        var lease = await env.ReturnedLeaseAsync("legacy", ratingWindow: TimeSpan.FromHours(2), legacyDigest: true);
        var stored = (await env.GetLeaseAsync("legacy"))!;
        Assert.Null(stored.Status!.GrantDigest);
        Assert.Equal(lease.GrantDigest, stored.Metadata.Annotations[LeaseReconciler.GrantDigestAnnotation]);

        // The annotation is still compared: a rating of another σ is refused, one of this σ is accepted.
        await env.ApplyAsync(PhaseTwoEnvironment.RenterRatingResource("legacy-wrong", "legacy", env.SignRenterRating(lease, 3, digest: StatusDigest)));
        var wrong = await env.WaitForDecisionAsync("legacy-wrong");
        Assert.False(wrong.Status!.Accepted);
        Assert.Equal("GrantDigestMismatch", wrong.Status.Reason);
        await env.ApplyAsync(PhaseTwoEnvironment.RenterRatingResource("legacy-renter", "legacy", env.SignRenterRating(lease, 4)));
        var accepted = await env.WaitForDecisionAsync("legacy-renter");
        Assert.True(accepted.Status!.Accepted, accepted.Status.Message);
        Assert.Contains("legacy rpoi.io/grant-digest annotation", accepted.Status.Message, StringComparison.Ordinal);
        await env.ApplyAsync(PhaseTwoEnvironment.LeaserRatingResource("legacy-leaser", "legacy", 5));

        // π accepts m_final, which carries the annotation's digest, and R's rating that names it.
        var settled = await env.WaitForPhaseAsync("legacy", LeasePhase.Settled);
        Assert.True(settled.Status!.Settlement!.RenterRated);
        Assert.True(settled.Status.Settlement.LeaserRated);
        Assert.Equal(DepositOutcome.ReturnedToRenter, settled.Status.Settlement.Deposit);
        Assert.Equal(0, await env.WithheldAsync(lease.H));
    }

    /// <summary>A Lease that was Active and returned, with the digest in status and/or the legacy annotation.</summary>
    private static Lease Returned(string? statusDigest, string? legacyDigest) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = "train",
            NamespaceProperty = PhaseTwoEnvironment.Namespace,
            Annotations = legacyDigest is null ? null : new Dictionary<string, string> { [LeaseReconciler.GrantDigestAnnotation] = legacyDigest },
        },
        Status = new LeaseStatus
        {
            Phase = LeasePhase.AwaitingRatings,
            ActiveSince = DateTime.UtcNow.AddHours(-1),
            AccessSecretName = "train-access",
            GrantDigest = statusDigest,
        },
    };
}
