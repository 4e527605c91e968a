using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using BcX25519 = Org.BouncyCastle.Math.EC.Rfc7748.X25519;
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
/// <see cref="HpkeAead"/>). BouncyCastle 2.7.0 for C# has no HPKE, so it is built here from BouncyCastle's
/// X25519 and .NET's HKDF and AES-GCM, and checked against RFC 9180 Appendix A.1.
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

    // info_hash and psk_id_hash depend only on (suite, info); RPOI uses two fixed infos, so cache them.
    private static readonly ConcurrentDictionary<(HpkeAead, string), byte[]> ContextCache = new();

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
        BcX25519.ScalarMultBase(privateKey.ToArray(), 0, pk, 0);
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

        var probe = new byte[32];
        probe[0] = 0x48; // any scalar works: clamping clears the cofactor, so low-order points always give zero
        return BcX25519.CalculateAgreement(probe, 0, publicKey.ToArray(), 0, new byte[32], 0);
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
        var skE = RandomNumberGenerator.GetBytes(32);
        try
        {
            return SealWithEphemeral(aead, recipientPublicKey, info, aad, plaintext, skE, out _);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(skE);
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
        var pkRArray = pkR.ToArray();
        if (!Agree(skE, pkRArray, dh))
        {
            throw new CryptographicException("recipient public key is a low-order point");
        }

        schedule = KeySchedule(aead, dh, pkE, pkRArray, info);
        var ct = new byte[plaintext.Length + TagSize];
        using var gcm = new NetAesGcm(schedule.Key, TagSize);
        gcm.Encrypt(schedule.BaseNonce, plaintext, ct.AsSpan(0, plaintext.Length), ct.AsSpan(plaintext.Length), aad);
        return (pkE, ct);
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
        var encArray = enc.ToArray();
        if (!Agree(recipientPrivateKey.ToArray(), encArray, dh))
        {
            return false;
        }

        var schedule = KeySchedule(aead, dh, encArray, recipientPublicKey.ToArray(), info);
        var pt = new byte[ciphertext.Length - TagSize];
        using var gcm = new NetAesGcm(schedule.Key, TagSize);
        try
        {
            gcm.Decrypt(schedule.BaseNonce, ciphertext[..pt.Length], ciphertext[pt.Length..], pt, aad);
        }
        catch (AuthenticationTagMismatchException)
        {
            return false;
        }

        plaintext = pt;
        return true;
    }

    /// <summary>Receiver-side key schedule for test vectors.</summary>
    internal static HpkeKeySchedule KeyScheduleForReceiver(HpkeAead aead, byte[] skR, byte[] pkR, byte[] enc, ReadOnlySpan<byte> info)
    {
        Span<byte> dh = stackalloc byte[32];
        if (!Agree(skR, enc, dh))
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

    private static bool Agree(byte[] sk, byte[] pk, Span<byte> dh)
    {
        var output = new byte[32];
        var ok = BcX25519.CalculateAgreement(sk, 0, pk, 0, output, 0);
        output.CopyTo(dh);
        return ok;
    }

    private static HpkeKeySchedule KeySchedule(HpkeAead aead, ReadOnlySpan<byte> dh, byte[] enc, byte[] pkR, ReadOnlySpan<byte> info)
    {
        // ExtractAndExpand (RFC 9180 4.1): kem_context = enc || pkRm.
        Span<byte> kemContext = stackalloc byte[64];
        enc.CopyTo(kemContext);
        pkR.CopyTo(kemContext[32..]);
        var eaePrk = LabeledExtract(KemSuiteId, [], "eae_prk"u8, dh);
        var sharedSecret = LabeledExpand(KemSuiteId, eaePrk, "shared_secret"u8, kemContext, Nsecret);

        var suiteId = HpkeSuiteId(aead);
        var context = KeyScheduleContext(aead, suiteId, info);
        var secret = LabeledExtract(suiteId, sharedSecret, "secret"u8, []);
        var nk = aead == HpkeAead.Aes128Gcm ? 16 : 32;
        var key = LabeledExpand(suiteId, secret, "key"u8, context, nk);
        var baseNonce = LabeledExpand(suiteId, secret, "base_nonce"u8, context, Nn);
        var exporter = LabeledExpand(suiteId, secret, "exp"u8, context, Nh);
        return new HpkeKeySchedule(sharedSecret, key, baseNonce, exporter);
    }

    private static byte[] HpkeSuiteId(HpkeAead aead)
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
        var infoKey = Convert.ToBase64String(info);
        if (ContextCache.TryGetValue((aead, infoKey), out var cached))
        {
            return cached;
        }

        var pskIdHash = LabeledExtract(suiteId, [], "psk_id_hash"u8, []);
        var infoHash = LabeledExtract(suiteId, [], "info_hash"u8, info);
        var context = new byte[1 + Nh + Nh];
        context[0] = 0x00; // mode_base
        pskIdHash.CopyTo(context, 1);
        infoHash.CopyTo(context, 1 + Nh);
        if (ContextCache.Count < 64)
        {
            ContextCache.TryAdd((aead, infoKey), context);
        }

        return context;
    }

    internal static byte[] LabeledExtract(ReadOnlySpan<byte> suiteId, ReadOnlySpan<byte> salt, ReadOnlySpan<byte> label, ReadOnlySpan<byte> ikm)
    {
        var labeled = new byte[HpkeV1.Length + suiteId.Length + label.Length + ikm.Length];
        var s = labeled.AsSpan();
        HpkeV1.CopyTo(s);
        suiteId.CopyTo(s[HpkeV1.Length..]);
        label.CopyTo(s[(HpkeV1.Length + suiteId.Length)..]);
        ikm.CopyTo(s[(HpkeV1.Length + suiteId.Length + label.Length)..]);
        var prk = new byte[Nh];
        HKDF.Extract(HashAlgorithmName.SHA256, labeled, salt, prk);
        return prk;
    }

    internal static byte[] LabeledExpand(ReadOnlySpan<byte> suiteId, ReadOnlySpan<byte> prk, ReadOnlySpan<byte> label, ReadOnlySpan<byte> info, int length)
    {
        var labeled = new byte[2 + HpkeV1.Length + suiteId.Length + label.Length + info.Length];
        var s = labeled.AsSpan();
        BinaryPrimitives.WriteUInt16BigEndian(s, (ushort)length);
        HpkeV1.CopyTo(s[2..]);
        suiteId.CopyTo(s[(2 + HpkeV1.Length)..]);
        label.CopyTo(s[(2 + HpkeV1.Length + suiteId.Length)..]);
        info.CopyTo(s[(2 + HpkeV1.Length + suiteId.Length + label.Length)..]);
        var okm = new byte[length];
        HKDF.Expand(HashAlgorithmName.SHA256, prk, okm, labeled);
        return okm;
    }
}
