using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Org.BouncyCastle.Math.EC.Rfc8032;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Encoding;
using Rpoi.Protocol.Keys;

namespace Rpoi.Protocol.Messages;

/// <summary>
/// The signed envelope <c>{"payload": msg, "signer": keyId, "sig": base64}</c>: <c>sign_X(msg)</c>.
/// The signature covers the RFC 8785 canonical bytes of the payload, which are kept as received so
/// nothing is re-serialised on verification.
/// </summary>
/// <typeparam name="T">The payload record.</typeparam>
public sealed class Signed<T>
    where T : class
{
    private byte[]? _canonical;

    // The envelope is immutable, so a signature that verified once for a key verifies again: remember the key.
    private volatile string? _verifiedFor;

    internal Signed(T payload, byte[] canonicalPayload, string signer, string sig)
    {
        Payload = payload;
        CanonicalPayloadBytes = canonicalPayload;
        Signer = signer;
        Sig = sig;
    }

    /// <summary>The typed payload.</summary>
    public T Payload { get; }

    /// <summary>Key id of the signer.</summary>
    public string Signer { get; }

    /// <summary>Ed25519 signature over <see cref="CanonicalPayload"/>, base64.</summary>
    public string Sig { get; }

    /// <summary>RFC 8785 canonical bytes of the payload (what is signed).</summary>
    public ReadOnlySpan<byte> CanonicalPayload => CanonicalPayloadBytes;

    internal byte[] CanonicalPayloadBytes { get; }

    /// <summary>Signs <paramref name="payload"/> with <paramref name="signer"/>'s Ed25519 key.</summary>
    public static Signed<T> Create(T payload, PartyKeyPair signer)
    {
        ArgumentNullException.ThrowIfNull(payload);
        ArgumentNullException.ThrowIfNull(signer);
        var canonical = ProtocolJson.CanonicalBytes(payload);
        var sig = signer.Sign(canonical, 0, canonical.Length);
        return new Signed<T>(payload, canonical, signer.Identity.KeyId, Codec.ToBase64(sig));
    }

    /// <summary>RFC 8785 canonical bytes of the whole envelope (what H hashes).</summary>
    public byte[] ToCanonicalBytes()
    {
        if (_canonical is not null)
        {
            return _canonical;
        }

        // Keys in JCS order: payload < sig < signer. The payload is already canonical; no re-parse needed.
        var buffer = new ArrayBufferWriter<byte>(CanonicalPayloadBytes.Length + 160);
        buffer.Write("{\"payload\":"u8);
        buffer.Write(CanonicalPayloadBytes);
        buffer.Write(",\"sig\":"u8);
        CanonicalJson.WriteString(Sig, buffer);
        buffer.Write(",\"signer\":"u8);
        CanonicalJson.WriteString(Signer, buffer);
        buffer.Write("}"u8);
        _canonical = buffer.WrittenSpan.ToArray();
        return _canonical;
    }

    /// <summary>The envelope as canonical JSON text.</summary>
    public string ToJson() => System.Text.Encoding.UTF8.GetString(ToCanonicalBytes());

    /// <summary>Parses an envelope (any JSON formatting). Structural problems give <see cref="ReasonCode.MalformedMessage"/>.</summary>
    public static Check<Signed<T>> Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        return Parse(System.Text.Encoding.UTF8.GetBytes(json));
    }

    /// <summary>Parses an envelope from UTF-8 bytes.</summary>
    public static Check<Signed<T>> Parse(ReadOnlySpan<byte> utf8Json)
    {
        if (!System.Text.Unicode.Utf8.IsValid(utf8Json))
        {
            return Check.Fail<Signed<T>>(ReasonCode.MalformedMessage, $"signed {typeof(T).Name} is not valid UTF-8; send the message bytes unchanged");
        }

        try
        {
            var reader = new Utf8JsonReader(utf8Json);
            using var doc = JsonDocument.ParseValue(ref reader);
            if (reader.Read())
            {
                return Check.Fail<Signed<T>>(ReasonCode.MalformedMessage, "trailing data after the signed message; send exactly one JSON object");
            }

            return Check.Ok(FromElement(doc.RootElement));
        }
        catch (JsonException ex)
        {
            return Check.Fail<Signed<T>>(ReasonCode.MalformedMessage, $"signed {typeof(T).Name} is not valid: {Describe(ex)}");
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or FormatException)
        {
            return Check.Fail<Signed<T>>(ReasonCode.MalformedMessage, $"signed {typeof(T).Name} is not valid: {ex.Message}");
        }
    }

    private static string Describe(JsonException ex) => ex.Path is null ? ex.Message : $"at {ex.Path}: {ex.Message}";

    internal static Signed<T> FromElement(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw new JsonException("a signed message must be a JSON object {payload, signer, sig}");
        }

        JsonElement? payload = null;
        string? signer = null, sig = null;
        foreach (var p in element.EnumerateObject())
        {
            switch (p.Name)
            {
                case "payload" when payload is null:
                    payload = p.Value;
                    break;
                case "signer" when signer is null && p.Value.ValueKind == JsonValueKind.String:
                    signer = p.Value.GetString();
                    break;
                case "sig" when sig is null && p.Value.ValueKind == JsonValueKind.String:
                    sig = p.Value.GetString();
                    break;
                default:
                    throw new JsonException($"unexpected, duplicate or mistyped envelope field '{p.Name}'; a signed message has exactly payload, signer (string) and sig (string)");
            }
        }

        if (payload is null || signer is null || sig is null)
        {
            throw new JsonException("a signed message needs payload, signer and sig");
        }

        var canonical = CanonicalJson.Canonicalize(payload.Value);
        var typed = JsonSerializer.Deserialize<T>(canonical, ProtocolJson.Options)
            ?? throw new JsonException("payload must not be null");
        return new Signed<T>(typed, canonical, signer, sig);
    }

    /// <summary>Checks that the envelope is signed by <paramref name="expected"/> and the signature verifies.</summary>
    /// <returns><see cref="ReasonCode.SignerMismatch"/>, <see cref="ReasonCode.InvalidEncoding"/> or <see cref="ReasonCode.BadSignature"/> on failure.</returns>
    public Check<Signed<T>> VerifySignature(PartyIdentity expected)
    {
        ArgumentNullException.ThrowIfNull(expected);
        if (!string.Equals(Signer, expected.KeyId, StringComparison.Ordinal))
        {
            return Check.Fail<Signed<T>>(ReasonCode.SignerMismatch, $"{typeof(T).Name} is signed by key {Signer}, expected {expected.Role?.ToString().ToLowerInvariant() ?? "party"} key {expected.KeyId}; sign it with the right key file");
        }

        if (ReferenceEquals(_verifiedFor, expected.SigningKeyBase64))
        {
            return Check.Ok(this);
        }

        var result = VerifyUncached(expected);
        if (result.IsOk)
        {
            _verifiedFor = expected.SigningKeyBase64;
        }

        return result;
    }

    /// <summary>The signature check without the per-envelope memo (benchmarks measure this).</summary>
    internal Check<Signed<T>> VerifyUncached(PartyIdentity expected)
    {
        if (!Codec.TryFromBase64(Sig, out var sigBytes) || sigBytes.Length != Ed25519.SignatureSize)
        {
            return Check.Fail<Signed<T>>(ReasonCode.InvalidEncoding, $"sig of {typeof(T).Name} must be canonical base64 of a 64-byte Ed25519 signature; re-sign the message");
        }

        if (!expected.SigningKey.Verify(Ed25519.Algorithm.Ed25519, null, CanonicalPayloadBytes, 0, CanonicalPayloadBytes.Length, sigBytes, 0))
        {
            return Check.Fail<Signed<T>>(ReasonCode.BadSignature, $"signature of {typeof(T).Name} by {Signer} does not verify: the payload was changed after signing or signed with another key; re-sign it");
        }

        return Check.Ok(this);
    }

    /// <summary>SHA-256 of <see cref="ToCanonicalBytes"/>.</summary>
    public byte[] Sha256() => SHA256.HashData(ToCanonicalBytes());
}

/// <summary>Reads and writes <see cref="Signed{T}"/> inside other messages, keeping payload bytes as signed.</summary>
internal sealed class SignedConverterFactory : JsonConverterFactory
{
    public override bool CanConvert(Type typeToConvert) =>
        typeToConvert.IsGenericType && typeToConvert.GetGenericTypeDefinition() == typeof(Signed<>);

    public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options) =>
        (JsonConverter)Activator.CreateInstance(typeof(SignedConverter<>).MakeGenericType(typeToConvert.GetGenericArguments()[0]))!;

    private sealed class SignedConverter<T> : JsonConverter<Signed<T>>
        where T : class
    {
        public override Signed<T> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            using var doc = JsonDocument.ParseValue(ref reader);
            return Signed<T>.FromElement(doc.RootElement);
        }

        public override void Write(Utf8JsonWriter writer, Signed<T> value, JsonSerializerOptions options) =>
            writer.WriteRawValue(value.ToCanonicalBytes(), skipInputValidation: true);
    }
}
