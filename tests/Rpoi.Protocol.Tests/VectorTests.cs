using System.Buffers.Binary;
using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Math.EC.Rfc8032;
using Rpoi.Protocol.Crypto;
using Rpoi.Protocol.Encoding;
using Rpoi.Protocol.Keys;

namespace Rpoi.Protocol.Tests;

/// <summary>Published test vectors: RFC 8032 (Ed25519), RFC 9180 A.1 (HPKE), RFC 8785 (JCS).</summary>
public sealed class VectorTests
{
    private static byte[] Hex(string s) => Convert.FromHexString(s);

    private const string Rfc8032Msg1024 =
        "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed185ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f27088d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b0707e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128bab27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51addd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb751fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34dff7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e488acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5fb93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380db2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0";

    public static TheoryData<string, string, string, string, string> Rfc8032 => new()
    {
        { "TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "", "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b" },
        { "TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb", "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72", "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00" },
        { "TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7", "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82", "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a" },
        { "TEST 1024", "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5", "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e", Rfc8032Msg1024, "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03" },
        { "TEST SHA(abc)", "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42", "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f", "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704" },
    };

    [Theory]
    [MemberData(nameof(Rfc8032))]
    public void Rfc8032_Ed25519_SignAndVerify_MatchPublishedVectors(string name, string secret, string publicKey, string message, string signature)
    {
        var keys = PartyKeyPair.FromPrivateKeys(PartyRole.Renter, Hex(secret), new byte[32]);
        Assert.Equal(publicKey, Codec.ToHex(keys.Identity.SigningKeyBytes));
        var msg = Hex(message);
        var sig = keys.Sign(msg);
        Assert.True(signature == Codec.ToHex(sig), name);

        // Our verifier (libsodium) and an independent one (BouncyCastle) both accept the published signature.
        Assert.True(Rpoi.Protocol.Crypto.Sodium.Verify(keys.Identity.SigningKey, msg, sig), name);
        var pub = new Ed25519PublicKeyParameters(Hex(publicKey));
        Assert.True(pub.Verify(Ed25519.Algorithm.Ed25519, null, msg, 0, msg.Length, sig, 0));
        sig[0] ^= 1;
        Assert.False(Rpoi.Protocol.Crypto.Sodium.Verify(keys.Identity.SigningKey, msg, sig), name);
        Assert.False(pub.Verify(Ed25519.Algorithm.Ed25519, null, msg, 0, msg.Length, sig, 0));
    }

    [Fact]
    public void Rfc8032_Test1024_MessageIs1023Bytes_AndShaAbcIsSha512OfAbc()
    {
        Assert.Equal(1023, Hex(Rfc8032Msg1024).Length);
        Assert.Equal("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f", Codec.ToHex(SHA512.HashData("abc"u8)));
    }

    // RFC 9180 Appendix A.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode.
    private const string Info = "4f6465206f6e2061204772656369616e2055726e";
    private const string IkmE = "7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234";
    private const string PkEm = "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431";
    private const string SkEm = "52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736";
    private const string IkmR = "6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037";
    private const string PkRm = "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d";
    private const string SkRm = "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8";
    private const string SharedSecret = "fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc";
    private const string KeyScheduleContext = "00725611c9d98c07c03f60095cd32d400d8347d45ed67097bbad50fc56da742d07cb6cffde367bb0565ba28bb02c90744a20f5ef37f30523526106f637abb05449";
    private const string Key = "4531685d41d65f03dc48f6b8302c05b0";
    private const string BaseNonce = "56d890e5accaaf011cff4b7d";
    private const string ExporterSecret = "45ff1c2e220db587171952c0592d5f5ebe103f1561a2614e38f2ffd47e99e3f8";
    private const string Plaintext = "4265617574792069732074727574682c20747275746820626561757479";

    [Fact]
    public void Rfc9180_A1_DeriveKeyPair_GivesPublishedKeys()
    {
        var (skE, pkE) = Hpke.DeriveKeyPair(Hex(IkmE));
        Assert.Equal(SkEm, Codec.ToHex(skE));
        Assert.Equal(PkEm, Codec.ToHex(pkE));
        var (skR, pkR) = Hpke.DeriveKeyPair(Hex(IkmR));
        Assert.Equal(SkRm, Codec.ToHex(skR));
        Assert.Equal(PkRm, Codec.ToHex(pkR));
    }

    [Fact]
    public void Rfc9180_A1_KeySchedule_SenderAndReceiverMatchPublishedValues()
    {
        Assert.Equal(KeyScheduleContext, Codec.ToHex(Hpke.KeyScheduleContextFor(HpkeAead.Aes128Gcm, Hex(Info))));
        var (enc, ct) = Hpke.SealWithEphemeral(HpkeAead.Aes128Gcm, Hex(PkRm), Hex(Info), Hex("436f756e742d30"), Hex(Plaintext), Hex(SkEm), out var sender);
        Assert.Equal(PkEm, Codec.ToHex(enc));
        Assert.Equal(SharedSecret, Codec.ToHex(sender.SharedSecret));
        Assert.Equal(Key, Codec.ToHex(sender.Key));
        Assert.Equal(BaseNonce, Codec.ToHex(sender.BaseNonce));
        Assert.Equal(ExporterSecret, Codec.ToHex(sender.ExporterSecret));
        Assert.Equal("f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a", Codec.ToHex(ct));

        var receiver = Hpke.KeyScheduleForReceiver(HpkeAead.Aes128Gcm, Hex(SkRm), Hex(PkRm), enc, Hex(Info));
        Assert.Equal(SharedSecret, Codec.ToHex(receiver.SharedSecret));
        Assert.Equal(Key, Codec.ToHex(receiver.Key));
        Assert.True(Hpke.TryOpen(HpkeAead.Aes128Gcm, Hex(SkRm), Hex(PkRm), enc, Hex(Info), Hex("436f756e742d30"), ct, out var pt));
        Assert.Equal(Plaintext, Codec.ToHex(pt));
    }

    [Theory]
    [InlineData(0UL, "436f756e742d30", "56d890e5accaaf011cff4b7d", "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a")]
    [InlineData(1UL, "436f756e742d31", "56d890e5accaaf011cff4b7c", "af2d7e9ac9ae7e270f46ba1f975be53c09f8d875bdc8535458c2494e8a6eab251c03d0c22a56b8ca42c2063b84")]
    [InlineData(2UL, "436f756e742d32", "56d890e5accaaf011cff4b7f", "498dfcabd92e8acedc281e85af1cb4e3e31c7dc394a1ca20e173cb72516491588d96a19ad4a683518973dcc180")]
    [InlineData(4UL, "436f756e742d34", "56d890e5accaaf011cff4b79", "583bd32bc67a5994bb8ceaca813d369bca7b2a42408cddef5e22f880b631215a09fc0012bc69fccaa251c0246d")]
    [InlineData(255UL, "436f756e742d323535", "56d890e5accaaf011cff4b82", "7175db9717964058640a3a11fb9007941a5d1757fda1a6935c805c21af32505bf106deefec4a49ac38d71c9e0a")]
    [InlineData(256UL, "436f756e742d323536", "56d890e5accaaf011cff4a7d", "957f9800542b0b8891badb026d79cc54597cb2d225b54c00c5238c25d05c30e3fbeda97d2e0e1aba483a2df9f2")]
    public void Rfc9180_A1_Encryptions_ByteForByte(ulong seq, string aad, string nonce, string ct)
    {
        var n = Hpke.NonceFor(Hex(BaseNonce), seq);
        Assert.Equal(nonce, Codec.ToHex(n));
        Assert.Equal(ct, Codec.ToHex(Hpke.AeadSeal(Hex(Key), n, Hex(aad), Hex(Plaintext))));
    }

    [Theory]
    [InlineData("", "3853fe2b4035195a573ffc53856e77058e15d9ea064de3e59f4961d0095250ee")]
    [InlineData("00", "2e8f0b54673c7029649d4eb9d5e33bf1872cf76d623ff164ac185da9e88c21a5")]
    [InlineData("54657374436f6e74657874", "e9e43065102c3836401bed8c3c3c75ae46be1639869391d62c61f1ec7af54931")]
    public void Rfc9180_A1_Exports(string context, string expected) =>
        Assert.Equal(expected, Codec.ToHex(Hpke.Export(HpkeAead.Aes128Gcm, Hex(ExporterSecret), Hex(context), 32)));

    [Fact]
    public void Hpke_Aes256Gcm_RoundTrips_AndUses32ByteKey()
    {
        var (sk, pk) = Hpke.DeriveKeyPair(Hex(IkmR));
        var (enc, ct) = Hpke.SealWithEphemeral(HpkeAead.Aes256Gcm, pk, "rpoi/v1/access"u8, new byte[32], "hello"u8, Hex(SkEm), out var schedule);
        Assert.Equal(32, schedule.Key.Length);
        Assert.NotEqual(Key, Codec.ToHex(schedule.Key.AsSpan(0, 16)));
        Assert.True(Hpke.TryOpen(HpkeAead.Aes256Gcm, sk, pk, enc, "rpoi/v1/access"u8, new byte[32], ct, out var pt));
        Assert.Equal("hello", System.Text.Encoding.UTF8.GetString(pt));
        Assert.False(Hpke.TryOpen(HpkeAead.Aes128Gcm, sk, pk, enc, "rpoi/v1/access"u8, new byte[32], ct, out _));
    }

    [Fact]
    public void Hpke_LowOrderRecipientKey_IsRefused()
    {
        var zero = new byte[32];
        Assert.Throws<CryptographicException>(() => Hpke.Seal(HpkeAead.Aes256Gcm, zero, [], [], [1]));
        var (sk, pk) = Hpke.GenerateKeyPair();
        Assert.False(Hpke.TryOpen(HpkeAead.Aes256Gcm, sk, pk, zero, [], [], new byte[17], out _));
    }

    // RFC 8785 section 3.2.2 input and section 3.2.4 output bytes.
    private const string Rfc8785Sample = """
        {
          "numbers": [333333333.33333329, 1E30, 4.50,
                      2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }
        """;

    [Fact]
    public void Rfc8785_Section3_SampleCanonicalizesToPublishedBytes()
    {
        var expected = "7b 22 6c 69 74 65 72 61 6c 73 22 3a 5b 6e 75 6c 6c 2c 74 72 75 65 2c 66 61 6c 73 65 5d 2c 22 6e 75 6d 62 65 72 73 22 3a 5b 33 33 33 33 33 33 33 33 33 2e 33 33 33 33 33 33 33 2c 31 65 2b 33 30 2c 34 2e 35 2c 30 2e 30 30 32 2c 31 65 2d 32 37 5d 2c 22 73 74 72 69 6e 67 22 3a 22 e2 82 ac 24 5c 75 30 30 30 66 5c 6e 41 27 42 5c 22 5c 5c 5c 5c 5c 22 2f 22 7d".Replace(" ", string.Empty, StringComparison.Ordinal);
        Assert.Equal(expected, Codec.ToHex(CanonicalJson.Canonicalize(System.Text.Encoding.UTF8.GetBytes(Rfc8785Sample))));
    }

    [Fact]
    public void Rfc8785_Section3_PropertiesSortedByUtf16CodeUnits()
    {
        const string input = """
            {
              "\u20ac": "Euro Sign",
              "\r": "Carriage Return",
              "\ufb33": "Hebrew Letter Dalet With Dagesh",
              "1": "One",
              "\ud83d\ude00": "Emoji: Grinning Face",
              "\u0080": "Control",
              "\u00f6": "Latin Small Letter O With Diaeresis"
            }
            """;
        var text = System.Text.Encoding.UTF8.GetString(CanonicalJson.Canonicalize(System.Text.Encoding.UTF8.GetBytes(input)));
        string[] order = ["Carriage Return", "One", "Control", "Latin Small Letter O With Diaeresis", "Euro Sign", "Emoji: Grinning Face", "Hebrew Letter Dalet With Dagesh"];
        var positions = order.Select(label => text.IndexOf(label, StringComparison.Ordinal)).ToArray();
        Assert.All(positions, p => Assert.True(p > 0));
        Assert.Equal(positions.Order().ToArray(), positions);
        Assert.StartsWith("{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\"", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Rfc8785_Readme_SampleWithEscapes()
    {
        const string input = """{"numbers": [1E30,4.50,6,2e-3,0.000000000000000000000000001], "escaping": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/", "other":  [null, true, false]}""";
        const string expected = """{"escaping":"€$\u000f\nA'B\"\\\\\"/","numbers":[1e+30,4.5,6,0.002,1e-27],"other":[null,true,false]}""";
        Assert.Equal(expected, System.Text.Encoding.UTF8.GetString(CanonicalJson.Canonicalize(System.Text.Encoding.UTF8.GetBytes(input))));
    }

    [Theory]
    [InlineData("0000000000000000", "0")]
    [InlineData("8000000000000000", "0")]
    [InlineData("0000000000000001", "5e-324")]
    [InlineData("8000000000000001", "-5e-324")]
    [InlineData("7fefffffffffffff", "1.7976931348623157e+308")]
    [InlineData("ffefffffffffffff", "-1.7976931348623157e+308")]
    [InlineData("4340000000000000", "9007199254740992")]
    [InlineData("c340000000000000", "-9007199254740992")]
    [InlineData("4430000000000000", "295147905179352830000")]
    [InlineData("44b52d02c7e14af5", "9.999999999999997e+22")]
    [InlineData("44b52d02c7e14af6", "1e+23")]
    [InlineData("44b52d02c7e14af7", "1.0000000000000001e+23")]
    [InlineData("444b1ae4d6e2ef4e", "999999999999999700000")]
    [InlineData("444b1ae4d6e2ef4f", "999999999999999900000")]
    [InlineData("444b1ae4d6e2ef50", "1e+21")]
    [InlineData("3eb0c6f7a0b5ed8c", "9.999999999999997e-7")]
    [InlineData("3eb0c6f7a0b5ed8d", "0.000001")]
    [InlineData("41b3de4355555553", "333333333.3333332")]
    [InlineData("41b3de4355555554", "333333333.33333325")]
    [InlineData("41b3de4355555555", "333333333.3333333")]
    [InlineData("41b3de4355555556", "333333333.3333334")]
    [InlineData("41b3de4355555557", "333333333.33333343")]
    [InlineData("becbf647612f3696", "-0.0000033333333333333333")]
    [InlineData("43143ff3c1cb0959", "1424953923781206.2")]
    [InlineData("4340000000000001", "9007199254740994")]
    public void Rfc8785_AppendixB_Numbers(string ieeeHex, string expected)
    {
        var value = BitConverter.Int64BitsToDouble(BinaryPrimitives.ReadInt64BigEndian(Hex(ieeeHex)));
        Assert.Equal(expected, CanonicalJson.FormatNumber(value));
        // Through the parser too: the shortest form must round-trip to the same double.
        if (value != 0)
        {
            Assert.Equal(expected, System.Text.Encoding.UTF8.GetString(CanonicalJson.Canonicalize(System.Text.Encoding.UTF8.GetBytes(expected))));
        }
    }

    [Fact]
    public void Rfc8785_IntegerFastPath_AgreesWithEs6Rules()
    {
        const string input = "[-0, 0, 7, -12, 123456789012345, 1234567890123456, 10.0, 1E2]";
        Assert.Equal("[0,0,7,-12,123456789012345,1234567890123456,10,100]", System.Text.Encoding.UTF8.GetString(CanonicalJson.Canonicalize(System.Text.Encoding.UTF8.GetBytes(input))));
    }

    [Theory]
    [InlineData("7fffffffffffffff")]
    [InlineData("7ff0000000000000")]
    [InlineData("fff0000000000000")]
    public void Rfc8785_AppendixB_NaNAndInfinity_AreRefused(string ieeeHex)
    {
        var value = BitConverter.Int64BitsToDouble(BinaryPrimitives.ReadInt64BigEndian(Hex(ieeeHex)));
        Assert.Throws<ArgumentOutOfRangeException>(() => CanonicalJson.FormatNumber(value));
    }

    [Theory]
    [InlineData("""{"a":1,"a":2}""")]
    [InlineData("""{"a":1e400}""")]
    [InlineData("""["\ud800"]""")]
    [InlineData("""{"a":1} x""")]
    public void Rfc8785_InvalidIJson_IsRefused(string json) =>
        Assert.ThrowsAny<System.Text.Json.JsonException>(() => CanonicalJson.Canonicalize(System.Text.Encoding.UTF8.GetBytes(json)));
}
