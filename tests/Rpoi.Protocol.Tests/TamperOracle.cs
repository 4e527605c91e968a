using System.Text.Json;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Encoding;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Protocol.Tests;

/// <summary>
/// Works out, from a tampered message alone, which reason code the verifier must give. It reads the JSON
/// itself and compares field by field with the original, so it does not reuse the verifier's code paths.
/// </summary>
internal static class TamperOracle
{
    private static readonly HashSet<string> EnvelopeFields = ["payload", "signer", "sig"];
    private static readonly byte[] Probe = [9, .. new byte[31]];

    /// <summary>Expected reason for a tampered signed request (the signer key is inside the payload). Null = still valid.</summary>
    public static ReasonCode? ForSignedRequest(byte[] original, byte[] tampered)
    {
        if (!TryEnvelope(tampered, out var t) || !TryEnvelope(original, out var o))
        {
            return ReasonCode.MalformedMessage;
        }

        using (t.Doc)
        using (o.Doc)
        {
            if (!Deserializes<LeaseRequest>(t.Payload))
            {
                return ReasonCode.MalformedMessage;
            }

            if (t.Payload.GetProperty("kind").GetString() != o.Payload.GetProperty("kind").GetString())
            {
                return ReasonCode.WrongKind;
            }

            var tKeys = t.Payload.GetProperty("renter");
            var oKeys = o.Payload.GetProperty("renter");
            foreach (var (field, ed) in new[] { ("signingKey", true), ("encryptionKey", false) })
            {
                if (tKeys.GetProperty(field).GetString() == oKeys.GetProperty(field).GetString())
                {
                    continue;
                }

                if (!Codec.TryFromBase64(tKeys.GetProperty(field).GetString(), out var key))
                {
                    return ReasonCode.InvalidEncoding;
                }

                if (key.Length != 32 || (ed ? !IsEd25519Point(key) : !Org.BouncyCastle.Math.EC.Rfc7748.X25519.CalculateAgreement(Probe, 0, key, 0, new byte[32], 0)))
                {
                    return ReasonCode.InvalidKey;
                }

                // A different valid signing key has another key id than the envelope's signer.
                return ed ? ReasonCode.SignerMismatch : ReasonCode.BadSignature;
            }

            return SignatureFields(o, t);
        }
    }

    /// <summary>Expected reason for a tampered message signed by a key known out of band.</summary>
    public static ReasonCode? ForSignedByKnownKey<T>(byte[] original, byte[] tampered)
        where T : class
    {
        if (!TryEnvelope(tampered, out var t) || !TryEnvelope(original, out var o))
        {
            return ReasonCode.MalformedMessage;
        }

        using (t.Doc)
        using (o.Doc)
        {
            return Deserializes<T>(t.Payload) ? SignatureFields(o, t) : ReasonCode.MalformedMessage;
        }
    }

    /// <summary>Expected reason for a tampered sealed message, in the order the opener checks fields.</summary>
    public static ReasonCode? ForSealed(byte[] original, byte[] tampered)
    {
        JsonDocument tDoc;
        if (!System.Text.Unicode.Utf8.IsValid(tampered))
        {
            return ReasonCode.MalformedMessage;
        }

        try
        {
            tDoc = JsonDocument.Parse(tampered);
        }
        catch (JsonException)
        {
            return ReasonCode.MalformedMessage;
        }

        using (tDoc)
        using (var oDoc = JsonDocument.Parse(original))
        {
            var names = new[] { "suite", "purpose", "h", "recipient", "enc", "ct" };
            if (tDoc.RootElement.ValueKind != JsonValueKind.Object ||
                tDoc.RootElement.EnumerateObject().Count() != names.Length ||
                tDoc.RootElement.EnumerateObject().Any(p => !names.Contains(p.Name) || p.Value.ValueKind != JsonValueKind.String))
            {
                return ReasonCode.MalformedMessage;
            }

            string Get(JsonDocument d, string n) => d.RootElement.GetProperty(n).GetString()!;
            var changed = names.Where(n => Get(tDoc, n) != Get(oDoc, n)).ToList();
            if (changed.Count == 0)
            {
                return null;
            }

            return changed[0] switch
            {
                "suite" => ReasonCode.UnsupportedSuite,
                "purpose" => ReasonCode.WrongPurpose,
                "h" => ReasonCode.HashMismatch,
                "recipient" => ReasonCode.WrongRecipient,
                "enc" => !Codec.TryFromBase64(Get(tDoc, "enc"), out var enc) ? ReasonCode.InvalidEncoding : enc.Length != 32 ? ReasonCode.InvalidKey : ReasonCode.DecryptionFailed,
                _ => !Codec.TryFromBase64(Get(tDoc, "ct"), out _) ? ReasonCode.InvalidEncoding : ReasonCode.DecryptionFailed,
            };
        }
    }

    private static ReasonCode? SignatureFields(Envelope o, Envelope t)
    {
        if (t.Signer != o.Signer)
        {
            return ReasonCode.SignerMismatch;
        }

        if (t.Sig != o.Sig)
        {
            return Codec.TryFromBase64(t.Sig, out var sig) && sig.Length == 64 ? ReasonCode.BadSignature : ReasonCode.InvalidEncoding;
        }

        return CanonicalJson.Canonicalize(t.Payload).AsSpan().SequenceEqual(CanonicalJson.Canonicalize(o.Payload)) ? null : ReasonCode.BadSignature;
    }

    // Independent of the code under test: BouncyCastle's full check (canonical, on the curve, in the prime-order
    // subgroup), which is what libsodium's crypto_core_ed25519_is_valid_point accepts.
    private static bool IsEd25519Point(byte[] key) => Org.BouncyCastle.Math.EC.Rfc8032.Ed25519.ValidatePublicKeyFull(key, 0);

    private static bool Deserializes<T>(JsonElement payload)
    {
        try
        {
            // Canonicalize first: duplicate keys and invalid strings make a payload malformed, as in the verifier.
            var canonical = CanonicalJson.Canonicalize(payload);
            return JsonSerializer.Deserialize<T>(canonical, ProtocolJson.Options) is not null;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            return false;
        }
    }

    private sealed record Envelope(JsonDocument Doc, JsonElement Payload, string Signer, string Sig);

    private static bool TryEnvelope(byte[] utf8, out Envelope envelope)
    {
        envelope = null!;
        JsonDocument doc;
        if (!System.Text.Unicode.Utf8.IsValid(utf8))
        {
            return false;
        }

        try
        {
            doc = JsonDocument.Parse(utf8);
        }
        catch (JsonException)
        {
            return false;
        }

        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object ||
            root.EnumerateObject().Count() != 3 ||
            root.EnumerateObject().Any(p => !EnvelopeFields.Contains(p.Name)) ||
            root.EnumerateObject().Select(p => p.Name).Distinct().Count() != 3 ||
            root.GetProperty("signer").ValueKind != JsonValueKind.String ||
            root.GetProperty("sig").ValueKind != JsonValueKind.String)
        {
            doc.Dispose();
            return false;
        }

        try
        {
            envelope = new Envelope(doc, root.GetProperty("payload"), root.GetProperty("signer").GetString()!, root.GetProperty("sig").GetString()!);
            return true;
        }
        catch (InvalidOperationException)
        {
            doc.Dispose();
            return false;
        }
    }
}
