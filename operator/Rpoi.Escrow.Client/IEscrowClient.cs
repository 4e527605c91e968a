using Rpoi.Protocol.Messages;

namespace Rpoi.Escrow.Client;

/// <summary>
/// π's API for the operator and the CLI. Every call is idempotent (deposits by id, pledges and
/// settlements by H), so the implementation retries transient failures. Refusals throw
/// <see cref="EscrowException"/> with π's reason code.
/// </summary>
public interface IEscrowClient
{
    /// <summary>π's address and public keys.</summary>
    Task<EscrowIdentity> GetIdentityAsync(CancellationToken ct = default);

    /// <summary>Credits an account (admin).</summary>
    Task<DepositReceipt> DepositAsync(DepositRequest request, CancellationToken ct = default);

    /// <summary>An account's free balances.</summary>
    Task<AccountView> GetAccountAsync(string address, CancellationToken ct = default);

    /// <summary>Pledges E(m): debits ρ + ω from the renter and holds them under H.</summary>
    Task<PledgeView> PledgeAsync(Signed<LeaseRequest> signedRequest, CancellationToken ct = default);

    /// <summary>The pledge under H, or null when there is none.</summary>
    Task<PledgeView?> GetPledgeAsync(string h, CancellationToken ct = default);

    /// <summary>Settles with m_final; a replay returns the first receipt.</summary>
    Task<SettlementView> SettleAsync(SealedMessage final, CancellationToken ct = default);

    /// <summary>The settlement of H (with β's signed m''' as <see cref="SettlementView.LeaserFinal"/> when m_final settled it), or null when H is not settled.</summary>
    Task<SettlementView?> GetSettlementAsync(string h, CancellationToken ct = default);

    /// <summary>The renter's own claim with E(m'') after the rating window plus grace.</summary>
    Task<SettlementView> ClaimAsync(Signed<RenterRating> renterRating, CancellationToken ct = default);

    /// <summary>
    /// Refunds a pledged lease that was never served (row NeverServed: ρ + ω back to R) on β's signed notice; a repeat
    /// returns the first receipt. Refused with <c>AlreadySettled</c> when H was settled otherwise.
    /// </summary>
    Task<SettlementView> NeverServedAsync(Signed<NeverServedNotice> notice, CancellationToken ct = default);

    /// <summary>Everything withheld.</summary>
    Task<IReadOnlyList<WithheldView>> GetWithheldAsync(CancellationToken ct = default);

    /// <summary>Adjudication (admin): releases what is withheld under H.</summary>
    Task<WithheldView> ReleaseWithheldAsync(ReleaseRequest request, CancellationToken ct = default);

    /// <summary>A page of the ledger after <paramref name="after"/>.</summary>
    Task<LedgerPage> GetLedgerAsync(long after = 0, int limit = 100, CancellationToken ct = default);

    /// <summary>Re-hashes the chain and checks the invariant.</summary>
    Task<LedgerAudit> VerifyLedgerAsync(CancellationToken ct = default);
}
