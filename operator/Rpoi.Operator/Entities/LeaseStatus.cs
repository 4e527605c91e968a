using System.Text.Json.Serialization;
using k8s.Models;
using Rpoi.Operator.CrdGeneration;

namespace Rpoi.Operator.Entities;

/// <summary>Where a Lease is in its life cycle.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<LeasePhase>))]
public enum LeasePhase
{
    /// <summary>Committed, not yet checked.</summary>
    Pending,

    /// <summary>The signature, the binding to this object and the escrow's pledge are verified.</summary>
    Verified,

    /// <summary>TPU nodes are being claimed (or the lease waits in the queue for them).</summary>
    Allocating,

    /// <summary>The nodes are the renter's and the sealed access grant is written.</summary>
    Active,

    /// <summary>The lease ended; the nodes are being released and the token revoked.</summary>
    Returning,

    /// <summary>The nodes are released; the lease waits for the ratings until the rating deadline.</summary>
    AwaitingRatings,

    /// <summary>m_final is built and being submitted to the escrow.</summary>
    Settling,

    /// <summary>The escrow settled the lease; the receipt is in status.settlement.</summary>
    Settled,

    /// <summary>The lease cannot proceed; the Ready condition says why.</summary>
    Failed,
}

/// <summary>What the operator observed of a Lease and did for it.</summary>
public sealed class LeaseStatus
{
    /// <summary>Where the lease is in its life cycle.</summary>
    [JsonPropertyName("phase")]
    public LeasePhase? Phase { get; set; }

    /// <summary>Standard conditions (Verified, Pledged, Allocated, Ready, Degraded, Settled), one per type.</summary>
    [JsonPropertyName("conditions")]
    [ListMap("type")]
    public IList<V1Condition>? Conditions { get; set; }

    /// <summary>The transaction hash H: SHA-256 of the canonical JSON of the signed request, lower-case hex.</summary>
    [JsonPropertyName("transactionHash")]
    [Pattern("^[0-9a-f]{64}$")]
    public string? TransactionHash { get; set; }

    /// <summary>Address of the renter, derived from the verified signing key.</summary>
    [JsonPropertyName("renter")]
    public string? Renter { get; set; }

    /// <summary>Number of TPU chips leased (copied from the verified request for display).</summary>
    [JsonPropertyName("chips")]
    public long? Chips { get; set; }

    /// <summary>TPU accelerator type (copied from the verified request for display).</summary>
    [JsonPropertyName("accelerator")]
    public string? Accelerator { get; set; }

    /// <summary>TPU topology (copied from the verified request for display).</summary>
    [JsonPropertyName("topology")]
    public string? Topology { get; set; }

    /// <summary>Names of the nodes claimed for this lease alone.</summary>
    [JsonPropertyName("nodes")]
    public IList<string>? Nodes { get; set; }

    /// <summary>The node pool the nodes belong to.</summary>
    [JsonPropertyName("nodePool")]
    public string? NodePool { get; set; }

    /// <summary>Name of the Secret, in the Lease's namespace, that holds the sealed access grant Enc(m').</summary>
    [JsonPropertyName("accessSecretName")]
    public string? AccessSecretName { get; set; }

    /// <summary>
    /// Hex SHA-256 of the access grant σ delivered in the access Secret, lower case. Set together with phase Active and
    /// kept after the Secret is deleted at the return: the renter's rating E(m'') and m_final must name this digest.
    /// </summary>
    [JsonPropertyName("grantDigest")]
    [Pattern("^[0-9a-f]{64}$")]
    public string? GrantDigest { get; set; }

    /// <summary>
    /// Position in the allocation queue of the lease's accelerator and topology while it waits for chips (1 is next).
    /// Only leases of the same accelerator and topology are counted: other shapes never share nodes with it.
    /// </summary>
    [JsonPropertyName("queuePosition")]
    public long? QueuePosition { get; set; }

    /// <summary>
    /// While the lease waits: the earliest time enough chips of its shape are free for it and for the older leases ahead of
    /// it, counting the chips free now and those of Active leases as they reach expiresAt (a lower bound: a lease returned
    /// early frees chips sooner). Absent when the Active leases' expiry cannot free enough chips, or nothing is known.
    /// </summary>
    [JsonPropertyName("earliestFreeAt")]
    [Format("date-time")]
    public DateTime? EarliestFreeAt { get; set; }

    /// <summary>When the nodes became the renter's.</summary>
    [JsonPropertyName("activeSince")]
    [Format("date-time")]
    public DateTime? ActiveSince { get; set; }

    /// <summary>When the lease ends unless returned earlier (activeSince + durationSeconds).</summary>
    [JsonPropertyName("expiresAt")]
    [Format("date-time")]
    public DateTime? ExpiresAt { get; set; }

    /// <summary>When the nodes were released.</summary>
    [JsonPropertyName("returnedAt")]
    [Format("date-time")]
    public DateTime? ReturnedAt { get; set; }

    /// <summary>When the rating window closes and the lease settles with the ratings it has.</summary>
    [JsonPropertyName("ratingDeadline")]
    [Format("date-time")]
    public DateTime? RatingDeadline { get; set; }

    /// <summary>
    /// Problems with the lease's nodes while it was Active, oldest first (at most 64; older closed ones are dropped and
    /// counted in nodeIncidentsDropped). An open incident (no endedAt) keeps the Degraded condition True.
    /// </summary>
    [JsonPropertyName("nodeIncidents")]
    public IList<NodeIncident>? NodeIncidents { get; set; }

    /// <summary>How many closed node incidents were dropped from nodeIncidents to keep it at 64 entries.</summary>
    [JsonPropertyName("nodeIncidentsDropped")]
    public long? NodeIncidentsDropped { get; set; }

    /// <summary>
    /// The Ratings accepted into this lease's settlement, by name, one per side. The operator records a rating here
    /// before the Rating's status says accepted, and once the lease is Settling nothing is added, so m_final carries
    /// exactly the ratings named here.
    /// </summary>
    [JsonPropertyName("acceptedRatings")]
    public LeaseAcceptedRatings? AcceptedRatings { get; set; }

    /// <summary>The escrow's settlement of this lease.</summary>
    [JsonPropertyName("settlement")]
    public LeaseSettlement? Settlement { get; set; }

    /// <summary>The metadata.generation this status was computed from.</summary>
    [JsonPropertyName("observedGeneration")]
    public long? ObservedGeneration { get; set; }
}

/// <summary>Where the deposit ρ went at settlement.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<DepositOutcome>))]
public enum DepositOutcome
{
    /// <summary>ζ: ρ → R, the deposit went back to the renter.</summary>
    ReturnedToRenter,

    /// <summary>ζ failed (no renter rating): the escrow withholds the deposit under H.</summary>
    Withheld,
}

/// <summary>Where the rent ω went at settlement.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<RentOutcome>))]
public enum RentOutcome
{
    /// <summary>ξ: ω → β, the rent was paid to the leaser.</summary>
    PaidToLeaser,

    /// <summary>ξ failed (no leaser rating): the rent went back to the renter.</summary>
    ReturnedToRenter,
}

/// <summary>The Ratings accepted into a lease's settlement, one name per side.</summary>
public sealed class LeaseAcceptedRatings
{
    /// <summary>Name of the accepted Rating with rater Renter (Ra_R, signed by the renter as E(m'')).</summary>
    [JsonPropertyName("renter")]
    public string? Renter { get; set; }

    /// <summary>Name of the accepted Rating with rater Leaser (Ra_β, signed by β into m''' at settlement).</summary>
    [JsonPropertyName("leaser")]
    public string? Leaser { get; set; }

    /// <summary>The name recorded for <paramref name="rater"/>, or null.</summary>
    public string? Of(Rater rater) => rater == Rater.Renter ? Renter : Leaser;
}

/// <summary>The escrow's settlement: the decision-table row it applied and its signed receipt.</summary>
public sealed class LeaseSettlement
{
    /// <summary>Whether the renter's rating Ra_R was part of m_final.</summary>
    [JsonPropertyName("renterRated")]
    public bool? RenterRated { get; set; }

    /// <summary>Whether the leaser's rating Ra_β was part of m_final.</summary>
    [JsonPropertyName("leaserRated")]
    public bool? LeaserRated { get; set; }

    /// <summary>Where the deposit ρ went.</summary>
    [JsonPropertyName("deposit")]
    public DepositOutcome? Deposit { get; set; }

    /// <summary>Where the rent ω went.</summary>
    [JsonPropertyName("rent")]
    public RentOutcome? Rent { get; set; }

    /// <summary>The escrow's receipt, signed by π, as the JSON string it returned.</summary>
    [JsonPropertyName("receipt")]
    public string? Receipt { get; set; }

    /// <summary>When the escrow settled.</summary>
    [JsonPropertyName("settledAt")]
    [Format("date-time")]
    public DateTime? SettledAt { get; set; }
}
