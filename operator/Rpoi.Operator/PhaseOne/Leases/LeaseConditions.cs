namespace Rpoi.Operator.PhaseOne.Leases;

/// <summary>Condition types and reasons the phase I reconciler writes on a Lease (stable: users and alerts match on them).</summary>
public static class LeaseConditions
{
    /// <summary>The finalizer that holds a Lease until its nodes and credentials are released.</summary>
    public const string Finalizer = "rpoi.io/lease";

    /// <summary>Condition: the signed request passed every check.</summary>
    public const string Verified = "Verified";

    /// <summary>Condition: π holds the pledge under H with the right amounts.</summary>
    public const string Pledged = "Pledged";

    /// <summary>Condition: the lease holds its TPU nodes.</summary>
    public const string Allocated = "Allocated";

    /// <summary>Condition: the renter can use the lease (grant written, nodes held).</summary>
    public const string Ready = "Ready";

    /// <summary>Reason: a check passed / a step completed.</summary>
    public const string Succeeded = "Succeeded";

    /// <summary>Reason: the spec is not a parseable signed request.</summary>
    public const string MalformedRequest = "MalformedRequest";

    /// <summary>Reason: the Lease name is longer than a node label value allows.</summary>
    public const string InvalidLeaseName = "InvalidLeaseName";

    /// <summary>Reason: the asked chips are not a whole number of slices of the topology, or the topology is not one.</summary>
    public const string InvalidShape = "InvalidShape";

    /// <summary>Reason: π refused the pledge (its reason code follows in the message).</summary>
    public const string PledgeRefused = "PledgeRefused";

    /// <summary>Reason: π holds a pledge under H that does not match the request (amounts, parties or state).</summary>
    public const string PledgeMismatch = "PledgeMismatch";

    /// <summary>Reason: π could not be reached; retried with backoff.</summary>
    public const string EscrowUnavailable = "EscrowUnavailable";

    /// <summary>Reason: waiting in the FIFO queue behind older leases.</summary>
    public const string Queued = "Queued";

    /// <summary>Reason: first in the queue, but not enough free chips.</summary>
    public const string InsufficientChips = "InsufficientChips";

    /// <summary>Reason: the lease ended and its nodes and credentials were released.</summary>
    public const string Returned = "Returned";

    /// <summary>Reason: the lease was returned before π held a pledge; nothing was charged.</summary>
    public const string ReturnedBeforePledge = "ReturnedBeforePledge";

    /// <summary>Reason: the lease ended before it was ever served and π refunded ρ + ω to the renter (row NeverServed).</summary>
    public const string NeverServed = "NeverServed";

    /// <summary>Reason: π refused the never-served refund; the Lease keeps its finalizer and asks again.</summary>
    public const string RefundRefused = "RefundRefused";

    /// <summary>
    /// Reason (phase Failed, before any pledge): the request can never be met by this cluster's TPU node pools: more chips
    /// than the usable slices of its accelerator and topology hold together, or a shape no pool offers.
    /// </summary>
    public const string ImpossibleRequest = "ImpossibleRequest";

    /// <summary>
    /// Reason (waiting): a lease pledged earlier asks for more than its shape's usable slices hold now (slices went away
    /// or became unusable); it keeps its place without holding room for itself, and is refunded in full if deleted.
    /// </summary>
    public const string Unsatisfiable = "Unsatisfiable";
}
