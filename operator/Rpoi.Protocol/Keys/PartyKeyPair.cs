using System.Security.Cryptography;
using Rpoi.Protocol.Crypto;

namespace Rpoi.Protocol.Keys;

/// <summary>
/// A party's private keys (Ed25519 for signing, X25519 for decryption) and its public
/// <see cref="PartyIdentity"/>. The libsodium signing key is imported once and reused.
/// </summary>
public sealed class PartyKeyPair
{
    private readonly NSec.Cryptography.Key _signingKey;
    private readonly byte[] _signingSeed;
    private readonly byte[] _encryptionPrivateKey;

    private PartyKeyPair(PartyRole role, byte[] signingSeed, byte[] encryptionPrivateKey)
    {
        Role = role;
        _signingSeed = signingSeed;
        _signingKey = Sodium.ImportEd25519Seed(signingSeed);
        _encryptionPrivateKey = encryptionPrivateKey;
        var ed = _signingKey.PublicKey.Export(NSec.Cryptography.KeyBlobFormat.RawPublicKey);
        var x = Hpke.PublicKeyOf(encryptionPrivateKey);
        Identity = PartyIdentity.FromKeys(ed, x, role).Value;
    }

    /// <summary>The role these keys play.</summary>
    public PartyRole Role { get; }

    /// <summary>Public keys, key id and address.</summary>
    public PartyIdentity Identity { get; }

    /// <summary>Generates fresh keys from the OS CSPRNG.</summary>
    public static PartyKeyPair Generate(PartyRole role) =>
        new(role, RandomNumberGenerator.GetBytes(Sodium.Ed25519SeedSize), RandomNumberGenerator.GetBytes(32));

    /// <summary>Rebuilds keys from their 32-byte private halves (Ed25519 seed, X25519 scalar).</summary>
    public static PartyKeyPair FromPrivateKeys(PartyRole role, ReadOnlySpan<byte> signingSeed, ReadOnlySpan<byte> encryptionPrivateKey)
    {
        if (signingSeed.Length != Sodium.Ed25519SeedSize || encryptionPrivateKey.Length != 32)
        {
            throw new ArgumentException("Ed25519 seed and X25519 private key must both be 32 bytes");
        }

        return new PartyKeyPair(role, signingSeed.ToArray(), encryptionPrivateKey.ToArray());
    }

    /// <summary>Ed25519 signature (64 bytes) over <paramref name="message"/>.</summary>
    public byte[] Sign(ReadOnlySpan<byte> message)
    {
        var sig = new byte[Sodium.Ed25519SignatureSize];
        Sodium.Sign(_signingKey, message, sig);
        return sig;
    }

    internal byte[] Sign(byte[] message, int offset, int length)
    {
        var sig = new byte[Sodium.Ed25519SignatureSize];
        Sodium.Sign(_signingKey, message.AsSpan(offset, length), sig);
        return sig;
    }

    /// <summary>Opens an HPKE ciphertext sealed to this party's X25519 key.</summary>
    public bool TryOpen(HpkeAead aead, ReadOnlySpan<byte> enc, ReadOnlySpan<byte> info, ReadOnlySpan<byte> aad, ReadOnlySpan<byte> ciphertext, out byte[] plaintext) =>
        Hpke.TryOpen(aead, _encryptionPrivateKey, Identity.EncryptionKeyBytes, enc, info, aad, ciphertext, out plaintext);

    internal byte[] SigningSeed() => (byte[])_signingSeed.Clone();

    internal byte[] EncryptionPrivateKey() => (byte[])_encryptionPrivateKey.Clone();
}
