using System.Runtime.InteropServices;
using NSec.Cryptography;

namespace Rpoi.Protocol.Crypto;

/// <summary>
/// Ed25519 and X25519 on libsodium. Ed25519 goes through NSec's API (keys imported once and reused). X25519 calls
/// libsodium's <c>crypto_scalarmult</c> directly in the library NSec ships and loads: NSec's X25519 wraps every private
/// key and shared secret in guarded memory, about 45 µs per import, which is more than the whole scalar
/// multiplication (about 32 µs) and would make HPKE's per-message ephemeral keys slower than before.
/// </summary>
internal static partial class Sodium
{
    private const string Library = "libsodium";

    public const int Ed25519SignatureSize = 64;
    public const int Ed25519SeedSize = 32;

    static Sodium()
    {
        // NSec's static constructor runs sodium_init (which picks the fastest implementations for this CPU); touching
        // an algorithm first makes sure it ran before the direct calls below. sodium_init is idempotent.
        _ = SignatureAlgorithm.Ed25519;
        if (sodium_init() < 0)
        {
            throw new InvalidOperationException("libsodium failed to initialise");
        }
    }

    /// <summary>The Ed25519 private key for a 32-byte seed (RFC 8032), held by NSec and reused for every signature.</summary>
    public static Key ImportEd25519Seed(ReadOnlySpan<byte> seed) =>
        Key.Import(SignatureAlgorithm.Ed25519, seed, KeyBlobFormat.RawPrivateKey, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport });

    /// <summary>
    /// An Ed25519 public key, or null when it is not a usable point: not on the curve, not canonically encoded, or of
    /// small order. libsodium refuses every signature under such a key, so an identity that names one is refused early.
    /// </summary>
    public static PublicKey? ImportEd25519PublicKey(ReadOnlySpan<byte> publicKey)
    {
        if (publicKey.Length != 32 || crypto_core_ed25519_is_valid_point(in MemoryMarshal.GetReference(publicKey)) != 1)
        {
            return null;
        }

        return PublicKey.TryImport(SignatureAlgorithm.Ed25519, publicKey, KeyBlobFormat.RawPublicKey, out var key) ? key : null;
    }

    public static void Sign(Key key, ReadOnlySpan<byte> message, Span<byte> signature) => SignatureAlgorithm.Ed25519.Sign(key, message, signature);

    public static bool Verify(PublicKey key, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature) => SignatureAlgorithm.Ed25519.Verify(key, message, signature);

    /// <summary>X25519 public key of a private scalar (RFC 7748; libsodium clamps the scalar).</summary>
    public static void X25519Base(ReadOnlySpan<byte> privateKey, Span<byte> publicKey)
    {
        Check32(privateKey, publicKey);
        if (crypto_scalarmult_curve25519_base(ref MemoryMarshal.GetReference(publicKey), in MemoryMarshal.GetReference(privateKey)) != 0)
        {
            throw new InvalidOperationException("crypto_scalarmult_curve25519_base failed");
        }
    }

    /// <summary>X25519(k, u). False when the result is all zeros, i.e. <paramref name="publicKey"/> is of low order (RFC 7748 6.1).</summary>
    public static bool X25519(ReadOnlySpan<byte> privateKey, ReadOnlySpan<byte> publicKey, Span<byte> shared)
    {
        Check32(privateKey, publicKey);
        if (shared.Length != 32)
        {
            throw new ArgumentException("an X25519 shared secret is 32 bytes", nameof(shared));
        }

        var ok = crypto_scalarmult_curve25519(ref MemoryMarshal.GetReference(shared), in MemoryMarshal.GetReference(privateKey), in MemoryMarshal.GetReference(publicKey)) == 0;
        if (!ok)
        {
            shared.Clear();
        }

        return ok;
    }

    private static void Check32(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        if (a.Length != 32 || b.Length != 32)
        {
            throw new ArgumentException("X25519 keys are 32 bytes");
        }
    }

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern int sodium_init();

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern int crypto_scalarmult_curve25519(ref byte q, in byte n, in byte p);

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern int crypto_scalarmult_curve25519_base(ref byte q, in byte n);

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern int crypto_core_ed25519_is_valid_point(in byte p);
}
