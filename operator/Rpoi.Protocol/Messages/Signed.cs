using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
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

    // H of a signed request is needed at nearly every step; the envelope is immutable, so hash it once.
    private TransactionHash? _hash;

    // The envelope is immutable, so a signature that verified once for a key verifies again: remember the key.
    private volatile string? _verifiedFor;

    // The signed payload bytes: a whole array after Create, a slice of the envelope after Parse (one copy, not two).
    private readonly ArraySegment<byte> _payload;

    internal Signed(T payload, ArraySegment<byte> canonicalPayload, string signer, string sig)
    {
        Payload = payload;
        _payload = canonicalPayload;
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
    public ReadOnlySpan<byte> CanonicalPayload => _payload.AsSpan();

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
        if (CanonicalJson.IsPlain(Sig) && CanonicalJson.IsPlain(Signer))
        {
            // base64 and hex need no escaping: write straight into an array of the exact size.
            var bytes = new byte[_payload.Count + Sig.Length + Signer.Length + 33];
            var span = bytes.AsSpan();
            "{\"payload\":"u8.CopyTo(span);
            _payload.AsSpan().CopyTo(span[CanonicalJson.EnvelopePayloadOffset..]);
            var pos = CanonicalJson.EnvelopePayloadOffset + _payload.Count;
            ",\"sig\":\""u8.CopyTo(span[pos..]);
            pos += 8 + System.Text.Encoding.ASCII.GetBytes(Sig, span[(pos + 8)..]);
            "\",\"signer\":\""u8.CopyTo(span[pos..]);
            pos += 12 + System.Text.Encoding.ASCII.GetBytes(Signer, span[(pos + 12)..]);
            "\"}"u8.CopyTo(span[pos..]);
            _canonical = bytes;
            return bytes;
        }

        var buffer = new ArrayBufferWriter<byte>(_payload.Count + 160);
        buffer.Write("{\"payload\":"u8);
        buffer.Write(_payload.AsSpan());
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
        return ParseOwned(System.Text.Encoding.UTF8.GetBytes(json));
    }

    /// <summary>Parses an envelope from UTF-8 bytes.</summary>
    public static Check<Signed<T>> Parse(ReadOnlySpan<byte> utf8Json) => Parse(utf8Json, null);

    /// <summary>As <see cref="Parse(ReadOnlySpan{byte})"/>, for an array nobody else holds (a fresh plaintext): a canonical
    /// envelope keeps it as its bytes instead of copying it.</summary>
    internal static Check<Signed<T>> ParseOwned(byte[] utf8Json) => Parse(utf8Json, utf8Json);

    private static Check<Signed<T>> Parse(ReadOnlySpan<byte> utf8Json, byte[]? owned)
    {
        if (!System.Text.Unicode.Utf8.IsValid(utf8Json))
        {
            return Check.Fail<Signed<T>>(ReasonCode.MalformedMessage, $"signed {typeof(T).Name} is not valid UTF-8; send the message bytes unchanged");
        }

        try
        {
            return Check.Ok(FromUtf8(utf8Json, owned));
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

    /// <summary>Parses valid UTF-8; throws <see cref="JsonException"/> (or what the deserializer throws) on bad input.</summary>
    private static Signed<T> FromUtf8(ReadOnlySpan<byte> utf8Json, byte[]? owned)
    {
        // Every party sends canonical envelopes (ToCanonicalBytes), so the usual input needs no rebuilding: one
        // pass proves it canonical and finds the payload, whose bytes are then a slice of it, ready to verify.
        if (CanonicalJson.TrySplitEnvelope(utf8Json, out var payload, out var sig, out var signer))
        {
            return FromParts(owned ?? utf8Json.ToArray(), payload, sig, signer);
        }

        var reader = new Utf8JsonReader(utf8Json);
        using var doc = JsonDocument.ParseValue(ref reader);
        if (reader.Read())
        {
            throw new JsonException("trailing data after the signed message; send exactly one JSON object");
        }

        return FromElement(doc.RootElement);
    }

    /// <summary>Builds an envelope from canonical bytes already split (and owned by it); the payload is a slice of them.</summary>
    internal static Signed<T> FromParts(byte[] envelope, Range payload, string sig, string signer)
    {
        var (offset, length) = payload.GetOffsetAndLength(envelope.Length);
        var bytes = new ArraySegment<byte>(envelope, offset, length);
        return new Signed<T>(DeserializeCanonical(bytes), bytes, signer, sig) { _canonical = envelope };
    }

    /// <summary>
    /// With <paramref name="reader"/> on the envelope's StartObject, reads <c>{"payload":{…},"sig":"…","signer":"…"}</c>
    /// in exactly that (JCS) order and leaves the reader on its EndObject. <paramref name="payload"/> is relative to the
    /// envelope's first byte.
    /// </summary>
    internal static bool TrySplit(ref Utf8JsonReader reader, out Range payload, out string sig, out string signer)
    {
        payload = default;
        sig = signer = string.Empty;
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            return false;
        }

        var envelopeStart = reader.TokenStartIndex;
        if (!reader.Read() || reader.TokenType != JsonTokenType.PropertyName || !reader.ValueTextEquals("payload"u8)
            || !reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return false;
        }

        var start = (int)(reader.TokenStartIndex - envelopeStart);
        reader.Skip();
        payload = start..(int)(reader.BytesConsumed - envelopeStart);
        if (!reader.Read() || reader.TokenType != JsonTokenType.PropertyName || !reader.ValueTextEquals("sig"u8)
            || !reader.Read() || reader.TokenType != JsonTokenType.String)
        {
            return false;
        }

        sig = reader.GetString()!;
        if (!reader.Read() || reader.TokenType != JsonTokenType.PropertyName || !reader.ValueTextEquals("signer"u8)
            || !reader.Read() || reader.TokenType != JsonTokenType.String)
        {
            return false;
        }

        signer = reader.GetString()!;
        return reader.Read() && reader.TokenType == JsonTokenType.EndObject;
    }

    /// <summary>
    /// Deserializes canonical payload bytes. Signed messages nested in the payload take their own canonical bytes as
    /// slices of <paramref name="canonicalPayload"/> (a subtree of canonical JSON is canonical), instead of being
    /// re-parsed and re-canonicalised.
    /// </summary>
    private static T DeserializeCanonical(ArraySegment<byte> canonicalPayload)
    {
        var outer = CanonicalSource.Current;
        CanonicalSource.Current = canonicalPayload;
        try
        {
            return JsonSerializer.Deserialize<T>(canonicalPayload.AsSpan(), ProtocolJson.Options)
                ?? throw new JsonException("payload must not be null");
        }
        finally
        {
            CanonicalSource.Current = outer;
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
        return new Signed<T>(DeserializeCanonical(canonical), canonical, signer, sig);
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
        // Decoded onto the stack: the signature is only needed for the one libsodium call.
        Span<byte> sigBytes = stackalloc byte[Crypto.Sodium.Ed25519SignatureSize];
        if (!Codec.TryFromBase64(Sig, sigBytes))
        {
            return Check.Fail<Signed<T>>(ReasonCode.InvalidEncoding, $"sig of {typeof(T).Name} must be canonical base64 of a 64-byte Ed25519 signature; re-sign the message");
        }

        if (!Crypto.Sodium.Verify(expected.SigningKey, _payload.AsSpan(), sigBytes))
        {
            return Check.Fail<Signed<T>>(ReasonCode.BadSignature, $"signature of {typeof(T).Name} by {Signer} does not verify: the payload was changed after signing or signed with another key; re-sign it");
        }

        return Check.Ok(this);
    }

    /// <summary>SHA-256 of the canonical envelope as a <see cref="TransactionHash"/>, computed once per envelope.</summary>
    internal TransactionHash Hash() => _hash ??= TransactionHash.FromBytes(SHA256.HashData(ToCanonicalBytes()));

    /// <summary>SHA-256 of <see cref="ToCanonicalBytes"/>.</summary>
    public byte[] Sha256() => SHA256.HashData(ToCanonicalBytes());
}

/// <summary>The canonical bytes being deserialized on this thread, if any (see <c>Signed{T}.DeserializeCanonical</c>).</summary>
internal static class CanonicalSource
{
    [ThreadStatic]
    private static ArraySegment<byte> t_current;

    /// <summary>The payload bytes being deserialized; <c>Array</c> is null when none.</summary>
    public static ArraySegment<byte> Current
    {
        get => t_current;
        set => t_current = value;
    }
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
            // Inside Signed<T>.DeserializeCanonical the reader runs over known canonical bytes: slice the nested
            // envelope out of them. The bounds checks make sure the reader really is over that buffer.
            var source = CanonicalSource.Current;
            if (source.Array is not null && reader.TokenType == JsonTokenType.StartObject && !reader.HasValueSequence)
            {
                var probe = reader;
                var start = probe.TokenStartIndex;
                if (Signed<T>.TrySplit(ref probe, out var payload, out var sig, out var signer) && probe.BytesConsumed <= source.Count)
                {
                    // Confirm the same envelope sits at those offsets of the canonical buffer before trusting them
                    // (a vectorised scan of the bytes, not a second JSON reader pass).
                    var envelope = source.AsSpan((int)start, (int)(probe.BytesConsumed - start));
                    if (CanonicalJson.TrySplitEnvelope(envelope, out var p2, out var sig2, out var signer2)
                        && p2.Equals(payload) && sig2 == sig && signer2 == signer)
                    {
                        reader = probe;
                        return Signed<T>.FromParts(envelope.ToArray(), payload, sig, signer);
                    }
                }
            }

            using var doc = JsonDocument.ParseValue(ref reader);
            return Signed<T>.FromElement(doc.RootElement);
        }

        public override void Write(Utf8JsonWriter writer, Signed<T> value, JsonSerializerOptions options) =>
            writer.WriteRawValue(value.ToCanonicalBytes(), skipInputValidation: true);
    }
}
