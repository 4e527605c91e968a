using System.Security.Cryptography;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Encoding;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Protocol;

/// <summary>
/// One function per equation of the RPOI paper (phases I and II). Each function's doc names its equation;
/// docs/protocol.md maps equation → function → test.
/// </summary>
public static partial class RpoiEquations
{
    // ---------------------------------------------------------------- Phase I

    /// <summary>Equation 1: <c>E(m) = sign_R(m)</c>. R signs its request.</summary>
    /// <exception cref="ArgumentException">The request does not carry <paramref name="renter"/>'s public keys, or its kind is wrong.</exception>
    public static Signed<LeaseRequest> SignRequest(LeaseRequest m, PartyKeyPair renter)
    {
        ArgumentNullException.ThrowIfNull(m);
        ArgumentNullException.ThrowIfNull(renter);
        if (m.Renter is null || m.Renter.SigningKey != renter.Identity.SigningKeyBase64 || m.Renter.EncryptionKey != renter.Identity.EncryptionKeyBase64)
        {
            throw new ArgumentException("request.renter must carry the signing renter's own public keys (renter.Identity.ToPublicKeys())", nameof(m));
        }

        if (m.Kind != MessageKinds.Request)
        {
            throw new ArgumentException($"request.kind must be '{MessageKinds.Request}'", nameof(m));
        }

        return Signed<LeaseRequest>.Create(m, renter);
    }

    /// <summary>Equation 2: <c>H = SHA-256(E(m))</c> over the RFC 8785 canonical bytes of the signed request.</summary>
    public static TransactionHash TransactionHashOf(Signed<LeaseRequest> signedRequest)
    {
        ArgumentNullException.ThrowIfNull(signedRequest);
        return signedRequest.Hash();
    }

    /// <summary>Equation 2 on wire text: parses E(m) (any formatting) and returns H.</summary>
    public static Check<TransactionHash> TransactionHashOf(string signedRequestJson) =>
        Signed<LeaseRequest>.Parse(signedRequestJson).Then(s => Check.Ok(TransactionHashOf(s)));

    /// <summary>
    /// Equation 3, first half: β verifies <c>m = D_R(E(m))</c> — the kind, R's keys and R's signature.
    /// Binding, amounts, age and nonce are checked by <see cref="RequestVerifier"/>.
    /// </summary>
    public static Check<VerifiedRequest> VerifyRequest(Signed<LeaseRequest> signedRequest, PartyIdentity? expectedRenter = null)
    {
        ArgumentNullException.ThrowIfNull(signedRequest);
        return ProtocolChecks.RequestSignature(signedRequest, expectedRenter)
            .Then(renter => Check.Ok(new VerifiedRequest(signedRequest, renter, TransactionHashOf(signedRequest))));
    }

    /// <summary>SHA-256 (hex) of the canonical bytes of σ: the digest R rates against and π sees instead of σ.</summary>
    public static string GrantDigest(AccessGrant grant) => Codec.ToHex(SHA256.HashData(ProtocolJson.CanonicalBytes(grant)));

    /// <summary>
    /// Equation 3, second half: <c>Enc(m') = E_R(sign_β(m'(m + σ)))</c>. β adds σ to the verified request,
    /// signs it and seals it to R's X25519 key with info <c>rpoi/v1/access</c> and aad H.
    /// </summary>
    public static SealedMessage SealGrant(VerifiedRequest request, AccessGrant grant, PartyKeyPair leaser)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(grant);
        ArgumentNullException.ThrowIfNull(leaser);
        var mPrime = new GrantedLease(MessageKinds.Grant, request.H.Hex, request.Request, grant);
        var signed = Signed<GrantedLease>.Create(mPrime, leaser);
        return SealedMessage.Seal(signed, request.Renter, SealPurposes.Access, request.H);
    }

    /// <summary>
    /// Equation 4: R decrypts <c>Enc(m')</c> with its private key and obtains σ. Checks β's signature, that
    /// m' carries exactly R's own request <paramref name="myRequest"/> and its H.
    /// </summary>
    public static Check<OpenedGrant> OpenGrant(SealedMessage sealedGrant, PartyKeyPair renter, Signed<LeaseRequest> myRequest, PartyIdentity leaser)
    {
        ArgumentNullException.ThrowIfNull(sealedGrant);
        ArgumentNullException.ThrowIfNull(renter);
        ArgumentNullException.ThrowIfNull(myRequest);
        ArgumentNullException.ThrowIfNull(leaser);
        var h = TransactionHashOf(myRequest);
        var opened = sealedGrant.Open<GrantedLease>(renter, SealPurposes.Access, h);
        if (!opened.IsOk)
        {
            return opened.As<OpenedGrant>();
        }

        var signed = opened.Value;
        var check = signed.VerifySignature(leaser)
            .Then(_ => ProtocolChecks.Kind(signed.Payload.Kind, MessageKinds.Grant))
            .Then(_ => ProtocolChecks.HashField(signed.Payload.H, h, "grant.h"))
            .Then(_ => ProtocolChecks.Hash(signed.Payload.Request, h, "grant.request"));
        return check.IsOk
            ? Check.Ok(new OpenedGrant(signed, signed.Payload.Grant, h, GrantDigest(signed.Payload.Grant)))
            : check.As<OpenedGrant>();
    }

    // ---------------------------------------------------------------- Phase II

    /// <summary>Equation 18: <c>E(m'') = sign_R(m''(m + Ra_R))</c>. R rates β against the digest of σ it received.</summary>
    public static Signed<RenterRating> SignRenterRating(Signed<LeaseRequest> request, string grantDigest, Rating rating, PartyKeyPair renter)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(rating);
        ArgumentNullException.ThrowIfNull(renter);
        if (!Codec.TryFromHex(grantDigest, 32, out _))
        {
            throw new ArgumentException("grantDigest must be 64 lower-case hex characters (RpoiEquations.GrantDigest)", nameof(grantDigest));
        }

        var h = TransactionHashOf(request);
        return Signed<RenterRating>.Create(new RenterRating(MessageKinds.RenterRating, h.Hex, request, grantDigest, rating), renter);
    }

    /// <summary>
    /// Checks E(m'') for a lease: R's signature (by the renter of <paramref name="request"/>), kind, H, the request it
    /// embeds, the σ digest (when <paramref name="expectedGrantDigest"/> is known) and the score range.
    /// β runs it before equation 19; π runs it on m_final and on a renter's fallback claim.
    /// </summary>
    public static Check<Signed<RenterRating>> VerifyRenterRating(Signed<RenterRating> renterRating, Signed<LeaseRequest> request, string? expectedGrantDigest)
    {
        ArgumentNullException.ThrowIfNull(renterRating);
        ArgumentNullException.ThrowIfNull(request);
        var verified = VerifyRequest(request);
        return verified.IsOk ? VerifyRenterRating(renterRating, verified.Value, expectedGrantDigest) : verified.As<Signed<RenterRating>>();
    }

    /// <summary>As <see cref="VerifyRenterRating(Signed{RenterRating}, Signed{LeaseRequest}, string?)"/>, for a request already verified (saves one signature check).</summary>
    public static Check<Signed<RenterRating>> VerifyRenterRating(Signed<RenterRating> renterRating, VerifiedRequest request, string? expectedGrantDigest)
    {
        ArgumentNullException.ThrowIfNull(renterRating);
        ArgumentNullException.ThrowIfNull(request);
        var h = request.H;
        var p = renterRating.Payload;
        var check = renterRating.VerifySignature(request.Renter)
            .Then(_ => ProtocolChecks.Kind(p.Kind, MessageKinds.RenterRating))
            .Then(_ => ProtocolChecks.HashField(p.H, h, "renterRating.h"))
            // Same canonical E(m) as the verified one, so its signature need not be checked again.
            .Then(_ => ProtocolChecks.Hash(p.Request, h, "renterRating.request"))
            .Then(_ => expectedGrantDigest is null ? ProtocolChecks.HexDigest(p.GrantDigest, "renterRating.grantDigest") : ProtocolChecks.GrantDigest(p.GrantDigest, expectedGrantDigest, "renterRating.grantDigest"))
            .Then(_ => ProtocolChecks.RatingRange(p.Rating, "renterRating.rating"));
        return check.IsOk ? Check.Ok(renterRating) : check.As<Signed<RenterRating>>();
    }

    /// <summary>
    /// Equation 19: <c>m_final = E_π(sign_β(m'''(m'' + Ra_β)))</c>. β adds its rating to R's signed rating (either
    /// may be null: the failure table), signs, and seals to π with info <c>rpoi/v1/final</c> and aad H.
    /// </summary>
    public static SealedMessage SealFinal(Signed<LeaseRequest> request, string grantDigest, Signed<RenterRating>? renterRating, Rating? leaserRating, PartyKeyPair leaser, PartyIdentity escrow)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(leaser);
        ArgumentNullException.ThrowIfNull(escrow);
        var h = TransactionHashOf(request);
        var final = new LeaserFinal(MessageKinds.LeaserFinal, h.Hex, request, grantDigest, renterRating, leaserRating);
        return SealedMessage.Seal(Signed<LeaserFinal>.Create(final, leaser), escrow, SealPurposes.Final, h);
    }

    /// <summary>
    /// Equation 19, π's side: opens m_final and checks every piece (β's signature and address, E(m), H, E(m''),
    /// σ digest, scores). Any invalid piece refuses the whole m_final. Returns the decision row to apply.
    /// </summary>
    public static Check<VerifiedSettlement> OpenFinal(SealedMessage finalMessage, PartyKeyPair escrow, PartyIdentity leaser) =>
        OpenFinal(finalMessage, escrow, leaser, null);

    /// <summary>
    /// As <see cref="OpenFinal(SealedMessage, PartyKeyPair, PartyIdentity)"/>, with the request π verified when it took the
    /// pledge. H commits to the exact signed bytes, so an E(m) that hashes to the pledged H needs no second signature check.
    /// </summary>
    public static Check<VerifiedSettlement> OpenFinal(SealedMessage finalMessage, PartyKeyPair escrow, PartyIdentity leaser, VerifiedRequest? pledged)
    {
        ArgumentNullException.ThrowIfNull(finalMessage);
        ArgumentNullException.ThrowIfNull(escrow);
        ArgumentNullException.ThrowIfNull(leaser);
        var h = TransactionHash.Parse(finalMessage.H, "mFinal.h");
        if (!h.IsOk)
        {
            return h.As<VerifiedSettlement>();
        }

        var opened = finalMessage.Open<LeaserFinal>(escrow, SealPurposes.Final, h.Value);
        if (!opened.IsOk)
        {
            return opened.As<VerifiedSettlement>();
        }

        var signed = opened.Value;
        var p = signed.Payload;
        var sig = signed.VerifySignature(leaser).Then(_ => ProtocolChecks.Kind(p.Kind, MessageKinds.LeaserFinal));
        if (!sig.IsOk)
        {
            return sig.As<VerifiedSettlement>();
        }

        if (pledged is not null && !pledged.H.Equals(h.Value))
        {
            return Check.Fail<VerifiedSettlement>(ReasonCode.HashMismatch, $"m_final is for H {h.Value.Hex}, but the pledge given is for {pledged.H.Hex}; look the pledge up by the m_final's h");
        }

        var request = pledged is not null && TransactionHashOf(p.Request).Equals(pledged.H)
            ? Check.Ok(pledged)
            : VerifyRequest(p.Request);
        if (!request.IsOk)
        {
            return request.As<VerifiedSettlement>();
        }

        var checks = ProtocolChecks.HashField(p.H, h.Value, "final.h")
            .Then(_ => ProtocolChecks.Hash(p.Request, h.Value, "final.request"))
            .Then(_ => ProtocolChecks.Parties(p.Request.Payload, leaser.Address, escrow.Identity.Address).Then(_ => Check.Ok(h.Value)))
            .Then(_ => ProtocolChecks.HexDigest(p.GrantDigest, "final.grantDigest").Then(_ => Check.Ok(h.Value)))
            .Then(_ => p.RenterRating is null ? Check.Ok(h.Value) : VerifyRenterRating(p.RenterRating, request.Value, p.GrantDigest).Then(_ => Check.Ok(h.Value)))
            .Then(_ => p.LeaserRating is null ? Check.Ok(h.Value) : ProtocolChecks.RatingRange(p.LeaserRating, "final.leaserRating").Then(_ => Check.Ok(h.Value)));
        if (!checks.IsOk)
        {
            return checks.As<VerifiedSettlement>();
        }

        var decision = Decide(p.RenterRating is not null, p.LeaserRating is not null);
        return Check.Ok(new VerifiedSettlement(h.Value, p.Request, request.Value.Renter, p.RenterRating, p.LeaserRating, signed, SettlementSource.LeaserFinal, decision));
    }

    /// <summary>
    /// The renter's fallback (PROTOCOL.md): β never submitted, so R sends its own E(m'') to π after the rating
    /// window plus grace. π checks it like the renter part of m_final and applies row "yes / no".
    /// Whether the window has passed is π's decision (it knows the lease times).
    /// </summary>
    public static Check<VerifiedSettlement> VerifyRenterFallback(Signed<RenterRating> renterRating, string escrowAddress)
    {
        ArgumentNullException.ThrowIfNull(renterRating);
        var request = renterRating.Payload.Request;
        var check = VerifyRenterRating(renterRating, request, (string?)null)
            .Then(_ => ProtocolChecks.Parties(request.Payload, null, escrowAddress));
        if (!check.IsOk)
        {
            return check.As<VerifiedSettlement>();
        }

        var renter = PartyIdentity.FromPublicKeys(request.Payload.Renter, PartyRole.Renter).Value;
        return Check.Ok(new VerifiedSettlement(TransactionHashOf(request), request, renter, renterRating, null, null, SettlementSource.RenterFallback, Decide(true, false)));
    }

    /// <summary>Equation 20: <c>m_final → ζ(γ, ρ, ω) ⇒ ρ → R</c>. ζ succeeds only when R's rating is present; otherwise π withholds ρ.</summary>
    public static DepositDisposition Zeta(bool renterRated) => renterRated ? DepositDisposition.ToRenter : DepositDisposition.Withheld;

    /// <summary>Equation 21: <c>m_final → ξ(γ, ρ, ω) ⇒ ω → β</c>. ξ succeeds only when β's rating is present; otherwise ω goes back to R.</summary>
    public static RentDisposition Xi(bool leaserRated) => leaserRated ? RentDisposition.ToLeaser : RentDisposition.BackToRenter;

    /// <summary>Equations 20 and 21 together: the failure-table row for the given ratings.</summary>
    public static SettlementDecision Decide(bool renterRated, bool leaserRated) =>
        new(renterRated, leaserRated, Zeta(renterRated), Xi(leaserRated));

    /// <summary>
    /// The transfers π records for a decision: ρ to R or withheld (stays at π's address), ω to β or back to R.
    /// </summary>
    public static IReadOnlyList<Transfer> TransfersFor(LeaseRequest request, SettlementDecision decision, string escrowAddress)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(decision);
        var renterAddress = PartyIdentity.FromPublicKeys(request.Renter).Value.Address;
        var deposit = decision.Deposit == DepositDisposition.ToRenter
            ? new Transfer("deposit", request.Deposit, escrowAddress, renterAddress, TransferStatus.Transferred)
            : new Transfer("deposit", request.Deposit, escrowAddress, escrowAddress, TransferStatus.Withheld);
        var rent = decision.Rent == RentDisposition.ToLeaser
            ? new Transfer("rent", request.Rent, escrowAddress, request.Leaser, TransferStatus.Transferred)
            : new Transfer("rent", request.Rent, escrowAddress, renterAddress, TransferStatus.Transferred);
        return [deposit, rent];
    }

    /// <summary>π signs its settlement receipt.</summary>
    public static Signed<SettlementReceipt> SignReceipt(SettlementReceipt receipt, PartyKeyPair escrow)
    {
        ArgumentNullException.ThrowIfNull(receipt);
        ArgumentNullException.ThrowIfNull(escrow);
        return Signed<SettlementReceipt>.Create(receipt, escrow);
    }

    /// <summary>Checks π's receipt: π's signature, kind, and that it is for <paramref name="expectedH"/>.</summary>
    public static Check<SettlementReceipt> VerifyReceipt(Signed<SettlementReceipt> receipt, PartyIdentity escrow, TransactionHash expectedH)
    {
        ArgumentNullException.ThrowIfNull(receipt);
        ArgumentNullException.ThrowIfNull(escrow);
        ArgumentNullException.ThrowIfNull(expectedH);
        return receipt.VerifySignature(escrow)
            .Then(_ => ProtocolChecks.Kind(receipt.Payload.Kind, MessageKinds.Receipt))
            .Then(_ => ProtocolChecks.HashField(receipt.Payload.H, expectedH, "receipt.h"))
            .Then(_ => Check.Ok(receipt.Payload));
    }
}
