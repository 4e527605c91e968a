using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Protocol;

public static partial class RpoiEquations
{
    /// <summary>
    /// The row <c>NeverServed</c> (not in the paper, which only knows leases that were served): no rating on either
    /// side, and still ρ → R and ω back to R, because the renter never received σ and so owes nothing.
    /// </summary>
    public static SettlementDecision NeverServedDecision { get; } = new(false, false, DepositDisposition.ToRenter, RentDisposition.BackToRenter);

    /// <summary>β signs "the lease under H was never served": the authorisation for π to refund ρ + ω to R in full.</summary>
    /// <exception cref="ArgumentException"><paramref name="reason"/> is empty.</exception>
    public static Signed<NeverServedNotice> SignNeverServed(Signed<LeaseRequest> request, string reason, DateTimeOffset time, PartyKeyPair leaser)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(leaser);
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        var notice = new NeverServedNotice(MessageKinds.NeverServed, TransactionHashOf(request).Hex, request, reason, time);
        return Signed<NeverServedNotice>.Create(notice, leaser);
    }

    /// <summary>
    /// π checks a never-served notice: β's signature (the key of the leaser the request names), kind, that <c>h</c> is the
    /// hash of the carried E(m), R's signature on E(m), and that E(m) names this β and this π. The result carries the
    /// row <see cref="NeverServedDecision"/>. Whether H may still be refunded (held, not settled by m_final) is π's check.
    /// </summary>
    public static Check<VerifiedSettlement> VerifyNeverServed(Signed<NeverServedNotice> notice, PartyIdentity leaser, string escrowAddress)
    {
        ArgumentNullException.ThrowIfNull(notice);
        ArgumentNullException.ThrowIfNull(leaser);
        var p = notice.Payload;
        var sig = notice.VerifySignature(leaser).Then(_ => ProtocolChecks.Kind(p.Kind, MessageKinds.NeverServed));
        if (!sig.IsOk)
        {
            return sig.As<VerifiedSettlement>();
        }

        var request = VerifyRequest(p.Request);
        if (!request.IsOk)
        {
            return request.As<VerifiedSettlement>();
        }

        var h = request.Value.H;
        var checks = ProtocolChecks.HashField(p.H, h, "notice.h")
            .Then(_ => ProtocolChecks.Parties(p.Request.Payload, leaser.Address, escrowAddress).Then(_ => Check.Ok(h)))
            .Then(_ => string.IsNullOrWhiteSpace(p.Reason)
                ? Check.Fail<TransactionHash>(ReasonCode.InvalidField, "notice.reason is empty; say why the lease was never served")
                : Check.Ok(h));
        return checks.IsOk
            ? Check.Ok(new VerifiedSettlement(h, p.Request, request.Value.Renter, null, null, null, SettlementSource.NeverServed, NeverServedDecision))
            : checks.As<VerifiedSettlement>();
    }
}
