using System.Text.Json;
using CsCheck;
using Rpoi.Protocol.Encoding;
using Rpoi.Protocol.Messages;
using static Rpoi.Protocol.Tests.Fixture;

namespace Rpoi.Protocol.Tests;

/// <summary>
/// The fast paths (serializer output checked instead of re-canonicalised; canonical input sliced instead of rebuilt)
/// must give exactly the bytes of the full RFC 8785 canonicaliser, for every message type and for hostile input.
/// </summary>
public sealed class CanonicalFastPathTests
{
    private const int Cases = 2_000;

    // Strings that exercise every escaping rule: quotes, backslashes, short and \u00xx control escapes, DEL,
    // non-ASCII, U+2028, astral characters and (rarely) lone surrogates, which must fail the same way on both paths.
    private static readonly Gen<string> Text = Gen.Frequency(
        (6, Gen.String.AlphaNumeric),
        (3, Gen.String[Gen.Char["ab\"\\/\n\r\t\b\f\u0001\u001f\u007fé\u2028€ 😀"], 0, 12]),
        (1, Gen.String));

    // Signed messages must be well-formed Unicode (signing a lone surrogate throws), so they draw from this.
    private static readonly Gen<string> CleanText = Text.Where(IsWellFormed);

    private static bool IsWellFormed(string s)
    {
        for (var i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(s[i]))
            {
                return false;
            }
        }

        return true;
    }

    private static readonly Gen<DateTimeOffset> Time =
        Gen.Select(Gen.Long[0, 3_000_000_000_000_000_000L], Gen.Bool, (t, whole) => new DateTimeOffset(whole ? t - (t % TimeSpan.TicksPerSecond) : t, TimeSpan.Zero));

    private static readonly Gen<Money> Amount = Gen.Select(Gen.Long[1, long.MaxValue], CleanText, (a, d) => new Money(a.ToString(System.Globalization.CultureInfo.InvariantCulture), d));

    private static readonly Gen<string> Leaf = Gen.OneOf(
        Gen.Int.Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        Gen.Long.Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        Gen.Double.Where(double.IsFinite).Select(d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture)),
        Gen.Const("1.50"),
        Gen.Const("1e2"),
        Gen.Const("-0"),
        Gen.Const("true"),
        Gen.Const("null"),
        Text.Select(s => JsonSerializer.Serialize(s)));

    // Keys are made distinct after serialising: System.Text.Json writes every lone surrogate as U+FFFD, so two
    // different generated keys can become the same JSON name, which is not I-JSON and not what this test is about.
    private static readonly Gen<JsonElement> PodTemplate =
        Gen.Dictionary(Text, Gen.OneOf(Leaf, Leaf.Array[0, 3].Select(a => "[" + string.Join(",", a) + "]")))[0, 5]
            .Select(d => JsonDocument.Parse("{\"spec\":{" + string.Join(",", d
                .Select(kv => (Name: JsonSerializer.Serialize(kv.Key), kv.Value))
                .DistinctBy(kv => JsonDocument.Parse(kv.Name).RootElement.GetString())
                .Select(kv => kv.Name + ":" + kv.Value)) + "}}").RootElement.Clone());

    private static readonly Gen<AccessGrant> GrantGen =
        Gen.Select(CleanText.Array[0, 3], CleanText, Gen.Dictionary(CleanText, CleanText)[0, 4], CleanText, PodTemplate, Time, Time)
            .Select(t => new AccessGrant(t.Item1, t.Item2, "tpu-v5-lite-podslice", "2x4", t.Item3, new Toleration(t.Item4, "Equal", t.Item2, "NoSchedule"), t.Item4 + "\n", t.Item5, t.Item6, t.Item7));

    private static readonly Gen<LeaseRequest> RequestGen =
        Gen.Select(CleanText, CleanText, Gen.Int, Gen.Long, Time, Amount, Amount, CleanText)
            .Select(t => Request() with { Leaser = t.Item1, Accelerator = t.Item2, Chips = t.Item3, DurationSeconds = t.Item4, Timestamp = t.Item5, Deposit = t.Item6, Rent = t.Item7, Lease = new LeaseRef(t.Item8, t.Item1) });

    private static readonly Gen<Rating> RatingGen = Gen.Select(Gen.Int[-3, 9], CleanText, Time, (s, c, t) => new Rating(s, c, t));

    /// <summary>Bytes, or the exception type: both paths must agree on failures too.</summary>
    private static string Outcome(Func<byte[]> f)
    {
        try
        {
            return Convert.ToHexString(f());
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or ArgumentException)
        {
            return "throws";
        }
    }

    private static void AssertWriterMatchesCanonicalizer<T>(T value)
    {
        var slow = Outcome(() => CanonicalJson.Canonicalize(JsonSerializer.SerializeToUtf8Bytes(value, ProtocolJson.Options)));
        Assert.Equal(slow, Outcome(() => ProtocolJson.CanonicalBytes(value)));
    }

    [Fact]
    public void CanonicalWriter_EqualsCanonicalize_ForRandomMessagesOfEveryType()
    {
        Gen.Select(RequestGen, GrantGen, RatingGen, CleanText, Text).Sample((m, grant, rating, text, raw) =>
        {
            AssertWriterMatchesCanonicalizer(m);
            AssertWriterMatchesCanonicalizer(grant);
            AssertWriterMatchesCanonicalizer(rating);
            var em = Signed<LeaseRequest>.Create(m with { Kind = MessageKinds.Request }, Renter);
            var mPrime = new GrantedLease(MessageKinds.Grant, text, em, grant);
            AssertWriterMatchesCanonicalizer(mPrime);
            var emm = Signed<RenterRating>.Create(new RenterRating(MessageKinds.RenterRating, text, em, text, rating), Renter);
            AssertWriterMatchesCanonicalizer(emm.Payload);
            AssertWriterMatchesCanonicalizer(new LeaserFinal(MessageKinds.LeaserFinal, text, em, text, emm, rating));
            AssertWriterMatchesCanonicalizer(new LeaserFinal(MessageKinds.LeaserFinal, text, em, text));
            var decision = RpoiEquations.Decide(rating.Score > 3, text.Length > 3);
            AssertWriterMatchesCanonicalizer(new SettlementReceipt(MessageKinds.Receipt, text, text, SettlementSource.RenterFallback, decision, [new Transfer(text, m.Rent, text, text, TransferStatus.Withheld)], rating.Time, text));
            AssertWriterMatchesCanonicalizer(new SealedMessage(SealedMessage.SuiteName, raw, text, raw, text, raw));
            AssertWriterMatchesCanonicalizer(new Rating(1, raw, rating.Time));
        }, iter: Cases);
    }

    [Fact]
    public void CanonicalWriter_SortsMapsAndCanonicalisesPodTemplate()
    {
        var grant = Grant() with
        {
            NodeSelector = new Dictionary<string, string> { ["z"] = "1", ["a"] = "2", ["B"] = "3" },
            PodTemplate = JsonDocument.Parse("""{ "b": 1.0, "a": [1e2, "x"] }""").RootElement.Clone(),
        };
        var json = System.Text.Encoding.UTF8.GetString(ProtocolJson.CanonicalBytes(grant));
        Assert.Contains("\"nodeSelector\":{\"B\":\"3\",\"a\":\"2\",\"z\":\"1\"}", json, StringComparison.Ordinal);
        Assert.Contains("\"podTemplate\":{\"a\":[100,\"x\"],\"b\":1}", json, StringComparison.Ordinal);
        Assert.True(CanonicalJson.IsCanonical(System.Text.Encoding.UTF8.GetBytes(json)));
    }

    [Fact]
    public void IsCanonical_AcceptsEveryProtocolMessageAsSigned()
    {
        // If these fell off the fast path the results would still be right, only slow: pin that they stay on it.
        var em = SignedRequest();
        var h = RpoiEquations.TransactionHashOf(em);
        var mPrime = Signed<GrantedLease>.Create(new GrantedLease(MessageKinds.Grant, h.Hex, em, Grant()), Leaser);
        var emm = RpoiEquations.SignRenterRating(em, RpoiEquations.GrantDigest(Grant()), Rating(5), Renter);
        var final = Signed<LeaserFinal>.Create(new LeaserFinal(MessageKinds.LeaserFinal, h.Hex, em, RpoiEquations.GrantDigest(Grant()), emm, Rating(4)), Leaser);
        var sealedGrant = SealedMessage.Seal(mPrime, Renter.Identity, SealPurposes.Access, h);
        foreach (var bytes in new[] { em.ToCanonicalBytes(), mPrime.ToCanonicalBytes(), emm.ToCanonicalBytes(), final.ToCanonicalBytes(), sealedGrant.ToUtf8Bytes() })
        {
            Assert.True(CanonicalJson.IsCanonical(bytes), System.Text.Encoding.UTF8.GetString(bytes));
            Assert.Equal(CanonicalJson.Canonicalize(bytes), bytes);
        }
    }

    [Theory]
    [InlineData("""{"a":1,"a":2}""")]
    [InlineData("""{"b":1,"a":2}""")]
    [InlineData("""{"a": 1}""")]
    [InlineData("""{"a":1.0}""")]
    [InlineData("""{"a":1e2}""")]
    [InlineData("""{"a":-0}""")]
    [InlineData("""{"a":01}""")]
    [InlineData("""{"a":1234567890123456}""")]
    [InlineData("""{"a":"\/"}""")]
    [InlineData("""{"a":"\u0041"}""")]
    [InlineData("""{"a":"\u000a"}""")]
    [InlineData("""{"a":"\u001F"}""")]
    [InlineData("""{"a":"\ud800"}""")]
    [InlineData("""{"é":1}""")]
    [InlineData("""{"a":1} """)]
    [InlineData("""{"a":1}{}""")]
    [InlineData("""{"a":tru}""")]
    [InlineData("""[1,]""")]
    [InlineData("")]
    public void IsCanonical_RejectsWhatTheCanonicaliserWouldChangeOrRefuse(string json) =>
        Assert.False(CanonicalJson.IsCanonical(System.Text.Encoding.UTF8.GetBytes(json)));

    [Theory]
    [InlineData("""{"a":"\u001f\n\"\\","b":[true,false,null,-12,0,{}],"c":[]}""")]
    [InlineData("{\"a\":\"é€😀\u007f\"}")]
    [InlineData("""[]""")]
    [InlineData("""123456789012345""")]
    public void IsCanonical_AcceptsCanonicalJson(string json)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(json);
        Assert.True(CanonicalJson.IsCanonical(bytes));
        Assert.Equal(json, System.Text.Encoding.UTF8.GetString(CanonicalJson.Canonicalize(bytes)));
    }

    [Fact]
    public void IsCanonical_NeverAcceptsBytesTheCanonicaliserWouldChange()
    {
        // Every single-byte change of a real message: when the check says "canonical", the canonicaliser must agree.
        var em = SignedRequest();
        var mPrime = Signed<GrantedLease>.Create(new GrantedLease(MessageKinds.Grant, RpoiEquations.TransactionHashOf(em).Hex, em, Grant()), Leaser).ToCanonicalBytes();
        var accepted = 0;
        Gen.Select(Gen.Int[0, mPrime.Length - 1], Gen.Byte).Sample((i, b) =>
        {
            var copy = (byte[])mPrime.Clone();
            copy[i] = b;
            if (CanonicalJson.IsCanonical(copy))
            {
                accepted++;
                Assert.Equal(Convert.ToHexString(copy), Outcome(() => CanonicalJson.Canonicalize(copy)));
            }
        }, iter: 20_000, threads: 1);
        Assert.True(accepted > 0, "no mutation stayed canonical; the property was never exercised");
    }

    [Fact]
    public void Parse_CanonicalAndReformattedInput_GiveTheSameEnvelopes()
    {
        Gen.Select(RequestGen, GrantGen, RatingGen, Gen.Int).Sample((m, grant, rating, seed) =>
        {
            var em = Signed<LeaseRequest>.Create(m, Renter);
            var emm = Signed<RenterRating>.Create(new RenterRating(MessageKinds.RenterRating, "h", em, "d", rating), Renter);
            var final = Signed<LeaserFinal>.Create(new LeaserFinal(MessageKinds.LeaserFinal, "h", em, "d", emm, rating), Leaser);
            var mPrime = Signed<GrantedLease>.Create(new GrantedLease(MessageKinds.Grant, "h", em, grant), Leaser);
            AssertSameParse(final, seed, f => [f.Payload.Request, f.Payload.RenterRating!.Payload.Request]);
            AssertSameParse(mPrime, seed, g => [g.Payload.Request]);
        }, iter: Cases / 4);
    }

    private static void AssertSameParse<T>(Signed<T> original, int seed, Func<Signed<T>, Signed<LeaseRequest>[]> nested)
        where T : class
    {
        var canonical = original.ToCanonicalBytes();
        var fast = Signed<T>.Parse(canonical);
        // White space inside the envelope makes it non-canonical: the general path (rebuild, then deserialize).
        var spaced = System.Text.Encoding.UTF8.GetString(canonical).Insert(1, (seed & 1) == 0 ? " " : "\n\t");
        var slow = Signed<T>.Parse(spaced);
        Assert.True(fast.IsOk, fast.Message);
        Assert.True(slow.IsOk, slow.Message);
        Assert.Equal(canonical, fast.Value.ToCanonicalBytes());
        Assert.Equal(canonical, slow.Value.ToCanonicalBytes());
        Assert.Equal(original.CanonicalPayload.ToArray(), fast.Value.CanonicalPayload.ToArray());
        Assert.Equal(slow.Value.CanonicalPayload.ToArray(), fast.Value.CanonicalPayload.ToArray());
        var expected = nested(original).Select(e => Convert.ToHexString(e.ToCanonicalBytes()) + RpoiEquations.TransactionHashOf(e).Hex);
        Assert.Equal(expected, nested(fast.Value).Select(e => Convert.ToHexString(e.ToCanonicalBytes()) + RpoiEquations.TransactionHashOf(e).Hex));
        Assert.Equal(expected, nested(slow.Value).Select(e => Convert.ToHexString(e.ToCanonicalBytes()) + RpoiEquations.TransactionHashOf(e).Hex));
        Assert.True(fast.Value.VerifySignature(Leaser.Identity).IsOk || fast.Value.VerifySignature(Renter.Identity).IsOk);
    }

    [Fact]
    public void Deserialize_OutsideParse_StillReadsNestedEnvelopes()
    {
        // Callers may deserialize a message record directly (no canonical buffer on the thread): the nested E(m)
        // then goes through the general path and keeps its exact signed bytes.
        var em = SignedRequest();
        var mPrime = new GrantedLease(MessageKinds.Grant, "h", em, Grant());
        var indented = JsonSerializer.Serialize(mPrime, ProtocolJson.Indented);
        var back = JsonSerializer.Deserialize<GrantedLease>(indented, ProtocolJson.Options)!;
        Assert.Equal(em.ToCanonicalBytes(), back.Request.ToCanonicalBytes());
        Assert.True(RpoiEquations.VerifyRequest(back.Request).IsOk);
    }

    [Fact]
    public void Parse_NonCanonicalEnvelopeShapes_FallBackWithTheSameErrors()
    {
        var em = SignedRequest();
        var payload = System.Text.Encoding.UTF8.GetString(em.CanonicalPayload);
        // Canonical JSON, but not the envelope shape: the general path must give its usual error.
        var extra = $$"""{"extra":1,"payload":{{payload}},"sig":"{{em.Sig}}","signer":"{{em.Signer}}"}""";
        var missing = $$"""{"payload":{{payload}},"sig":"{{em.Sig}}"}""";
        var arrayPayload = $$"""{"payload":[],"sig":"{{em.Sig}}","signer":"{{em.Signer}}"}""";
        foreach (var json in new[] { extra, missing, arrayPayload })
        {
            Assert.True(CanonicalJson.IsCanonical(System.Text.Encoding.UTF8.GetBytes(json)));
            var parsed = Signed<LeaseRequest>.Parse(json);
            Assert.Equal(Checks.ReasonCode.MalformedMessage, parsed.Reason);
        }

        Assert.Contains("unexpected, duplicate or mistyped envelope field 'extra'", Signed<LeaseRequest>.Parse(extra).Message, StringComparison.Ordinal);
        Assert.Contains("needs payload, signer and sig", Signed<LeaseRequest>.Parse(missing).Message, StringComparison.Ordinal);
    }
}
