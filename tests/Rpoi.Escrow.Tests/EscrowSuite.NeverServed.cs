using Rpoi.Escrow.Client;
using Rpoi.Protocol;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Escrow.Tests;

/// <summary>The row NeverServed: β's signed notice refunds ρ + ω to R for a lease cancelled before it was served.</summary>
public abstract partial class EscrowSuite
{
    private Signed<NeverServedNotice> Notice(Lease lease, PartyKeyPair? signer = null) =>
        RpoiEquations.SignNeverServed(lease.Request, "the Lease was deleted while queued", Env.Time.GetUtcNow(), signer ?? Env.Leaser);

    private async Task AssertLedgerOk()
    {
        var audit = await Env.Anyone.VerifyLedgerAsync();
        Assert.True(audit.Ok, string.Join("; ", audit.Problems));
        var totals = Assert.Single(audit.Totals);
        Assert.Equal("0", totals.Held);
    }

    [Fact]
    public async Task Never_served_refunds_deposit_and_rent_to_the_renter_with_a_signed_receipt_once()
    {
        if (Skipped)
        {
            return;
        }

        var lease = await Env.Leases.Deposit(100).Rent(900).PledgedAsync(extra: 7);
        var leaserBefore = await Env.BalanceAsync(Env.Leaser.Identity.Address);
        Assert.Equal(7, await Env.BalanceAsync(lease.RenterAddress));

        var settlement = await Env.Operator.NeverServedAsync(Notice(lease));

        Assert.Equal("ToRenter", settlement.Deposit);
        Assert.Equal("BackToRenter", settlement.Rent);
        Assert.Equal(1007, await Env.BalanceAsync(lease.RenterAddress));
        Assert.Equal(leaserBefore, await Env.BalanceAsync(Env.Leaser.Identity.Address));
        var receipt = VerifiedReceipt(settlement, lease);
        Assert.Equal(SettlementSource.NeverServed, receipt.Source);
        Assert.False(receipt.Decision.RenterRated);
        Assert.False(receipt.Decision.LeaserRated);
        Assert.Equal("Settled", (await Env.Anyone.GetPledgeAsync(lease.H))!.State);
        Assert.DoesNotContain(await Env.Anyone.GetWithheldAsync(), w => w.H == lease.H);
        await AssertLedgerOk();

        // β restarted after sending the notice but before writing status: the same (or a fresh) notice is idempotent by H.
        var head = await Env.HeadAsync();
        var again = await Env.Operator.NeverServedAsync(Notice(lease));
        Assert.Equal(settlement.Receipt.GetRawText(), again.Receipt.GetRawText());
        Assert.Equal(head, await Env.HeadAsync());
        Assert.Equal(1007, await Env.BalanceAsync(lease.RenterAddress));
        await AssertLedgerOk();
    }

    [Fact]
    public async Task Never_served_is_refused_with_AlreadySettled_for_a_served_lease_and_nothing_moves()
    {
        if (Skipped)
        {
            return;
        }

        var lease = await Env.Leases.Deposit(100).Rent(900).PledgedAsync();
        await Env.Operator.SettleAsync(Finals.For(Env, lease, true, true));
        var head = await Env.HeadAsync();
        var renter = await Env.BalanceAsync(lease.RenterAddress);
        var leaser = await Env.BalanceAsync(Env.Leaser.Identity.Address);

        var ex = await Refused(() => Env.Operator.NeverServedAsync(Notice(lease)), EscrowReasons.AlreadySettled);

        Assert.Equal(409, ex.Status);
        Assert.Equal("notice.h", ex.Field);
        Assert.Contains("m_final", ex.Message, StringComparison.Ordinal);
        Assert.Equal(head, await Env.HeadAsync());
        Assert.Equal(renter, await Env.BalanceAsync(lease.RenterAddress));
        Assert.Equal(leaser, await Env.BalanceAsync(Env.Leaser.Identity.Address));
        await AssertLedgerOk();
    }

    [Fact]
    public async Task A_served_lease_cannot_be_settled_by_m_final_after_a_never_served_refund()
    {
        if (Skipped)
        {
            return;
        }

        var lease = await Env.Leases.Deposit(100).Rent(900).PledgedAsync();
        var refund = await Env.Operator.NeverServedAsync(Notice(lease));
        var leaser = await Env.BalanceAsync(Env.Leaser.Identity.Address);

        // The store settles H once: m_final afterwards returns the first (refund) receipt and pays β nothing.
        var later = await Env.Operator.SettleAsync(Finals.For(Env, lease, true, true));

        Assert.Equal(refund.Receipt.GetRawText(), later.Receipt.GetRawText());
        Assert.Equal(leaser, await Env.BalanceAsync(Env.Leaser.Identity.Address));
        Assert.Equal(1000, await Env.BalanceAsync(lease.RenterAddress));
        await AssertLedgerOk();
    }

    [Fact]
    public async Task Never_served_refuses_an_unknown_H_a_bad_signature_and_a_wrong_signer_naming_the_field()
    {
        if (Skipped)
        {
            return;
        }

        var lease = await Env.Leases.Deposit(100).Rent(900).PledgedAsync();
        var head = await Env.HeadAsync();

        var unpledged = Env.Leases.Build();
        var unknown = await Refused(() => Env.Operator.NeverServedAsync(Notice(unpledged)), EscrowReasons.PledgeNotFound);
        Assert.Equal("notice.h", unknown.Field);

        var good = Notice(lease);
        var tampered = Signed<NeverServedNotice>.Parse(good.ToJson().Replace("deleted while queued", "deleted while Verified", StringComparison.Ordinal)).Value;
        var bad = await Refused(() => Env.Operator.NeverServedAsync(tampered), nameof(ReasonCode.BadSignature));
        Assert.Equal("notice", bad.Field);

        var stranger = PartyKeyPair.Generate(PartyRole.Leaser);
        var wrong = await Refused(() => Env.Admin.NeverServedAsync(Notice(lease, stranger)), nameof(ReasonCode.SignerMismatch));
        Assert.Equal("notice", wrong.Field);

        await Refused(() => Env.Anyone.NeverServedAsync(good), EscrowReasons.Unauthenticated);

        Assert.Equal(head, await Env.HeadAsync());
        Assert.Equal(0, await Env.BalanceAsync(lease.RenterAddress));
        Assert.Equal("Held", (await Env.Anyone.GetPledgeAsync(lease.H))!.State);
    }
}
