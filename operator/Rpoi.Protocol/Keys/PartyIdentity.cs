using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Encoding;

namespace Rpoi.Protocol.Keys;

/// <summary>
/// A party's public identity: Ed25519 signing key, X25519 encryption key, and the key id and address
/// derived from the signing key. This is what β and π publish and what R puts in its request.
/// </summary>
public sealed class PartyIdentity : IEquatable<PartyIdentity>
{
    /// <summary>Prefix of every RPOI address.</summary>
    public const string AddressPrefix = "rpoi1";

    private PartyIdentity(PartyRole? role, byte[] signingKey, byte[] encryptionKey)
    {
        Role = role;
        SigningKeyBytes = signingKey;
        EncryptionKeyBytes = encryptionKey;
        var digest = SHA256.HashData(signingKey);
        KeyId = KeyIdOf(digest);
        Address = AddressOf(digest);
        // Decoding the Ed25519 point is the costly part of verification; do it once per identity.
        SigningKey = Crypto.Sodium.ImportEd25519PublicKey(signingKey)
            ?? throw new ArgumentException("not a usable point: it must be canonically encoded, on the curve and not of small order");
        SigningKeyBase64 = Codec.ToBase64(signingKey);
        EncryptionKeyBase64 = Codec.ToBase64(encryptionKey);
    }

    /// <summary>The party's role, when known (requests carry keys without a role).</summary>
    public PartyRole? Role { get; }

    /// <summary>Short key id: 16 lower-case hex chars (first 8 bytes of SHA-256 of the Ed25519 key).</summary>
    public string KeyId { get; }

    /// <summary>Ledger address: <c>rpoi1</c> + base32 (lower case, unpadded) of the first 20 bytes of SHA-256 of the Ed25519 key.</summary>
    public string Address { get; }

    /// <summary>Raw Ed25519 public key (32 bytes).</summary>
    public byte[] SigningKeyBytes { get; }

    /// <summary>Raw X25519 public key (32 bytes).</summary>
    public byte[] EncryptionKeyBytes { get; }

    /// <summary>Ed25519 public key, base64.</summary>
    public string SigningKeyBase64 { get; }

    /// <summary>X25519 public key, base64.</summary>
    public string EncryptionKeyBase64 { get; }

    internal NSec.Cryptography.PublicKey SigningKey { get; }

    /// <summary>The keys in the form a request carries them.</summary>
    public Messages.PublicKeys ToPublicKeys() => new(SigningKeyBase64, EncryptionKeyBase64);

    /// <summary>Builds an identity from raw keys. Returns <see cref="ReasonCode.InvalidKey"/> for wrong lengths or an invalid Ed25519 point.</summary>
    public static Check<PartyIdentity> FromKeys(ReadOnlySpan<byte> signingKey, ReadOnlySpan<byte> encryptionKey, PartyRole? role = null)
    {
        if (signingKey.Length != 32)
        {
            return Check.Fail<PartyIdentity>(ReasonCode.InvalidKey, $"signingKey must be a 32-byte Ed25519 public key, got {signingKey.Length} bytes; regenerate the key file with 'kubectl rpoi keys new'");
        }

        if (encryptionKey.Length != 32)
        {
            return Check.Fail<PartyIdentity>(ReasonCode.InvalidKey, $"encryptionKey must be a 32-byte X25519 public key, got {encryptionKey.Length} bytes; regenerate the key file with 'kubectl rpoi keys new'");
        }

        if (!Crypto.Hpke.IsUsablePublicKey(encryptionKey))
        {
            return Check.Fail<PartyIdentity>(ReasonCode.InvalidKey, "encryptionKey is a low-order X25519 point that nothing can be sealed to; generate keys with 'kubectl rpoi keygen'");
        }

        try
        {
            return Check.Ok(new PartyIdentity(role, signingKey.ToArray(), encryptionKey.ToArray()));
        }
        catch (ArgumentException ex)
        {
            return Check.Fail<PartyIdentity>(ReasonCode.InvalidKey, $"signingKey is not a valid Ed25519 public key ({ex.Message})");
        }
    }

    // Requests carry R's keys as base64; decoding the Ed25519 point each time would cost more than hashing
    // the message, so identities are cached by their exact text (bounded; cleared when full).
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(string, string, PartyRole?), PartyIdentity> Cache = new();
    private const int CacheLimit = 4096;

    /// <summary>Builds an identity from base64 keys (as found in a request or identity file).</summary>
    public static Check<PartyIdentity> FromBase64(string? signingKey, string? encryptionKey, PartyRole? role = null, string fieldPrefix = "")
    {
        if (signingKey is not null && encryptionKey is not null && Cache.TryGetValue((signingKey, encryptionKey, role), out var cached))
        {
            return Check.Ok(cached);
        }

        var built = Build(signingKey, encryptionKey, role, fieldPrefix);
        if (built.IsOk)
        {
            if (Cache.Count >= CacheLimit)
            {
                Cache.Clear();
            }

            Cache.TryAdd((signingKey!, encryptionKey!, role), built.Value);
        }

        return built;
    }

    private static Check<PartyIdentity> Build(string? signingKey, string? encryptionKey, PartyRole? role, string fieldPrefix)
    {
        if (!Codec.TryFromBase64(signingKey, out var sk))
        {
            return Check.Fail<PartyIdentity>(ReasonCode.InvalidEncoding, $"{fieldPrefix}signingKey is not canonical base64; copy the key exactly as 'kubectl rpoi keys show' prints it");
        }

        if (!Codec.TryFromBase64(encryptionKey, out var ek))
        {
            return Check.Fail<PartyIdentity>(ReasonCode.InvalidEncoding, $"{fieldPrefix}encryptionKey is not canonical base64; copy the key exactly as 'kubectl rpoi keys show' prints it");
        }

        return FromKeys(sk, ek, role);
    }

    /// <summary>Builds an identity from the public keys carried in a request.</summary>
    public static Check<PartyIdentity> FromPublicKeys(Messages.PublicKeys keys, PartyRole? role = null)
    {
        ArgumentNullException.ThrowIfNull(keys);
        return FromBase64(keys.SigningKey, keys.EncryptionKey, role, "renter.");
    }

    /// <summary>Key id for an Ed25519 public key.</summary>
    public static string KeyIdFor(ReadOnlySpan<byte> signingKey) => KeyIdOf(SHA256.HashData(signingKey));

    /// <summary>Address for an Ed25519 public key.</summary>
    public static string AddressFor(ReadOnlySpan<byte> signingKey) => AddressOf(SHA256.HashData(signingKey));

    private static string KeyIdOf(byte[] digest) => Codec.ToHex(digest.AsSpan(0, 8));

    private static string AddressOf(byte[] digest) => AddressPrefix + Codec.ToBase32(digest.AsSpan(0, 20));

    /// <summary>Serialises the public identity file (JSON, versioned).</summary>
    public string ToJson() => JsonSerializer.Serialize(new IdentityFile(1, "rpoi.identity", Role, KeyId, Address, SigningKeyBase64, EncryptionKeyBase64), ProtocolJson.Indented);

    /// <summary>Parses a public identity file and checks that key id and address match the keys.</summary>
    public static Check<PartyIdentity> FromJson(string json)
    {
        IdentityFile? file;
        try
        {
            file = JsonSerializer.Deserialize<IdentityFile>(json, ProtocolJson.Options);
        }
        catch (JsonException ex)
        {
            return Check.Fail<PartyIdentity>(ReasonCode.MalformedMessage, $"identity JSON is invalid at {ex.Path ?? "$"}: {ex.Message}");
        }

        if (file is null || file.Version != 1 || file.Kind != "rpoi.identity")
        {
            return Check.Fail<PartyIdentity>(ReasonCode.WrongKind, "identity file must have version 1 and kind 'rpoi.identity'; export it again with 'kubectl rpoi keys export'");
        }

        var id = FromBase64(file.SigningKey, file.EncryptionKey, file.Role);
        if (!id.IsOk)
        {
            return id;
        }

        if (file.KeyId != id.Value.KeyId || file.Address != id.Value.Address)
        {
            return Check.Fail<PartyIdentity>(ReasonCode.InvalidField, $"identity file keyId/address ({file.KeyId}, {file.Address}) do not match its signingKey (expected {id.Value.KeyId}, {id.Value.Address}); the file was edited by hand, export it again");
        }

        return id;
    }

    /// <inheritdoc/>
    public bool Equals(PartyIdentity? other) =>
        other is not null && SigningKeyBytes.AsSpan().SequenceEqual(other.SigningKeyBytes) && EncryptionKeyBytes.AsSpan().SequenceEqual(other.EncryptionKeyBytes);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as PartyIdentity);

    /// <inheritdoc/>
    public override int GetHashCode() => KeyId.GetHashCode(StringComparison.Ordinal);

    /// <inheritdoc/>
    public override string ToString() => $"{Role?.ToString() ?? "party"} {KeyId} {Address}";

    private sealed record IdentityFile(
        int Version,
        string Kind,
        PartyRole? Role,
        string KeyId,
        string Address,
        string SigningKey,
        string EncryptionKey);
}
