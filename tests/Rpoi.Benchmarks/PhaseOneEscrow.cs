using System.Collections.Concurrent;
using System.Globalization;
using Rpoi.Escrow.Client;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Benchmarks;

/// <summary>
/// An in-memory π for the phase I benchmark, so the figures measure the operator and the API server, not an HTTP hop
/// to the escrow. It keeps the pledge semantics the reconciler relies on: R's signature and the escrow address are
/// verified, ρ + ω is debited from R's free balance once, and a repeated pledge under the same H returns the held one.
/// Phase II calls are refused with a clear reason.
/// </summary>
internal sealed class PhaseOneEscrow : IEscrowClient
{
    private readonly PartyKeyPair keys;
    private readonly ConcurrentDictionary<string, PledgeView> pledges = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> balances = new(StringComparer.Ordinal);
    private readonly Lock gate = new();
    private int pledgeCalls;

    public PhaseOneEscrow(PartyKeyPair escrowKeys) => keys = escrowKeys;

    /// <summary>First-time pledges (debits).</summary>
    public int Debits => pledges.Count;

    /// <summary>Pledge calls that reached π (retries and repeats included).</summary>
    public int PledgeCalls => Volatile.Read(ref pledgeCalls);

    public Task<EscrowIdentity> GetIdentityAsync(CancellationToken ct = default)
    {
        var id = keys.Identity;
        return Task.FromResult(new EscrowIdentity(id.Address, id.KeyId, id.SigningKeyBase64, id.EncryptionKeyBase64));
    }

    public Task<DepositReceipt> DepositAsync(DepositRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var amount = long.Parse(request.Amount.Amount, CultureInfo.InvariantCulture);
        balances.AddOrUpdate(request.Address, amount, (_, b) => b + amount);
        return Task.FromResult(new DepositReceipt(request.DepositId, request.Address, request.Amount, balances.Count));
    }

    public Task<AccountView> GetAccountAsync(string address, CancellationToken ct = default) =>
        Task.FromResult(new AccountView(address, [new EscrowAmount(balances.GetValueOrDefault(address).ToString(CultureInfo.InvariantCulture), "uusd")]));

    public Task<PledgeView> PledgeAsync(Signed<LeaseRequest> signedRequest, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(signedRequest);
        Interlocked.Increment(ref pledgeCalls);
        var verified = RpoiEquations.VerifyRequest(signedRequest);
        if (!verified.IsOk)
        {
            throw new EscrowException(400, verified.Reason.ToString()!, "signedRequest", verified.Message);
        }

        var m = signedRequest.Payload;
        if (m.Escrow != keys.Identity.Address)
        {
            throw new EscrowException(400, EscrowReasons.WrongEscrow, "signedRequest.payload.escrow", $"this escrow is {keys.Identity.Address}, not {m.Escrow}");
        }

        var h = verified.Value.H.Hex;
        lock (gate)
        {
            if (pledges.TryGetValue(h, out var existing))
            {
                return Task.FromResult(existing);
            }

            var renter = verified.Value.Renter.Address;
            var total = long.Parse(m.Deposit.Amount, CultureInfo.InvariantCulture) + long.Parse(m.Rent.Amount, CultureInfo.InvariantCulture);
            var balance = balances.GetValueOrDefault(renter);
            if (balance < total)
            {
                throw new EscrowException(402, EscrowReasons.InsufficientFunds, null, $"{renter} holds {balance} uusd, the pledge needs {total}");
            }

            balances[renter] = balance - total;
            var now = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
            var view = new PledgeView(h, renter, m.Leaser, new EscrowAmount(m.Deposit.Amount, m.Deposit.Denom), new EscrowAmount(m.Rent.Amount, m.Rent.Denom), "Held", now, now);
            pledges[h] = view;
            return Task.FromResult(view);
        }
    }

    public Task<PledgeView?> GetPledgeAsync(string h, CancellationToken ct = default) => Task.FromResult(pledges.GetValueOrDefault(h));

    public Task<SettlementView> SettleAsync(SealedMessage final, CancellationToken ct = default) => throw PhaseTwo();

    public Task<SettlementView?> GetSettlementAsync(string h, CancellationToken ct = default) => Task.FromResult<SettlementView?>(null);

    public Task<SettlementView> ClaimAsync(Signed<RenterRating> renterRating, CancellationToken ct = default) => throw PhaseTwo();

    public Task<IReadOnlyList<WithheldView>> GetWithheldAsync(CancellationToken ct = default) => Task.FromResult<IReadOnlyList<WithheldView>>([]);

    public Task<WithheldView> ReleaseWithheldAsync(ReleaseRequest request, CancellationToken ct = default) =>
        throw new EscrowException(404, EscrowReasons.WithheldNotFound, "h", "the benchmark's in-memory escrow never withholds funds");

    public Task<LedgerPage> GetLedgerAsync(long after = 0, int limit = 100, CancellationToken ct = default) => Task.FromResult(new LedgerPage([], null));

    public Task<LedgerAudit> VerifyLedgerAsync(CancellationToken ct = default) => Task.FromResult(new LedgerAudit(true, 0, string.Empty, [], []));

    private static EscrowException PhaseTwo() =>
        new(409, EscrowReasons.InvalidMessage, null, "the benchmark's in-memory escrow covers phase I only");
}
