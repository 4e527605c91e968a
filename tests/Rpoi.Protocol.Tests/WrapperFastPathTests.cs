using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using CsCheck;
using Rpoi.Protocol.Crypto;
using Rpoi.Protocol.Encoding;
using Rpoi.Protocol.Messages;
using static Rpoi.Protocol.Tests.Fixture;

namespace Rpoi.Protocol.Tests;

/// <summary>
/// The shortcuts taken for speed (vectorised base64 and string scans, the hand-parsed timestamp, the one-pass envelope
/// split, directly written sealed messages and envelopes, the lean HPKE key schedule) must accept, refuse and produce
/// exactly what the general code they stand in for does. Each test compares against that general code as an oracle.
/// </summary>
public sealed class WrapperFastPathTests
{
    private const int Cases = 5_000;

    private const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    /// <summary>The decoder before the fast path, as the oracle: alphabet only, and re-encoding gives the same text
    /// (a decodable but non-canonical text still hands out its bytes with false).</summary>
    private static bool OracleBase64(string text, out byte[] bytes)
    {
        bytes = [];
        if (text.Length == 0 || text.Length % 4 != 0 || text.Any(c => !(Alphabet.Contains(c, StringComparison.Ordinal) || c == '=')))
        {
            return false;
        }

        var buffer = new byte[text.Length / 4 * 3];
        if (!Convert.TryFromBase64String(text, buffer, out var written))
        {
            return false;
        }

        bytes = buffer[..written];
        return Convert.ToBase64String(bytes) == text;
    }

    // Valid encodings, then one character replaced (padding bits, '=', white space, junk) or the text cut short.
    private static readonly Gen<string> Base64Text = Gen.Select(
        Gen.Byte.Array[0, 40],
        Gen.Int[0, 200],
        Gen.Char[Alphabet + "= \n\t.-_é"],
        Gen.Int[0, 3],
        (bytes, where, c, mode) =>
        {
            var text = Convert.ToBase64String(bytes);
            return mode switch
            {
                0 => text,
                1 when text.Length > 0 => text.Remove(where % text.Length, 1).Insert(where % text.Length, c.ToString()),
                2 when text.Length > 0 => text[..(where % text.Length)],
                _ => text + c,
            };
        });

    [Fact]
    public void Base64_AcceptsAndDecodesExactlyWhatReEncodingAccepts()
    {
        Base64Text.Sample(text =>
        {
            var expected = OracleBase64(text, out var expectedBytes);
            Assert.Equal(expected, Codec.TryFromBase64(text, out var bytes));
            Assert.Equal(expectedBytes, bytes);
            var length = Codec.CanonicalBase64Length(text);
            if (expected)
            {
                var span = new byte[length];
                Assert.True(Codec.TryFromBase64(text, span));
                Assert.Equal(expectedBytes, span);
            }
            else if (length >= 0)
            {
                Assert.False(Codec.TryFromBase64(text, new byte[length]));
            }
        }, iter: Cases);
    }

    [Theory]
    [InlineData("QQ==", true)]
    [InlineData("QR==", false)] // unused bits set
    [InlineData("QUI=", true)]
    [InlineData("QUJ=", false)]
    [InlineData("QUJD", true)]
    [InlineData("====", false)]
    [InlineData("A===", false)]
    [InlineData("QQ==QUJD", false)] // padding in the middle
    [InlineData("QU JD", false)]
    [InlineData("QUJD\n", false)]
    [InlineData("", false)]
    public void Base64_EdgeCases(string text, bool accepted)
    {
        Assert.Equal(accepted, Codec.TryFromBase64(text, out _));
        Assert.Equal(OracleBase64(text, out _), accepted);
    }

    /// <summary>The exact parser the hand-written one stands in front of (the code before the fast path).</summary>
    private static bool OracleTimestamp(string text, out DateTimeOffset value)
    {
        value = default;
        return text.Length >= 20 && text[^1] == 'Z' && text[10] == 'T' &&
            DateTimeOffset.TryParseExact(text, ["yyyy-MM-dd'T'HH:mm:ss'Z'", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'"], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out value);
    }

    // yyyy-MM-ddTHH:mm:ssZ with every field drawn around and beyond its range, plus the odd wrong separator.
    private static readonly Gen<string> TimestampText = Gen.Select(
        Gen.Int[0, 10_000], Gen.Int[0, 13], Gen.Int[0, 32], Gen.Int[0, 25], Gen.Int[0, 61], Gen.Int[0, 61], Gen.Char["T-:Zt 0"], Gen.Int[0, 19])
        .Select(t =>
        {
            var text = string.Create(CultureInfo.InvariantCulture, $"{t.Item1:0000}-{t.Item2:00}-{t.Item3:00}T{t.Item4:00}:{t.Item5:00}:{t.Item6:00}Z");
            return t.Item7 == '0' || text.Length != 20 ? text : text.Remove(t.Item8, 1).Insert(t.Item8, t.Item7.ToString());
        });

    [Fact]
    public void Timestamp_ParsesExactlyWhatTheExactParserParses()
    {
        TimestampText.Sample(text =>
        {
            var expected = OracleTimestamp(text, out var expectedValue);
            Assert.Equal(expected, UtcTimestampConverter.TryParse(text, out var value));
            Assert.Equal(expectedValue, value);
            Assert.Equal(expectedValue.Offset, value.Offset);

            // Through JSON: raw bytes (fast path) and an escaped spelling (general path) must agree with the oracle.
            foreach (var json in new[] { JsonSerializer.Serialize(text), "\"\\u00" + ((int)text[0]).ToString("x2", CultureInfo.InvariantCulture) + text[1..] + "\"" })
            {
                if (expected)
                {
                    Assert.Equal(expectedValue, JsonSerializer.Deserialize<DateTimeOffset>(json, ProtocolJson.Options));
                }
                else
                {
                    Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<DateTimeOffset>(json, ProtocolJson.Options));
                }
            }
        }, iter: Cases);
    }

    [Theory]
    [InlineData("2024-02-29T00:00:00Z")]
    [InlineData("2023-02-29T00:00:00Z")]
    [InlineData("2100-02-29T00:00:00Z")]
    [InlineData("0000-01-01T00:00:00Z")]
    [InlineData("0001-01-01T00:00:00Z")]
    [InlineData("9999-12-31T23:59:59Z")]
    [InlineData("2026-01-01T24:00:00Z")]
    [InlineData("2026-01-01T23:59:60Z")]
    [InlineData("2026-01-01T00:00:00.5Z")]
    [InlineData("2026-01-01T00:00:00.5000000Z")]
    [InlineData("2026-01-01T00:00:00+00:00")]
    [InlineData("２026-01-01T00:00:00Z")]
    public void Timestamp_EdgeCasesAgreeWithTheExactParser(string text)
    {
        var expected = OracleTimestamp(text, out var expectedValue);
        Assert.Equal(expected, UtcTimestampConverter.TryParse(text, out var value));
        Assert.Equal(expectedValue, value);
    }

    [Fact]
    public void Timestamp_FormatsLikeTheFormatStrings()
    {
        Gen.Select(Gen.Long[0, DateTimeOffset.MaxValue.Ticks], Gen.Bool, (t, whole) => new DateTimeOffset(whole ? t - (t % TimeSpan.TicksPerSecond) : t, TimeSpan.Zero)).Sample(time =>
        {
            var format = time.Ticks % TimeSpan.TicksPerSecond == 0 ? "yyyy-MM-dd'T'HH:mm:ss'Z'" : "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'";
            var expected = time.ToString(format, CultureInfo.InvariantCulture);
            Assert.Equal(expected, UtcTimestampConverter.Format(time));
            Assert.Equal(JsonSerializer.Serialize(expected, ProtocolJson.Options), JsonSerializer.Serialize(time, ProtocolJson.Options));
        }, iter: Cases);
    }

    private static readonly Gen<string> Text = Gen.Frequency(
        (6, Gen.String.AlphaNumeric),
        (3, Gen.String[Gen.Char["ab\"\\/\n\r\t\b\f\u0001\u001f\u007fé\u2028€ 😀"], 0, 12]),
        (1, Gen.String));

    /// <summary>Bytes, or "throws": both paths must agree on failures too.</summary>
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

    [Fact]
    public void SealedMessage_ToUtf8Bytes_IsTheCanonicalSerialization()
    {
        Gen.Select(Text, Text, Gen.Bool).Sample((a, b, plain) =>
        {
            var sealedMessage = plain
                ? new SealedMessage(SealedMessage.SuiteName, SealPurposes.Access, new string('a', 64), "0123456789abcdef", Convert.ToBase64String(new byte[32]), Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(a + b)))
                : new SealedMessage(a, b, a, b, b, a);
            Assert.Equal(Outcome(() => ProtocolJson.CanonicalBytes(sealedMessage)), Outcome(sealedMessage.ToUtf8Bytes));
        }, iter: Cases);
    }

    [Fact]
    public void SealedMessage_ToUtf8Bytes_TreatsANullFieldLikeTheSerializer()
    {
        var sealedMessage = new SealedMessage(SealedMessage.SuiteName, SealPurposes.Final, "h", null!, "enc", "ct");
        Assert.Equal(Outcome(() => ProtocolJson.CanonicalBytes(sealedMessage)), Outcome(sealedMessage.ToUtf8Bytes));
    }

    [Fact]
    public void SealedMessage_Parse_BuildsWhatTheSerializerBuilds()
    {
        var em = SignedRequest();
        var canonical = SealedMessage.Seal(em, Renter.Identity, SealPurposes.Access, RpoiEquations.TransactionHashOf(em)).ToUtf8Bytes();
        Gen.Select(Gen.Int[0, int.MaxValue], Gen.Byte, Gen.Int[0, 2], Text).Sample((where, b, mode, text) =>
        {
            var bytes = (byte[])canonical.Clone();
            if (mode == 1)
            {
                // Fields that need escaping (or cannot be written at all): the general path on both sides.
                var written = Outcome(new SealedMessage(text, SealPurposes.Final, text, "r", text, "Y3Q=").ToUtf8Bytes);
                if (written == "throws")
                {
                    return;
                }

                bytes = Convert.FromHexString(written);
            }
            else if (mode == 2)
            {
                bytes[where % bytes.Length] = b;
            }

            SealedMessage? expected;
            try
            {
                expected = System.Text.Unicode.Utf8.IsValid(bytes) ? JsonSerializer.Deserialize<SealedMessage>(bytes, ProtocolJson.Options) : null;
            }
            catch (Exception ex) when (ex is JsonException or InvalidOperationException)
            {
                expected = null;
            }

            var parsed = SealedMessage.Parse(bytes);
            Assert.Equal(expected is not null, parsed.IsOk);
            if (expected is not null)
            {
                Assert.Equal(expected, parsed.Value);
            }
        }, iter: Cases);
    }

    [Fact]
    public void WriteString_EscapesLikeRfc8785()
    {
        Text.Sample(s =>
        {
            var writer = new ArrayBufferWriter<byte>();
            var actual = Outcome(() =>
            {
                CanonicalJson.WriteString(s, writer);
                return writer.WrittenSpan.ToArray();
            });
            Assert.Equal(Outcome(() => ReferenceString(s)), actual);
        }, iter: Cases);
    }

    /// <summary>RFC 8785 3.2.2.2 written out char by char: short escapes, \u00xx for other controls, UTF-8 otherwise.</summary>
    private static byte[] ReferenceString(string s)
    {
        var sb = new System.Text.StringBuilder("\"");
        foreach (var c in s)
        {
            sb.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\b' => "\\b",
                '\f' => "\\f",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                < ' ' => "\\u" + ((int)c).ToString("x4", CultureInfo.InvariantCulture),
                _ => c.ToString(),
            });
        }

        return new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true).GetBytes(sb.Append('"').ToString());
    }

    [Fact]
    public void SplitEnvelope_AgreesWithTheCanonicalCheckAndTheJsonReader()
    {
        var envelopes = new[]
        {
            SignedRequest().ToCanonicalBytes(),
            Signed<GrantedLease>.Create(new GrantedLease(MessageKinds.Grant, new string('a', 64), SignedRequest(), Grant()), Leaser).ToCanonicalBytes(),
        };
        Assert.All(envelopes, e => Assert.True(CanonicalJson.TrySplitEnvelope(e, out _, out _, out _)));
        Gen.Select(Gen.Int[0, 1], Gen.Int[0, int.MaxValue], Gen.Byte, (which, where, b) => (which, where, b)).Sample(t =>
        {
            var bytes = (byte[])envelopes[t.which].Clone();
            bytes[t.where % bytes.Length] = t.b;
            if (!CanonicalJson.TrySplitEnvelope(bytes, out var payload, out var sig, out var signer))
            {
                return;
            }

            // Accepted: the full canonical check and a JSON reader must see the same envelope.
            Assert.True(CanonicalJson.IsCanonical(bytes));
            var reader = new Utf8JsonReader(bytes);
            Assert.True(reader.Read());
            Assert.True(Signed<LeaseRequest>.TrySplit(ref reader, out var readerPayload, out var readerSig, out var readerSigner));
            Assert.False(reader.Read());
            Assert.Equal(readerPayload, payload);
            Assert.Equal(readerSig, sig);
            Assert.Equal(readerSigner, signer);
        }, iter: Cases);
    }

    [Fact]
    public void Signed_ToCanonicalBytes_EscapesASigThatNeedsIt()
    {
        // A sig that is not base64 cannot verify, but its envelope must still have one canonical spelling.
        var em = SignedRequest();
        var payload = System.Text.Encoding.UTF8.GetString(em.CanonicalPayload);
        var json = $$"""{"payload":{{payload}},"sig":"a\"b\u0001é","signer":"{{em.Signer}}"}""";
        var parsed = Signed<LeaseRequest>.Parse(json);
        Assert.True(parsed.IsOk, parsed.Message);
        Assert.Equal(CanonicalJson.Canonicalize(System.Text.Encoding.UTF8.GetBytes(json)), parsed.Value.ToCanonicalBytes());
        Assert.Equal(Checks.ReasonCode.InvalidEncoding, parsed.Value.VerifySignature(Renter.Identity).Reason);
    }

    [Fact]
    public void Signed_VerifySignature_RefusesEverySigThatIsNotCanonicalBase64OfSixtyFourBytes()
    {
        // The signature is decoded onto the stack now: a second spelling of the same 64 bytes (unused bits set in the
        // last character before the padding) must still be refused, not verified, and so must 63 or 65 bytes.
        var em = SignedRequest();
        Assert.True(em.VerifySignature(Renter.Identity).IsOk);
        var payload = System.Text.Encoding.UTF8.GetString(em.CanonicalPayload);
        var sig = Convert.FromBase64String(em.Sig);
        const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        var last = Alphabet.IndexOf(em.Sig[^3], StringComparison.Ordinal);
        var respelled = em.Sig[..^3] + Alphabet[last | 0x0F] + "==";
        Assert.NotEqual(em.Sig, respelled);
        Assert.Equal(sig, Convert.FromBase64String(respelled));
        foreach (var bad in new[] { respelled, Convert.ToBase64String(sig[..63]), Convert.ToBase64String([.. sig, 0]), string.Empty })
        {
            var json = $$"""{"payload":{{payload}},"sig":"{{bad}}","signer":"{{em.Signer}}"}""";
            var parsed = Signed<LeaseRequest>.Parse(json);
            Assert.True(parsed.IsOk, parsed.Message);
            Assert.Equal(Checks.ReasonCode.InvalidEncoding, parsed.Value.VerifySignature(Renter.Identity).Reason);
        }
    }

    [Fact]
    public void Hpke_LabeledExtractAndExpand_MatchHkdfForEveryLength()
    {
        // LabeledExtract/Expand call HMAC directly (one block for L <= 32); .NET's HKDF on the same labeled input is
        // the reference, for every output length a suite can ask for, an empty and a given salt, long infos included.
        var suite = "HPKE\0\u0020\0\u0001\0\u0002"u8.ToArray();
        Gen.Select(Gen.Byte.Array[32], Gen.Byte.Array[0, 300], Gen.Int[1, 80], Gen.Bool, (prk, info, length, salted) => (prk, info, length, salted)).Sample(t =>
        {
            var label = "base_nonce"u8.ToArray();
            var labeledInfo = new byte[2 + 7 + suite.Length + label.Length + t.info.Length];
            labeledInfo[0] = (byte)(t.length >> 8);
            labeledInfo[1] = (byte)t.length;
            "HPKE-v1"u8.CopyTo(labeledInfo.AsSpan(2));
            suite.CopyTo(labeledInfo, 9);
            label.CopyTo(labeledInfo, 9 + suite.Length);
            t.info.CopyTo(labeledInfo, 9 + suite.Length + label.Length);
            Assert.Equal(HKDF.Expand(HashAlgorithmName.SHA256, t.prk, t.length, labeledInfo), Hpke.LabeledExpand(suite, t.prk, label, t.info, t.length));

            var salt = t.salted ? t.prk : [];
            var labeledIkm = new byte[7 + suite.Length + label.Length + t.info.Length];
            "HPKE-v1"u8.CopyTo(labeledIkm);
            suite.CopyTo(labeledIkm, 7);
            label.CopyTo(labeledIkm, 7 + suite.Length);
            t.info.CopyTo(labeledIkm, 7 + suite.Length + label.Length);
            Assert.Equal(HKDF.Extract(HashAlgorithmName.SHA256, labeledIkm, salt), Hpke.LabeledExtract(suite, salt, label, t.info));
        }, iter: Cases);
    }

    [Fact]
    public void Hpke_LeanSeal_OpensWithTheFullKeySchedule()
    {
        var (sk, pk) = Hpke.GenerateKeyPair();
        var aad = RandomNumberGenerator.GetBytes(32);
        foreach (var aead in new[] { HpkeAead.Aes128Gcm, HpkeAead.Aes256Gcm })
        {
            var (enc, ct) = Hpke.Seal(aead, pk, "rpoi/v1/final"u8, aad, "m_final"u8);
            var schedule = Hpke.KeyScheduleForReceiver(aead, sk, pk, enc, "rpoi/v1/final"u8);
            Assert.Equal(ct, Hpke.AeadSeal(schedule.Key, schedule.BaseNonce, aad, "m_final"u8));
            Assert.True(Hpke.TryOpen(aead, sk, pk, enc, "rpoi/v1/final"u8, aad, ct, out var pt));
            Assert.Equal("m_final"u8.ToArray(), pt);
        }
    }
}
