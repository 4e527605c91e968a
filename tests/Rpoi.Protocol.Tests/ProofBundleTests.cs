using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;
using Rpoi.Protocol.Proof;
using static Rpoi.Protocol.Proof.ProofBundleVerifier.Names;
using static Rpoi.Protocol.Tests.Fixture;

namespace Rpoi.Protocol.Tests;

public sealed class ProofBundleTests
{
    private static readonly ProofKeys Keys = new(Renter.Identity.ToPublicKeys(), Leaser.Identity.ToPublicKeys(), Escrow.Identity.ToPublicKeys());

    /// <summary>A lease run through the real equations (1..4, 18, 19, π's open and receipt), exported as a bundle.</summary>
    private static ProofBundle Run(bool renterRates = true, bool leaserRates = true, string name = "train-1")
    {
        var em = RpoiEquations.SignRequest(Request(name: name), Renter);
        var verified = RpoiEquations.VerifyRequest(em).Value;
        var opened = RpoiEquations.OpenGrant(RpoiEquations.SealGrant(verified, Grant(), Leaser), Renter, em, Leaser.Identity).Value;
        var rating = renterRates ? RpoiEquations.SignRenterRating(em, opened.GrantDigest, Rating(5), Renter) : null;
        var mFinal = RpoiEquations.SealFinal(em, opened.GrantDigest, rating, leaserRates ? Rating(4) : null, Leaser, Escrow.Identity);
        var settled = RpoiEquations.OpenFinal(SealedMessage.Parse(mFinal.ToJson()).Value, Escrow, Leaser.Identity).Value;
        var transfers = RpoiEquations.TransfersFor(em.Payload, settled.Decision, Escrow.Identity.Address);
        var receipt = RpoiEquations.SignReceipt(new SettlementReceipt(MessageKinds.Receipt, verified.H.Hex, Escrow.Identity.Address, settled.Source, settled.Decision, transfers, Now.AddHours(3), "ledger:7"), Escrow);
        return new ProofBundle(ProofBundle.CurrentFormat, em, verified.H.Hex, opened.GrantDigest, Keys, opened.Granted, rating, settled.Final, receipt);
    }

    private static string[] Failed(ProofBundle bundle) =>
        [.. ProofBundleVerifier.Verify(bundle).Where(c => !c.Ok).Select(c => c.Name)];

    private static ProofCheck CheckNamed(ProofBundle bundle, string name) =>
        ProofBundleVerifier.Verify(bundle).Single(c => c.Name == name);

    private static Signed<SettlementReceipt> Resign(SettlementReceipt receipt, PartyKeyPair? by = null) => RpoiEquations.SignReceipt(receipt, by ?? Escrow);

    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(false, false)]
    public void Bundle_from_a_real_run_verifies_every_check_for_every_row(bool renterRates, bool leaserRates)
    {
        var checks = ProofBundleVerifier.Verify(Run(renterRates, leaserRates));

        Assert.All(checks, c => Assert.True(c.Ok, $"{c.Name}: {c.Reason}"));
        Assert.Equal(
            [Format, ProofBundleVerifier.Names.Keys, RequestSignature, RequestParties, Hash, GrantDigest, GrantLease, Final, GrantSignature, RatingRenter, Receipt, ReceiptDecision, ReceiptTransfers],
            checks.Select(c => c.Name));
    }

    [Fact]
    public void Bundle_survives_its_json_and_still_verifies()
    {
        var json = Run().ToJson();
        var parsed = ProofBundle.Parse(json);

        Assert.True(parsed.IsOk, parsed.Message);
        Assert.Empty(Failed(parsed.Value));
        Assert.Equal(json, parsed.Value.ToJson());
    }

    [Fact]
    public void Renter_fallback_bundle_without_leaser_final_verifies_with_the_grant_signed_in_m_prime()
    {
        var full = Run(leaserRates: false);
        var em = full.Request;
        var fallback = RpoiEquations.VerifyRenterFallback(full.RenterRating!, Escrow.Identity.Address).Value;
        var receipt = Resign(new SettlementReceipt(MessageKinds.Receipt, full.H, Escrow.Identity.Address, SettlementSource.RenterFallback, fallback.Decision,
            RpoiEquations.TransfersFor(em.Payload, fallback.Decision, Escrow.Identity.Address), Now.AddHours(4), "ledger:9"));

        Assert.Empty(Failed(full with { LeaserFinal = null, Receipt = receipt }));
    }

    [Fact]
    public void Changed_amount_in_the_receipt_fails_receipt_transfers()
    {
        var bundle = Run();
        var r = bundle.Receipt!.Payload;
        var more = r with { Transfers = [r.Transfers[0], r.Transfers[1] with { Amount = new Money("9000001", "uusd") }] };

        Assert.Equal([ReceiptTransfers], Failed(bundle with { Receipt = Resign(more) }));
        Assert.Contains("9000001", CheckNamed(bundle with { Receipt = Resign(more) }, ReceiptTransfers).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Changed_amount_in_the_request_fails_its_signature_and_h()
    {
        var bundle = Run();
        // Keep R's signature but change ρ: the envelope no longer verifies and hashes to another H.
        var json = bundle.Request.ToJson().Replace("\"1500000\"", "\"1\"", StringComparison.Ordinal);
        var tampered = bundle with { Request = Signed<LeaseRequest>.Parse(json).Value };

        var failed = Failed(tampered);
        Assert.Equal(RequestSignature, failed[0]);
        Assert.Contains(Hash, failed);
        Assert.Contains("BadSignature", CheckNamed(tampered, RequestSignature).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Swapped_renter_key_fails_request_signature()
    {
        var tampered = Run() with { Keys = Keys with { Renter = Stranger.Identity.ToPublicKeys() } };

        var failed = Failed(tampered);
        Assert.Equal(RequestSignature, failed[0]);
        Assert.DoesNotContain(Receipt, failed);
    }

    [Fact]
    public void Swapped_leaser_key_fails_the_parties_and_every_leaser_signature()
    {
        var stranger = PartyKeyPair.Generate(PartyRole.Leaser);
        var tampered = Run() with { Keys = Keys with { Leaser = stranger.Identity.ToPublicKeys() } };

        Assert.Equal([RequestParties, GrantLease, Final, GrantSignature, ReceiptDecision], Failed(tampered));
    }

    [Fact]
    public void Swapped_escrow_key_fails_the_parties_and_the_receipt()
    {
        var stranger = PartyKeyPair.Generate(PartyRole.Escrow);
        var tampered = Run() with { Keys = Keys with { Escrow = stranger.Identity.ToPublicKeys() } };

        Assert.Equal([RequestParties, Receipt, ReceiptDecision, ReceiptTransfers], Failed(tampered));
    }

    [Fact]
    public void Wrong_h_fails_h_only()
    {
        var other = Run(name: "train-2");
        var tampered = Run() with { H = other.H };

        Assert.Equal([Hash], Failed(tampered));
        Assert.Contains("HashMismatch", CheckNamed(tampered, Hash).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Altered_receipt_signature_fails_receipt()
    {
        var bundle = Run();
        var sig = Convert.FromBase64String(bundle.Receipt!.Sig);
        sig[0] ^= 1;
        var json = bundle.Receipt.ToJson().Replace(bundle.Receipt.Sig, Convert.ToBase64String(sig), StringComparison.Ordinal);
        var tampered = bundle with { Receipt = Signed<SettlementReceipt>.Parse(json).Value };

        Assert.Equal([Receipt, ReceiptDecision, ReceiptTransfers], Failed(tampered));
        Assert.Contains("BadSignature", CheckNamed(tampered, Receipt).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Altered_rating_score_fails_rating_renter()
    {
        var bundle = Run();
        var json = bundle.RenterRating!.ToJson().Replace("\"score\":5", "\"score\":1", StringComparison.Ordinal);
        var tampered = bundle with { RenterRating = Signed<RenterRating>.Parse(json).Value };

        Assert.Equal([RatingRenter], Failed(tampered));
    }

    [Fact]
    public void Receipt_of_another_lease_fails_receipt()
    {
        var tampered = Run() with { Receipt = Run(name: "train-2").Receipt };

        Assert.Equal([Receipt, ReceiptDecision, ReceiptTransfers], Failed(tampered));
        Assert.Contains("HashMismatch", CheckNamed(tampered, Receipt).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Receipt_with_a_row_the_ratings_do_not_give_fails_receipt_decision()
    {
        // β never rated, yet the (re-signed) receipt pays ω to β.
        var bundle = Run(leaserRates: false);
        var r = bundle.Receipt!.Payload;
        var decision = RpoiEquations.Decide(true, true);
        var paid = r with { Decision = decision, Transfers = RpoiEquations.TransfersFor(bundle.Request.Payload, decision, Escrow.Identity.Address) };

        Assert.Equal([ReceiptDecision], Failed(bundle with { Receipt = Resign(paid) }));
    }

    [Fact]
    public void Grant_digest_of_another_grant_fails_the_leaser_statements()
    {
        var bundle = Run();
        var tampered = bundle with { GrantDigest = RpoiEquations.GrantDigest(Grant() with { NodePool = "other" }) };

        Assert.Equal([GrantLease, Final, GrantSignature, RatingRenter, ReceiptDecision], Failed(tampered));
    }

    [Fact]
    public void Missing_receipt_fails_receipt_and_says_why()
    {
        var tampered = Run() with { Receipt = null };

        Assert.Equal([Receipt, ReceiptDecision, ReceiptTransfers], Failed(tampered));
        Assert.Contains("receipt is missing", CheckNamed(tampered, Receipt).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_every_leaser_statement_fails_grant_signature()
    {
        var tampered = Run() with { GrantedLease = null, LeaserFinal = null };

        Assert.Equal([GrantSignature, ReceiptDecision], Failed(tampered));
    }

    [Fact]
    public void Wrong_format_fails_format()
    {
        Assert.Equal([Format], Failed(Run() with { Format = "rpoi.proof-bundle/v0" }));
    }

    [Theory]
    [InlineData("{}", "request")]
    [InlineData("not json", "")]
    [InlineData("null", "null")]
    public void Malformed_bundle_json_is_refused_with_a_reason(string json, string mentions)
    {
        var parsed = ProofBundle.Parse(json);

        Assert.False(parsed.IsOk);
        Assert.Contains(mentions, parsed.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Unknown_field_in_bundle_json_is_refused()
    {
        var json = Run().ToJson().Replace("\"format\"", "\"extra\": 1,\n  \"format\"", StringComparison.Ordinal);

        Assert.False(ProofBundle.Parse(json).IsOk);
    }
}
