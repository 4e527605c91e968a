using Microsoft.Extensions.Time.Testing;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Messages;
using static Rpoi.Protocol.Tests.Fixture;

namespace Rpoi.Protocol.Tests;

public sealed class CheckTests
{
    [Theory]
    [InlineData("1", true)]
    [InlineData("1500000", true)]
    [InlineData("9223372036854775807", true)]
    [InlineData("9223372036854775808", false)]
    [InlineData("0", false)]
    [InlineData("-5", false)]
    [InlineData("007", false)]
    [InlineData("1.5", false)]
    [InlineData("1e6", false)]
    [InlineData("", false)]
    [InlineData(" 5", false)]
    [InlineData("٣", false)]
    public void Amount_AcceptsOnlyPositiveCanonicalIntegers(string amount, bool ok)
    {
        var check = ProtocolChecks.Amount(new Money(amount, "uusd"), "deposit");
        Assert.Equal(ok, check.IsOk);
        if (!ok)
        {
            Assert.Equal(ReasonCode.InvalidAmount, check.Reason);
            Assert.Contains("deposit.amount", check.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Amounts_SumOverflow_IsRefused()
    {
        var check = ProtocolChecks.Amounts(new Money("9223372036854775807", "uusd"), new Money("1", "uusd"));
        Assert.Equal(ReasonCode.InvalidAmount, check.Reason);
        Assert.Contains("overflow", check.Message, StringComparison.Ordinal);
        Assert.Equal(ReasonCode.InvalidField, ProtocolChecks.Amount(new Money("5", "u usd"), "rent").Reason);
        Assert.Equal(ReasonCode.InvalidAmount, ProtocolChecks.Amount(null, "rent").Reason);
    }

    [Theory]
    [InlineData(0, true)]
    [InlineData(24 * 3600, true)]
    [InlineData((24 * 3600) + 1, false)]
    [InlineData(-300, true)]
    [InlineData(-301, false)]
    public void Age_WindowIs24HoursBackAnd5MinutesAhead(int secondsSinceSigning, bool ok)
    {
        var check = ProtocolChecks.Age(Request(), Now.AddSeconds(secondsSinceSigning), RequestPolicy.Default);
        Assert.Equal(ok, check.IsOk);
        if (!ok)
        {
            Assert.Equal(secondsSinceSigning > 0 ? ReasonCode.RequestTooOld : ReasonCode.RequestFromFuture, check.Reason);
        }
    }

    [Fact]
    public async Task Nonce_SameRequestTwiceIsOnePledge_SameNonceOtherRequestIsReplay()
    {
        var clock = Clock();
        var store = new InMemoryNonceStore(clock);
        var verifier = new RequestVerifier(clock, store);
        var em = SignedRequest();
        Assert.True((await verifier.VerifyAsync(em, new RequestExpectations())).IsOk);
        Assert.True((await verifier.VerifyAsync(Signed<LeaseRequest>.Parse(em.ToJson()).Value, new RequestExpectations())).IsOk);
        var replay = RpoiEquations.SignRequest(Request() with { Nonce = em.Payload.Nonce, Chips = 16 }, Renter);
        var r = await verifier.VerifyAsync(replay, new RequestExpectations());
        Assert.Equal(ReasonCode.NonceReplayed, r.Reason);
        Assert.Equal(1, store.Count);

        // Once the first request is too old to be accepted, its nonce is forgotten.
        clock.Advance(TimeSpan.FromHours(25));
        store.Prune(clock.GetUtcNow());
        Assert.Equal(0, store.Count);
    }

    [Fact]
    public void LeaseBinding_CopyIntoAnotherNamespace_FailsWithFix()
    {
        var check = new RequestVerifier(Clock()).Verify(SignedRequest(), new RequestExpectations("team-b", "train-1"));
        Assert.Equal(ReasonCode.LeaseBindingMismatch, check.Reason);
        Assert.Contains("team-a/train-1", check.Message, StringComparison.Ordinal);
        Assert.Contains("team-b/train-1", check.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Verifier_AllGood_ReturnsVerifiedRequestWithH()
    {
        var em = SignedRequest();
        var check = new RequestVerifier(new FakeTimeProvider(Now.AddHours(1))).Verify(em, new RequestExpectations("team-a", "train-1", Leaser.Identity.Address, Escrow.Identity.Address));
        Assert.True(check.IsOk, check.Message);
        Assert.Equal(RpoiEquations.TransactionHashOf(em), check.Value.H);
        Assert.Equal(string.Empty, check.Message);
    }

    [Fact]
    public void FailedCheck_ValueThrowsWithTheReason_NeverABareBool()
    {
        var failed = ProtocolChecks.Chips(0);
        var ex = Assert.Throws<InvalidOperationException>(() => failed.Value);
        Assert.Contains("InvalidChips", ex.Message, StringComparison.Ordinal);
        Assert.False(failed.TryGetValue(out _));
        Assert.Equal(ReasonCode.InvalidDuration, ProtocolChecks.Duration(0).Reason);
    }

    [Theory]
    [InlineData("")]
    [InlineData("[]")]
    [InlineData("null")]
    [InlineData("{\"payload\":1,\"signer\":\"a\",\"sig\":\"b\"}")]
    [InlineData("{\"payload\":{},\"signer\":\"a\",\"sig\":\"b\",\"extra\":1}")]
    [InlineData("{\"payload\":{},\"signer\":1,\"sig\":\"b\"}")]
    [InlineData("{\"payload\":{},\"payload\":{},\"signer\":\"a\",\"sig\":\"b\"}")]
    public void Parse_BadInput_IsMalformedMessage_NotAnException(string json)
    {
        var check = Signed<LeaseRequest>.Parse(json);
        Assert.Equal(ReasonCode.MalformedMessage, check.Reason);
        Assert.NotEmpty(check.Message);
        Assert.Equal(ReasonCode.MalformedMessage, SealedMessage.Parse(json).Reason);
    }

    [Fact]
    public void Parse_UnknownOrMissingPayloadField_NamesTheField()
    {
        var text = SignedRequest().ToJson();
        var unknown = Signed<LeaseRequest>.Parse(text.Replace("\"chips\":", "\"chipz\":", StringComparison.Ordinal));
        Assert.Equal(ReasonCode.MalformedMessage, unknown.Reason);
        Assert.Contains("chipz", unknown.Message, StringComparison.Ordinal);
        var badTime = Signed<LeaseRequest>.Parse(text.Replace("2026-03-01T12:00:00Z", "2026-03-01T12:00:00+01:00", StringComparison.Ordinal));
        Assert.Equal(ReasonCode.MalformedMessage, badTime.Reason);
        Assert.Contains("RFC 3339", badTime.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Request_WithLowOrderEncryptionKey_IsInvalidKey_NotAnException()
    {
        // A renter naming an X25519 key nobody can seal to must be refused before β tries to seal σ to it.
        var m = Request() with { Renter = new PublicKeys(Renter.Identity.SigningKeyBase64, Convert.ToBase64String(new byte[32])) };
        var check = RpoiEquations.VerifyRequest(Signed<LeaseRequest>.Create(m, Renter));
        Assert.Equal(ReasonCode.InvalidKey, check.Reason);
        Assert.Contains("encryptionKey", check.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Base64_NonCanonicalPaddingBits_AreRefused()
    {
        var sig = SignedRequest();
        // Last base64 char before "==" carries 4 unused bits; setting one gives the same bytes in lenient decoders.
        var s = sig.Sig;
        var alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        var last = alphabet.IndexOf(s[^3], StringComparison.Ordinal);
        var twin = s[..^3] + alphabet[last ^ 1] + "==";
        Assert.True(Convert.TryFromBase64String(twin, new byte[64], out _));
        var tampered = Signed<LeaseRequest>.Parse(sig.ToJson().Replace(s, twin, StringComparison.Ordinal)).Value;
        Assert.Equal(ReasonCode.InvalidEncoding, RpoiEquations.VerifyRequest(tampered).Reason);
    }
}
