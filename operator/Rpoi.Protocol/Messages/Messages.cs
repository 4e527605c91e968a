using System.Text.Json;
using System.Text.Json.Serialization;

namespace Rpoi.Protocol.Messages;

/// <summary>A party's two public keys, base64 (as carried in a request).</summary>
/// <param name="SigningKey">Ed25519 public key, base64 of 32 bytes.</param>
/// <param name="EncryptionKey">X25519 public key, base64 of 32 bytes.</param>
public sealed record PublicKeys(string SigningKey, string EncryptionKey);

/// <summary>An amount in the smallest unit of a denomination. Never a float.</summary>
/// <param name="Amount">Positive integer as a decimal string, e.g. "1500000".</param>
/// <param name="Denom">Denomination, e.g. "uusd".</param>
public sealed record Money(string Amount, string Denom);

/// <summary>The Kubernetes Lease object a request is bound to (Decision: binding stops copying a request into another namespace).</summary>
/// <param name="Namespace">Lease namespace.</param>
/// <param name="Name">Lease name.</param>
public sealed record LeaseRef(string Namespace, string Name);

/// <summary>Message kinds: every payload names what it is, so a signature over one kind cannot be replayed as another.</summary>
public static class MessageKinds
{
    /// <summary>Request m.</summary>
    public const string Request = "rpoi.request/v1";

    /// <summary>Granted lease m' = m + σ.</summary>
    public const string Grant = "rpoi.grant/v1";

    /// <summary>Renter rating m''.</summary>
    public const string RenterRating = "rpoi.renter-rating/v1";

    /// <summary>Leaser final m'''.</summary>
    public const string LeaserFinal = "rpoi.final/v1";

    /// <summary>Escrow settlement receipt.</summary>
    public const string Receipt = "rpoi.receipt/v1";

    /// <summary>β's notice that a pledged lease was never served (σ never delivered): refund ρ + ω to R.</summary>
    public const string NeverServed = "rpoi.never-served/v1";
}

/// <summary>Request m(R → β, Mϕ, T, ρ, ω): what the renter asks for and pledges. Signed by R (equation 1).</summary>
/// <param name="Kind">Always <see cref="MessageKinds.Request"/>.</param>
/// <param name="Renter">R's public keys (signing and encryption).</param>
/// <param name="Leaser">β's address.</param>
/// <param name="Escrow">π's address.</param>
/// <param name="Accelerator">Accelerator type, e.g. "tpu-v5-lite-podslice".</param>
/// <param name="Topology">Chip topology, e.g. "2x4".</param>
/// <param name="Chips">M: number of chips, &gt; 0.</param>
/// <param name="DurationSeconds">Lease duration in seconds, &gt; 0.</param>
/// <param name="Timestamp">T: when R signed, RFC 3339 UTC.</param>
/// <param name="Nonce">Random nonce (base64 of 16 or more bytes) against replay.</param>
/// <param name="Deposit">ρ: deposit returned to R on a good renter rating.</param>
/// <param name="Rent">ω: rent paid to β on a good leaser rating.</param>
/// <param name="Lease">The Lease object this request is for.</param>
public sealed record LeaseRequest(
    string Kind,
    PublicKeys Renter,
    string Leaser,
    string Escrow,
    string Accelerator,
    string Topology,
    int Chips,
    long DurationSeconds,
    DateTimeOffset Timestamp,
    string Nonce,
    Money Deposit,
    Money Rent,
    LeaseRef Lease);

/// <summary>The toleration a pod needs to land on the leased nodes.</summary>
/// <param name="Key">Taint key.</param>
/// <param name="Operator">"Equal" or "Exists".</param>
/// <param name="Value">Taint value (empty string for Exists).</param>
/// <param name="Effect">Taint effect, e.g. "NoSchedule".</param>
public sealed record Toleration(string Key, string Operator, string Value, string Effect);

/// <summary>Access grant σ(Mϕ → β): what the renter needs to use the leased chips.</summary>
/// <param name="NodeNames">Nodes claimed for this lease alone.</param>
/// <param name="NodePool">Node pool name.</param>
/// <param name="Accelerator">Accelerator type.</param>
/// <param name="Topology">Topology.</param>
/// <param name="NodeSelector">Labels a pod must select.</param>
/// <param name="Toleration">Toleration for the lease taint.</param>
/// <param name="Kubeconfig">Kubeconfig with a short-lived ServiceAccount token scoped to the lease.</param>
/// <param name="PodTemplate">A ready pod template (JSON object).</param>
/// <param name="ValidFrom">Start of validity.</param>
/// <param name="ValidUntil">End of validity.</param>
public sealed record AccessGrant(
    IReadOnlyList<string> NodeNames,
    string NodePool,
    string Accelerator,
    string Topology,
    IReadOnlyDictionary<string, string> NodeSelector,
    Toleration Toleration,
    string Kubeconfig,
    JsonElement PodTemplate,
    DateTimeOffset ValidFrom,
    DateTimeOffset ValidUntil);

/// <summary>m' = m + σ, signed by β and sealed to R (equation 3). Carries E(m) itself so R can check it is its own request.</summary>
/// <param name="Kind">Always <see cref="MessageKinds.Grant"/>.</param>
/// <param name="H">Transaction hash of <paramref name="Request"/>.</param>
/// <param name="Request">E(m), the renter's signed request.</param>
/// <param name="Grant">σ.</param>
public sealed record GrantedLease(string Kind, string H, Signed<LeaseRequest> Request, AccessGrant Grant);

/// <summary>A rating Ra: score 1..5, a comment, and when it was given.</summary>
/// <param name="Score">1 (worst) .. 5 (best).</param>
/// <param name="Comment">Free text (may be empty).</param>
/// <param name="Time">When the rating was given.</param>
public sealed record Rating(int Score, string Comment, DateTimeOffset Time);

/// <summary>m'' = E(m) + H + digest(σ) + Ra_R, signed by R (equation 18). Decision: π gets SHA-256 of σ, never σ.</summary>
/// <param name="Kind">Always <see cref="MessageKinds.RenterRating"/>.</param>
/// <param name="H">Transaction hash.</param>
/// <param name="Request">E(m).</param>
/// <param name="GrantDigest">Lower-case hex SHA-256 of the canonical bytes of σ.</param>
/// <param name="Rating">Ra_R (R → β).</param>
public sealed record RenterRating(string Kind, string H, Signed<LeaseRequest> Request, string GrantDigest, Rating Rating);

/// <summary>
/// m''' = E(m'') + Ra_β, signed by β and sealed to π as m_final (equation 19). Either rating may be
/// absent (the failure table): E(m) is carried on its own so π can settle without the renter's rating.
/// </summary>
/// <param name="Kind">Always <see cref="MessageKinds.LeaserFinal"/>.</param>
/// <param name="H">Transaction hash.</param>
/// <param name="Request">E(m).</param>
/// <param name="GrantDigest">Lower-case hex SHA-256 of σ as β issued it.</param>
/// <param name="RenterRating">E(m'') when R rated in the window; null otherwise.</param>
/// <param name="LeaserRating">Ra_β when β rated; null otherwise.</param>
public sealed record LeaserFinal(
    string Kind,
    string H,
    Signed<LeaseRequest> Request,
    string GrantDigest,
    Signed<RenterRating>? RenterRating = null,
    Rating? LeaserRating = null);

/// <summary>Where the deposit ρ goes (equation 20, ζ).</summary>
public enum DepositDisposition
{
    /// <summary>ζ succeeds: ρ → R.</summary>
    ToRenter = 1,

    /// <summary>ζ fails: π keeps ρ as Withheld under H until adjudication.</summary>
    Withheld,
}

/// <summary>Where the rent ω goes (equation 21, ξ).</summary>
public enum RentDisposition
{
    /// <summary>ξ succeeds: ω → β.</summary>
    ToLeaser = 1,

    /// <summary>ξ fails: ω goes back to R.</summary>
    BackToRenter,
}

/// <summary>How the settlement reached π.</summary>
public enum SettlementSource
{
    /// <summary>β submitted m_final.</summary>
    LeaserFinal = 1,

    /// <summary>R submitted its own E(m'') after the rating window plus grace (β never submitted).</summary>
    RenterFallback,

    /// <summary>β declared the lease never served (no σ delivered): ρ + ω back to R in full, no ratings.</summary>
    NeverServed,
}

/// <summary>The decision row of the failure table for one lease.</summary>
/// <param name="RenterRated">Ra_R present.</param>
/// <param name="LeaserRated">Ra_β present.</param>
/// <param name="Deposit">ζ outcome.</param>
/// <param name="Rent">ξ outcome.</param>
public sealed record SettlementDecision(bool RenterRated, bool LeaserRated, DepositDisposition Deposit, RentDisposition Rent);

/// <summary>Whether a transfer moved funds or left them withheld.</summary>
public enum TransferStatus
{
    /// <summary>Funds moved to <see cref="Transfer.To"/>.</summary>
    Transferred = 1,

    /// <summary>Funds stay with π as Withheld under H.</summary>
    Withheld,
}

/// <summary>One movement of funds recorded by π.</summary>
/// <param name="Purpose">"deposit" (ρ) or "rent" (ω).</param>
/// <param name="Amount">The amount.</param>
/// <param name="From">Source address (π's hold for H).</param>
/// <param name="To">Destination address (π itself when withheld).</param>
/// <param name="Status">Transferred or Withheld.</param>
public sealed record Transfer(string Purpose, Money Amount, string From, string To, TransferStatus Status);

/// <summary>π's signed settlement receipt for H.</summary>
/// <param name="Kind">Always <see cref="MessageKinds.Receipt"/>.</param>
/// <param name="H">Transaction hash.</param>
/// <param name="Escrow">π's address.</param>
/// <param name="Source">Who submitted the settlement.</param>
/// <param name="Decision">The failure-table row applied.</param>
/// <param name="Transfers">The transfers recorded.</param>
/// <param name="Time">Settlement time.</param>
/// <param name="LedgerEntry">Reference of the ledger entry (e.g. its sequence number or hash).</param>
public sealed record SettlementReceipt(
    string Kind,
    string H,
    string Escrow,
    SettlementSource Source,
    SettlementDecision Decision,
    IReadOnlyList<Transfer> Transfers,
    DateTimeOffset Time,
    string LedgerEntry);
