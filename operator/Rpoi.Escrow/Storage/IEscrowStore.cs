namespace Rpoi.Escrow.Storage;

/// <summary>
/// π's ledger store. Every write is one database transaction that appends its hash-chained ledger
/// entries and changes the tables together, so a crash at any point leaves the ledger whole.
/// Refusals are <see cref="EscrowRefusedException"/>s thrown before commit: nothing moves.
/// </summary>
public interface IEscrowStore : IAsyncDisposable
{
    /// <summary>Creates the schema if it is missing.</summary>
    Task InitializeAsync(CancellationToken ct = default);

    /// <summary>Credits an account from the on-ramp; idempotent by deposit id.</summary>
    Task<DepositRecord> DepositAsync(DepositCommand command, CancellationToken ct = default);

    /// <summary>Free balances of an address, per denomination.</summary>
    Task<IReadOnlyDictionary<string, long>> GetBalancesAsync(string address, CancellationToken ct = default);

    /// <summary>Debits ρ + ω from the renter and holds them under H; idempotent by H.</summary>
    Task<PledgeResult> PledgeAsync(PledgeCommand command, CancellationToken ct = default);

    /// <summary>The pledge under H, if any.</summary>
    Task<PledgeRecord?> GetPledgeAsync(string h, CancellationToken ct = default);

    /// <summary>Settles H by the decision table, exactly once: a second call returns the first settlement.</summary>
    Task<SettleResult> SettleAsync(SettleCommand command, CancellationToken ct = default);

    /// <summary>The settlement of H, if any.</summary>
    Task<SettlementRecord?> GetSettlementAsync(string h, CancellationToken ct = default);

    /// <summary>Everything withheld, released or not, oldest first.</summary>
    Task<IReadOnlyList<WithheldRecord>> ListWithheldAsync(CancellationToken ct = default);

    /// <summary>Releases what is withheld under H to an address; idempotent for the same address.</summary>
    Task<WithheldRecord> ReleaseAsync(ReleaseCommand command, CancellationToken ct = default);

    /// <summary>Ledger entries with seq &gt; <paramref name="after"/>, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<LedgerEntry>> ReadLedgerAsync(long after, int limit, CancellationToken ct = default);

    /// <summary>Re-hashes the chain, replays it against the tables and checks the invariant, in one snapshot.</summary>
    Task<AuditResult> AuditAsync(CancellationToken ct = default);
}
