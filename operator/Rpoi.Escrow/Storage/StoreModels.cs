using Rpoi.Protocol.Messages;

namespace Rpoi.Escrow.Storage;

/// <summary>A credit from the on-ramp.</summary>
public sealed record DepositCommand(string DepositId, string Address, string Denom, long Amount, DateTimeOffset At);

/// <summary>A stored deposit.</summary>
public sealed record DepositRecord(string DepositId, string Address, string Denom, long Amount, long Seq);

/// <summary>
/// A pledge to hold ρ + ω of the renter under H; <c>Request</c> keeps the canonical E(m) as received, for audits.
/// <c>Nonce</c>, when given, is recorded in the same transaction and refuses the pledge if the renter already used it
/// for another H within the age window (<see cref="Rpoi.Protocol.Checks.ReasonCode.NonceReplayed"/>).
/// </summary>
public sealed record PledgeCommand(
    string H,
    string Renter,
    string Leaser,
    string DepositDenom,
    long Deposit,
    string RentDenom,
    long Rent,
    string Request,
    DateTimeOffset At,
    DateTimeOffset ClaimableAfter,
    RequestNonce? Nonce = null);

/// <summary>A request's nonce as π remembers it: unique per renter key until <paramref name="ExpiresAt"/> (signing time + the age window).</summary>
public sealed record RequestNonce(string RenterKeyId, string Nonce, DateTimeOffset ExpiresAt);

/// <summary>Pledge states.</summary>
public static class PledgeStates
{
    /// <summary>ρ + ω held under H.</summary>
    public const string Held = "Held";
    /// <summary>Settled; the settlement row says where the money went.</summary>
    public const string Settled = "Settled";
}

/// <summary>A stored pledge.</summary>
public sealed record PledgeRecord(
    string H,
    string Renter,
    string Leaser,
    string DepositDenom,
    long Deposit,
    string RentDenom,
    long Rent,
    string State,
    string Request,
    DateTimeOffset PledgedAt,
    DateTimeOffset ClaimableAfter);

/// <summary>The outcome of a pledge call: the record and whether this call created it.</summary>
public sealed record PledgeResult(PledgeRecord Pledge, bool Created);

/// <summary>
/// Settle H by the decision table. <c>Receipt</c> makes π's signed receipt from the seq of the
/// settlement's first ledger entry; it is called inside the transaction, only when this call settles H.
/// <c>LeaserFinal</c> is β's signed m''' that π opened from m_final (null for the renter's fallback and a never-served
/// refund): kept with the settlement because, once the lease has ended, it is the only β signature over σ's digest left
/// for a proof bundle (it holds the digest, never σ, so nothing secret).
/// </summary>
public sealed record SettleCommand(
    string H,
    DepositDisposition Deposit,
    RentDisposition Rent,
    Func<long, string> Receipt,
    DateTimeOffset At,
    string? LeaserFinal = null);

/// <summary>A stored settlement; <c>LeaserFinal</c> is the signed m''' when β's m_final settled it (else null).</summary>
public sealed record SettlementRecord(
    string H,
    DepositDisposition Deposit,
    RentDisposition Rent,
    string Receipt,
    DateTimeOffset SettledAt,
    string? LeaserFinal = null);

/// <summary>The outcome of a settle call: the (first) settlement and whether this call made it.</summary>
public sealed record SettleResult(SettlementRecord Settlement, bool Created);

/// <summary>Withheld states.</summary>
public static class WithheldStates
{
    /// <summary>Held by π, waiting for adjudication.</summary>
    public const string Withheld = "Withheld";
    /// <summary>Released by adjudication.</summary>
    public const string Released = "Released";
}

/// <summary>Funds withheld under H.</summary>
public sealed record WithheldRecord(string H, string Denom, long Amount, string State, string? ReleasedTo, DateTimeOffset? ReleasedAt);

/// <summary>Release what is withheld under H to <paramref name="To"/> (an address).</summary>
public sealed record ReleaseCommand(string H, string To, DateTimeOffset At);

/// <summary>One hash-chained ledger entry.</summary>
public sealed record LedgerEntry(
    long Seq,
    DateTimeOffset At,
    string Kind,
    string? H,
    string Debit,
    string Credit,
    string Denom,
    long Amount,
    string PrevHash,
    string Hash);

/// <summary>
/// Totals of one denomination, summed exactly (decimal, so the audit itself cannot overflow); the audit fails where one
/// does not fit the ledger's 64 bits.
/// </summary>
public sealed record DenomTotal(string Denom, decimal Balances, decimal Held, decimal Withheld, decimal Deposits);

/// <summary>Result of re-hashing the chain and checking the invariant.</summary>
public sealed record AuditResult(bool Ok, long Entries, string Head, IReadOnlyList<DenomTotal> Totals, IReadOnlyList<string> Problems);
