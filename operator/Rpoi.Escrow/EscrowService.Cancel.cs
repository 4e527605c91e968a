using Rpoi.Escrow.Client;
using Rpoi.Escrow.Storage;
using Rpoi.Protocol;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Escrow;

/// <summary>The row NeverServed: a pledged lease cancelled before σ was delivered is refunded to R in full.</summary>
public sealed partial class EscrowService
{
    /// <summary>
    /// Refunds ρ + ω to R for a lease β declares never served (its signed <see cref="NeverServedNotice"/>). Only β gives
    /// something up by signing it (the rent), so no renter signature is needed. Exactly once per H, like a settlement: the
    /// same notice again (or another one for H) returns the first receipt; an H settled by m_final or the renter's claim
    /// (a served lease) is refused with <c>AlreadySettled</c> and nothing moves.
    /// </summary>
    public async Task<(SettlementView Settlement, bool Created)> NeverServedAsync(NeverServedRequest request, PartyIdentity? caller, CancellationToken ct)
    {
        var notice = Parse(Signed<NeverServedNotice>.Parse(Raw(request.Notice, "notice")), "notice");
        var h = Parse(TransactionHash.Parse(notice.Payload.H, "notice.h"), "notice.h");
        var pledge = await store.GetPledgeAsync(h.Hex, ct) ?? throw NoPledge(h.Hex, "notice.h");
        PartyIdentity leaser;
        if (caller is not null)
        {
            RequireCaller(caller, pledge.Leaser);
            leaser = caller;
        }
        else
        {
            leaser = _leasersByAddress.TryGetValue(pledge.Leaser, out var known)
                ? known
                : throw new EscrowRefusedException(ReasonCode.PartyMismatch.ToString(), "notice", $"leaser {pledge.Leaser} of this pledge is not configured on this escrow (Escrow:LeaserIdentityFiles), so its signature cannot be checked", 422);
        }

        var verified = Parse(RpoiEquations.VerifyNeverServed(notice, leaser, Keys.Identity.Address), "notice");
        var first = await store.GetSettlementAsync(h.Hex, ct);
        if (first is not null)
        {
            return (RequireNeverServed(first), false);
        }

        var (settlement, created) = await ApplyAsync(verified, ct);
        // A concurrent m_final may have settled H between the look-up and the store's transaction: the store returned
        // that first settlement, which must not pass for a refund.
        return created ? (settlement, true) : (RequireNeverServed(await store.GetSettlementAsync(h.Hex, ct) ?? throw NoPledge(h.Hex, "notice.h")), false);
    }

    private static SettlementView RequireNeverServed(SettlementRecord settlement)
    {
        var receipt = Signed<SettlementReceipt>.Parse(settlement.Receipt);
        if (receipt.TryGetValue(out var signed) && signed.Payload.Source == SettlementSource.NeverServed)
        {
            return View(settlement);
        }

        throw new EscrowRefusedException(
            EscrowReasons.AlreadySettled,
            "notice.h",
            $"H {settlement.H} was already settled by {(receipt.IsOk ? DescribeSource(receipt.Value.Payload.Source) : "an earlier settlement")} at {Storage.Ledger.FormatTime(settlement.SettledAt)}; a served lease is settled by the decision table, not refunded as never served",
            409);
    }

    private static string DescribeSource(SettlementSource source) => source switch
    {
        SettlementSource.LeaserFinal => "the leaser's m_final",
        SettlementSource.RenterFallback => "the renter's own claim",
        _ => "an earlier settlement",
    };
}
