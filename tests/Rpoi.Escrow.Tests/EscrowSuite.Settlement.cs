using System.Text.Json;
using Rpoi.Escrow.Client;
using Rpoi.Protocol;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Escrow.Tests;

public abstract partial class EscrowSuite
{
    /// <summary>The failure table of PROTOCOL.md, one row per case: ζ (eq. 20) for ρ, ξ (eq. 21) for ω.</summary>
    [Theory]
    [InlineData(true, true, "ToRenter", "ToLeaser")]
    [InlineData(false, true, "Withheld", "ToLeaser")]
    [InlineData(true, false, "ToRenter", "BackToRenter")]
    [InlineData(false, false, "Withheld", "BackToRenter")]
    public async Task Settlement_applies_the_decision_table_row(bool renterRated, bool leaserRated, string deposit, string rent)
    {
        if (Skipped)
        {
            return;
        }

        var lease = await Env.Leases.Deposit(100).Rent(900).PledgedAsync(extra: 7);
        var leaserBefore = await Env.BalanceAsync(Env.Leaser.Identity.Address);

        var settlement = await Env.Operator.SettleAsync(Finals.For(Env, lease, renterRated, leaserRated));

        Assert.Equal(deposit, settlement.Deposit);
        Assert.Equal(rent, settlement.Rent);
        Assert.Equal(7 + (renterRated ? 100 : 0) + (leaserRated ? 0 : 900), await Env.BalanceAsync(lease.RenterAddress));
        Assert.Equal(leaserBefore + (leaserRated ? 900 : 0), await Env.BalanceAsync(Env.Leaser.Identity.Address));
        var withheld = (await Env.Anyone.GetWithheldAsync()).SingleOrDefault(w => w.H == lease.H);
        if (renterRated)
        {
            Assert.Null(withheld);
        }
        else
        {
            Assert.Equal(new EscrowAmount("100", "uusd"), withheld!.Amount);
            Assert.Equal("Withheld", withheld.State);
        }

        var receipt = VerifiedReceipt(settlement, lease);
        Assert.Equal(renterRated, receipt.Decision.RenterRated);
        Assert.Equal(leaserRated, receipt.Decision.LeaserRated);
        Assert.Equal(SettlementSource.LeaserFinal, receipt.Source);
        Assert.Equal("Settled", (await Env.Anyone.GetPledgeAsync(lease.H))!.State);
        var audit = await Env.Anyone.VerifyLedgerAsync();
        Assert.True(audit.Ok, string.Join("; ", audit.Problems));
        var totals = Assert.Single(audit.Totals);
        Assert.Equal(renterRated ? "0" : "100", totals.Withheld);
        Assert.Equal("0", totals.Held);
    }

    private SettlementReceipt VerifiedReceipt(SettlementView settlement, Lease lease)
    {
        var signed = Signed<SettlementReceipt>.Parse(settlement.Receipt.GetRawText()).Value;
        var check = RpoiEquations.VerifyReceipt(signed, Env.Pi.Identity, RpoiEquations.TransactionHashOf(lease.Request));
        Assert.True(check.IsOk, check.Message);
        return check.Value;
    }

    [Fact]
    public async Task A_replayed_or_second_m_final_returns_the_first_receipt_and_pays_nothing()
    {
        if (Skipped)
        {
            return;
        }

        var lease = await Env.Leases.PledgedAsync();
        var final = Finals.For(Env, lease, true, true);
        var first = await Env.Operator.SettleAsync(final);
        var head = await Env.HeadAsync();
        var renter = await Env.BalanceAsync(lease.RenterAddress);

        var replay = await Env.Operator.SettleAsync(final);
        var other = await Env.Operator.SettleAsync(Finals.For(Env, lease, false, false));

        Assert.Equal(first.Receipt.GetRawText(), replay.Receipt.GetRawText());
        Assert.Equal(first.Receipt.GetRawText(), other.Receipt.GetRawText());
        Assert.Equal(head, await Env.HeadAsync());
        Assert.Equal(renter, await Env.BalanceAsync(lease.RenterAddress));
        Assert.Equal(first.Receipt.GetRawText(), (await Env.Anyone.GetSettlementAsync(lease.H))!.Receipt.GetRawText());
    }

    public static TheoryData<string, string> FinalTampers => new()
    {
        { "ciphertext", nameof(ReasonCode.DecryptionFailed) },
        { "moved-to-other-h", nameof(ReasonCode.DecryptionFailed) },
        { "sealed-to-other-escrow", nameof(ReasonCode.WrongRecipient) },
        { "wrong-purpose", nameof(ReasonCode.WrongPurpose) },
        { "signed-by-other-leaser", nameof(ReasonCode.SignerMismatch) },
        { "rating-of-other-lease", nameof(ReasonCode.HashMismatch) },
        { "rating-signed-by-other-renter", nameof(ReasonCode.SignerMismatch) },
        { "tampered-grant-digest", nameof(ReasonCode.GrantDigestMismatch) },
        { "score-out-of-range", nameof(ReasonCode.RatingOutOfRange) },
    };

    [Theory]
    [MemberData(nameof(FinalTampers))]
    public async Task A_tampered_m_final_is_refused_whole_with_its_reason_and_nothing_moves(string tamper, string reason)
    {
        if (Skipped)
        {
            return;
        }

        var lease = await Env.Leases.PledgedAsync(extra: 3);
        // The same renter's other lease: its rating is validly signed, only bound to another H.
        var other = await Env.Leases.By(lease.Renter).PledgedAsync();
        var h = RpoiEquations.TransactionHashOf(lease.Request);
        var final = tamper switch
        {
            "ciphertext" => FlipCiphertext(Finals.For(Env, lease, true, true)),
            "moved-to-other-h" => Finals.For(Env, lease, true, true) with { H = other.H },
            "sealed-to-other-escrow" => RpoiEquations.SealFinal(lease.Request, lease.GrantDigest, lease.RenterRating(), Good(lease), Env.Leaser, PartyKeyPair.Generate(PartyRole.Escrow).Identity),
            "wrong-purpose" => SealedMessage.Seal(
                Signed<LeaserFinal>.Create(new LeaserFinal(MessageKinds.LeaserFinal, lease.H, lease.Request, lease.GrantDigest, lease.RenterRating(), Good(lease)), Env.Leaser),
                Env.Pi.Identity,
                SealPurposes.Access,
                h),
            "signed-by-other-leaser" => Finals.For(Env, lease, true, true, PartyKeyPair.Generate(PartyRole.Leaser)),
            "rating-of-other-lease" => RpoiEquations.SealFinal(lease.Request, lease.GrantDigest, other.RenterRating(), Good(lease), Env.Leaser, Env.Pi.Identity),
            "rating-signed-by-other-renter" => RpoiEquations.SealFinal(lease.Request, lease.GrantDigest, lease.RenterRating(signer: PartyKeyPair.Generate(PartyRole.Renter)), Good(lease), Env.Leaser, Env.Pi.Identity),
            "tampered-grant-digest" => RpoiEquations.SealFinal(lease.Request, Convert.ToHexStringLower(new byte[32]), lease.RenterRating(), Good(lease), Env.Leaser, Env.Pi.Identity),
            _ => RpoiEquations.SealFinal(lease.Request, lease.GrantDigest, lease.RenterRating(), new Rating(9, "too good", lease.Request.Payload.Timestamp), Env.Leaser, Env.Pi.Identity),
        };
        var head = await Env.HeadAsync();

        var ex = await Refused(() => Env.Operator.SettleAsync(final), reason);
        Assert.Equal("final", ex.Field);
        Assert.Equal(head, await Env.HeadAsync());
        Assert.Equal("Held", (await Env.Anyone.GetPledgeAsync(lease.H))!.State);
        Assert.Equal("Held", (await Env.Anyone.GetPledgeAsync(other.H))!.State);
        Assert.Equal(3, await Env.BalanceAsync(lease.RenterAddress));
        Assert.Null(await Env.Anyone.GetSettlementAsync(lease.H));
    }

    private static Rating Good(Lease lease) => new(5, "ok", lease.Request.Payload.Timestamp);

    private static SealedMessage FlipCiphertext(SealedMessage final)
    {
        var ct = Convert.FromBase64String(final.Ct);
        ct[ct.Length / 2] ^= 0x01;
        return final with { Ct = Convert.ToBase64String(ct) };
    }

    [Fact]
    public async Task M_final_for_an_unpledged_H_or_from_a_stranger_is_refused()
    {
        if (Skipped)
        {
            return;
        }

        var unpledged = Env.Leases.Build();
        var ex = await Refused(() => Env.Operator.SettleAsync(Finals.For(Env, unpledged, true, true)), EscrowReasons.PledgeNotFound);
        Assert.Equal(404, ex.Status);

        var lease = await Env.Leases.PledgedAsync();
        var head = await Env.HeadAsync();
        var stranger = PartyKeyPair.Generate(PartyRole.Leaser);
        await Refused(() => Env.ClientFor(EscrowCredentials.Leaser(stranger)).SettleAsync(Finals.For(Env, lease, true, true, stranger)), EscrowReasons.Forbidden);
        await Refused(() => Env.Anyone.SettleAsync(Finals.For(Env, lease, true, true)), EscrowReasons.Unauthenticated);
        Assert.Equal(head, await Env.HeadAsync());
    }

    [Fact]
    public async Task The_admin_may_forward_m_final_and_it_is_still_checked_against_the_leaser_key()
    {
        if (Skipped)
        {
            return;
        }

        var lease = await Env.Leases.PledgedAsync();
        await Refused(() => Env.Admin.SettleAsync(Finals.For(Env, lease, true, true, PartyKeyPair.Generate(PartyRole.Leaser))), nameof(ReasonCode.SignerMismatch));
        var settlement = await Env.Admin.SettleAsync(Finals.For(Env, lease, true, true));
        Assert.Equal("ToLeaser", settlement.Rent);
    }

    [Fact]
    public async Task Concurrent_settlements_of_one_H_pay_exactly_once()
    {
        if (Skipped)
        {
            return;
        }

        var lease = await Env.Leases.Deposit(100).Rent(900).PledgedAsync();
        var leaserBefore = await Env.BalanceAsync(Env.Leaser.Identity.Address);
        var (entriesBefore, _) = await Env.HeadAsync();
        // Two different valid m_finals race: whichever wins, every caller gets its receipt.
        var finals = new[] { Finals.For(Env, lease, true, true), Finals.For(Env, lease, false, false) };

        var results = await Task.WhenAll(Enumerable.Range(0, 100).Select(i => Task.Run(() => Env.Operator.SettleAsync(finals[i % 2]))));

        var stored = (await Env.Anyone.GetSettlementAsync(lease.H))!;
        Assert.All(results, r => Assert.Equal(stored.Receipt.GetRawText(), r.Receipt.GetRawText()));
        var paidToLeaser = await Env.BalanceAsync(Env.Leaser.Identity.Address) - leaserBefore;
        var renter = await Env.BalanceAsync(lease.RenterAddress);
        if (stored.Rent == "ToLeaser")
        {
            Assert.Equal((900, 100), (paidToLeaser, renter));
        }
        else
        {
            Assert.Equal((0, 900), (paidToLeaser, renter));
        }

        var (entriesAfter, _) = await Env.HeadAsync();
        Assert.Equal(entriesBefore + 2, entriesAfter);
    }

    [Fact]
    public async Task A_failure_halfway_through_a_settlement_rolls_all_of_it_back()
    {
        if (Skipped)
        {
            return;
        }

        var lease = await Env.Leases.Deposit(100).Rent(900).PledgedAsync(extra: 5);
        // The on-ramp keeps every sum inside 64 bits (supply), so no credit can overflow any more; a fault injected in the
        // database fails the settlement's last write instead, after ρ and ω were credited in the same transaction.
        await Env.ExecuteRawAsync(Provider is PostgresProvider
            ? """
              CREATE FUNCTION fail_settlement() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected fault'; END; $$ LANGUAGE plpgsql;
              CREATE TRIGGER fail_settlement BEFORE INSERT ON settlements FOR EACH ROW EXECUTE FUNCTION fail_settlement();
              """
            : "CREATE TRIGGER fail_settlement BEFORE INSERT ON settlements BEGIN SELECT RAISE(ABORT, 'injected fault'); END;");
        var head = await Env.HeadAsync();

        var failed = await Refused(() => Env.Operator.SettleAsync(Finals.For(Env, lease, true, true)), EscrowReasons.Internal);
        Assert.Equal(500, failed.Status);
        Assert.DoesNotContain("injected", failed.Message, StringComparison.Ordinal);

        Assert.Equal(5, await Env.BalanceAsync(lease.RenterAddress));
        Assert.Equal(head, await Env.HeadAsync());
        Assert.Equal("Held", (await Env.Anyone.GetPledgeAsync(lease.H))!.State);
        Assert.Null(await Env.Anyone.GetSettlementAsync(lease.H));

        await Env.ExecuteRawAsync("DROP TRIGGER fail_settlement" + (Provider is PostgresProvider ? " ON settlements" : string.Empty));
        var settled = await Env.Operator.SettleAsync(Finals.For(Env, lease, true, false));
        Assert.Equal("BackToRenter", settled.Rent);
        Assert.Equal(1005, await Env.BalanceAsync(lease.RenterAddress));
    }

    [Fact]
    public async Task The_renter_claims_after_window_and_grace_when_the_leaser_never_settles()
    {
        if (Skipped)
        {
            return;
        }

        var lease = await Env.Leases.Deposit(100).Rent(900).PledgedAsync();
        var pledge = (await Env.Anyone.GetPledgeAsync(lease.H))!;
        var claim = lease.RenterRating();

        var early = await Refused(() => Env.Anyone.ClaimAsync(claim), EscrowReasons.ClaimTooEarly);
        Assert.Equal(409, early.Status);
        Assert.Equal(0, await Env.BalanceAsync(lease.RenterAddress));

        // T + 1 h lease + 72 h window + 24 h grace.
        Assert.Equal(lease.Request.Payload.Timestamp + TimeSpan.FromHours(97), DateTimeOffset.Parse(pledge.ClaimableAfter, System.Globalization.CultureInfo.InvariantCulture));
        Env.Time.Advance(TimeSpan.FromHours(97) + TimeSpan.FromSeconds(1));
        var settled = await Env.Anyone.ClaimAsync(claim);

        Assert.Equal(("ToRenter", "BackToRenter"), (settled.Deposit, settled.Rent));
        var receipt = VerifiedReceipt(settled, lease);
        Assert.Equal(SettlementSource.RenterFallback, receipt.Source);
        Assert.Equal(1000, await Env.BalanceAsync(lease.RenterAddress));

        // β turns up late: the claim's receipt stands.
        var late = await Env.Operator.SettleAsync(Finals.For(Env, lease, true, true));
        Assert.Equal(settled.Receipt.GetRawText(), late.Receipt.GetRawText());
        Assert.Equal(1000, await Env.BalanceAsync(lease.RenterAddress));
    }

    [Fact]
    public async Task A_claim_with_a_forged_rating_is_refused()
    {
        if (Skipped)
        {
            return;
        }

        var lease = await Env.Leases.PledgedAsync();
        Env.Time.Advance(TimeSpan.FromDays(5));
        var head = await Env.HeadAsync();
        await Refused(() => Env.Anyone.ClaimAsync(lease.RenterRating(signer: PartyKeyPair.Generate(PartyRole.Renter))), nameof(ReasonCode.SignerMismatch));
        Assert.Equal(head, await Env.HeadAsync());
    }

    [Fact]
    public async Task Withheld_funds_are_listed_and_released_only_by_adjudication()
    {
        if (Skipped)
        {
            return;
        }

        var lease = await Env.Leases.Deposit(100).Rent(900).PledgedAsync();
        await Env.Operator.SettleAsync(Finals.For(Env, lease, false, true));
        var withheld = Assert.Single(await Env.Anyone.GetWithheldAsync(), w => w.H == lease.H);
        Assert.Equal("Withheld", withheld.State);

        var release = new ReleaseRequest(lease.H, "renter");
        await Refused(() => Env.Operator.ReleaseWithheldAsync(release), EscrowReasons.Unauthenticated);
        await Refused(() => Env.Anyone.ReleaseWithheldAsync(release), EscrowReasons.Unauthenticated);
        Assert.Equal("to", (await Refused(() => Env.Admin.ReleaseWithheldAsync(release with { To = "nobody" }), EscrowReasons.InvalidField)).Field);
        Assert.Equal(0, await Env.BalanceAsync(lease.RenterAddress));

        var released = await Env.Admin.ReleaseWithheldAsync(release);
        Assert.Equal(("Released", lease.RenterAddress), (released.State, released.ReleasedTo));
        Assert.Equal(100, await Env.BalanceAsync(lease.RenterAddress));
        Assert.Equal(released, await Env.Admin.ReleaseWithheldAsync(release));
        Assert.Equal(409, (await Refused(() => Env.Admin.ReleaseWithheldAsync(release with { To = "leaser" }), EscrowReasons.AlreadyReleased)).Status);
        Assert.Equal(100, await Env.BalanceAsync(lease.RenterAddress));
        await Refused(() => Env.Admin.ReleaseWithheldAsync(new ReleaseRequest(Env.Leases.Build().H, "renter")), EscrowReasons.WithheldNotFound);
        var audit = await Env.Anyone.VerifyLedgerAsync();
        Assert.True(audit.Ok, string.Join("; ", audit.Problems));
        Assert.Equal("0", Assert.Single(audit.Totals).Withheld);
    }

    [Fact]
    public async Task Ledger_pages_through_a_hash_chain()
    {
        if (Skipped)
        {
            return;
        }

        var lease = await Env.Leases.PledgedAsync(extra: 1);
        await Env.Operator.SettleAsync(Finals.For(Env, lease, false, true));
        var entries = new List<LedgerEntryView>();
        long? after = 0;
        while (after is { } a)
        {
            var page = await Env.Anyone.GetLedgerAsync(a, 2);
            Assert.True(page.Entries.Count <= 2);
            entries.AddRange(page.Entries);
            after = page.Next;
        }

        // deposit, ρ and ω into the hold, ρ withheld, ω to β.
        Assert.Equal(["deposit", "pledge.deposit", "pledge.rent", "settle.deposit.withheld", "settle.rent.leaser"], entries.Select(e => e.Kind));
        Assert.Equal(Enumerable.Range(1, 5).Select(i => (long)i), entries.Select(e => e.Seq));
        Assert.Equal(new string('0', 64), entries[0].PrevHash);
        for (var i = 1; i < entries.Count; i++)
        {
            Assert.Equal(entries[i - 1].Hash, entries[i].PrevHash);
        }

        Assert.Equal("limit", (await Refused(() => Env.Anyone.GetLedgerAsync(0, 0), EscrowReasons.InvalidField)).Field);
    }

    [Fact]
    public async Task The_audit_detects_an_edited_ledger_row_and_an_edited_balance()
    {
        if (Skipped)
        {
            return;
        }

        var lease = await Env.Leases.PledgedAsync(extra: 50);
        await Env.Operator.SettleAsync(Finals.For(Env, lease, true, true));
        Assert.True((await Env.Anyone.VerifyLedgerAsync()).Ok);

        // The database refuses edits of the ledger itself...
        await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(() => Env.ExecuteRawAsync("UPDATE ledger SET amount = amount + 1 WHERE seq = 1"));
        // ...so an attacker with database access drops the guard first; the chain still tells.
        await Env.ExecuteRawAsync(Provider is SqliteProvider ? "DROP TRIGGER ledger_no_update" : "DROP TRIGGER ledger_append_only ON ledger");
        await Env.ExecuteRawAsync("UPDATE ledger SET amount = amount + 1 WHERE seq = 1");
        var audit = await Env.Anyone.VerifyLedgerAsync();
        Assert.False(audit.Ok);
        Assert.Contains(audit.Problems, p => p.Contains("seq 1: hash does not match", StringComparison.Ordinal));

        await Env.ExecuteRawAsync("UPDATE ledger SET amount = amount - 1 WHERE seq = 1");
        Assert.True((await Env.Anyone.VerifyLedgerAsync()).Ok);
        await Env.ExecuteRawAsync($"UPDATE balances SET amount = amount + 1000 WHERE address = '{lease.RenterAddress}'");
        audit = await Env.Anyone.VerifyLedgerAsync();
        Assert.False(audit.Ok);
        Assert.Contains(audit.Problems, p => p.Contains("invariant broken", StringComparison.Ordinal));
        Assert.Contains(audit.Problems, p => p.Contains("balance:" + lease.RenterAddress, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_signed_call_only_authorises_the_exact_request_it_signs()
    {
        if (Skipped)
        {
            return;
        }

        var lease = Env.Leases.Build();
        await Env.FundAsync(lease.RenterAddress, 1000);
        var body = System.Text.Encoding.UTF8.GetBytes("{\"signedRequest\":" + lease.Request.ToJson() + "}");

        async Task<JsonElement> Post(string authorization, string path = "v1/pledges")
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(Env.BaseAddress, path)) { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
            using var response = await Env.Http.SendAsync(request);
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            return doc.RootElement.Clone();
        }

        var now = Env.Time.GetUtcNow();
        var otherBody = EscrowCall.Authorization(Env.Leaser, "POST", "/v1/pledges", "{}"u8, now);
        var otherPath = EscrowCall.Authorization(Env.Leaser, "POST", "/v1/settlements", body, now);
        var stale = EscrowCall.Authorization(Env.Leaser, "POST", "/v1/pledges", body, now - TimeSpan.FromMinutes(10));
        foreach (var auth in new[] { otherBody, otherPath, stale, "Rpoi-Signed not-base64!" })
        {
            Assert.Equal(EscrowReasons.Unauthenticated, (await Post(auth)).GetProperty("reason").GetString());
        }

        Assert.Equal(1000, await Env.BalanceAsync(lease.RenterAddress));
        var ok = await Post(EscrowCall.Authorization(Env.Leaser, "POST", "/v1/pledges", body, now));
        Assert.Equal(lease.H, ok.GetProperty("h").GetString());
    }
}
