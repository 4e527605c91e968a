using Rpoi.Escrow.Client;
using Rpoi.Protocol.Messages;

namespace Rpoi.Escrow.Tests;

/// <summary>π keeps β's signed m''' with a settlement from m_final and returns it from GET /v1/settlements/{H}.</summary>
public abstract partial class EscrowSuite
{
    [Theory]
    [InlineData(true, true)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public async Task A_settlement_from_m_final_keeps_the_signed_m_triple_prime_and_returns_it_after_a_restart(bool renterRated, bool leaserRated)
    {
        if (Skipped)
        {
            return;
        }

        var lease = await Env.Leases.PledgedAsync();
        var posted = await Env.Operator.SettleAsync(Finals.For(Env, lease, renterRated, leaserRated));
        await Env.RestartAsync();
        var read = (await Env.Anyone.GetSettlementAsync(lease.H))!;

        foreach (var view in new[] { posted, read })
        {
            var final = VerifiedFinal(view, lease);
            Assert.Equal(lease.GrantDigest, final.Payload.GrantDigest);
            Assert.Equal(lease.Request.ToJson(), final.Payload.Request.ToJson());
            Assert.Equal(renterRated ? (int?)lease.RenterRating().Payload.Rating.Score : null, final.Payload.RenterRating?.Payload.Rating.Score);
            Assert.Equal(leaserRated, final.Payload.LeaserRating is not null);
        }

        // The bytes π returns are the bytes β signed.
        Assert.Equal(posted.LeaserFinal!.Value.GetRawText(), read.LeaserFinal!.Value.GetRawText());
        // And the replay answers the same first settlement, m''' included.
        var replay = await Env.Operator.SettleAsync(Finals.For(Env, lease, !renterRated, !leaserRated));
        Assert.Equal(read.LeaserFinal!.Value.GetRawText(), replay.LeaserFinal!.Value.GetRawText());
    }

    [Fact]
    public async Task A_renter_fallback_settlement_has_no_m_triple_prime_and_the_field_is_omitted()
    {
        if (Skipped)
        {
            return;
        }

        var lease = await Env.Leases.PledgedAsync();
        Env.Time.Advance(TimeSpan.FromHours(97) + TimeSpan.FromSeconds(1));
        var claimed = await Env.Anyone.ClaimAsync(lease.RenterRating());
        Assert.Null(claimed.LeaserFinal);

        using var response = await Env.Http.GetAsync(new Uri(Env.BaseAddress, "v1/settlements/" + lease.H));
        response.EnsureSuccessStatusCode();
        using var body = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.False(body.RootElement.TryGetProperty("leaserFinal", out _), body.RootElement.GetRawText());
        Assert.True(body.RootElement.TryGetProperty("receipt", out _));
    }

    [Fact]
    public async Task A_database_from_before_m_triple_prime_was_kept_is_migrated_in_place_and_keeps_its_settlements()
    {
        if (Skipped)
        {
            return;
        }

        var old = await Env.Leases.PledgedAsync();
        var before = await Env.Operator.SettleAsync(Finals.For(Env, old, true, true));
        var head = await Env.HeadAsync();
        // The settlements table exactly as the previous π created it: no leaser_final column.
        await Env.ExecuteRawAsync("ALTER TABLE settlements DROP COLUMN leaser_final");

        await Env.RestartAsync();

        var migrated = (await Env.Anyone.GetSettlementAsync(old.H))!;
        Assert.Equal(before.Receipt.GetRawText(), migrated.Receipt.GetRawText());
        Assert.Null(migrated.LeaserFinal);
        Assert.Equal(head, await Env.HeadAsync());

        var next = await Env.Leases.PledgedAsync();
        await Env.Operator.SettleAsync(Finals.For(Env, next, true, true));
        var kept = (await Env.Anyone.GetSettlementAsync(next.H))!;
        Assert.Equal(next.GrantDigest, VerifiedFinal(kept, next).Payload.GrantDigest);

        // Initialising again (every π start does) leaves the migrated table as it is.
        await Env.RestartAsync();
        Assert.Equal(kept.LeaserFinal!.Value.GetRawText(), (await Env.Anyone.GetSettlementAsync(next.H))!.LeaserFinal!.Value.GetRawText());
        Assert.Null((await Env.Anyone.GetSettlementAsync(old.H))!.LeaserFinal);
    }

    private Signed<LeaserFinal> VerifiedFinal(SettlementView view, Lease lease)
    {
        Assert.NotNull(view.LeaserFinal);
        var parsed = Signed<LeaserFinal>.Parse(view.LeaserFinal!.Value.GetRawText());
        Assert.True(parsed.IsOk, parsed.Message);
        var signed = parsed.Value.VerifySignature(Env.Leaser.Identity);
        Assert.True(signed.IsOk, signed.Message);
        Assert.Equal(MessageKinds.LeaserFinal, parsed.Value.Payload.Kind);
        Assert.Equal(lease.H, parsed.Value.Payload.H);
        return parsed.Value;
    }
}
