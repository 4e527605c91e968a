using System.Buffers.Binary;
using System.Security.Cryptography;
using NetAesGcm = System.Security.Cryptography.AesGcm;

namespace Rpoi.Protocol.Crypto;

/// <summary>HPKE AEAD identifiers (RFC 9180 section 7.3) supported here.</summary>
public enum HpkeAead : ushort
{
    /// <summary>AES-128-GCM (used by the RFC 9180 A.1 test vectors).</summary>
    Aes128Gcm = 0x0001,

    /// <summary>AES-256-GCM (what RPOI uses on the wire).</summary>
    Aes256Gcm = 0x0002,
}

/// <summary>The key schedule outputs of one HPKE context (exposed for test vectors).</summary>
/// <param name="SharedSecret">KEM shared secret.</param>
/// <param name="Key">AEAD key.</param>
/// <param name="BaseNonce">AEAD base nonce.</param>
/// <param name="ExporterSecret">Exporter secret.</param>
public sealed record HpkeKeySchedule(byte[] SharedSecret, byte[] Key, byte[] BaseNonce, byte[] ExporterSecret);

/// <summary>
/// RFC 9180 HPKE, base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-GCM (key size chosen by
/// <see cref="HpkeAead"/>). Neither .NET nor NSec has HPKE, so it is built here from libsodium's X25519
/// (<see cref="Sodium"/>) and .NET's HKDF and AES-GCM, and checked against RFC 9180 Appendix A.1.
/// Single-shot: one message per context (sequence number 0), which is all RPOI needs.
/// </summary>
public static class Hpke
{
    private const ushort KemId = 0x0020;
    private const ushort KdfId = 0x0001;
    private const int Nsecret = 32;
    private const int Nn = 12;
    private const int Nh = 32;
    private const int TagSize = 16;

    /// <summary>Size of the encapsulated key <c>enc</c> in bytes.</summary>
    public const int EncapsulatedKeySize = 32;

    private static readonly byte[] KemSuiteId = [(byte)'K', (byte)'E', (byte)'M', 0x00, 0x20];
    private static readonly byte[] HpkeV1 = "HPKE-v1"u8.ToArray();

    /// <summary>HKDF-Extract's salt when none is given: Nh zero bytes (RFC 5869 2.2).</summary>
    private static readonly byte[] ZeroSalt = new byte[32];

    private const int StackLimit = 256;
    private const int MaxCachedContexts = 16;

    private static readonly byte[] Aes128SuiteId = NewSuiteId(HpkeAead.Aes128Gcm);
    private static readonly byte[] Aes256SuiteId = NewSuiteId(HpkeAead.Aes256Gcm);

    // info_hash and psk_id_hash depend only on (suite, info); RPOI uses two fixed infos, so cache them.
    private static ContextEntry[] s_contexts = [];

    /// <summary>Generates an X25519 key pair from a CSPRNG.</summary>
    public static (byte[] PrivateKey, byte[] PublicKey) GenerateKeyPair()
    {
        var sk = RandomNumberGenerator.GetBytes(32);
        return (sk, PublicKeyOf(sk));
    }

    /// <summary>X25519 public key for a private key.</summary>
    public static byte[] PublicKeyOf(ReadOnlySpan<byte> privateKey)
    {
        if (privateKey.Length != 32)
        {
            throw new ArgumentException("an X25519 private key is 32 bytes", nameof(privateKey));
        }

        var pk = new byte[32];
        Sodium.X25519Base(privateKey, pk);
        return pk;
    }

    /// <summary>
    /// False for X25519 public keys of low order (every shared secret with them is zero, RFC 7748 section 6.1), so a
    /// request cannot name an encryption key that would make sealing fail or leak.
    /// </summary>
    public static bool IsUsablePublicKey(ReadOnlySpan<byte> publicKey)
    {
        if (publicKey.Length != 32)
        {
            return false;
        }

        Span<byte> probe = stackalloc byte[32];
        probe.Clear();
        probe[0] = 0x48; // any scalar works: clamping clears the cofactor, so low-order points always give zero
        return Sodium.X25519(probe, publicKey, stackalloc byte[32]);
    }

    /// <summary>RFC 9180 DeriveKeyPair for DHKEM(X25519, HKDF-SHA256).</summary>
    public static (byte[] PrivateKey, byte[] PublicKey) DeriveKeyPair(ReadOnlySpan<byte> ikm)
    {
        var prk = LabeledExtract(KemSuiteId, [], "dkp_prk"u8, ikm);
        var sk = LabeledExpand(KemSuiteId, prk, "sk"u8, [], 32);
        return (sk, PublicKeyOf(sk));
    }

    /// <summary>Seals <paramref name="plaintext"/> to <paramref name="recipientPublicKey"/>; returns (enc, ciphertext).</summary>
    public static (byte[] Enc, byte[] Ciphertext) Seal(HpkeAead aead, ReadOnlySpan<byte> recipientPublicKey, ReadOnlySpan<byte> info, ReadOnlySpan<byte> aad, ReadOnlySpan<byte> plaintext)
    {
        if (recipientPublicKey.Length != 32)
        {
            throw new ArgumentException("an X25519 public key is 32 bytes", nameof(recipientPublicKey));
        }

        Span<byte> skE = stackalloc byte[32];
        RandomNumberGenerator.Fill(skE);
        var pkE = new byte[32];
        Span<byte> dh = stackalloc byte[32];
        Span<byte> key = stackalloc byte[KeySize(aead)];
        Span<byte> nonce = stackalloc byte[Nn];
        try
        {
            Sodium.X25519Base(skE, pkE);
            if (!Sodium.X25519(skE, recipientPublicKey, dh))
            {
                throw new CryptographicException("recipient public key is a low-order point");
            }

            // Single-shot: only key and base_nonce are needed, so the exporter secret is not derived.
            KeyAndNonce(aead, dh, pkE, recipientPublicKey, info, key, nonce);
            return (pkE, AeadSeal(key, nonce, aad, plaintext));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(skE);
            CryptographicOperations.ZeroMemory(dh);
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>Seal with a given ephemeral private key (deterministic; for test vectors only).</summary>
    internal static (byte[] Enc, byte[] Ciphertext) SealWithEphemeral(HpkeAead aead, ReadOnlySpan<byte> pkR, ReadOnlySpan<byte> info, ReadOnlySpan<byte> aad, ReadOnlySpan<byte> plaintext, byte[] skE, out HpkeKeySchedule schedule)
    {
        if (pkR.Length != 32)
        {
            throw new ArgumentException("an X25519 public key is 32 bytes", nameof(pkR));
        }

        var pkE = PublicKeyOf(skE);
        Span<byte> dh = stackalloc byte[32];
        if (!Sodium.X25519(skE, pkR, dh))
        {
            throw new CryptographicException("recipient public key is a low-order point");
        }

        schedule = KeySchedule(aead, dh, pkE, pkR, info);
        return (pkE, AeadSeal(schedule.Key, schedule.BaseNonce, aad, plaintext));
    }

    /// <summary>Opens a ciphertext. Returns false (never throws) when the key, info, aad or ciphertext do not match.</summary>
    public static bool TryOpen(HpkeAead aead, ReadOnlySpan<byte> recipientPrivateKey, ReadOnlySpan<byte> recipientPublicKey, ReadOnlySpan<byte> enc, ReadOnlySpan<byte> info, ReadOnlySpan<byte> aad, ReadOnlySpan<byte> ciphertext, out byte[] plaintext)
    {
        plaintext = [];
        if (enc.Length != EncapsulatedKeySize || recipientPrivateKey.Length != 32 || recipientPublicKey.Length != 32 || ciphertext.Length < TagSize)
        {
            return false;
        }

        Span<byte> dh = stackalloc byte[32];
        Span<byte> key = stackalloc byte[KeySize(aead)];
        Span<byte> nonce = stackalloc byte[Nn];
        try
        {
            if (!Sodium.X25519(recipientPrivateKey, enc, dh))
            {
                return false;
            }

            KeyAndNonce(aead, dh, enc, recipientPublicKey, info, key, nonce);
            var pt = new byte[ciphertext.Length - TagSize];
            using var gcm = new NetAesGcm(key, TagSize);
            try
            {
                gcm.Decrypt(nonce, ciphertext[..pt.Length], ciphertext[pt.Length..], pt, aad);
            }
            catch (AuthenticationTagMismatchException)
            {
                return false;
            }

            plaintext = pt;
            return true;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dh);
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>Receiver-side key schedule for test vectors.</summary>
    internal static HpkeKeySchedule KeyScheduleForReceiver(HpkeAead aead, byte[] skR, byte[] pkR, byte[] enc, ReadOnlySpan<byte> info)
    {
        Span<byte> dh = stackalloc byte[32];
        if (!Sodium.X25519(skR, enc, dh))
        {
            throw new CryptographicException("enc is a low-order point");
        }

        return KeySchedule(aead, dh, enc, pkR, info);
    }

    /// <summary>Nonce for sequence number <paramref name="seq"/> (RFC 9180 5.2): base_nonce XOR I2OSP(seq, Nn).</summary>
    internal static byte[] NonceFor(ReadOnlySpan<byte> baseNonce, ulong seq)
    {
        var nonce = baseNonce.ToArray();
        for (var i = 0; i < 8; i++)
        {
            nonce[Nn - 1 - i] ^= (byte)(seq >> (8 * i));
        }

        return nonce;
    }

    /// <summary>AEAD seal with an explicit key and nonce (multi-message contexts in the RFC vectors).</summary>
    internal static byte[] AeadSeal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> aad, ReadOnlySpan<byte> plaintext)
    {
        var ct = new byte[plaintext.Length + TagSize];
        using var gcm = new NetAesGcm(key, TagSize);
        gcm.Encrypt(nonce, plaintext, ct.AsSpan(0, plaintext.Length), ct.AsSpan(plaintext.Length), aad);
        return ct;
    }

    /// <summary>Secret export (RFC 9180 5.3).</summary>
    internal static byte[] Export(HpkeAead aead, ReadOnlySpan<byte> exporterSecret, ReadOnlySpan<byte> exporterContext, int length) =>
        LabeledExpand(HpkeSuiteId(aead), exporterSecret, "sec"u8, exporterContext, length);

    /// <summary>key_schedule_context for base mode (exposed for the vectors).</summary>
    internal static byte[] KeyScheduleContextFor(HpkeAead aead, ReadOnlySpan<byte> info) => KeyScheduleContext(aead, HpkeSuiteId(aead), info);

    private static int KeySize(HpkeAead aead) => aead == HpkeAead.Aes128Gcm ? 16 : 32;

    /// <summary>ExtractAndExpand (RFC 9180 4.1) and the base-mode key schedule up to key and base_nonce (5.1).</summary>
    private static void KeyAndNonce(HpkeAead aead, ReadOnlySpan<byte> dh, ReadOnlySpan<byte> enc, ReadOnlySpan<byte> pkR, ReadOnlySpan<byte> info, Span<byte> key, Span<byte> baseNonce)
    {
        Span<byte> sharedSecret = stackalloc byte[Nsecret];
        Span<byte> secret = stackalloc byte[Nh];
        try
        {
            SharedSecret(dh, enc, pkR, sharedSecret);
            var suiteId = HpkeSuiteId(aead);
            var context = KeyScheduleContext(aead, suiteId, info);
            LabeledExtract(suiteId, sharedSecret, "secret"u8, [], secret);
            LabeledExpand(suiteId, secret, "key"u8, context, key);
            LabeledExpand(suiteId, secret, "base_nonce"u8, context, baseNonce);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(sharedSecret);
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    /// <summary>ExtractAndExpand (RFC 9180 4.1) with kem_context = enc || pkRm.</summary>
    private static void SharedSecret(ReadOnlySpan<byte> dh, ReadOnlySpan<byte> enc, ReadOnlySpan<byte> pkR, Span<byte> sharedSecret)
    {
        Span<byte> kemContext = stackalloc byte[64];
        enc.CopyTo(kemContext);
        pkR.CopyTo(kemContext[32..]);
        Span<byte> eaePrk = stackalloc byte[Nh];
        LabeledExtract(KemSuiteId, [], "eae_prk"u8, dh, eaePrk);
        LabeledExpand(KemSuiteId, eaePrk, "shared_secret"u8, kemContext, sharedSecret);
        CryptographicOperations.ZeroMemory(eaePrk);
    }

    /// <summary>The full key schedule, exporter secret included (test vectors).</summary>
    private static HpkeKeySchedule KeySchedule(HpkeAead aead, ReadOnlySpan<byte> dh, ReadOnlySpan<byte> enc, ReadOnlySpan<byte> pkR, ReadOnlySpan<byte> info)
    {
        var sharedSecret = new byte[Nsecret];
        SharedSecret(dh, enc, pkR, sharedSecret);
        var suiteId = HpkeSuiteId(aead);
        var context = KeyScheduleContext(aead, suiteId, info);
        var secret = LabeledExtract(suiteId, sharedSecret, "secret"u8, []);
        var key = LabeledExpand(suiteId, secret, "key"u8, context, KeySize(aead));
        var baseNonce = LabeledExpand(suiteId, secret, "base_nonce"u8, context, Nn);
        var exporter = LabeledExpand(suiteId, secret, "exp"u8, context, Nh);
        return new HpkeKeySchedule(sharedSecret, key, baseNonce, exporter);
    }

    private static byte[] HpkeSuiteId(HpkeAead aead) => aead == HpkeAead.Aes128Gcm ? Aes128SuiteId : aead == HpkeAead.Aes256Gcm ? Aes256SuiteId : NewSuiteId(aead);

    private static byte[] NewSuiteId(HpkeAead aead)
    {
        var id = new byte[10];
        "HPKE"u8.CopyTo(id);
        BinaryPrimitives.WriteUInt16BigEndian(id.AsSpan(4), KemId);
        BinaryPrimitives.WriteUInt16BigEndian(id.AsSpan(6), KdfId);
        BinaryPrimitives.WriteUInt16BigEndian(id.AsSpan(8), (ushort)aead);
        return id;
    }

    private static byte[] KeyScheduleContext(HpkeAead aead, byte[] suiteId, ReadOnlySpan<byte> info)
    {
        var cached = s_contexts;
        foreach (var entry in cached)
        {
            if (entry.Aead == aead && info.SequenceEqual(entry.Info))
            {
                return entry.Context;
            }
        }

        var pskIdHash = LabeledExtract(suiteId, [], "psk_id_hash"u8, []);
        var infoHash = LabeledExtract(suiteId, [], "info_hash"u8, info);
        var context = new byte[1 + Nh + Nh];
        context[0] = 0x00; // mode_base
        pskIdHash.CopyTo(context, 1);
        infoHash.CopyTo(context, 1 + Nh);
        if (cached.Length < MaxCachedContexts)
        {
            // Copy-on-write: readers never lock; losing an entry to a concurrent add only costs a recomputation.
            s_contexts = [.. cached, new ContextEntry(aead, info.ToArray(), context)];
        }

        return context;
    }

    internal static byte[] LabeledExtract(ReadOnlySpan<byte> suiteId, ReadOnlySpan<byte> salt, ReadOnlySpan<byte> label, ReadOnlySpan<byte> ikm)
    {
        var prk = new byte[Nh];
        LabeledExtract(suiteId, salt, label, ikm, prk);
        return prk;
    }

    internal static byte[] LabeledExpand(ReadOnlySpan<byte> suiteId, ReadOnlySpan<byte> prk, ReadOnlySpan<byte> label, ReadOnlySpan<byte> info, int length)
    {
        var okm = new byte[length];
        LabeledExpand(suiteId, prk, label, info, okm);
        return okm;
    }

    private static void LabeledExtract(ReadOnlySpan<byte> suiteId, ReadOnlySpan<byte> salt, ReadOnlySpan<byte> label, ReadOnlySpan<byte> ikm, Span<byte> prk)
    {
        var length = HpkeV1.Length + suiteId.Length + label.Length + ikm.Length;
        var s = length <= StackLimit ? stackalloc byte[StackLimit] : new byte[length];
        s = s[..length];
        HpkeV1.CopyTo(s);
        suiteId.CopyTo(s[HpkeV1.Length..]);
        label.CopyTo(s[(HpkeV1.Length + suiteId.Length)..]);
        ikm.CopyTo(s[(HpkeV1.Length + suiteId.Length + label.Length)..]);

        // HKDF-Extract is HMAC(salt, IKM), an empty salt being Nh zero bytes (RFC 5869 2.2). The one-shot HMAC skips
        // the KDF object .NET builds per HKDF call, which cost more than the hash itself here (HPKE makes five a message).
        HMACSHA256.HashData(salt.IsEmpty ? ZeroSalt : salt, s, prk);
        CryptographicOperations.ZeroMemory(s);
    }

    private static void LabeledExpand(ReadOnlySpan<byte> suiteId, ReadOnlySpan<byte> prk, ReadOnlySpan<byte> label, ReadOnlySpan<byte> info, Span<byte> okm)
    {
        // One byte more than labeled_info: HKDF-Expand's block counter, for the one-block case below.
        var length = 2 + HpkeV1.Length + suiteId.Length + label.Length + info.Length;
        var s = length + 1 <= StackLimit ? stackalloc byte[StackLimit] : new byte[length + 1];
        s = s[..(length + 1)];
        BinaryPrimitives.WriteUInt16BigEndian(s, (ushort)okm.Length);
        HpkeV1.CopyTo(s[2..]);
        suiteId.CopyTo(s[(2 + HpkeV1.Length)..]);
        label.CopyTo(s[(2 + HpkeV1.Length + suiteId.Length)..]);
        info.CopyTo(s[(2 + HpkeV1.Length + suiteId.Length + label.Length)..]);
        if (okm.Length > Nh || prk.Length < Nh)
        {
            HKDF.Expand(HashAlgorithmName.SHA256, prk, okm, s[..length]);
            return;
        }

        // Up to Nh bytes HKDF-Expand is one block, T(1) = HMAC(PRK, info || 0x01), cut to L (RFC 5869 2.3): every
        // output of a single-shot RPOI context is one block, and the one-shot HMAC skips .NET's per-call KDF object.
        s[length] = 0x01;
        Span<byte> block = stackalloc byte[Nh];
        HMACSHA256.HashData(prk, s, block);
        block[..okm.Length].CopyTo(okm);
        CryptographicOperations.ZeroMemory(block);
    }

    private sealed record ContextEntry(HpkeAead Aead, byte[] Info, byte[] Context);
}
