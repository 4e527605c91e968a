using System.Text.Json.Nodes;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Protocol;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Messages;
using Rating = Rpoi.Operator.Entities.Rating;

namespace Rpoi.Operator.PhaseTwo;

/// <summary>What the operator decided about a Rating.</summary>
public enum RatingVerdictKind
{
    /// <summary>Part of the settlement.</summary>
    Accepted,

    /// <summary>Refused for good; the reason says why and what to do.</summary>
    Rejected,

    /// <summary>Not decidable yet (the lease is not returned, or an older rating of the same side is undecided).</summary>
    Pending,
}

/// <summary>A decision with a machine-readable reason and a message that names the field and the fix.</summary>
public sealed record RatingVerdict(RatingVerdictKind Kind, string Reason, string Message)
{
    /// <summary>An acceptance.</summary>
    public static RatingVerdict Accept(string message) => new(RatingVerdictKind.Accepted, PhaseTwoReasons.Accepted, message);

    /// <summary>A refusal.</summary>
    public static RatingVerdict Reject(string reason, string message) => new(RatingVerdictKind.Rejected, reason, message);

    /// <summary>A wait.</summary>
    public static RatingVerdict Wait(string reason, string message) => new(RatingVerdictKind.Pending, reason, message);
}

/// <summary>
/// β's checks of a Rating (PROTOCOL.md phase II steps 1 and 2): the lease waits for ratings and its window is open,
/// one accepted rating per side, and for the renter E(m'') verified against the Lease's own E(m) — R's key, H, the
/// digest of σ this lease received, the score range — with the score in the spec equal to the signed one.
/// </summary>
public static class RatingVerification
{
    /// <summary>Decides about <paramref name="rating"/>.</summary>
    /// <param name="rating">The rating.</param>
    /// <param name="lease">Its Lease, or null when it does not exist.</param>
    /// <param name="siblings">Every cached rating of the same lease (the rating itself may be among them).</param>
    /// <param name="now">The current time.</param>
    /// <param name="defaultWindow">The rating window when the Lease has no deadline in status.</param>
    public static RatingVerdict Decide(Rating rating, Lease? lease, IReadOnlyList<Rating> siblings, DateTimeOffset now, TimeSpan defaultWindow)
    {
        ArgumentNullException.ThrowIfNull(rating);
        ArgumentNullException.ThrowIfNull(siblings);
        var leaseName = rating.Spec?.LeaseRef?.Name;
        var ns = rating.Metadata.NamespaceProperty;
        if (lease is null)
        {
            return RatingVerdict.Wait(PhaseTwoReasons.LeaseNotFound, $"spec.leaseRef.name: Lease {ns}/{leaseName} does not exist; the rating is decided once it does (ratings must be in their Lease's namespace)");
        }

        // The Lease's record is the decision: it is written first (RatingReconciler), so a crash before the Rating's
        // status is written, or a window that closed meanwhile, cannot turn a rating the settlement carries into a refusal.
        if (rating.Spec?.Rater is { } side && lease.Status?.AcceptedRatings?.Of(side) is { } recorded)
        {
            return recorded == rating.Metadata.Name
                ? AcceptRecorded(rating, lease, side, $"{ns}/{leaseName}")
                : RatingVerdict.Reject(PhaseTwoReasons.Duplicate, $"Rating {recorded} already carries the {side} rating of Lease {ns}/{leaseName}; each side rates once and an accepted rating cannot be replaced");
        }

        var phase = lease.Status?.Phase;
        switch (phase)
        {
            case LeasePhase.Failed:
                return RatingVerdict.Reject(PhaseTwoReasons.LeaseFailed, $"Lease {ns}/{leaseName} failed before anything was settled; there is nothing to rate");
            case LeasePhase.Settling or LeasePhase.Settled:
                return RatingVerdict.Reject(PhaseTwoReasons.WindowClosed, $"Lease {ns}/{leaseName} is already {phase}; ratings were accepted until {Format(SettlementStep.DeadlineOf(lease, defaultWindow))}");
            case not LeasePhase.AwaitingRatings:
                return RatingVerdict.Wait(PhaseTwoReasons.LeaseNotReturned, $"Lease {ns}/{leaseName} is {phase?.ToString() ?? "not yet reconciled"}; ratings are decided once it is returned and waits for them");
        }

        var deadline = SettlementStep.DeadlineOf(lease, defaultWindow);
        if (now >= deadline)
        {
            return RatingVerdict.Reject(PhaseTwoReasons.WindowClosed, $"the rating window of Lease {ns}/{leaseName} closed at {Format(deadline)}; the lease settles without this rating");
        }

        var rater = rating.Spec!.Rater;
        var sameSide = siblings.Where(s => s.Spec?.Rater == rater && s.Metadata.Name != rating.Metadata.Name).ToList();
        if (sameSide.FirstOrDefault(s => s.Status?.Accepted == true) is { } accepted)
        {
            return RatingVerdict.Reject(PhaseTwoReasons.Duplicate, $"Rating {accepted.Metadata.Name} already carries the {rater} rating of Lease {ns}/{leaseName}; each side rates once and an accepted rating cannot be replaced");
        }

        if (sameSide.FirstOrDefault(s => s.Status?.Accepted is null && RatingIndexes.CompareAge(s, rating) < 0) is { } older)
        {
            return RatingVerdict.Wait(PhaseTwoReasons.EarlierRatingPending, $"the older Rating {older.Metadata.Name} of the same side is decided first; this one counts only if that one is rejected");
        }

        return rater == Rater.Leaser ? DecideLeaser(rating) : DecideRenter(rating, lease);
    }

    /// <summary>Parses a Rating's <c>spec.signedRating</c> into E(m'') exactly as signed.</summary>
    public static Check<Signed<RenterRating>> Parse(SignedRatingMessage? message)
    {
        if (message?.Payload is null)
        {
            return Check.Fail<Signed<RenterRating>>(ReasonCode.MalformedMessage, "spec.signedRating is missing; sign the rating with 'kubectl rpoi rate'");
        }

        var envelope = new JsonObject
        {
            ["payload"] = message.Payload.DeepClone(),
            ["signer"] = message.Signer,
            ["sig"] = message.Sig,
        };
        return Signed<RenterRating>.Parse(envelope.ToJsonString());
    }

    /// <summary>
    /// Verifies E(m'') against the Lease: R's signature with the key in the Lease's own E(m), H, the digest of σ, the
    /// score range. Used when the rating is decided and again when m_final is built.
    /// </summary>
    public static Check<Signed<RenterRating>> VerifyAgainst(SignedRatingMessage? message, Lease lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var request = LeaseVerification.Parse(lease.Spec?.Request);
        if (!request.TryGetValue(out var em))
        {
            return request.As<Signed<RenterRating>>();
        }

        var (digest, _) = GrantDigests.Of(lease);
        return Parse(message).Then(signed => RpoiEquations.VerifyRenterRating(signed, em, digest));
    }

    /// <summary>
    /// A rating the Lease already names is accepted whatever the window says now. Its message still says what was
    /// verified: the decision is made again whenever the Rating's own status write was lost (a 409 on a stale cached
    /// Rating, a crash), and the renter should read the same account of E(m'') either way.
    /// </summary>
    private static RatingVerdict AcceptRecorded(Rating rating, Lease lease, Rater side, string leaseKey)
    {
        var record = $"recorded in status.acceptedRatings.{(side == Rater.Renter ? "renter" : "leaser")} of Lease {leaseKey}; it is part of the settlement";
        var checkedAgain = side == Rater.Leaser ? DecideLeaser(rating) : DecideRenter(rating, lease);
        return RatingVerdict.Accept(checkedAgain.Kind == RatingVerdictKind.Accepted ? $"{checkedAgain.Message}; {record}" : record);
    }

    private static RatingVerdict DecideLeaser(Rating rating)
    {
        var score = rating.Spec.Score;
        return score is < 1 or > 5
            ? RatingVerdict.Reject(nameof(ReasonCode.RatingOutOfRange), $"spec.score is {score}; a score is 1 (worst) to 5 (best)")
            : RatingVerdict.Accept($"the leaser's rating Ra_β (score {score}) is signed with β's key into m''' when the lease settles");
    }

    private static RatingVerdict DecideRenter(Rating rating, Lease lease)
    {
        if (rating.Spec.SignedRating is null)
        {
            return RatingVerdict.Reject(PhaseTwoReasons.MissingSignedRating, "spec.signedRating is required when rater is Renter; sign the rating with 'kubectl rpoi rate'");
        }

        var verified = VerifyAgainst(rating.Spec.SignedRating, lease);
        if (!verified.TryGetValue(out var signed))
        {
            var reason = verified.Reason == ReasonCode.HashMismatch ? PhaseTwoReasons.WrongLease : verified.Reason!.Value.ToString();
            return RatingVerdict.Reject(reason, $"spec.signedRating: {verified.Message}");
        }

        var signedScore = signed.Payload.Rating.Score;
        if (signedScore != rating.Spec.Score)
        {
            return RatingVerdict.Reject(PhaseTwoReasons.ScoreMismatch, $"spec.score is {rating.Spec.Score} but the renter signed score {signedScore}; set spec.score to the signed score or sign again");
        }

        var (_, from) = GrantDigests.Of(lease);
        var digestNote = from switch
        {
            GrantDigests.Source.Status => "the digest of the grant this lease received (status.grantDigest)",
            GrantDigests.Source.LegacyAnnotation => "the digest of the grant this lease received (the legacy rpoi.io/grant-digest annotation)",
            GrantDigests.Source.NoGrantIssued => "the no-grant digest (the lease never became Active)",
            _ => "a well-formed grant digest (the Lease has no status.grantDigest, so it could not be compared)",
        };
        return RatingVerdict.Accept($"E(m'') verifies: signed by the renter key {signed.Signer} of this lease's request, for H {signed.Payload.H}, with {digestNote}; score {signedScore}");
    }

    private static string Format(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
}
