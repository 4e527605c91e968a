using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Protocol.Proof;

/// <summary>
/// Checks a <see cref="ProofBundle"/> offline, with the protocol's own functions (no cluster, no π). Every check is
/// reported, not only the first failure, so a verifier sees all that is wrong; a check whose input failed earlier says so.
/// </summary>
public static class ProofBundleVerifier
{
    /// <summary>Check names, in the order <see cref="Verify"/> reports them.</summary>
    public static class Names
    {
        /// <summary>The bundle's format version.</summary>
        public const string Format = "format";

        /// <summary>The three public keys are valid keys.</summary>
        public const string Keys = "keys";

        /// <summary>E(m) is signed by the renter key of the bundle.</summary>
        public const string RequestSignature = "request.signature";

        /// <summary>E(m) names the bundle's leaser and escrow.</summary>
        public const string RequestParties = "request.parties";

        /// <summary>H recomputed from E(m) equals the bundle's H.</summary>
        public const string Hash = "h";

        /// <summary>σ's digest is well formed.</summary>
        public const string GrantDigest = "grant.digest";

        /// <summary>m' (when present) is β's, for H, and hashes σ to the digest.</summary>
        public const string GrantLease = "grant.lease";

        /// <summary>m''' (when present) is β's, for H, σ's digest and the ratings.</summary>
        public const string Final = "final";

        /// <summary>β signed σ's digest (in m' or m''').</summary>
        public const string GrantSignature = "grant.signature";

        /// <summary>E(m'') (when present) is R's, for H and σ's digest.</summary>
        public const string RatingRenter = "rating.renter";

        /// <summary>π's receipt is present, π's, and for H.</summary>
        public const string Receipt = "receipt";

        /// <summary>The receipt's decision row follows from the ratings in the bundle.</summary>
        public const string ReceiptDecision = "receipt.decision";

        /// <summary>The receipt's transfers are the request's amounts, to the right parties.</summary>
        public const string ReceiptTransfers = "receipt.transfers";
    }

    /// <summary>Runs every check on <paramref name="bundle"/>.</summary>
    public static IReadOnlyList<ProofCheck> Verify(ProofBundle bundle)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        var results = new List<ProofCheck>();
        void Add<T>(string name, Check<T> check) =>
            results.Add(new ProofCheck(name, check.IsOk, check.IsOk ? string.Empty : $"{check.Reason}: {check.Message}"));
        static Check<bool> Fail(ReasonCode code, string message) => Check.Fail<bool>(code, message);
        var ok = Check.Ok(true);

        Add(Names.Format, bundle.Format == ProofBundle.CurrentFormat
            ? ok
            : Fail(ReasonCode.WrongKind, $"format is '{bundle.Format}', this verifier reads '{ProofBundle.CurrentFormat}'; re-export the bundle with a matching 'kubectl rpoi proof'"));

        var renter = Identity(bundle.Keys?.Renter, PartyRole.Renter, "keys.renter.");
        var leaser = Identity(bundle.Keys?.Leaser, PartyRole.Leaser, "keys.leaser.");
        var escrow = Identity(bundle.Keys?.Escrow, PartyRole.Escrow, "keys.escrow.");
        var keysOk = renter.Then(_ => leaser).Then(_ => escrow);
        Add(Names.Keys, keysOk);
        var dependsOnKeys = Fail(ReasonCode.InvalidKey, "not checked: the bundle's keys are invalid (see check 'keys')");

        // Eq. 3a with the bundle's renter key: a swapped key or an altered request fails here.
        var request = keysOk.IsOk ? RpoiEquations.VerifyRequest(bundle.Request, renter.Value) : dependsOnKeys.As<VerifiedRequest>();
        Add(Names.RequestSignature, request);
        Add(Names.RequestParties, keysOk.IsOk
            ? ProtocolChecks.Parties(bundle.Request.Payload, leaser.Value.Address, escrow.Value.Address).Then(_ => ok)
            : dependsOnKeys);

        // Eq. 2: H is recomputed from E(m), never taken from the bundle.
        var h = RpoiEquations.TransactionHashOf(bundle.Request);
        Add(Names.Hash, ProtocolChecks.HashField(bundle.H, h, "bundle.h"));
        Add(Names.GrantDigest, ProtocolChecks.HexDigest(bundle.GrantDigest, "bundle.grantDigest"));

        var granted = bundle.GrantedLease is null ? null : (keysOk.IsOk ? GrantedLease(bundle.GrantedLease, leaser.Value, h, bundle.GrantDigest) : dependsOnKeys);
        Add(Names.GrantLease, granted ?? ok);

        var final = bundle.LeaserFinal is null ? null : (keysOk.IsOk && request.IsOk ? Final(bundle.LeaserFinal, request.Value, leaser.Value, h, bundle.GrantDigest) : dependsOnKeys);
        Add(Names.Final, final ?? ok);
        Add(Names.GrantSignature, (granted, final) switch
        {
            ({ IsOk: true }, _) or (_, { IsOk: true }) => ok,
            (null, null) => Fail(ReasonCode.MalformedMessage, "no β signature over σ's digest: the bundle has neither grantedLease (m') nor leaserFinal (m'''); export it again with m''' from π or m' from the renter"),
            _ => Fail(ReasonCode.BadSignature, "β's statements of σ's digest do not verify (see checks 'grant.lease' and 'final')"),
        });

        // E(m'') may come on its own (renter fallback) or inside m'''; both must be the same signed bytes.
        var rating = bundle.RenterRating ?? bundle.LeaserFinal?.Payload.RenterRating;
        Check<bool>? ratingCheck = null;
        if (rating is not null)
        {
            ratingCheck = !request.IsOk
                ? Fail(ReasonCode.BadSignature, "not checked: E(m) does not verify (see check 'request.signature')")
                : RpoiEquations.VerifyRenterRating(rating, request.Value, bundle.GrantDigest).Then(_ => ok);
            if (ratingCheck.IsOk && bundle.RenterRating is not null && bundle.LeaserFinal?.Payload.RenterRating is { } inFinal
                && !inFinal.ToCanonicalBytes().AsSpan().SequenceEqual(bundle.RenterRating.ToCanonicalBytes()))
            {
                ratingCheck = Fail(ReasonCode.HashMismatch, "renterRating differs from the E(m'') inside leaserFinal; keep the one β forwarded");
            }
        }

        Add(Names.RatingRenter, ratingCheck ?? ok);

        var receipt = bundle.Receipt is null
            ? Check.Fail<SettlementReceipt>(ReasonCode.MalformedMessage, "receipt is missing: the lease is not settled yet, or the export left π's receipt out; export again after settlement")
            : keysOk.IsOk
                ? RpoiEquations.VerifyReceipt(bundle.Receipt, escrow.Value, h).Then(r => r.Escrow == escrow.Value.Address
                    ? Check.Ok(r)
                    : Check.Fail<SettlementReceipt>(ReasonCode.PartyMismatch, $"receipt.escrow is {r.Escrow}, the bundle's escrow is {escrow.Value.Address}"))
                : dependsOnKeys.As<SettlementReceipt>();
        Add(Names.Receipt, receipt);
        var dependsOnReceipt = Fail(ReasonCode.MalformedMessage, "not checked: the receipt did not verify (see check 'receipt')");

        Add(Names.ReceiptDecision, receipt.IsOk ? Decision(receipt.Value, bundle, rating is not null && ratingCheck?.IsOk == true, final) : dependsOnReceipt);
        Add(Names.ReceiptTransfers, receipt.IsOk ? Transfers(receipt.Value, bundle.Request.Payload, escrow.Value.Address) : dependsOnReceipt);
        return results;
    }

    private static Check<PartyIdentity> Identity(PublicKeys? keys, PartyRole role, string field) =>
        keys is null
            ? Check.Fail<PartyIdentity>(ReasonCode.MalformedMessage, $"{field.TrimEnd('.')} is missing; add the party's public keys")
            : PartyIdentity.FromBase64(keys.SigningKey, keys.EncryptionKey, role, field);

    // The checks R makes on m' at eq. 4, on the opened envelope, plus σ → digest.
    private static Check<bool> GrantedLease(Signed<GrantedLease> m, PartyIdentity leaser, TransactionHash h, string digest) =>
        m.VerifySignature(leaser)
            .Then(_ => ProtocolChecks.Kind(m.Payload.Kind, MessageKinds.Grant))
            .Then(_ => ProtocolChecks.HashField(m.Payload.H, h, "grantedLease.h"))
            .Then(_ => ProtocolChecks.Hash(m.Payload.Request, h, "grantedLease.request"))
            .Then(_ => ProtocolChecks.GrantDigest(RpoiEquations.GrantDigest(m.Payload.Grant), digest, "grantedLease.grant"))
            .Then(_ => Check.Ok(true));

    // The checks π makes on m''' at eq. 19 after opening m_final.
    private static Check<bool> Final(Signed<LeaserFinal> m, VerifiedRequest request, PartyIdentity leaser, TransactionHash h, string digest)
    {
        var p = m.Payload;
        return m.VerifySignature(leaser)
            .Then(_ => ProtocolChecks.Kind(p.Kind, MessageKinds.LeaserFinal))
            .Then(_ => ProtocolChecks.HashField(p.H, h, "leaserFinal.h"))
            .Then(_ => ProtocolChecks.Hash(p.Request, h, "leaserFinal.request"))
            .Then(_ => ProtocolChecks.GrantDigest(p.GrantDigest, digest, "leaserFinal.grantDigest"))
            .Then(_ => p.RenterRating is null ? Check.Ok(true) : RpoiEquations.VerifyRenterRating(p.RenterRating, request, digest).Then(_ => Check.Ok(true)))
            .Then(_ => p.LeaserRating is null ? Check.Ok(true) : ProtocolChecks.RatingRange(p.LeaserRating, "leaserFinal.leaserRating").Then(_ => Check.Ok(true)));
    }

    // The row π applied must be the one the evidence in the bundle gives (eqs. 20, 21).
    private static Check<bool> Decision(SettlementReceipt receipt, ProofBundle bundle, bool renterRated, Check<bool>? final)
    {
        SettlementDecision expected;
        if (receipt.Source == SettlementSource.LeaserFinal)
        {
            if (bundle.LeaserFinal is null || final is not { IsOk: true })
            {
                return Check.Fail<bool>(ReasonCode.MalformedMessage, "receipt.source is leaserFinal but the bundle has no verified leaserFinal (m''') to check the row against; export it with m''' from π");
            }

            expected = RpoiEquations.Decide(bundle.LeaserFinal.Payload.RenterRating is not null, bundle.LeaserFinal.Payload.LeaserRating is not null);
        }
        else
        {
            if (!renterRated)
            {
                return Check.Fail<bool>(ReasonCode.MalformedMessage, "receipt.source is renterFallback but the bundle has no verified renterRating (E(m'')); add the rating the renter claimed with");
            }

            expected = RpoiEquations.Decide(true, false);
        }

        return receipt.Decision == expected
            ? Check.Ok(true)
            : Check.Fail<bool>(ReasonCode.InvalidField, $"receipt.decision is {Describe(receipt.Decision)}, but the ratings in the bundle give {Describe(expected)}");
    }

    private static Check<bool> Transfers(SettlementReceipt receipt, LeaseRequest request, string escrowAddress)
    {
        var expected = RpoiEquations.TransfersFor(request, receipt.Decision, escrowAddress);
        if (receipt.Transfers.SequenceEqual(expected))
        {
            return Check.Ok(true);
        }

        var got = string.Join("; ", receipt.Transfers.Select(Describe));
        var want = string.Join("; ", expected.Select(Describe));
        return Check.Fail<bool>(ReasonCode.InvalidAmount, $"receipt.transfers are [{got}], but E(m) and the decision give [{want}]");
    }

    private static string Describe(SettlementDecision d) => $"deposit {d.Deposit}, rent {d.Rent} (renterRated {d.RenterRated}, leaserRated {d.LeaserRated})";

    private static string Describe(Transfer t) => $"{t.Purpose} {t.Amount.Amount} {t.Amount.Denom} {t.From} → {t.To} {t.Status}";
}
