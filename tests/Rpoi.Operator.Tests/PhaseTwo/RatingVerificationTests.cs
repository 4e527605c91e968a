using k8s.Models;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseTwo;

namespace Rpoi.Operator.Tests.PhaseTwo;

/// <summary>The "one rating per side" rule as a pure function: the oldest undecided rating of a side goes first.</summary>
public sealed class RatingVerificationTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);

    [Fact]
    public void A_younger_rating_waits_for_an_older_undecided_one_and_an_older_one_does_not_wait_for_a_younger()
    {
        var lease = ReturnedLease();
        var older = Leaser("a-older", Now.AddMinutes(-2), accepted: null);
        var younger = Leaser("b-younger", Now.AddMinutes(-1), accepted: null);

        var waits = RatingVerification.Decide(younger, lease, [older, younger], Now, TimeSpan.FromHours(72));
        Assert.Equal((RatingVerdictKind.Pending, PhaseTwoReasons.EarlierRatingPending), (waits.Kind, waits.Reason));
        Assert.Contains("a-older", waits.Message, StringComparison.Ordinal);

        var goes = RatingVerification.Decide(older, lease, [older, younger], Now, TimeSpan.FromHours(72));
        Assert.Equal(RatingVerdictKind.Accepted, goes.Kind);
    }

    [Fact]
    public void Same_creation_second_is_ordered_by_name_and_an_accepted_sibling_makes_a_duplicate()
    {
        var lease = ReturnedLease();
        var a = Leaser("a", Now.AddMinutes(-1), accepted: null);
        var b = Leaser("b", Now.AddMinutes(-1), accepted: null);
        Assert.Equal(RatingVerdictKind.Pending, RatingVerification.Decide(b, lease, [a, b], Now, TimeSpan.FromHours(72)).Kind);

        var acceptedA = Leaser("a", Now.AddMinutes(-1), accepted: true);
        var duplicate = RatingVerification.Decide(b, lease, [acceptedA, b], Now, TimeSpan.FromHours(72));
        Assert.Equal((RatingVerdictKind.Rejected, PhaseTwoReasons.Duplicate), (duplicate.Kind, duplicate.Reason));

        // A rejected older rating does not block: the side may rate again.
        var rejectedA = Leaser("a", Now.AddMinutes(-1), accepted: false);
        Assert.Equal(RatingVerdictKind.Accepted, RatingVerification.Decide(b, lease, [rejectedA, b], Now, TimeSpan.FromHours(72)).Kind);

        // The other side's ratings never count against this one.
        var renterSide = Leaser("c", Now.AddMinutes(-3), accepted: true);
        renterSide.Spec.Rater = Rater.Renter;
        Assert.Equal(RatingVerdictKind.Accepted, RatingVerification.Decide(b, lease, [renterSide, b], Now, TimeSpan.FromHours(72)).Kind);
    }

    [Fact]
    public void Without_a_deadline_in_status_the_window_runs_from_the_return_with_the_lease_or_default_window()
    {
        var lease = ReturnedLease();
        lease.Status!.RatingDeadline = null;
        lease.Status.ReturnedAt = Now.AddHours(-2).UtcDateTime;
        Assert.Equal(Now.AddHours(70), SettlementStep.DeadlineOf(lease, TimeSpan.FromHours(72)));
        lease.Spec.RatingWindowSeconds = 3600;
        Assert.Equal(Now.AddHours(-1), SettlementStep.DeadlineOf(lease, TimeSpan.FromHours(72)));
        var late = RatingVerification.Decide(Leaser("x", Now, null), lease, [], Now, TimeSpan.FromHours(72));
        Assert.Equal(PhaseTwoReasons.WindowClosed, late.Reason);
    }

    private static Lease ReturnedLease() => new()
    {
        Metadata = new V1ObjectMeta { Name = "train", NamespaceProperty = PhaseTwoEnvironment.Namespace },
        Status = new LeaseStatus { Phase = LeasePhase.AwaitingRatings, RatingDeadline = Now.AddHours(1).UtcDateTime },
    };

    private static Entities.Rating Leaser(string name, DateTimeOffset created, bool? accepted)
    {
        var rating = PhaseTwoEnvironment.LeaserRatingResource(name, "train", 4);
        rating.Metadata.CreationTimestamp = created.UtcDateTime;
        rating.Status = accepted is null ? null : new RatingStatus { Accepted = accepted };
        return rating;
    }
}
