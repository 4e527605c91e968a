using CsCheck;
using Org.BouncyCastle.Crypto.Parameters;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Crypto;
using Rpoi.Protocol.Keys;
using Xunit;
using BcEd25519 = Org.BouncyCastle.Math.EC.Rfc8032.Ed25519;
using BcX25519 = Org.BouncyCastle.Math.EC.Rfc7748.X25519;

namespace Rpoi.Protocol.Tests;

/// <summary>
/// The protocol signs and agrees keys on libsodium (NSec); BouncyCastle, an independent implementation, must agree
/// byte for byte on random keys and messages, in both directions, so keys and signatures made by either interoperate.
/// </summary>
public sealed class LibsodiumInteropTests
{
    private const int Cases = 2_000;

    [Fact]
    public void Ed25519_signatures_are_byte_identical_to_BouncyCastle_and_each_verifies_the_other()
    {
        Gen.Select(Gen.Byte.Array[32], Gen.Byte.Array[0, 700]).Sample((seed, message) =>
        {
            var ours = PartyKeyPair.FromPrivateKeys(PartyRole.Leaser, seed, new byte[32]);
            var bc = new Ed25519PrivateKeyParameters(seed);
            var bcPublic = bc.GeneratePublicKey();
            Assert.Equal(bcPublic.GetEncoded(), ours.Identity.SigningKeyBytes);

            var sig = ours.Sign(message);
            var bcSig = new byte[64];
            bc.Sign(BcEd25519.Algorithm.Ed25519, null, message, 0, message.Length, bcSig, 0);
            Assert.Equal(bcSig, sig);
            Assert.True(bcPublic.Verify(BcEd25519.Algorithm.Ed25519, null, message, 0, message.Length, sig, 0));
            Assert.True(Sodium.Verify(ours.Identity.SigningKey, message, bcSig));
        }, iter: Cases);
    }

    [Fact]
    public void Ed25519_verify_refuses_what_BouncyCastle_refuses_after_any_single_byte_change()
    {
        var keys = PartyKeyPair.FromPrivateKeys(PartyRole.Renter, Enumerable.Range(1, 32).Select(i => (byte)i).ToArray(), new byte[32]);
        var message = "rpoi interop"u8.ToArray();
        var sig = keys.Sign(message);
        var bcPublic = new Ed25519PublicKeyParameters(keys.Identity.SigningKeyBytes);
        Gen.Select(Gen.Int[0, 63], Gen.Byte[1, 255]).Sample((i, delta) =>
        {
            var bad = (byte[])sig.Clone();
            bad[i] ^= delta;
            Assert.False(Sodium.Verify(keys.Identity.SigningKey, message, bad));
            Assert.False(bcPublic.Verify(BcEd25519.Algorithm.Ed25519, null, message, 0, message.Length, bad, 0));
        }, iter: Cases);
    }

    [Fact]
    public void X25519_public_keys_and_shared_secrets_are_byte_identical_to_BouncyCastle()
    {
        Gen.Select(Gen.Byte.Array[32], Gen.Byte.Array[32]).Sample((a, b) =>
        {
            var pa = Hpke.PublicKeyOf(a);
            var bcPa = new byte[32];
            BcX25519.ScalarMultBase(a, 0, bcPa, 0);
            Assert.Equal(bcPa, pa);

            var pb = Hpke.PublicKeyOf(b);
            var ours = new byte[32];
            var bcShared = new byte[32];
            Assert.Equal(BcX25519.CalculateAgreement(a, 0, pb, 0, bcShared, 0), Sodium.X25519(a, pb, ours));
            Assert.Equal(bcShared, ours);
        }, iter: Cases);
    }

    [Fact]
    public void X25519_low_order_points_give_no_shared_secret_as_in_BouncyCastle()
    {
        // RFC 7748 section 6.1: for these u-coordinates every shared secret is all zeros.
        string[] lowOrder =
        [
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0100000000000000000000000000000000000000000000000000000000000000",
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
            "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        ];
        var k = Enumerable.Range(7, 32).Select(i => (byte)i).ToArray();
        foreach (var hex in lowOrder)
        {
            var u = Convert.FromHexString(hex);
            var shared = new byte[32];
            Assert.False(Sodium.X25519(k, u, shared), hex);
            Assert.False(BcX25519.CalculateAgreement(k, 0, u, 0, new byte[32], 0), hex);
            Assert.All(shared, x => Assert.Equal(0, x));
            Assert.False(Hpke.IsUsablePublicKey(u), hex);
        }
    }

    [Fact]
    public void An_identity_whose_signing_key_is_outside_the_prime_order_subgroup_is_refused()
    {
        // A valid key plus a point of order 8 is still on the curve (BouncyCastle's partial check accepts it) but
        // mixed-order: cofactored and cofactorless verifiers can then disagree on a signature, so π, the operator and an
        // offline checker could reach different verdicts. Every RFC 8032 key is in the prime-order subgroup.
        var found = 0;
        Gen.Byte.Array[32].Sample(key =>
        {
            var onCurve = BcEd25519.ValidatePublicKeyPartial(key, 0);
            var full = BcEd25519.ValidatePublicKeyFull(key, 0);
            var identity = PartyIdentity.FromKeys(key, Hpke.PublicKeyOf(new byte[32] { 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31 }));
            Assert.Equal(full, identity.IsOk);
            if (onCurve && !full)
            {
                found++;
                Assert.Equal(ReasonCode.InvalidKey, identity.Reason);
                Assert.Contains("small order", identity.Message, StringComparison.Ordinal);
            }
        }, iter: Cases);
        Assert.True(found > 0, "the generator made no on-curve, mixed-order key; the test proved nothing");
    }
}
