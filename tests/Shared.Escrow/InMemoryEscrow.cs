using System.Collections.Concurrent;
using System.Globalization;
using Rpoi.Escrow.Client;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Tests.Shared;

/// <summary>
/// An in-memory π with the phase I semantics of the real service: a pledge verifies R's signature and the escrow
/// address, debits ρ + ω from R's free balance once and is idempotent by H (a repeat returns the held pledge). It
/// counts pledge calls and can fail the next calls transiently (503), so tests can check that the operator never
/// pledges twice and retries when π is down, and the phase I benchmark measures the operator, not an HTTP hop.
/// Settlement is phase II and refused with a clear reason; phase II tests use the real Rpoi.Escrow service.
/// </summary>
/// <remarks>
/// Linked as source into Rpoi.Operator.Tests and Rpoi.Benchmarks (not into tests/Shared, whose projects know
/// nothing about RPOI).
/// </remarks>
public sealed class InMemoryEscrow : IEscrowClient
{
    private readonly PartyKeyPair keys;
    private readonly TimeProvider time;
    private readonly ConcurrentDictionary<string, PledgeView> pledges = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> balances = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SettlementView> refunds = new(StringComparer.Ordinal);
    private readonly PartyIdentity? leaser;
    private readonly Lock gate = new();
    private int failNext;
    private int pledgeCalls;

    /// <summary>
    /// Creates π with <paramref name="escrowKeys"/>; pledges are stamped with <paramref name="time"/>. With
    /// <paramref name="trustedLeaser"/> it also answers β's never-served notices (row NeverServed) as the real π does.
    /// </summary>
    public InMemoryEscrow(PartyKeyPair escrowKeys, TimeProvider time, PartyIdentity? trustedLeaser = null)
    {
        leaser = trustedLeaser;
        ArgumentNullException.ThrowIfNull(escrowKeys);
        ArgumentNullException.ThrowIfNull(time);
        keys = escrowKeys;
        this.time = time;
    }

    /// <summary>Number of successful (first-time) pledges, i.e. debits.</summary>
    public int Debits => pledges.Count;

    /// <summary>Number of <see cref="PledgeAsync"/> calls that reached π (retries and repeats included).</summary>
    public int PledgeCalls => Volatile.Read(ref pledgeCalls);

    /// <summary>Makes the next <paramref name="count"/> calls fail with 503 (π unreachable).</summary>
    public void FailNext(int count) => Volatile.Write(ref failNext, count);

    /// <summary>The pledge under H, if any (test inspection).</summary>
    public PledgeView? Pledge(string h) => pledges.GetValueOrDefault(h);

    /// <summary>Free balance of an address in uusd.</summary>
    public long Balance(string address) => balances.GetValueOrDefault(address);

    /// <inheritdoc/>
    public Task<EscrowIdentity> GetIdentityAsync(CancellationToken ct = default)
    {
        Transient();
        var id = keys.Identity;
        return Task.FromResult(new EscrowIdentity(id.Address, id.KeyId, id.SigningKeyBase64, id.EncryptionKeyBase64));
    }

    /// <inheritdoc/>
    public Task<DepositReceipt> DepositAsync(DepositRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        Transient();
        var amount = long.Parse(request.Amount.Amount, CultureInfo.InvariantCulture);
        balances.AddOrUpdate(request.Address, amount, (_, b) => b + amount);
        return Task.FromResult(new DepositReceipt(request.DepositId, request.Address, request.Amount, balances.Count));
    }

    /// <inheritdoc/>
    public Task<AccountView> GetAccountAsync(string address, CancellationToken ct = default)
    {
        Transient();
        return Task.FromResult(new AccountView(address, [new EscrowAmount(Balance(address).ToString(CultureInfo.InvariantCulture), "uusd")]));
    }

    /// <inheritdoc/>
    public Task<PledgeView> PledgeAsync(Signed<LeaseRequest> signedRequest, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(signedRequest);
        Transient();
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
        // One gate around check-debit-record, so concurrent replicas pledging the same H debit R once.
        lock (gate)
        {
            if (pledges.TryGetValue(h, out var existing))
            {
                return Task.FromResult(existing);
            }

            var renter = verified.Value.Renter.Address;
            var total = long.Parse(m.Deposit.Amount, CultureInfo.InvariantCulture) + long.Parse(m.Rent.Amount, CultureInfo.InvariantCulture);
            var balance = Balance(renter);
            if (balance < total)
            {
                throw new EscrowException(402, EscrowReasons.InsufficientFunds, null, $"{renter} holds {balance} uusd, the pledge needs {total}");
            }

            balances[renter] = balance - total;
            var now = time.GetUtcNow().ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
            var view = new PledgeView(h, renter, m.Leaser, new EscrowAmount(m.Deposit.Amount, m.Deposit.Denom), new EscrowAmount(m.Rent.Amount, m.Rent.Denom), "Held", now, now);
            pledges[h] = view;
            return Task.FromResult(view);
        }
    }

    /// <inheritdoc/>
    public Task<PledgeView?> GetPledgeAsync(string h, CancellationToken ct = default)
    {
        Transient();
        return Task.FromResult(pledges.GetValueOrDefault(h));
    }

    /// <inheritdoc/>
    public Task<SettlementView> SettleAsync(SealedMessage final, CancellationToken ct = default) => throw PhaseTwo();

    /// <inheritdoc/>
    public Task<SettlementView?> GetSettlementAsync(string h, CancellationToken ct = default) => Task.FromResult(refunds.GetValueOrDefault(h));

    /// <summary>Number of never-served refunds made (first-time only).</summary>
    public int Refunds => refunds.Count;

    /// <inheritdoc/>
    public Task<SettlementView> NeverServedAsync(Signed<NeverServedNotice> notice, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(notice);
        Transient();
        if (leaser is null)
        {
            throw PhaseTwo();
        }

        var verified = RpoiEquations.VerifyNeverServed(notice, leaser, keys.Identity.Address);
        if (!verified.IsOk)
        {
            throw new EscrowException(422, verified.Reason.ToString()!, "notice", verified.Message);
        }

        var h = verified.Value.H.Hex;
        lock (gate)
        {
            if (refunds.TryGetValue(h, out var first))
            {
                return Task.FromResult(first);
            }

            var pledge = pledges.GetValueOrDefault(h) ?? throw new EscrowException(404, EscrowReasons.PledgeNotFound, "notice.h", $"no pledge is held under H {h}");
            var m = verified.Value.Request.Payload;
            var total = long.Parse(m.Deposit.Amount, CultureInfo.InvariantCulture) + long.Parse(m.Rent.Amount, CultureInfo.InvariantCulture);
            balances.AddOrUpdate(pledge.Renter, total, (_, b) => b + total);
            pledges[h] = pledge with { State = "Settled" };
            var receipt = RpoiEquations.SignReceipt(
                new SettlementReceipt(MessageKinds.Receipt, h, keys.Identity.Address, SettlementSource.NeverServed, RpoiEquations.NeverServedDecision,
                    RpoiEquations.TransfersFor(m, RpoiEquations.NeverServedDecision, keys.Identity.Address), time.GetUtcNow(), "memory:" + refunds.Count.ToString(CultureInfo.InvariantCulture)),
                keys);
            using var doc = System.Text.Json.JsonDocument.Parse(receipt.ToJson());
            var view = new SettlementView(h, "ToRenter", "BackToRenter", time.GetUtcNow().ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture), doc.RootElement.Clone());
            refunds[h] = view;
            return Task.FromResult(view);
        }
    }

    /// <inheritdoc/>
    public Task<SettlementView> ClaimAsync(Signed<RenterRating> renterRating, CancellationToken ct = default) => throw PhaseTwo();

    /// <inheritdoc/>
    public Task<IReadOnlyList<WithheldView>> GetWithheldAsync(CancellationToken ct = default) => Task.FromResult<IReadOnlyList<WithheldView>>([]);

    /// <inheritdoc/>
    public Task<WithheldView> ReleaseWithheldAsync(ReleaseRequest request, CancellationToken ct = default) =>
        throw new EscrowException(404, EscrowReasons.WithheldNotFound, "h", "this in-memory escrow never withholds funds");

    /// <inheritdoc/>
    public Task<LedgerPage> GetLedgerAsync(long after = 0, int limit = 100, CancellationToken ct = default) =>
        Task.FromResult(new LedgerPage([], null));

    /// <inheritdoc/>
    public Task<LedgerAudit> VerifyLedgerAsync(CancellationToken ct = default) =>
        Task.FromResult(new LedgerAudit(true, 0, string.Empty, [], []));

    private static EscrowException PhaseTwo() =>
        new(409, EscrowReasons.InvalidMessage, null, "the in-memory escrow covers phase I only; settle against the real Rpoi.Escrow service");

    private void Transient()
    {
        while (true)
        {
            var left = Volatile.Read(ref failNext);
            if (left <= 0)
            {
                return;
            }

            if (Interlocked.CompareExchange(ref failNext, left - 1, left) == left)
            {
                throw new EscrowException(503, EscrowReasons.Internal, null, "escrow unavailable (injected)");
            }
        }
    }
}
