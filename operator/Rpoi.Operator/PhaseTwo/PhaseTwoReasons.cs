namespace Rpoi.Operator.PhaseTwo;

/// <summary>
/// Condition types and reasons phase II writes on Ratings and Leases. Stable names: users, alerts and the
/// <c>rpoi_ratings_total</c> metric match on them. Verification failures of E(m'') carry the protocol's own
/// reason code (BadSignature, SignerMismatch, GrantDigestMismatch, …), except HashMismatch, which is WrongLease here.
/// </summary>
public static class PhaseTwoReasons
{
    /// <summary>Rating condition: whether the rating is part of the lease's settlement.</summary>
    public const string AcceptedCondition = "Accepted";

    /// <summary>Lease condition: whether π settled the lease.</summary>
    public const string SettledCondition = "Settled";

    /// <summary>The rating passed every check.</summary>
    public const string Accepted = "Accepted";

    /// <summary>Pending: the rated Lease does not exist (yet).</summary>
    public const string LeaseNotFound = "LeaseNotFound";

    /// <summary>Pending: the rated Lease has not been returned yet; ratings are decided once it waits for them.</summary>
    public const string LeaseNotReturned = "LeaseNotReturned";

    /// <summary>Pending: an older Rating of the same side for the same Lease is not decided yet.</summary>
    public const string EarlierRatingPending = "EarlierRatingPending";

    /// <summary>Rejected: the Lease failed before anything was pledged; there is nothing to rate.</summary>
    public const string LeaseFailed = "LeaseFailed";

    /// <summary>Rejected: the rating window closed, or the lease is already settling or settled.</summary>
    public const string WindowClosed = "WindowClosed";

    /// <summary>Rejected: another Rating of the same side for the same Lease is already accepted.</summary>
    public const string Duplicate = "Duplicate";

    /// <summary>Rejected: a renter Rating without the signed E(m'').</summary>
    public const string MissingSignedRating = "MissingSignedRating";

    /// <summary>Rejected: spec.score differs from the score the renter signed.</summary>
    public const string ScoreMismatch = "ScoreMismatch";

    /// <summary>Rejected: E(m'') is for another lease (its H or its request is not this Lease's).</summary>
    public const string WrongLease = "WrongLease";

    /// <summary>Lease: waiting for ratings until the deadline.</summary>
    public const string AwaitingRatings = "AwaitingRatings";

    /// <summary>Lease: m_final is being submitted to π.</summary>
    public const string Submitting = "Submitting";

    /// <summary>Lease: π refused m_final (its reason follows in the message).</summary>
    public const string SettlementRefused = "SettlementRefused";

    /// <summary>Lease: π could not be reached; retried with backoff.</summary>
    public const string EscrowUnavailable = "EscrowUnavailable";

    /// <summary>Lease: π answered with a receipt that does not verify under π's key for this H.</summary>
    public const string ReceiptInvalid = "ReceiptInvalid";
}
