using System.Text.Json;
using Rpoi.Escrow.Client;
using Rpoi.Escrow.Storage;
using Rpoi.Protocol;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Escrow;

/// <summary>The protocol half of π: pledges of E(m), settlements of m_final, the renter's claim.</summary>
public sealed partial class EscrowService
{
    // No INonceStore here on purpose: its TryRecordAsync would commit the nonce in a transaction of its own, and a crash
    // or a refusal (short funds) before the pledge would then lock the nonce with nothing held. π runs the stateless
    // checks here and the nonce step (PROTOCOL.md P7) inside the pledge's transaction (SqlEscrowStore.PledgeAsync).
    private readonly RequestVerifier _requests = new(time, nonceStore: null, new RequestPolicy(options.MaxRequestAge, options.MaxClockSkew));
    private readonly Dictionary<string, PartyIdentity> _leasersByAddress = new(StringComparer.Ordinal);

    /// <summary>Leasers π knows by address, so an admin-forwarded m_final can be checked against β's key.</summary>
    public void TrustLeasers(IEnumerable<PartyIdentity> leasers)
    {
        ArgumentNullException.ThrowIfNull(leasers);
        foreach (var leaser in leasers)
        {
            _leasersByAddress[leaser.Address] = leaser;
        }
    }

    /// <summary>
    /// Pledge (phase I step 2): verifies E(m) — R's signature, kind, π as escrow, the calling β as
    /// leaser, chips, duration, amounts, nonce format, age window — then, in one transaction, records the nonce
    /// (refusing <see cref="ReasonCode.NonceReplayed"/> when R used it for another H within the age window), debits
    /// ρ + ω from R and holds them under H. The same E(m) again returns the existing pledge without re-checking its
    /// age or nonce: equal H means equal bytes, which were accepted once.
    /// </summary>
    public async Task<(PledgeView Pledge, bool Created)> PledgeAsync(PledgeRequest request, PartyIdentity? caller, CancellationToken ct)
    {
        var signed = Parse(Signed<LeaseRequest>.Parse(Raw(request.SignedRequest, "signedRequest")), "signedRequest");
        var h = RpoiEquations.TransactionHashOf(signed);
        var existing = await store.GetPledgeAsync(h.Hex, ct);
        if (existing is not null)
        {
            RequireCaller(caller, existing.Leaser);
            return (View(existing), false);
        }

        var verified = Parse(_requests.Verify(signed, new RequestExpectations(LeaserAddress: caller?.Address, EscrowAddress: Keys.Identity.Address)), "signedRequest");
        var m = signed.Payload;
        var (deposit, rent) = ProtocolChecks.Amounts(m.Deposit, m.Rent).Value;
        var now = time.GetUtcNow();
        // π does not see when the lease really ends; T + duration is the earliest it can, so the claim
        // window opens no sooner than the renter's rating window plus grace after that.
        var claimableAfter = m.Timestamp + TimeSpan.FromSeconds(m.DurationSeconds) + options.RatingWindow + options.ClaimGrace;
        var result = await store.PledgeAsync(
            new PledgeCommand(
                verified.H.Hex, verified.Renter.Address, m.Leaser, m.Deposit.Denom, deposit, m.Rent.Denom, rent, signed.ToJson(), now, claimableAfter,
                new RequestNonce(verified.Renter.KeyId, m.Nonce, m.Timestamp + options.MaxRequestAge)),
            ct);
        return (View(result.Pledge), result.Created);
    }

    /// <summary>The pledge under H.</summary>
    public async Task<PledgeView> GetPledgeAsync(string h, CancellationToken ct)
    {
        Validation.Hash(h, "h");
        var pledge = await store.GetPledgeAsync(h, ct)
            ?? throw new EscrowRefusedException(EscrowReasons.PledgeNotFound, "h", $"no pledge is held under H {h}", 404);
        return View(pledge);
    }

    /// <summary>
    /// Settle (phase II step 3): opens m_final with π's key, checks every piece (β's signature, H, E(m),
    /// E(m''), σ digest, scores) and applies ζ (eq. 20) and ξ (eq. 21) by the failure table. Exactly
    /// once per H: a valid m_final for a settled H returns the first receipt. Any invalid piece refuses
    /// the whole m_final and nothing moves.
    /// </summary>
    public async Task<(SettlementView Settlement, bool Created)> SettleAsync(SettlementRequest request, PartyIdentity? caller, CancellationToken ct)
    {
        var sealedFinal = Parse(SealedMessage.Parse(Raw(request.Final, "final")), "final");
        var h = Parse(TransactionHash.Parse(sealedFinal.H, "final.h"), "final.h");
        PartyIdentity leaser;
        if (caller is not null)
        {
            // The calling β's key checks the signature; OpenFinal also checks that E(m) names β as the
            // leaser, and the pledge under H holds that same E(m), so no pledge lookup is needed first.
            leaser = caller;
        }
        else
        {
            var pledge = await store.GetPledgeAsync(h.Hex, ct) ?? throw NoPledge(h.Hex, "final.h");
            leaser = _leasersByAddress.TryGetValue(pledge.Leaser, out var known)
                ? known
                : throw new EscrowRefusedException(ReasonCode.PartyMismatch.ToString(), "final", $"leaser {pledge.Leaser} of this pledge is not configured on this escrow (Escrow:LeaserIdentityFiles), so its signature cannot be checked", 422);
        }

        var verified = Parse(RpoiEquations.OpenFinal(sealedFinal, Keys, leaser), "final");
        return await ApplyAsync(verified, ct);
    }

    private static EscrowRefusedException NoPledge(string h, string field) =>
        new(EscrowReasons.PledgeNotFound, field, $"no pledge is held under H {h}; only a pledged lease can be settled", 404);

    /// <summary>
    /// The renter's own claim: β never submitted m_final, so after the rating window plus grace R sends
    /// its signed E(m'') and π applies the row "Ra_R yes / Ra_β no": ρ → R and ω back to R.
    /// </summary>
    public async Task<(SettlementView Settlement, bool Created)> ClaimAsync(ClaimRequest request, CancellationToken ct)
    {
        var rating = Parse(Signed<RenterRating>.Parse(Raw(request.RenterRating, "renterRating")), "renterRating");
        var verified = Parse(RpoiEquations.VerifyRenterFallback(rating, Keys.Identity.Address), "renterRating");
        var pledge = await store.GetPledgeAsync(verified.H.Hex, ct) ?? throw NoPledge(verified.H.Hex, "renterRating.h");
        var first = await store.GetSettlementAsync(pledge.H, ct);
        if (first is not null)
        {
            return (View(first), false);
        }

        var now = time.GetUtcNow();
        if (now < pledge.ClaimableAfter)
        {
            throw new EscrowRefusedException(
                EscrowReasons.ClaimTooEarly,
                "renterRating",
                $"the leaser may still settle until {Storage.Ledger.FormatTime(pledge.ClaimableAfter)} (lease end + rating window + grace); claim after that",
                409);
        }

        return await ApplyAsync(verified, ct);
    }

    /// <summary>The settlement of H.</summary>
    public async Task<SettlementView> GetSettlementAsync(string h, CancellationToken ct)
    {
        Validation.Hash(h, "h");
        var settlement = await store.GetSettlementAsync(h, ct)
            ?? throw new EscrowRefusedException(EscrowReasons.PledgeNotFound, "h", $"H {h} is not settled", 404);
        return View(settlement);
    }

    private async Task<(SettlementView, bool)> ApplyAsync(VerifiedSettlement verified, CancellationToken ct)
    {
        var h = verified.H.Hex;
        var decision = verified.Decision;
        var now = time.GetUtcNow();
        var escrow = Keys.Identity.Address;
        string Receipt(long seq)
        {
            var receipt = new SettlementReceipt(
                MessageKinds.Receipt,
                h,
                escrow,
                verified.Source,
                decision,
                RpoiEquations.TransfersFor(verified.Request.Payload, decision, escrow),
                now,
                "ledger:" + seq.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return RpoiEquations.SignReceipt(receipt, Keys).ToJson();
        }

        // The store refuses an unknown H (PledgeNotFound) inside the transaction, so nothing moves.
        // m''' is kept only from β's m_final; the renter's fallback has none (its E(m'') is in the Rating resource).
        var leaserFinal = verified.Source == SettlementSource.LeaserFinal ? verified.Final?.ToJson() : null;
        var result = await store.SettleAsync(new SettleCommand(h, decision.Deposit, decision.Rent, Receipt, now, leaserFinal), ct);
        return (View(result.Settlement), result.Created);
    }

    private static void RequireCaller(PartyIdentity? caller, string leaserAddress)
    {
        if (caller is not null && caller.Address != leaserAddress)
        {
            throw new EscrowRefusedException(
                ReasonCode.PartyMismatch.ToString(),
                "Authorization",
                $"this lease's leaser is {leaserAddress}, but the call is signed by {caller.Address}; only the lease's own leaser may forward it",
                403);
        }
    }

    private static string Raw(JsonElement element, string field) =>
        element.ValueKind == JsonValueKind.Object
            ? element.GetRawText()
            : throw new EscrowRefusedException(EscrowReasons.InvalidField, field, $"{field} is required and must be a JSON object");

    /// <summary>Unwraps a protocol check, refusing with the protocol's reason code (422 for failed verification, 400 for malformed input).</summary>
    private static T Parse<T>(Check<T> check, string field)
    {
        if (check.TryGetValue(out var value))
        {
            return value;
        }

        var status = check.Reason is ReasonCode.MalformedMessage or ReasonCode.InvalidEncoding ? 400 : 422;
        var (at, message) = Answerable(field, check.Message);
        throw new EscrowRefusedException(check.Reason!.Value.ToString(), at, message, status);
    }

    /// <summary>
    /// A protocol refusal as π may answer it. The protocol's parse errors can quote the JSON deserialiser, whose text names
    /// .NET types and reader positions; those are replaced by π's own message, keeping the JSON path as the field.
    /// </summary>
    internal static (string Field, string Message) Answerable(string field, string message)
    {
        if (!LeakyText().IsMatch(message))
        {
            return (field, message);
        }

        var path = JsonPathIn().Match(message);
        var at = path.Success && path.Groups[1].Length > 0 ? field + "." + path.Groups[1].Value : field;
        return (at, $"{at} is not a well-formed protocol message: names are exact camelCase, every field is required, no unknown fields, strings where strings belong; send the message as the protocol serialises it ('kubectl rpoi' does)");
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"System\.|Exception|LineNumber|BytePosition|Path: |could not be converted|\bRpoi\.", System.Text.RegularExpressions.RegexOptions.CultureInvariant)]
    private static partial System.Text.RegularExpressions.Regex LeakyText();

    [System.Text.RegularExpressions.GeneratedRegex(@"\$\.?([A-Za-z0-9_.\[\]]*)", System.Text.RegularExpressions.RegexOptions.CultureInvariant)]
    private static partial System.Text.RegularExpressions.Regex JsonPathIn();

    private static PledgeView View(PledgeRecord p) => new(
        p.H,
        p.Renter,
        p.Leaser,
        Money(p.Deposit, p.DepositDenom),
        Money(p.Rent, p.RentDenom),
        p.State,
        Storage.Ledger.FormatTime(p.PledgedAt),
        Storage.Ledger.FormatTime(p.ClaimableAfter));

    private static SettlementView View(SettlementRecord s)
    {
        using var doc = JsonDocument.Parse(s.Receipt);
        JsonElement? final = null;
        if (s.LeaserFinal is not null)
        {
            using var f = JsonDocument.Parse(s.LeaserFinal);
            final = f.RootElement.Clone();
        }

        return new SettlementView(s.H, s.Deposit.ToString(), s.Rent.ToString(), Storage.Ledger.FormatTime(s.SettledAt), doc.RootElement.Clone(), final);
    }
}
