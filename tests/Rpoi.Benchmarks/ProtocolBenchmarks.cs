using System.Security.Cryptography;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Math.EC.Rfc8032;
using Rpoi.Protocol;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Crypto;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;
using BcX25519 = Org.BouncyCastle.Math.EC.Rfc7748.X25519;
using NetAesGcm = System.Security.Cryptography.AesGcm;

namespace Rpoi.Benchmarks;

/// <summary>
/// Rpoi.Protocol wrappers beside the raw primitives they wrap, in one run, so the ratios in BENCHMARKS.md come
/// from the same machine state. "Raw" = libsodium Ed25519/X25519 (what the protocol uses) and .NET HKDF/AES-GCM called directly.
/// </summary>
[MemoryDiagnoser]
public class ProtocolBenchmarks
{
    private static readonly DateTimeOffset Now = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    private PartyKeyPair _renter = null!, _leaser = null!, _escrow = null!;
    private LeaseRequest _request = null!;
    private Signed<LeaseRequest> _signed = null!;
    private string _signedJson = null!;
    private byte[] _canonicalPayload = null!, _canonicalEnvelope = null!, _sig = null!;
    private Ed25519PrivateKeyParameters _bcPrivate = null!;
    private Ed25519PublicKeyParameters _bcRenterPublic = null!;
    private NSec.Cryptography.Key _sodiumPrivate = null!;
    private NSec.Cryptography.PublicKey _sodiumRenterPublic = null!;
    private TransactionHash _h = null!;
    private AccessGrant _grant = null!;
    private SealedMessage _sealedGrant = null!;
    private byte[] _xRecipientPrivate = null!, _xRecipientPublic = null!, _rawEnc = null!, _rawCt = null!;
    private byte[] _hpkeEnc = null!, _hpkeCt = null!;
    private RequestVerifier _verifier = null!;

    [GlobalSetup]
    public void Setup()
    {
        _renter = PartyKeyPair.Generate(PartyRole.Renter);
        _leaser = PartyKeyPair.Generate(PartyRole.Leaser);
        _escrow = PartyKeyPair.Generate(PartyRole.Escrow);
        _request = Requests.New(_renter.Identity, _leaser.Identity.Address, _escrow.Identity.Address, "tpu-v5-lite-podslice", "2x4", 8, 3600, Now, new Money("1500000", "uusd"), new Money("9000000", "uusd"), new LeaseRef("team-a", "train-1"));
        _signed = RpoiEquations.SignRequest(_request, _renter);
        _signedJson = _signed.ToJson();
        _canonicalPayload = _signed.CanonicalPayload.ToArray();
        _canonicalEnvelope = _signed.ToCanonicalBytes();
        _sig = Convert.FromBase64String(_signed.Sig);
        _bcPrivate = new Ed25519PrivateKeyParameters(RandomNumberGenerator.GetBytes(32));
        _bcRenterPublic = new Ed25519PublicKeyParameters(_renter.Identity.SigningKeyBytes);
        _sodiumPrivate = Sodium.ImportEd25519Seed(RandomNumberGenerator.GetBytes(32));
        _sodiumRenterPublic = Sodium.ImportEd25519PublicKey(_renter.Identity.SigningKeyBytes)!;
        _h = RpoiEquations.TransactionHashOf(_signed);
        _grant = new AccessGrant(
            ["gke-tpu-a", "gke-tpu-b"], "tpu-pool-1", "tpu-v5-lite-podslice", "2x4",
            new Dictionary<string, string> { ["rpoi.io/lease"] = "team-a.train-1" },
            new Toleration("rpoi.io/lease", "Equal", "team-a.train-1", "NoSchedule"),
            "apiVersion: v1\nkind: Config\nusers:\n- name: lease\n  user:\n    token: " + new string('t', 900) + "\n",
            JsonDocument.Parse("""{"spec":{"containers":[{"name":"main","image":"python:3.12"}]}}""").RootElement.Clone(),
            Now, Now.AddHours(1));
        _verifier = new RequestVerifier(new FixedClock(Now));
        _sealedGrant = RpoiEquations.SealGrant(RpoiEquations.VerifyRequest(_signed).Value, _grant, _leaser);

        (_xRecipientPrivate, _xRecipientPublic) = Hpke.GenerateKeyPair();
        (_rawEnc, _rawCt) = RawSeal();
        (_hpkeEnc, _hpkeCt) = Hpke.Seal(HpkeAead.Aes256Gcm, _xRecipientPublic, "rpoi/v1/access"u8, _h.Bytes, _canonicalEnvelope);
        SetupSteps();
    }

    // ------------------------------------------------------------ primitives

    // "Raw" is libsodium, what the protocol runs on: keys imported once, then one call per operation. The BouncyCastle
    // rows are kept as a reference, to show what the move to libsodium saved in the same run.
    [Benchmark(Description = "raw libsodium Ed25519 sign (request payload bytes)")]
    public byte[] RawEd25519Sign()
    {
        var sig = new byte[64];
        Sodium.Sign(_sodiumPrivate, _canonicalPayload, sig);
        return sig;
    }

    [Benchmark(Description = "raw libsodium Ed25519 verify (key object reused)")]
    public bool RawEd25519Verify() => Sodium.Verify(_sodiumRenterPublic, _canonicalPayload, _sig);

    [Benchmark(Description = "raw libsodium Ed25519 verify (key imported each time)")]
    public bool RawEd25519VerifyFreshKey() => Sodium.Verify(Sodium.ImportEd25519PublicKey(_renter.Identity.SigningKeyBytes)!, _canonicalPayload, _sig);

    [Benchmark(Description = "reference: BouncyCastle Ed25519 sign")]
    public byte[] BcEd25519Sign()
    {
        var sig = new byte[64];
        _bcPrivate.Sign(Ed25519.Algorithm.Ed25519, null, _canonicalPayload, 0, _canonicalPayload.Length, sig, 0);
        return sig;
    }

    [Benchmark(Description = "reference: BouncyCastle Ed25519 verify (key object reused)")]
    public bool BcEd25519Verify() =>
        _bcRenterPublic.Verify(Ed25519.Algorithm.Ed25519, null, _canonicalPayload, 0, _canonicalPayload.Length, _sig, 0);

    [Benchmark(Description = "reference: BouncyCastle X25519 agreement")]
    public bool BcX25519Agree() => BcX25519.CalculateAgreement(_xRecipientPrivate, 0, _rawEnc, 0, new byte[32], 0);

    [Benchmark(Description = "raw libsodium X25519 agreement")]
    public bool SodiumX25519Agree() => Sodium.X25519(_xRecipientPrivate, _rawEnc, new byte[32]);

    [Benchmark(Description = "raw SHA-256 of canonical E(m)")]
    public byte[] RawSha256() => SHA256.HashData(_canonicalEnvelope);

    /// <summary>X25519 keygen + agreement, one HKDF extract + expand, AES-256-GCM: the work HPKE cannot avoid.</summary>
    [Benchmark(Description = "raw X25519+HKDF+AES-256-GCM seal")]
    public (byte[], byte[]) RawSealBenchmark() => RawSeal();

    [Benchmark(Description = "raw X25519+HKDF+AES-256-GCM open")]
    public byte[] RawOpen()
    {
        var dh = new byte[32];
        Sodium.X25519(_xRecipientPrivate, _rawEnc, dh);
        Span<byte> okm = stackalloc byte[44];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, dh, okm, [], "rpoi"u8);
        var pt = new byte[_rawCt.Length - 16];
        using var gcm = new NetAesGcm(okm[..32], 16);
        gcm.Decrypt(okm[32..], _rawCt.AsSpan(0, pt.Length), _rawCt.AsSpan(pt.Length), pt, _h.Bytes);
        return pt;
    }

    private (byte[] Enc, byte[] Ct) RawSeal()
    {
        var sk = RandomNumberGenerator.GetBytes(32);
        var pk = new byte[32];
        Sodium.X25519Base(sk, pk);
        var dh = new byte[32];
        Sodium.X25519(sk, _xRecipientPublic, dh);
        Span<byte> okm = stackalloc byte[44];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, dh, okm, [], "rpoi"u8);
        var ct = new byte[_canonicalEnvelope.Length + 16];
        using var gcm = new NetAesGcm(okm[..32], 16);
        gcm.Encrypt(okm[32..], _canonicalEnvelope, ct.AsSpan(0, _canonicalEnvelope.Length), ct.AsSpan(_canonicalEnvelope.Length), _h.Bytes);
        return (pk, ct);
    }

    // ------------------------------------------------------------ wrappers

    [Benchmark(Description = "STJ serialize m (no JCS)")]
    public byte[] SerializeOnly() => JsonSerializer.SerializeToUtf8Bytes(_request, ProtocolJson.Options);

    [Benchmark(Description = "JCS of m's JSON bytes")]
    public byte[] CanonicalizeOnly() => Rpoi.Protocol.Encoding.CanonicalJson.Canonicalize(_canonicalPayload);

    [Benchmark(Description = "Signed.Create (JCS + sign)")]
    public Signed<LeaseRequest> Sign() => Signed<LeaseRequest>.Create(_request, _renter);

    [Benchmark(Description = "Signed.VerifySignature (uncached)")]
    public bool Verify() => _signed.VerifyUncached(_renter.Identity).IsOk;

    [Benchmark(Description = "E(m) JSON → parse → VerifyRequest")]
    public bool ParseAndVerify() => RpoiEquations.VerifyRequest(Signed<LeaseRequest>.Parse(_signedJson).Value).IsOk;

    [Benchmark(Description = "H from a Signed object")]
    public TransactionHash HashFromObject() => TransactionHash.FromBytes(SHA256.HashData(_signed.ToCanonicalBytes()));

    [Benchmark(Description = "H from E(m) JSON text (parse + JCS + SHA-256)")]
    public TransactionHash HashFromJson() => RpoiEquations.TransactionHashOf(_signedJson).Value;

    [Benchmark(Description = "Hpke.Seal (RFC 9180, AES-256-GCM)")]
    public (byte[], byte[]) HpkeSeal() => Hpke.Seal(HpkeAead.Aes256Gcm, _xRecipientPublic, "rpoi/v1/access"u8, _h.Bytes, _canonicalEnvelope);

    [Benchmark(Description = "Hpke.TryOpen")]
    public bool HpkeOpen() => Hpke.TryOpen(HpkeAead.Aes256Gcm, _xRecipientPrivate, _xRecipientPublic, _hpkeEnc, "rpoi/v1/access"u8, _h.Bytes, _hpkeCt, out _);

    [Benchmark(Description = "SealedMessage.Open (HPKE + parse signed m')")]
    public bool SealedOpen() => _sealedGrant.Open<GrantedLease>(_renter, SealPurposes.Access, _h).IsOk;

    [Benchmark(Description = "full lease lifecycle crypto (request → receipt)")]
    public bool Lifecycle()
    {
        // R signs m (eq. 1); β parses E(m) from the Lease, computes H (eq. 2), runs every request check (eq. 3a).
        var em = RpoiEquations.SignRequest(_request, _renter);
        var atLeaser = Signed<LeaseRequest>.Parse(em.ToCanonicalBytes()).Value;
        var verified = _verifier.Verify(atLeaser, new RequestExpectations("team-a", "train-1", _leaser.Identity.Address, _escrow.Identity.Address)).Value;
        // π checks the pledge (its own parse and signature check).
        var atEscrow = RpoiEquations.VerifyRequest(Signed<LeaseRequest>.Parse(em.ToCanonicalBytes()).Value).Value;
        // β seals σ to R (eq. 3b); R opens it (eq. 4).
        var enc = RpoiEquations.SealGrant(verified, _grant, _leaser);
        var opened = RpoiEquations.OpenGrant(SealedMessage.Parse(enc.ToUtf8Bytes()).Value, _renter, em, _leaser.Identity).Value;
        // R rates (eq. 18); β verifies it, adds its rating and seals m_final to π (eq. 19).
        var emm = RpoiEquations.SignRenterRating(em, opened.GrantDigest, new Rating(5, "good", Now), _renter);
        var emmAtLeaser = Signed<RenterRating>.Parse(emm.ToCanonicalBytes()).Value;
        var digest = RpoiEquations.GrantDigest(_grant);
        var ok = RpoiEquations.VerifyRenterRating(emmAtLeaser, verified, digest).Value;
        var mFinal = RpoiEquations.SealFinal(atLeaser, digest, ok, new Rating(4, "", Now), _leaser, _escrow.Identity);
        // π opens and checks everything, decides (eqs. 20, 21), signs the receipt; β checks the receipt.
        var s = RpoiEquations.OpenFinal(SealedMessage.Parse(mFinal.ToUtf8Bytes()).Value, _escrow, _leaser.Identity, atEscrow).Value;
        var receipt = RpoiEquations.SignReceipt(new SettlementReceipt(MessageKinds.Receipt, s.H.Hex, _escrow.Identity.Address, s.Source, s.Decision, RpoiEquations.TransfersFor(s.Request.Payload, s.Decision, _escrow.Identity.Address), Now, "ledger:1"), _escrow);
        return atEscrow.H.Equals(s.H) && RpoiEquations.VerifyReceipt(Signed<SettlementReceipt>.Parse(receipt.ToCanonicalBytes()).Value, _escrow.Identity, s.H).IsOk;
    }

    // ------------------------------------------------------------ lifecycle steps (each on fresh messages)

    private byte[] _emBytes = null!, _sealedGrantBytes = null!, _emmBytes = null!, _sealedFinalBytes = null!, _receiptBytes = null!;
    private Signed<LeaseRequest> _em = null!;
    private VerifiedRequest _verifiedAtLeaser = null!, _verifiedAtEscrow = null!;
    private OpenedGrant _opened = null!;
    private VerifiedSettlement _settlement = null!;
    private string _grantDigest = null!;

    /// <summary>Runs the lifecycle once and keeps every message as bytes, so each step can be timed on its own.</summary>
    public void SetupSteps()
    {
        _em = RpoiEquations.SignRequest(_request, _renter);
        _emBytes = _em.ToCanonicalBytes();
        _verifiedAtLeaser = StepLeaserVerifiesRequest();
        _verifiedAtEscrow = StepEscrowVerifiesPledge();
        _sealedGrantBytes = StepLeaserSealsGrant().ToUtf8Bytes();
        _opened = StepRenterOpensGrant();
        _emmBytes = StepRenterSignsRating().ToCanonicalBytes();
        _grantDigest = RpoiEquations.GrantDigest(_grant);
        SetupParse();
        _sealedFinalBytes = StepLeaserSealsFinal().ToUtf8Bytes();
        _settlement = StepEscrowOpensFinal();
        _receiptBytes = StepEscrowSignsReceipt().ToCanonicalBytes();
    }

    public Signed<LeaseRequest> StepRenterSignsRequest() => RpoiEquations.SignRequest(_request, _renter);

    public VerifiedRequest StepLeaserVerifiesRequest() =>
        _verifier.Verify(Signed<LeaseRequest>.Parse(_emBytes).Value, new RequestExpectations("team-a", "train-1", _leaser.Identity.Address, _escrow.Identity.Address)).Value;

    public VerifiedRequest StepEscrowVerifiesPledge() => RpoiEquations.VerifyRequest(Signed<LeaseRequest>.Parse(_emBytes).Value).Value;

    public SealedMessage StepLeaserSealsGrant() => RpoiEquations.SealGrant(_verifiedAtLeaser, _grant, _leaser);

    public OpenedGrant StepRenterOpensGrant() =>
        RpoiEquations.OpenGrant(SealedMessage.Parse(_sealedGrantBytes).Value, _renter, _em, _leaser.Identity).Value;

    public Signed<RenterRating> StepRenterSignsRating() =>
        RpoiEquations.SignRenterRating(_em, _opened.GrantDigest, new Rating(5, "good", Now), _renter);

    public Signed<RenterRating> StepLeaserVerifiesRating() =>
        RpoiEquations.VerifyRenterRating(Signed<RenterRating>.Parse(_emmBytes).Value, _verifiedAtLeaser, RpoiEquations.GrantDigest(_grant)).Value;

    public SealedMessage StepLeaserSealsFinal() =>
        RpoiEquations.SealFinal(_verifiedAtLeaser.Request, _grantDigest, _emmParsed, new Rating(4, "", Now), _leaser, _escrow.Identity);

    public VerifiedSettlement StepEscrowOpensFinal() =>
        RpoiEquations.OpenFinal(SealedMessage.Parse(_sealedFinalBytes).Value, _escrow, _leaser.Identity, _verifiedAtEscrow).Value;

    public Signed<SettlementReceipt> StepEscrowSignsReceipt() =>
        RpoiEquations.SignReceipt(new SettlementReceipt(MessageKinds.Receipt, _settlement.H.Hex, _escrow.Identity.Address, _settlement.Source, _settlement.Decision, RpoiEquations.TransfersFor(_settlement.Request.Payload, _settlement.Decision, _escrow.Identity.Address), Now, "ledger:1"), _escrow);

    public bool StepLeaserVerifiesReceipt() =>
        RpoiEquations.VerifyReceipt(Signed<SettlementReceipt>.Parse(_receiptBytes).Value, _escrow.Identity, _settlement.H).IsOk;


    // ------------------------------------------------------------ parse costs and larger messages (CPU-time runner only)

    private byte[] _grantedPlaintext = null!, _finalPlaintext = null!, _grantedPayload = null!, _grantedSig = null!;
    private Signed<RenterRating> _emmParsed = null!;
    private GrantedLease _mPrime = null!;

    /// <summary>The decrypted m' and m''' (canonical signed envelopes), for timing their parse on its own.</summary>
    public void SetupParse()
    {
        var signedGrant = Signed<GrantedLease>.Create(new GrantedLease(MessageKinds.Grant, _h.Hex, _signed, _grant), _leaser);
        _mPrime = signedGrant.Payload;
        _grantedPlaintext = signedGrant.ToCanonicalBytes();
        _grantedPayload = signedGrant.CanonicalPayload.ToArray();
        _grantedSig = Convert.FromBase64String(signedGrant.Sig);
        _emmParsed = Signed<RenterRating>.Parse(_emmBytes).Value;
        var final = Signed<LeaserFinal>.Create(new LeaserFinal(MessageKinds.LeaserFinal, _h.Hex, _signed, _grantDigest, _emmParsed, new Rating(4, "", Now)), _leaser);
        _finalPlaintext = final.ToCanonicalBytes();
    }

    public int GrantedPayloadLength => _grantedPayload.Length;

    [Benchmark(Description = "Signed<LeaseRequest>.Parse (E(m), no verify)")]
    public bool ParseRequestOnly() => Signed<LeaseRequest>.Parse(_emBytes).IsOk;

    [Benchmark(Description = "Signed<GrantedLease>.Parse (decrypted m', no verify)")]
    public bool ParseGrantedOnly() => Signed<GrantedLease>.Parse(_grantedPlaintext).IsOk;

    public bool ParseFinalOnly() => Signed<LeaserFinal>.Parse(_finalPlaintext).IsOk;

    public byte[] CanonicalGranted() => ProtocolJson.CanonicalBytes(_mPrime);

    public string GrantDigestOnly() => RpoiEquations.GrantDigest(_grant);

    public byte[] RawSignGranted()
    {
        var sig = new byte[64];
        Sodium.Sign(_sodiumPrivate, _grantedPayload, sig);
        return sig;
    }

    public bool RawVerifyGranted() => Sodium.Verify(Sodium.ImportEd25519PublicKey(_leaser.Identity.SigningKeyBytes)!, _grantedPayload, _grantedSig);

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
