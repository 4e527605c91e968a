using System.Text.Json;
using System.Text.Json.Serialization;

namespace Rpoi.Escrow.Client;

/// <summary>An amount in the smallest unit of a denomination, as PROTOCOL.md writes it: an integer string, never a float.</summary>
/// <param name="Amount">Non-negative integer string, e.g. "1500000".</param>
/// <param name="Denom">Denomination, e.g. "uusd".</param>
public sealed record EscrowAmount(
    [property: JsonPropertyName("amount")] string Amount,
    [property: JsonPropertyName("denom")] string Denom);

/// <summary>π's public identity: its address and the public keys parties seal to and verify with.</summary>
public sealed record EscrowIdentity(
    [property: JsonPropertyName("address")] string Address,
    [property: JsonPropertyName("keyId")] string KeyId,
    [property: JsonPropertyName("signingPublicKey")] string SigningPublicKey,
    [property: JsonPropertyName("encryptionPublicKey")] string EncryptionPublicKey);

/// <summary>The on-ramp: credit <paramref name="Amount"/> to <paramref name="Address"/>. <paramref name="DepositId"/> makes it idempotent.</summary>
public sealed record DepositRequest(
    [property: JsonPropertyName("depositId")] string DepositId,
    [property: JsonPropertyName("address")] string Address,
    [property: JsonPropertyName("amount")] EscrowAmount Amount);

/// <summary>A recorded deposit; <paramref name="Seq"/> is its ledger entry.</summary>
public sealed record DepositReceipt(
    [property: JsonPropertyName("depositId")] string DepositId,
    [property: JsonPropertyName("address")] string Address,
    [property: JsonPropertyName("amount")] EscrowAmount Amount,
    [property: JsonPropertyName("seq")] long Seq);

/// <summary>An account: an address and its free balance per denomination.</summary>
public sealed record AccountView(
    [property: JsonPropertyName("address")] string Address,
    [property: JsonPropertyName("balances")] IReadOnlyList<EscrowAmount> Balances);

/// <summary>Pledge E(m) to π: the renter-signed request, as it sits in <c>Lease.spec</c>.</summary>
public sealed record PledgeRequest([property: JsonPropertyName("signedRequest")] JsonElement SignedRequest);

/// <summary>A pledge held (or settled) under the transaction hash H.</summary>
public sealed record PledgeView(
    [property: JsonPropertyName("h")] string H,
    [property: JsonPropertyName("renter")] string Renter,
    [property: JsonPropertyName("leaser")] string Leaser,
    [property: JsonPropertyName("deposit")] EscrowAmount Deposit,
    [property: JsonPropertyName("rent")] EscrowAmount Rent,
    [property: JsonPropertyName("state")] string State,
    [property: JsonPropertyName("pledgedAt")] string PledgedAt,
    [property: JsonPropertyName("claimableAfter")] string ClaimableAfter);

/// <summary>Settle: m_final, sealed to π by the leaser.</summary>
public sealed record SettlementRequest([property: JsonPropertyName("final")] JsonElement Final);

/// <summary>The renter's own claim E(m'') when the leaser never settled.</summary>
public sealed record ClaimRequest([property: JsonPropertyName("renterRating")] JsonElement RenterRating);

/// <summary>
/// A settlement: where ρ and ω went and π's signed receipt. A replay returns the first one. <c>LeaserFinal</c> is β's
/// signed m''' (<c>rpoi.final/v1</c>) that π opened from m_final, present only when m_final settled H (absent for the
/// renter's fallback, a never-served refund and settlements made before π kept it): the β signature over σ's digest a
/// proof bundle needs after the lease has ended. It holds σ's digest, never σ.
/// </summary>
public sealed record SettlementView(
    [property: JsonPropertyName("h")] string H,
    [property: JsonPropertyName("deposit")] string Deposit,
    [property: JsonPropertyName("rent")] string Rent,
    [property: JsonPropertyName("settledAt")] string SettledAt,
    [property: JsonPropertyName("receipt")] JsonElement Receipt,
    [property: JsonPropertyName("leaserFinal"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] JsonElement? LeaserFinal = null);

/// <summary>Funds withheld by π under H (ζ failed), until adjudicated.</summary>
public sealed record WithheldView(
    [property: JsonPropertyName("h")] string H,
    [property: JsonPropertyName("amount")] EscrowAmount Amount,
    [property: JsonPropertyName("state")] string State,
    [property: JsonPropertyName("releasedTo")] string? ReleasedTo,
    [property: JsonPropertyName("releasedAt")] string? ReleasedAt);

/// <summary>Adjudication: release what is withheld under H to the renter or the leaser.</summary>
/// <param name="H">Transaction hash.</param>
/// <param name="To">"renter" or "leaser".</param>
public sealed record ReleaseRequest(
    [property: JsonPropertyName("h")] string H,
    [property: JsonPropertyName("to")] string To);

/// <summary>One ledger entry: <paramref name="Amount"/> moved from bucket <paramref name="Debit"/> to bucket <paramref name="Credit"/>.</summary>
public sealed record LedgerEntryView(
    [property: JsonPropertyName("seq")] long Seq,
    [property: JsonPropertyName("at")] string At,
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("h")] string? H,
    [property: JsonPropertyName("debit")] string Debit,
    [property: JsonPropertyName("credit")] string Credit,
    [property: JsonPropertyName("amount")] EscrowAmount Amount,
    [property: JsonPropertyName("prevHash")] string PrevHash,
    [property: JsonPropertyName("hash")] string Hash);

/// <summary>A page of the ledger; pass <paramref name="Next"/> as <c>after</c> for the next page (null at the end).</summary>
public sealed record LedgerPage(
    [property: JsonPropertyName("entries")] IReadOnlyList<LedgerEntryView> Entries,
    [property: JsonPropertyName("next")] long? Next);

/// <summary>Totals of one denomination for the invariant balances + held + withheld = deposits.</summary>
public sealed record DenomTotals(
    [property: JsonPropertyName("denom")] string Denom,
    [property: JsonPropertyName("balances")] string Balances,
    [property: JsonPropertyName("held")] string Held,
    [property: JsonPropertyName("withheld")] string Withheld,
    [property: JsonPropertyName("deposits")] string Deposits);

/// <summary>The audit: is the chain intact, does replaying it give the tables, and does the invariant hold.</summary>
public sealed record LedgerAudit(
    [property: JsonPropertyName("ok")] bool Ok,
    [property: JsonPropertyName("entries")] long Entries,
    [property: JsonPropertyName("head")] string Head,
    [property: JsonPropertyName("totals")] IReadOnlyList<DenomTotals> Totals,
    [property: JsonPropertyName("problems")] IReadOnlyList<string> Problems);
