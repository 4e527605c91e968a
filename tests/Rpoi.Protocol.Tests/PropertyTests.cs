using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CsCheck;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Messages;
using static Rpoi.Protocol.Tests.Fixture;

namespace Rpoi.Protocol.Tests;

/// <summary>CsCheck property tests, 10,000 cases each.</summary>
public sealed class PropertyTests
{
    private const int Cases = 10_000;

    private static readonly Signed<LeaseRequest> Request = SignedRequest();
    private static readonly TransactionHash H = RpoiEquations.TransactionHashOf(Request);

    /// <summary>(position, xor delta): changes exactly one byte to a different value.</summary>
    private static Gen<(int Index, byte Delta)> OneByteChange(int length) => Gen.Select(Gen.Int[0, length - 1], Gen.Byte[1, 255]);

    private static byte[] Flip(byte[] original, int index, byte delta)
    {
        var copy = (byte[])original.Clone();
        copy[index] ^= delta;
        return copy;
    }

    [Fact]
    public void Tamper_SignedRequest_AnySingleByteChange_RejectedWithRightReason()
    {
        var original = Request.ToCanonicalBytes();
        OneByteChange(original.Length).Sample((i, d) =>
        {
            var tampered = Flip(original, i, d);
            var expected = TamperOracle.ForSignedRequest(original, tampered);
            var parsed = Signed<LeaseRequest>.Parse(tampered);
            var actual = parsed.IsOk ? RpoiEquations.VerifyRequest(parsed.Value).Reason : parsed.Reason;
            Assert.NotNull(expected);
            Assert.Equal(expected, actual);
        }, iter: Cases);
    }

    [Fact]
    public void Tamper_SignedReceipt_AnySingleByteChange_RejectedWithRightReason()
    {
        var receipt = RpoiEquations.SignReceipt(
            new SettlementReceipt(MessageKinds.Receipt, H.Hex, Escrow.Identity.Address, SettlementSource.LeaserFinal, RpoiEquations.Decide(true, false), RpoiEquations.TransfersFor(Request.Payload, RpoiEquations.Decide(true, false), Escrow.Identity.Address), Now, "ledger:7"),
            Escrow);
        var original = receipt.ToCanonicalBytes();
        OneByteChange(original.Length).Sample((i, d) =>
        {
            var tampered = Flip(original, i, d);
            var expected = TamperOracle.ForSignedByKnownKey<SettlementReceipt>(original, tampered);
            var parsed = Signed<SettlementReceipt>.Parse(tampered);
            var actual = parsed.IsOk ? RpoiEquations.VerifyReceipt(parsed.Value, Escrow.Identity, H).Reason : parsed.Reason;
            Assert.NotNull(expected);
            Assert.Equal(expected, actual);
        }, iter: Cases);
    }

    [Fact]
    public void Tamper_RenterRating_AnySingleByteChange_RejectedWithRightReason()
    {
        var rating = RpoiEquations.SignRenterRating(Request, RpoiEquations.GrantDigest(Grant()), Rating(4), Renter);
        var original = rating.ToCanonicalBytes();
        OneByteChange(original.Length).Sample((i, d) =>
        {
            var tampered = Flip(original, i, d);
            var expected = TamperOracle.ForSignedByKnownKey<RenterRating>(original, tampered);
            var parsed = Signed<RenterRating>.Parse(tampered);
            var actual = parsed.IsOk ? parsed.Value.VerifySignature(Renter.Identity).Reason : parsed.Reason;
            Assert.NotNull(expected);
            Assert.Equal(expected, actual);
        }, iter: Cases);
    }

    [Fact]
    public void Tamper_SealedGrant_AnySingleByteChange_RejectedWithRightReason()
    {
        var sealedGrant = RpoiEquations.SealGrant(RpoiEquations.VerifyRequest(Request).Value, Grant(), Leaser);
        var original = sealedGrant.ToUtf8Bytes();
        OneByteChange(original.Length).Sample((i, d) =>
        {
            var tampered = Flip(original, i, d);
            var expected = TamperOracle.ForSealed(original, tampered);
            var parsed = SealedMessage.Parse(tampered);
            var actual = parsed.IsOk ? RpoiEquations.OpenGrant(parsed.Value, Renter, Request, Leaser.Identity).Reason : parsed.Reason;
            Assert.NotNull(expected);
            Assert.Equal(expected, actual);
        }, iter: Cases);
    }

    [Fact]
    public void Tamper_SealedFinal_AnySingleByteChange_RejectedWithRightReason()
    {
        var digest = RpoiEquations.GrantDigest(Grant());
        var mFinal = RpoiEquations.SealFinal(Request, digest, RpoiEquations.SignRenterRating(Request, digest, Rating(5), Renter), Rating(3), Leaser, Escrow.Identity);
        var original = mFinal.ToUtf8Bytes();
        OneByteChange(original.Length).Sample((i, d) =>
        {
            var tampered = Flip(original, i, d);
            var expected = TamperOracle.ForSealed(original, tampered);
            var parsed = SealedMessage.Parse(tampered);
            var actual = parsed.IsOk ? RpoiEquations.OpenFinal(parsed.Value, Escrow, Leaser.Identity).Reason : parsed.Reason;

            // π reads H from the plain field before opening: a malformed H is an encoding error there.
            if (expected == ReasonCode.HashMismatch && !TransactionHash.Parse(parsed.Value?.H).IsOk)
            {
                expected = ReasonCode.InvalidEncoding;
            }
            else if (expected == ReasonCode.HashMismatch)
            {
                // A well-formed but different H passes the field check and fails AEAD (H is the aad).
                expected = ReasonCode.DecryptionFailed;
            }

            Assert.NotNull(expected);
            Assert.Equal(expected, actual);
        }, iter: Cases);
    }

    [Fact]
    public void SealedForOneH_DoesNotOpenUnderAnother()
    {
        var sealedGrant = RpoiEquations.SealGrant(RpoiEquations.VerifyRequest(Request).Value, Grant(), Leaser);
        Gen.Byte.Array[32].Where(b => !b.AsSpan().SequenceEqual(H.Bytes)).Sample(other =>
        {
            var otherH = TransactionHash.FromBytes(other);
            // Asked under another H, the plain h field already disagrees...
            Assert.Equal(ReasonCode.HashMismatch, sealedGrant.Open<GrantedLease>(Renter, SealPurposes.Access, otherH).Reason);
            // ...and with the h field rewritten to match, the AEAD (aad = H) refuses it.
            Assert.Equal(ReasonCode.DecryptionFailed, (sealedGrant with { H = otherH.Hex }).Open<GrantedLease>(Renter, SealPurposes.Access, otherH).Reason);
        }, iter: Cases);
    }

    [Fact]
    public void H_IsIndependentOfJsonFormatting()
    {
        var node = JsonNode.Parse(Request.ToJson())!;
        Gen.Int.Sample(seed =>
        {
            var text = Reformat(node, new Random(seed));
            var h = RpoiEquations.TransactionHashOf(text);
            Assert.True(h.IsOk, h.Message);
            Assert.Equal(H, h.Value);
            var parsed = Signed<LeaseRequest>.Parse(text).Value;
            Assert.True(RpoiEquations.VerifyRequest(parsed).IsOk);
        }, iter: Cases);
    }

    /// <summary>Writes JSON with shuffled keys, random white space and non-canonical (but equal) string escapes.</summary>
    internal static string Reformat(JsonNode node, Random random)
    {
        var sb = new StringBuilder();
        Write(node, random, sb);
        return sb.ToString();
    }

    private static void Ws(Random r, StringBuilder sb)
    {
        var n = r.Next(0, 3);
        for (var i = 0; i < n; i++)
        {
            sb.Append(" \n\t\r"[r.Next(4)]);
        }
    }

    private static void WriteString(string s, Random r, StringBuilder sb)
    {
        sb.Append('"');
        foreach (var c in s)
        {
            // Escape some characters as \uXXXX: equal JSON, different bytes.
            if (c is '"' or '\\' or < ' ' || r.Next(8) == 0)
            {
                sb.Append(r.Next(2) == 0 ? $"\\u{(int)c:x4}" : $"\\u{(int)c:X4}");
            }
            else
            {
                sb.Append(c);
            }
        }

        sb.Append('"');
    }

    private static void Write(JsonNode? node, Random r, StringBuilder sb)
    {
        Ws(r, sb);
        switch (node)
        {
            case JsonObject o:
                sb.Append('{');
                var props = o.ToList();
                for (var i = props.Count - 1; i > 0; i--)
                {
                    var j = r.Next(i + 1);
                    (props[i], props[j]) = (props[j], props[i]);
                }

                for (var i = 0; i < props.Count; i++)
                {
                    if (i > 0)
                    {
                        sb.Append(',');
                    }

                    Ws(r, sb);
                    WriteString(props[i].Key, r, sb);
                    Ws(r, sb);
                    sb.Append(':');
                    Write(props[i].Value, r, sb);
                }

                Ws(r, sb);
                sb.Append('}');
                break;
            case JsonArray a:
                sb.Append('[');
                for (var i = 0; i < a.Count; i++)
                {
                    if (i > 0)
                    {
                        sb.Append(',');
                    }

                    Write(a[i], r, sb);
                }

                Ws(r, sb);
                sb.Append(']');
                break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                WriteString(v.GetValue<string>(), r, sb);
                break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.Number:
                // Same number, other spellings: 8, 8.0, 80e-1.
                var n = v.GetValue<long>();
                sb.Append(r.Next(3) switch { 0 => $"{n}", 1 => $"{n}.0", _ => $"{n * 10}e-1" });
                break;
            default:
                sb.Append(node?.ToJsonString() ?? "null");
                break;
        }

        Ws(r, sb);
    }
}
