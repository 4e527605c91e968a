using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Messages;
using static Rpoi.Protocol.Tests.Fixture;

namespace Rpoi.Protocol.Tests;

/// <summary>One test (at least) per paper equation, named after it; docs/protocol.md maps them.</summary>
public sealed class EquationTests
{
    [Fact]
    public void Equation1_SignRequest_SignsCanonicalPayloadWithRenterKey()
    {
        var m = Request();
        var em = RpoiEquations.SignRequest(m, Renter);
        Assert.Equal(Renter.Identity.KeyId, em.Signer);
        Assert.Equal(ProtocolJson.CanonicalBytes(m), em.CanonicalPayload.ToArray());
        Assert.True(em.VerifySignature(Renter.Identity).IsOk);
        // R can only sign a request that carries its own keys.
        Assert.Throws<ArgumentException>(() => RpoiEquations.SignRequest(m, Stranger));
        Assert.Throws<ArgumentException>(() => RpoiEquations.SignRequest(m with { Kind = "rpoi.other/v1" }, Renter));
    }

    [Fact]
    public void Equation2_TransactionHash_IsSha256OfCanonicalSignedRequest()
    {
        var em = SignedRequest();
        var h = RpoiEquations.TransactionHashOf(em);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(em.ToJson()))), h.Hex);
        Assert.Matches("^[0-9a-f]{64}$", h.Hex);
        // Another request (other nonce) has another H.
        Assert.NotEqual(h, RpoiEquations.TransactionHashOf(SignedRequest()));
        Assert.Equal(ReasonCode.MalformedMessage, RpoiEquations.TransactionHashOf("not json").Reason);
    }

    [Fact]
    public void Equation3_VerifyRequest_AcceptsRenterSignature_RefusesOthers()
    {
        var em = SignedRequest();
        var ok = RpoiEquations.VerifyRequest(em);
        Assert.True(ok.IsOk, ok.Message);
        Assert.Equal(Renter.Identity, ok.Value.Renter);
        Assert.Equal(ReasonCode.SignerMismatch, RpoiEquations.VerifyRequest(em, Stranger.Identity).Reason);

        // Someone else signs R's request: the signer key id is not the key in the request.
        var forged = Signed<LeaseRequest>.Create(em.Payload, Stranger);
        Assert.Equal(ReasonCode.SignerMismatch, RpoiEquations.VerifyRequest(forged).Reason);
    }

    [Fact]
    public void Equation3_SealGrant_OnlyRenterCanOpen()
    {
        var em = SignedRequest();
        var sealedGrant = RpoiEquations.SealGrant(RpoiEquations.VerifyRequest(em).Value, Grant(), Leaser);
        Assert.Equal(SealPurposes.Access, sealedGrant.Purpose);
        Assert.Equal(Renter.Identity.KeyId, sealedGrant.Recipient);
        Assert.DoesNotContain("secret-token", sealedGrant.ToJson(), StringComparison.Ordinal);
        Assert.Equal(ReasonCode.WrongRecipient, RpoiEquations.OpenGrant(sealedGrant, Stranger, em, Leaser.Identity).Reason);
        // Even with the recipient field rewritten, another key cannot decrypt.
        Assert.Equal(ReasonCode.DecryptionFailed, RpoiEquations.OpenGrant(sealedGrant with { Recipient = Stranger.Identity.KeyId }, Stranger, em, Leaser.Identity).Reason);
    }

    [Fact]
    public void Equation4_OpenGrant_RenterObtainsSigma_SignedByLeaser()
    {
        var em = SignedRequest();
        var grant = Grant();
        var sealedGrant = RpoiEquations.SealGrant(RpoiEquations.VerifyRequest(em).Value, grant, Leaser);
        var opened = RpoiEquations.OpenGrant(sealedGrant, Renter, em, Leaser.Identity);
        Assert.True(opened.IsOk, opened.Message);
        Assert.Equal(grant.NodeNames, opened.Value.Grant.NodeNames);
        // σ arrives in canonical form: same JSON, keys sorted.
        Assert.Equal(Encoding.CanonicalJson.Canonicalize(grant.PodTemplate), Encoding.CanonicalJson.Canonicalize(opened.Value.Grant.PodTemplate));
        Assert.Equal(RpoiEquations.GrantDigest(grant), opened.Value.GrantDigest);
        Assert.Equal(Leaser.Identity.KeyId, opened.Value.Granted.Signer);

        // Sealed by someone who is not β: signature check names the signer.
        var fake = RpoiEquations.SealGrant(RpoiEquations.VerifyRequest(em).Value, grant, Stranger);
        Assert.Equal(ReasonCode.SignerMismatch, RpoiEquations.OpenGrant(fake, Renter, em, Leaser.Identity).Reason);

        // A grant for R's other request does not open as this one.
        var other = SignedRequest();
        Assert.Equal(ReasonCode.HashMismatch, RpoiEquations.OpenGrant(sealedGrant, Renter, other, Leaser.Identity).Reason);
    }

    [Fact]
    public void Equation18_SignRenterRating_BindsRequestHAndGrantDigest()
    {
        var em = SignedRequest();
        var digest = RpoiEquations.GrantDigest(Grant());
        var emm = RpoiEquations.SignRenterRating(em, digest, Rating(5), Renter);
        Assert.Equal(RpoiEquations.TransactionHashOf(em).Hex, emm.Payload.H);
        Assert.Equal(digest, emm.Payload.GrantDigest);
        Assert.True(RpoiEquations.VerifyRenterRating(emm, em, digest).IsOk);
        Assert.Equal(ReasonCode.GrantDigestMismatch, RpoiEquations.VerifyRenterRating(emm, em, RpoiEquations.GrantDigest(Grant() with { NodePool = "other" })).Reason);
        Assert.Equal(ReasonCode.HashMismatch, RpoiEquations.VerifyRenterRating(emm, SignedRequest(), digest).Reason);
        Assert.Equal(ReasonCode.RatingOutOfRange, RpoiEquations.VerifyRenterRating(RpoiEquations.SignRenterRating(em, digest, Rating(0), Renter), em, digest).Reason);
        Assert.Equal(ReasonCode.SignerMismatch, RpoiEquations.VerifyRenterRating(RpoiEquations.SignRenterRating(em, digest, Rating(5), Stranger), em, digest).Reason);
        Assert.Throws<ArgumentException>(() => RpoiEquations.SignRenterRating(em, "xyz", Rating(5), Renter));
    }

    [Fact]
    public void Equation19_SealFinal_OnlyEscrowOpens_AndEveryPieceIsChecked()
    {
        var em = SignedRequest();
        var digest = RpoiEquations.GrantDigest(Grant());
        var emm = RpoiEquations.SignRenterRating(em, digest, Rating(5), Renter);
        var mFinal = RpoiEquations.SealFinal(em, digest, emm, Rating(4), Leaser, Escrow.Identity);
        Assert.Equal(SealPurposes.Final, mFinal.Purpose);
        var s = RpoiEquations.OpenFinal(mFinal, Escrow, Leaser.Identity);
        Assert.True(s.IsOk, s.Message);
        Assert.Equal(4, s.Value.LeaserRating!.Score);
        Assert.Equal(5, s.Value.RenterRating!.Payload.Rating.Score);

        Assert.Equal(ReasonCode.WrongRecipient, RpoiEquations.OpenFinal(mFinal, Stranger, Leaser.Identity).Reason);
        Assert.Equal(ReasonCode.SignerMismatch, RpoiEquations.OpenFinal(mFinal, Escrow, Stranger.Identity).Reason);
        // β wraps a renter rating that is for another σ than β issued.
        var wrongDigest = RpoiEquations.SealFinal(em, RpoiEquations.GrantDigest(Grant() with { NodePool = "x" }), emm, Rating(4), Leaser, Escrow.Identity);
        Assert.Equal(ReasonCode.GrantDigestMismatch, RpoiEquations.OpenFinal(wrongDigest, Escrow, Leaser.Identity).Reason);
        // A renter rating for another lease is refused (rating for another lease).
        var otherEm = SignedRequest();
        var foreign = RpoiEquations.SealFinal(em, digest, RpoiEquations.SignRenterRating(otherEm, digest, Rating(5), Renter), Rating(4), Leaser, Escrow.Identity);
        Assert.Equal(ReasonCode.HashMismatch, RpoiEquations.OpenFinal(foreign, Escrow, Leaser.Identity).Reason);
        // β's own rating out of range.
        var badScore = RpoiEquations.SealFinal(em, digest, emm, Rating(9), Leaser, Escrow.Identity);
        Assert.Equal(ReasonCode.RatingOutOfRange, RpoiEquations.OpenFinal(badScore, Escrow, Leaser.Identity).Reason);
        // The request names another escrow.
        var otherEscrow = Fixture.Stranger.Identity;
        var toStranger = RpoiEquations.SealFinal(em, digest, emm, Rating(4), Leaser, otherEscrow);
        Assert.Equal(ReasonCode.PartyMismatch, RpoiEquations.OpenFinal(toStranger, Stranger, Leaser.Identity).Reason);
    }

    [Theory]
    [InlineData(true, true, DepositDisposition.ToRenter, RentDisposition.ToLeaser)]
    [InlineData(false, true, DepositDisposition.Withheld, RentDisposition.ToLeaser)]
    [InlineData(true, false, DepositDisposition.ToRenter, RentDisposition.BackToRenter)]
    [InlineData(false, false, DepositDisposition.Withheld, RentDisposition.BackToRenter)]
    public void Equation19_to_21_FailureTable_EveryRowThroughMFinal(bool renterRated, bool leaserRated, DepositDisposition deposit, RentDisposition rent)
    {
        var em = SignedRequest();
        var digest = RpoiEquations.GrantDigest(Grant());
        var emm = renterRated ? RpoiEquations.SignRenterRating(em, digest, Rating(2), Renter) : null;
        var mFinal = RpoiEquations.SealFinal(em, digest, emm, leaserRated ? Rating(3) : null, Leaser, Escrow.Identity);
        var s = RpoiEquations.OpenFinal(SealedMessage.Parse(mFinal.ToJson()).Value, Escrow, Leaser.Identity);
        Assert.True(s.IsOk, s.Message);
        Assert.Equal(new SettlementDecision(renterRated, leaserRated, deposit, rent), s.Value.Decision);

        var transfers = RpoiEquations.TransfersFor(em.Payload, s.Value.Decision, Escrow.Identity.Address);
        Assert.Equal(deposit == DepositDisposition.ToRenter ? Renter.Identity.Address : Escrow.Identity.Address, transfers[0].To);
        Assert.Equal(deposit == DepositDisposition.ToRenter ? TransferStatus.Transferred : TransferStatus.Withheld, transfers[0].Status);
        Assert.Equal(rent == RentDisposition.ToLeaser ? Leaser.Identity.Address : Renter.Identity.Address, transfers[1].To);
        Assert.Equal(em.Payload.Deposit, transfers[0].Amount);
        Assert.Equal(em.Payload.Rent, transfers[1].Amount);
    }

    [Fact]
    public void Equation20_Zeta_DepositToRenterOnlyWithRenterRating()
    {
        Assert.Equal(DepositDisposition.ToRenter, RpoiEquations.Zeta(renterRated: true));
        Assert.Equal(DepositDisposition.Withheld, RpoiEquations.Zeta(renterRated: false));
    }

    [Fact]
    public void Equation21_Xi_RentToLeaserOnlyWithLeaserRating()
    {
        Assert.Equal(RentDisposition.ToLeaser, RpoiEquations.Xi(leaserRated: true));
        Assert.Equal(RentDisposition.BackToRenter, RpoiEquations.Xi(leaserRated: false));
    }

    [Fact]
    public void RenterFallback_SignedRatingDirectToEscrow_AppliesRowYesNo()
    {
        var em = SignedRequest();
        var emm = RpoiEquations.SignRenterRating(em, RpoiEquations.GrantDigest(Grant()), Rating(1), Renter);
        var s = RpoiEquations.VerifyRenterFallback(Signed<RenterRating>.Parse(emm.ToJson()).Value, Escrow.Identity.Address);
        Assert.True(s.IsOk, s.Message);
        Assert.Equal(SettlementSource.RenterFallback, s.Value.Source);
        Assert.Equal(new SettlementDecision(true, false, DepositDisposition.ToRenter, RentDisposition.BackToRenter), s.Value.Decision);
        Assert.Equal(ReasonCode.PartyMismatch, RpoiEquations.VerifyRenterFallback(emm, Stranger.Identity.Address).Reason);
        var byStranger = RpoiEquations.SignRenterRating(em, RpoiEquations.GrantDigest(Grant()), Rating(1), Stranger);
        Assert.Equal(ReasonCode.SignerMismatch, RpoiEquations.VerifyRenterFallback(byStranger, Escrow.Identity.Address).Reason);
    }

    [Fact]
    public void Receipt_SignedByEscrow_VerifiesForItsH()
    {
        var em = SignedRequest();
        var h = RpoiEquations.TransactionHashOf(em);
        var d = RpoiEquations.Decide(true, true);
        var receipt = RpoiEquations.SignReceipt(new SettlementReceipt(MessageKinds.Receipt, h.Hex, Escrow.Identity.Address, SettlementSource.LeaserFinal, d, RpoiEquations.TransfersFor(em.Payload, d, Escrow.Identity.Address), Now, "ledger:1"), Escrow);
        Assert.True(RpoiEquations.VerifyReceipt(receipt, Escrow.Identity, h).IsOk);
        Assert.Equal(ReasonCode.HashMismatch, RpoiEquations.VerifyReceipt(receipt, Escrow.Identity, RpoiEquations.TransactionHashOf(SignedRequest())).Reason);
        Assert.Equal(ReasonCode.SignerMismatch, RpoiEquations.VerifyReceipt(receipt, Leaser.Identity, h).Reason);
        Assert.Contains("\"decision\":{\"deposit\":\"toRenter\",\"leaserRated\":true,\"rent\":\"toLeaser\",\"renterRated\":true}", receipt.ToJson(), StringComparison.Ordinal);
    }
}
