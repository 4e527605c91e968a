using Microsoft.Extensions.Time.Testing;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;
using static Rpoi.Protocol.Tests.Fixture;

namespace Rpoi.Protocol.Tests;

/// <summary>Every <see cref="ReasonCode"/> value is produced by a real scenario; adding a value without one fails here.</summary>
public sealed class ReasonCodeCoverageTests
{
    private static ReasonCode? Verify(Signed<LeaseRequest> request, RequestExpectations? expect = null, TimeProvider? clock = null) =>
        new RequestVerifier(clock ?? Clock()).Verify(request, expect ?? new RequestExpectations("team-a", "train-1")).Reason;

    private static Signed<LeaseRequest> Sign(Func<LeaseRequest, LeaseRequest> change) => RpoiEquations.SignRequest(change(Request()), Renter);

    private static SealedMessage SealedGrant(Signed<LeaseRequest> em) => RpoiEquations.SealGrant(RpoiEquations.VerifyRequest(em).Value, Grant(), Leaser);

    public static IReadOnlyDictionary<ReasonCode, Func<ReasonCode?>> Scenarios { get; } = new Dictionary<ReasonCode, Func<ReasonCode?>>
    {
        [ReasonCode.MalformedMessage] = () => Signed<LeaseRequest>.Parse("""{"payload":{},"signer":"x","sig":"y"}""").Reason,
        [ReasonCode.InvalidField] = () => Verify(Sign(m => m with { Nonce = "short" })),
        [ReasonCode.InvalidEncoding] = () => TransactionHash.Parse("ABC").Reason,
        [ReasonCode.InvalidKey] = () => PartyIdentity.FromKeys(new byte[31], new byte[32]).Reason,
        [ReasonCode.WrongKind] = () => RpoiEquations.VerifyRequest(Signed<LeaseRequest>.Create(Request() with { Kind = "rpoi.other/v1" }, Renter)).Reason,
        [ReasonCode.BadSignature] = () => RpoiEquations.VerifyRequest(Signed<LeaseRequest>.Parse(SignedRequest().ToJson().Replace("\"chips\":8", "\"chips\":9", StringComparison.Ordinal)).Value).Reason,
        [ReasonCode.SignerMismatch] = () => SignedRequest().VerifySignature(Leaser.Identity).Reason,
        [ReasonCode.LeaseBindingMismatch] = () => Verify(SignedRequest(), new RequestExpectations("team-b", "train-1")),
        [ReasonCode.PartyMismatch] = () => Verify(SignedRequest(), new RequestExpectations(LeaserAddress: Stranger.Identity.Address)),
        [ReasonCode.RequestTooOld] = () => Verify(SignedRequest(), clock: new FakeTimeProvider(Now.AddHours(24).AddSeconds(1))),
        [ReasonCode.RequestFromFuture] = () => Verify(SignedRequest(), clock: new FakeTimeProvider(Now.AddMinutes(-5).AddSeconds(-1))),
        [ReasonCode.NonceReplayed] = () =>
        {
            var store = new InMemoryNonceStore(Clock());
            var verifier = new RequestVerifier(Clock(), store);
            var first = SignedRequest();
            _ = verifier.VerifyAsync(first, new RequestExpectations()).AsTask().Result;
            var replay = Sign(m => m with { Nonce = first.Payload.Nonce, Chips = 4 });
            return verifier.VerifyAsync(replay, new RequestExpectations()).AsTask().Result.Reason;
        },
        [ReasonCode.InvalidAmount] = () => Verify(Sign(m => m with { Deposit = new Money("0", "uusd") })),
        [ReasonCode.DenominationMismatch] = () => Verify(Sign(m => m with { Rent = new Money("5", "uatom") })),
        [ReasonCode.InvalidChips] = () => Verify(Sign(m => m with { Chips = 0 })),
        [ReasonCode.InvalidDuration] = () => Verify(Sign(m => m with { DurationSeconds = -1 })),
        [ReasonCode.RatingOutOfRange] = () => ProtocolChecks.RatingRange(Rating(6), "rating").Reason,
        [ReasonCode.GrantDigestMismatch] = () => ProtocolChecks.GrantDigest(new string('a', 64), new string('b', 64)).Reason,
        [ReasonCode.HashMismatch] = () => SealedGrant(SignedRequest()).Open<GrantedLease>(Renter, SealPurposes.Access, RpoiEquations.TransactionHashOf(SignedRequest())).Reason,
        [ReasonCode.DecryptionFailed] = () =>
        {
            var em = SignedRequest();
            var s = SealedGrant(em);
            return (s with { Ct = Convert.ToBase64String(new byte[40]) }).Open<GrantedLease>(Renter, SealPurposes.Access, RpoiEquations.TransactionHashOf(em)).Reason;
        },
        [ReasonCode.WrongRecipient] = () =>
        {
            var em = SignedRequest();
            return RpoiEquations.OpenGrant(SealedGrant(em), Stranger, em, Leaser.Identity).Reason;
        },
        [ReasonCode.WrongPurpose] = () =>
        {
            var em = SignedRequest();
            return SealedGrant(em).Open<LeaserFinal>(Renter, SealPurposes.Final, RpoiEquations.TransactionHashOf(em)).Reason;
        },
        [ReasonCode.UnsupportedSuite] = () =>
        {
            var em = SignedRequest();
            return (SealedGrant(em) with { Suite = "DHKEM-P256" }).Open<GrantedLease>(Renter, SealPurposes.Access, RpoiEquations.TransactionHashOf(em)).Reason;
        },
        [ReasonCode.KeyFileInvalid] = () => KeyFile.Parse("""{"version":1}""").Reason,
    };

    [Fact]
    public void EveryReasonCode_HasAScenario()
    {
        Assert.Equal(Enum.GetValues<ReasonCode>().Order(), Scenarios.Keys.Order());
    }

    public static TheoryData<ReasonCode> AllCodes => new(Enum.GetValues<ReasonCode>());

    [Theory]
    [MemberData(nameof(AllCodes))]
    public void EveryReasonCode_IsReachedByItsScenario(ReasonCode code)
    {
        Assert.True(Scenarios.TryGetValue(code, out var scenario), $"no scenario produces {code}");
        Assert.Equal(code, scenario());
    }
}
