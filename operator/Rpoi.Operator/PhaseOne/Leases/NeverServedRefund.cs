using Rpoi.Escrow.Client;
using Rpoi.Operator.Entities;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Operator.PhaseOne.Leases;

/// <summary>What π answered to a never-served notice.</summary>
public abstract record RefundOutcome
{
    private RefundOutcome()
    {
    }

    /// <summary>π settled H (by the row NeverServed, or earlier by the renter's own claim): its verified receipt.</summary>
    /// <param name="Settlement">π's answer.</param>
    /// <param name="Receipt">The receipt, signature checked under π's key and bound to H.</param>
    public sealed record Settled(SettlementView Settlement, SettlementReceipt Receipt) : RefundOutcome;

    /// <summary>π could not be reached; retry.</summary>
    /// <param name="Message">Why.</param>
    public sealed record Unavailable(string Message) : RefundOutcome;

    /// <summary>π refused the notice, or its receipt does not verify; nothing moved at π.</summary>
    /// <param name="Reason">π's reason code (or <c>ReceiptInvalid</c>).</param>
    /// <param name="Message">What to do.</param>
    public sealed record Refused(string Reason, string Message) : RefundOutcome;
}

/// <summary>
/// The refund of a lease that was pledged but never served (no σ delivered): β signs a <see cref="NeverServedNotice"/>
/// for H and π returns ρ + ω to R in full (row NeverServed), with its signed receipt. π answers a repeat with the first
/// receipt, so a restart anywhere in the return simply asks again.
/// </summary>
public sealed class NeverServedRefund(IEscrowClient escrow, PhaseOneOptions options, TimeProvider time)
{
    private PartyIdentity? escrowIdentity;

    /// <summary>
    /// True when the Lease never received σ: no grant digest in its status (nor the legacy annotation) and never Active.
    /// A crash between writing the access Secret and recording Active counts as never served: the renter may have held a
    /// token for seconds, and β, who would lose the rent, is the one who decides to refund.
    /// </summary>
    public static bool NeverServed(Lease lease, LeaseStatus status)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(status);
        return status.GrantDigest is null && status.ActiveSince is null
            && lease.Metadata.Annotations?.ContainsKey(LeaseReconciler.GrantDigestAnnotation) != true;
    }

    /// <summary>Signs the notice for <paramref name="request"/> and sends it to π; verifies π's receipt.</summary>
    public async Task<RefundOutcome> RefundAsync(Signed<LeaseRequest> request, string why, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var h = RpoiEquations.TransactionHashOf(request);
        SettlementView settlement;
        PartyIdentity pi;
        try
        {
            pi = await EscrowIdentityAsync(cancellationToken).ConfigureAwait(false);
            var notice = RpoiEquations.SignNeverServed(request, why, time.GetUtcNow(), options.Leaser);
            try
            {
                settlement = await escrow.NeverServedAsync(notice, cancellationToken).ConfigureAwait(false);
            }
            catch (EscrowException e) when (e.Reason == EscrowReasons.AlreadySettled)
            {
                // Settled before β asked (the renter's own claim after the window): π's first receipt is the truth.
                settlement = await escrow.GetSettlementAsync(h.Hex, cancellationToken).ConfigureAwait(false)
                    ?? throw new EscrowException(503, EscrowReasons.Internal, "h", $"the escrow says H {h.Hex} is settled but shows no settlement; retrying");
            }
        }
        catch (EscrowException e) when (!e.IsTransient)
        {
            return new RefundOutcome.Refused(e.Reason, $"the escrow refused the never-served refund ({e.Reason}{(e.Field is null ? string.Empty : $", field {e.Field}")}): {e.Message}");
        }
        catch (Exception e) when (e is EscrowException or HttpRequestException)
        {
            return new RefundOutcome.Unavailable($"the escrow could not be reached for the never-served refund: {e.Message}; retrying");
        }

        var receipt = Signed<SettlementReceipt>.Parse(settlement.Receipt.GetRawText()).Then(r => RpoiEquations.VerifyReceipt(r, pi, h));
        return receipt.TryGetValue(out var payload)
            ? new RefundOutcome.Settled(settlement, payload)
            : new RefundOutcome.Refused("ReceiptInvalid", $"the escrow's refund receipt for H {h.Hex} does not verify under π's key {pi.KeyId} ({receipt.Reason}): {receipt.Message}");
    }

    /// <summary>The Lease's settlement as π's receipt states it.</summary>
    public static LeaseSettlement Record(SettlementView settlement, SettlementReceipt receipt)
    {
        ArgumentNullException.ThrowIfNull(settlement);
        ArgumentNullException.ThrowIfNull(receipt);
        var decision = receipt.Decision;
        return new LeaseSettlement
        {
            RenterRated = decision.RenterRated,
            LeaserRated = decision.LeaserRated,
            Deposit = decision.Deposit == DepositDisposition.ToRenter ? DepositOutcome.ReturnedToRenter : DepositOutcome.Withheld,
            Rent = decision.Rent == RentDisposition.ToLeaser ? RentOutcome.PaidToLeaser : RentOutcome.ReturnedToRenter,
            Receipt = settlement.Receipt.GetRawText(),
            SettledAt = receipt.Time.UtcDateTime,
        };
    }

    private async Task<PartyIdentity> EscrowIdentityAsync(CancellationToken cancellationToken)
    {
        if (escrowIdentity is { } known)
        {
            return known;
        }

        var id = await escrow.GetIdentityAsync(cancellationToken).ConfigureAwait(false);
        var parsed = PartyIdentity.FromBase64(id.SigningPublicKey, id.EncryptionPublicKey, PartyRole.Escrow);
        if (!parsed.TryGetValue(out var identity) || identity.Address != options.EscrowAddress)
        {
            // A receipt is only worth something under the π this operator trusts.
            throw new EscrowException(422, "PartyMismatch", "identity", $"the escrow at the configured URL is {(parsed.IsOk ? parsed.Value.Address : "unparseable")}, but this operator works with {options.EscrowAddress}; point the escrow URL at {options.EscrowAddress}");
        }

        escrowIdentity = identity;
        return identity;
    }
}
