using Rpoi.Escrow.Client;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseTwo;
using Rpoi.Operator.Tests.Support;
using Rpoi.Protocol;
using Rpoi.Protocol.Messages;

namespace Rpoi.Operator.Tests.PhaseTwo;

/// <summary>
/// The renter's fallback (PROTOCOL.md): β never submits m_final, so after the rating window plus π's grace R sends its
/// own E(m'') to π and gets ρ and ω back (row "yes / no"). An operator that comes back later records π's receipt and
/// moves nothing.
/// </summary>
public sealed class RenterFallbackTests
{
    [Fact]
    public async Task The_renter_claims_from_the_escrow_after_the_window_plus_grace_when_the_leaser_never_settles()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        // No operator runs: β is gone. The lease was returned and waits for ratings.
        var lease = await env.ReturnedLeaseAsync("abandoned", ratingWindow: TimeSpan.FromHours(1));
        var renter = env.Parties.Renter.Identity.Address;
        var signed = env.SignRenterRating(lease, 2, "operator vanished");
        var before = await env.AuditAsync();

        // Too early: β may still settle until T + duration + window + grace on π's clock. Nothing moves.
        var early = await Assert.ThrowsAsync<EscrowException>(() => env.Anyone.ClaimAsync(signed));
        Assert.Equal(EscrowReasons.ClaimTooEarly, early.Reason);
        Assert.Equal(before.Head, (await env.AuditAsync()).Head);

        // A rating signed for another renter key is refused outright, even after the window.
        var pledge = await env.Anyone.GetPledgeAsync(lease.H.Hex);
        env.Time.SetUtcNow(DateTimeOffset.Parse(pledge!.ClaimableAfter, System.Globalization.CultureInfo.InvariantCulture) + TimeSpan.FromSeconds(1));
        var forged = env.SignRenterRating(lease, 5, signer: Protocol.Keys.PartyKeyPair.Generate(Protocol.Keys.PartyRole.Renter));
        var refused = await Assert.ThrowsAsync<EscrowException>(() => env.Anyone.ClaimAsync(forged));
        Assert.Equal("SignerMismatch", refused.Reason);
        Assert.Equal(before.Head, (await env.AuditAsync()).Head);

        // After the window plus grace: ρ back to R (R rated) and ω back to R (β did not).
        var claimed = await env.Anyone.ClaimAsync(signed);
        Assert.Equal("ToRenter", claimed.Deposit);
        Assert.Equal("BackToRenter", claimed.Rent);
        Assert.Equal(PhaseTwoEnvironment.RenterFunds, await env.BalanceAsync(renter));
        Assert.Equal(0, await env.BalanceAsync(env.Parties.Leaser.Identity.Address));
        var receipt = RpoiEquations.VerifyReceipt(Signed<SettlementReceipt>.Parse(claimed.Receipt.GetRawText()).Value, env.Parties.Escrow.Identity, lease.H);
        Assert.True(receipt.IsOk, receipt.Message);
        Assert.Equal(SettlementSource.RenterFallback, receipt.Value.Source);
        var replay = await env.Anyone.ClaimAsync(signed);
        Assert.Equal(claimed.Receipt.GetRawText(), replay.Receipt.GetRawText());
        var afterClaim = await env.AuditAsync();

        // β comes back: it finds π's settlement under H, records it and submits nothing.
        var phaseTwo = await env.StartOperatorAsync();
        var settled = await env.WaitForPhaseAsync("abandoned", LeasePhase.Settled);
        Assert.Equal(claimed.Receipt.GetRawText(), settled.Status!.Settlement!.Receipt);
        Assert.True(settled.Status.Settlement.RenterRated);
        Assert.False(settled.Status.Settlement.LeaserRated);
        var condition = Assert.Single(settled.Status.Conditions!, c => c.Type == PhaseTwoReasons.SettledCondition);
        Assert.Equal("LeaserRatingMissing", condition.Reason);
        Assert.Contains("the renter's own claim", condition.Message, StringComparison.Ordinal);
        Assert.Equal(afterClaim.Head, (await env.AuditAsync()).Head);
        await Eventually.HoldsAsync(() => Task.FromResult(phaseTwo.Metrics.SettlementCount("leaser_missing") == 1), "the metric counts it once (it is updated right after the status write)", env.Time);
    }
}
