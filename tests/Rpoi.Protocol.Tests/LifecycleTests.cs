using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Messages;
using static Rpoi.Protocol.Tests.Fixture;

namespace Rpoi.Protocol.Tests;

public sealed class LifecycleTests
{
    [Fact]
    public async Task FullLifecycle_RequestToReceipt_AllChecksPass()
    {
        // Phase I: R signs (eq. 1), anyone computes H (eq. 2), β verifies (eq. 3) and seals σ to R, R opens (eq. 4).
        var signed = RpoiEquations.SignRequest(Request(), Renter);
        var h = RpoiEquations.TransactionHashOf(signed);
        var verifier = new RequestVerifier(Clock(), new InMemoryNonceStore(Clock()));
        var verified = await verifier.VerifyAsync(signed, new RequestExpectations("team-a", "train-1", Leaser.Identity.Address, Escrow.Identity.Address));
        Assert.True(verified.IsOk, verified.Message);
        Assert.Equal(h, verified.Value.H);

        var grant = Grant();
        var sealedGrant = RpoiEquations.SealGrant(verified.Value, grant, Leaser);
        var wire = SealedMessage.Parse(sealedGrant.ToJson()).Value;
        var opened = RpoiEquations.OpenGrant(wire, Renter, signed, Leaser.Identity);
        Assert.True(opened.IsOk, opened.Message);
        Assert.Equal(grant.Kubeconfig, opened.Value.Grant.Kubeconfig);
        Assert.Equal(RpoiEquations.GrantDigest(grant), opened.Value.GrantDigest);

        // Phase II: R rates (eq. 18), β rates and seals m_final to π (eq. 19), π decides (eqs. 20, 21) and signs a receipt.
        var renterRating = RpoiEquations.SignRenterRating(signed, opened.Value.GrantDigest, Rating(5), Renter);
        var atLeaser = RpoiEquations.VerifyRenterRating(Signed<RenterRating>.Parse(renterRating.ToJson()).Value, signed, RpoiEquations.GrantDigest(grant));
        Assert.True(atLeaser.IsOk, atLeaser.Message);
        var mFinal = RpoiEquations.SealFinal(signed, RpoiEquations.GrantDigest(grant), atLeaser.Value, Rating(4), Leaser, Escrow.Identity);
        var settlement = RpoiEquations.OpenFinal(SealedMessage.Parse(mFinal.ToJson()).Value, Escrow, Leaser.Identity);
        Assert.True(settlement.IsOk, settlement.Message);
        Assert.Equal(new SettlementDecision(true, true, DepositDisposition.ToRenter, RentDisposition.ToLeaser), settlement.Value.Decision);

        var transfers = RpoiEquations.TransfersFor(signed.Payload, settlement.Value.Decision, Escrow.Identity.Address);
        var receipt = RpoiEquations.SignReceipt(new SettlementReceipt(MessageKinds.Receipt, h.Hex, Escrow.Identity.Address, SettlementSource.LeaserFinal, settlement.Value.Decision, transfers, Now.AddHours(3), "ledger:42"), Escrow);
        var checkedReceipt = RpoiEquations.VerifyReceipt(Signed<SettlementReceipt>.Parse(receipt.ToJson()).Value, Escrow.Identity, h);
        Assert.True(checkedReceipt.IsOk, checkedReceipt.Message);
        Assert.Equal(Renter.Identity.Address, checkedReceipt.Value.Transfers[0].To);
        Assert.Equal(Leaser.Identity.Address, checkedReceipt.Value.Transfers[1].To);
    }
}
