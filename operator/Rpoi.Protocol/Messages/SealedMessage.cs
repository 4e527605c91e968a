using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Text.Json;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Crypto;
using Rpoi.Protocol.Encoding;
using Rpoi.Protocol.Keys;

namespace Rpoi.Protocol.Messages;

/// <summary>HPKE <c>info</c> strings: what a sealed message is for.</summary>
public static class SealPurposes
{
    /// <summary>Enc(m'): the access grant sealed to R.</summary>
    public const string Access = "rpoi/v1/access";

    /// <summary>m_final sealed to π.</summary>
    public const string Final = "rpoi/v1/final";
}

/// <summary>
/// <c>E_X(msg)</c> on the wire: an HPKE base-mode ciphertext of a signed message, with H as associated
/// data so it cannot be moved to another lease.
/// </summary>
/// <param name="Suite">Always <see cref="SuiteName"/>.</param>
/// <param name="Purpose">HPKE info, one of <see cref="SealPurposes"/>.</param>
/// <param name="H">Transaction hash (also the HPKE associated data, as its 32 raw bytes).</param>
/// <param name="Recipient">Key id of the recipient.</param>
/// <param name="Enc">HPKE encapsulated key, base64 (32 bytes).</param>
/// <param name="Ct">Ciphertext with GCM tag, base64.</param>
public sealed record SealedMessage(string Suite, string Purpose, string H, string Recipient, string Enc, string Ct)
{
    /// <summary>The one cipher suite of protocol version 1.</summary>
    public const string SuiteName = "DHKEM-X25519-HKDF-SHA256/HKDF-SHA256/AES-256-GCM";

    /// <summary>Canonical (RFC 8785) JSON: what goes into the access Secret or to π. One spelling per message, so
    /// any changed byte is a changed field.</summary>
    public string ToJson() => System.Text.Encoding.UTF8.GetString(ToUtf8Bytes());

    /// <summary>Canonical UTF-8 JSON bytes.</summary>
    public byte[] ToUtf8Bytes()
    {
        if (!CanonicalJson.IsPlain(Ct) || !CanonicalJson.IsPlain(Enc) || !CanonicalJson.IsPlain(H)
            || !CanonicalJson.IsPlain(Purpose) || !CanonicalJson.IsPlain(Recipient) || !CanonicalJson.IsPlain(Suite))
        {
            return ProtocolJson.CanonicalBytes(this);
        }

        // Every field is base64, hex or a fixed name: nothing to escape, so the RFC 8785 form (keys in order
        // ct < enc < h < purpose < recipient < suite) is written straight into an array of the exact size.
        var bytes = new byte[64 + Ct.Length + Enc.Length + H.Length + Purpose.Length + Recipient.Length + Suite.Length];
        var pos = 0;
        Put(bytes, ref pos, "{\"ct\":\""u8, Ct);
        Put(bytes, ref pos, "\",\"enc\":\""u8, Enc);
        Put(bytes, ref pos, "\",\"h\":\""u8, H);
        Put(bytes, ref pos, "\",\"purpose\":\""u8, Purpose);
        Put(bytes, ref pos, "\",\"recipient\":\""u8, Recipient);
        Put(bytes, ref pos, "\",\"suite\":\""u8, Suite);
        "\"}"u8.CopyTo(bytes.AsSpan(pos));
        return bytes;
    }

    private static void Put(byte[] bytes, ref int pos, ReadOnlySpan<byte> prefix, string value)
    {
        prefix.CopyTo(bytes.AsSpan(pos));
        pos += prefix.Length;
        pos += System.Text.Encoding.ASCII.GetBytes(value, bytes.AsSpan(pos));
    }

    /// <summary>Parses a sealed message; <see cref="ReasonCode.MalformedMessage"/> for bad JSON.</summary>
    public static Check<SealedMessage> Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        return Parse(System.Text.Encoding.UTF8.GetBytes(json));
    }

    /// <summary>Parses a sealed message from UTF-8 bytes.</summary>
    public static Check<SealedMessage> Parse(ReadOnlySpan<byte> utf8Json)
    {
        if (!System.Text.Unicode.Utf8.IsValid(utf8Json))
        {
            return Check.Fail<SealedMessage>(ReasonCode.MalformedMessage, "sealed message is not valid UTF-8; copy the Secret data unchanged");
        }

        // What ToUtf8Bytes writes (every field plain ASCII, keys in JCS order) is read without the serializer; the
        // serializer would build the very same record. Anything else takes the general path and its errors.
        if (TryParseCanonical(utf8Json, out var canonical))
        {
            return Check.Ok(canonical);
        }

        try
        {
            var m = JsonSerializer.Deserialize<SealedMessage>(utf8Json, ProtocolJson.Options);
            return m is null
                ? Check.Fail<SealedMessage>(ReasonCode.MalformedMessage, "sealed message is null; expected {suite, purpose, h, recipient, enc, ct}")
                : Check.Ok(m);
        }
        catch (JsonException ex)
        {
            return Check.Fail<SealedMessage>(ReasonCode.MalformedMessage, $"sealed message is not valid at {ex.Path ?? "$"}: {ex.Message}");
        }
        catch (InvalidOperationException ex)
        {
            return Check.Fail<SealedMessage>(ReasonCode.MalformedMessage, $"sealed message is not valid: {ex.Message}");
        }
    }

    private static bool TryParseCanonical(ReadOnlySpan<byte> s, [NotNullWhen(true)] out SealedMessage? message)
    {
        message = null;
        var pos = 1;
        if (s.IsEmpty || s[0] != (byte)'{'
            || !CanonicalJson.TryPlainMember(s, ref pos, "\"ct\":"u8, out var ct)
            || !CanonicalJson.TryPlainMember(s, ref pos, ",\"enc\":"u8, out var enc)
            || !CanonicalJson.TryPlainMember(s, ref pos, ",\"h\":"u8, out var h)
            || !CanonicalJson.TryPlainMember(s, ref pos, ",\"purpose\":"u8, out var purpose)
            || !CanonicalJson.TryPlainMember(s, ref pos, ",\"recipient\":"u8, out var recipient)
            || !CanonicalJson.TryPlainMember(s, ref pos, ",\"suite\":"u8, out var suite)
            || pos != s.Length - 1 || s[pos] != (byte)'}')
        {
            return false;
        }

        message = new SealedMessage(suite, purpose, h, recipient, enc, ct);
        return true;
    }

    /// <summary>Seals <paramref name="message"/> to <paramref name="recipient"/> for <paramref name="purpose"/>, bound to <paramref name="h"/>.</summary>
    public static SealedMessage Seal<T>(Signed<T> message, PartyIdentity recipient, string purpose, TransactionHash h)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(recipient);
        ArgumentNullException.ThrowIfNull(h);
        var (enc, ct) = Hpke.Seal(HpkeAead.Aes256Gcm, recipient.EncryptionKeyBytes, System.Text.Encoding.UTF8.GetBytes(purpose), h.Bytes, message.ToCanonicalBytes());
        return new SealedMessage(SuiteName, purpose, h.Hex, recipient.KeyId, Codec.ToBase64(enc), Codec.ToBase64(ct));
    }

    /// <summary>
    /// Opens a sealed message with <paramref name="recipient"/>'s keys. Checks suite, purpose, H and recipient
    /// before decrypting, and parses the plaintext as a signed <typeparamref name="T"/> (signature not yet checked).
    /// </summary>
    public Check<Signed<T>> Open<T>(PartyKeyPair recipient, string purpose, TransactionHash expectedH)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(recipient);
        ArgumentNullException.ThrowIfNull(expectedH);
        if (!string.Equals(Suite, SuiteName, StringComparison.Ordinal))
        {
            return Check.Fail<Signed<T>>(ReasonCode.UnsupportedSuite, $"suite '{Suite}' is not supported; version 1 only uses '{SuiteName}'");
        }

        if (!string.Equals(Purpose, purpose, StringComparison.Ordinal))
        {
            return Check.Fail<Signed<T>>(ReasonCode.WrongPurpose, $"purpose is '{Purpose}' but this step needs '{purpose}'; the wrong sealed message was submitted");
        }

        if (!string.Equals(H, expectedH.Hex, StringComparison.Ordinal))
        {
            return Check.Fail<Signed<T>>(ReasonCode.HashMismatch, $"sealed message h '{H}' is not this lease's H '{expectedH.Hex}'; it belongs to another lease");
        }

        if (!string.Equals(Recipient, recipient.Identity.KeyId, StringComparison.Ordinal))
        {
            return Check.Fail<Signed<T>>(ReasonCode.WrongRecipient, $"sealed for key {Recipient}, but the key given is {recipient.Identity.KeyId}; use the key file whose key id is {Recipient}");
        }

        // The ciphertext is public and only read once: decode it into a pooled buffer instead of a new array.
        var ctLength = Codec.CanonicalBase64Length(Ct);
        var ct = ctLength < 0 ? null : ArrayPool<byte>.Shared.Rent(ctLength);
        try
        {
            if (!Codec.TryFromBase64(Enc, out var enc) || ct is null || !Codec.TryFromBase64(Ct, ct.AsSpan(0, ctLength)))
            {
                return Check.Fail<Signed<T>>(ReasonCode.InvalidEncoding, "enc and ct must be canonical base64; the sealed message was damaged in transit");
            }

            if (enc.Length != Hpke.EncapsulatedKeySize)
            {
                return Check.Fail<Signed<T>>(ReasonCode.InvalidKey, $"enc must be a 32-byte X25519 key, got {enc.Length} bytes; the sealed message was damaged");
            }

            if (!recipient.TryOpen(HpkeAead.Aes256Gcm, enc, System.Text.Encoding.UTF8.GetBytes(purpose), expectedH.Bytes, ct.AsSpan(0, ctLength), out var plaintext))
            {
                return Check.Fail<Signed<T>>(ReasonCode.DecryptionFailed, $"cannot decrypt the {purpose} message: it was sealed for another key or another H, or changed in transit");
            }

            // Seal always encrypts the canonical bytes, so anything else was sealed by other code: refusing it keeps one
            // meaning per plaintext (no duplicate keys, no second spelling of a number or escape that a reader could take
            // differently from π).
            if (!CanonicalJson.IsCanonicalExactly(plaintext))
            {
                return Check.Fail<Signed<T>>(ReasonCode.MalformedMessage, $"the {purpose} plaintext is not RFC 8785 canonical JSON (sorted keys, no whitespace, one spelling per number and string); seal the canonical bytes of the signed message, as the operator and 'kubectl rpoi' do");
            }

            // The plaintext array is ours alone: the envelope keeps it instead of copying it.
            return Signed<T>.ParseOwned(plaintext);
        }
        finally
        {
            if (ct is not null)
            {
                ArrayPool<byte>.Shared.Return(ct);
            }
        }
    }
}
