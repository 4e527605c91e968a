using System.Globalization;
using System.Text;
using k8s;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Grant;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Operator.PhaseTwo;
using Rpoi.Operator.Tests.Support;
using Rpoi.Protocol;
using Rpoi.Protocol.Messages;

namespace Rpoi.Operator.Tests.PhaseTwo;

/// <summary>
/// The whole protocol through the operator: a signed Lease on the test API server with simulated GKE TPU nodes, phase I
/// (pledge on the real π, claim, sealed grant, return) and phase II (ratings, m_final, receipt), for each row of the
/// decision table, with π's ledger checked after each.
/// </summary>
public sealed class EndToEndTests
{
    [Theory]
    [InlineData(true, true)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(false, false)]
    public async Task A_signed_request_goes_from_pledge_to_settled_for_each_row(bool renterRates, bool leaserRates)
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        var phaseTwo = await env.StartOperatorAsync(withPhaseOne: true);
        var builder = LeaseBuilder.For(env.Parties.Renter).In(PhaseTwoEnvironment.Namespace, "train").To(env.Parties.Leaser, env.Parties.Escrow)
            .SignedAt(env.Time.GetUtcNow()).Shape(LeaseBuilder.V5e, "2x2").Chips(4).Duration(TimeSpan.FromHours(1))
            .Amounts("2000000", "700000").RatingWindow(TimeSpan.FromHours(3));
        var request = builder.BuildRequest();
        var h = RpoiEquations.TransactionHashOf(request);
        await env.Client.CustomObjects.CreateNamespacedCustomObjectAsync(builder.Build(request), Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural);

        // Phase I: pledged on π, Active, and R opens its grant (σ's digest is what R rates against).
        await env.WaitForPhaseAsync("train", LeasePhase.Active);
        Assert.Equal("Held", (await env.Anyone.GetPledgeAsync(h.Hex))!.State);
        var secret = await env.Client.CoreV1.ReadNamespacedSecretAsync(GrantIssuer.SecretName("train"), PhaseTwoEnvironment.Namespace);
        var opened = RpoiEquations.OpenGrant(SealedMessage.Parse(Encoding.UTF8.GetString(secret.Data[GrantIssuer.DataKey])).Value, env.Parties.Renter, request, env.Parties.Leaser.Identity);
        Assert.True(opened.IsOk, opened.Message);

        // The lease runs its hour and is returned by expiry; phase I hands it over in AwaitingRatings.
        await Requeues.AdvanceAsync(env.Time, TimeSpan.FromHours(1), "the return at expiry", [env.PhaseOneOperator!.Controller]);
        var returned = await env.WaitForPhaseAsync("train", LeasePhase.AwaitingRatings);
        Assert.Equal(opened.Value.GrantDigest, returned.Status!.GrantDigest);
        Assert.Equal(returned.Status!.ReturnedAt!.Value.AddHours(3), returned.Status.RatingDeadline);

        var mm = RpoiEquations.SignRenterRating(request, opened.Value.GrantDigest, new Protocol.Messages.Rating(5, "smooth", env.Time.GetUtcNow()), env.Parties.Renter);
        if (renterRates)
        {
            await env.ApplyAsync(PhaseTwoEnvironment.RenterRatingResource("train-renter", "train", mm));
            Assert.True((await env.WaitForDecisionAsync("train-renter")).Status!.Accepted);
        }

        if (leaserRates)
        {
            await env.ApplyAsync(PhaseTwoEnvironment.LeaserRatingResource("train-leaser", "train", 4, "returned on time"));
            Assert.True((await env.WaitForDecisionAsync("train-leaser")).Status!.Accepted);
        }

        if (!(renterRates && leaserRates))
        {
            await Requeues.AdvanceAsync(env.Time, TimeSpan.FromHours(3), "settlement at the rating deadline", [phaseTwo.SettlementController]);
        }

        var settled = await env.WaitForPhaseAsync("train", LeasePhase.Settled);
        Assert.Equal(renterRates, settled.Status!.Settlement!.RenterRated);
        Assert.Equal(leaserRates, settled.Status.Settlement.LeaserRated);
        var receipt = RpoiEquations.VerifyReceipt(Signed<SettlementReceipt>.Parse(settled.Status.Settlement.Receipt!).Value, env.Parties.Escrow.Identity, h);
        Assert.True(receipt.IsOk, receipt.Message);
        Assert.Equal(RpoiEquations.Decide(renterRates, leaserRates), receipt.Value.Decision);

        Assert.Equal(PhaseTwoEnvironment.RenterFunds - 2_700_000 + (renterRates ? 2_000_000 : 0) + (leaserRates ? 0 : 700_000), await env.BalanceAsync(env.Parties.Renter.Identity.Address));
        Assert.Equal(leaserRates ? 700_000 : 0, await env.BalanceAsync(env.Parties.Leaser.Identity.Address));
        Assert.Equal(renterRates ? 0 : 2_000_000, await env.WithheldAsync(h));
        var totals = Assert.Single((await env.AuditAsync()).Totals, t => t.Denom == "uusd");
        Assert.Equal("0", totals.Held);
        Assert.Equal(PhaseTwoEnvironment.RenterFunds.ToString(CultureInfo.InvariantCulture), totals.Deposits);
        Assert.All(await env.Client.CoreV1.ListNodeAsync() is { } nodes ? nodes.Items : [], n => Assert.True(TpuNodePools.IsClean(n), n.Metadata.Name));
    }

    [Fact]
    public async Task A_lease_deleted_while_active_is_returned_then_kept_until_the_window_closes_and_settled()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        await env.StartOperatorAsync(withPhaseOne: true);
        var builder = LeaseBuilder.For(env.Parties.Renter).In(PhaseTwoEnvironment.Namespace, "gone").To(env.Parties.Leaser, env.Parties.Escrow)
            .SignedAt(env.Time.GetUtcNow()).Shape(LeaseBuilder.V5e, "2x2").Chips(4).RatingWindow(TimeSpan.FromHours(2));
        var request = builder.BuildRequest();
        var h = RpoiEquations.TransactionHashOf(request);
        await env.Client.CustomObjects.CreateNamespacedCustomObjectAsync(builder.Build(request), Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural);
        await env.WaitForPhaseAsync("gone", LeasePhase.Active);

        await env.Client.CustomObjects.DeleteNamespacedCustomObjectAsync(Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural, "gone");
        var waiting = await env.WaitForPhaseAsync("gone", LeasePhase.AwaitingRatings);
        Assert.NotNull(waiting.Metadata.DeletionTimestamp);
        Assert.Contains(LeaseConditions.Finalizer, waiting.Metadata.Finalizers);
        Assert.Null(await env.Anyone.GetSettlementAsync(h.Hex));

        await Requeues.AdvanceAsync(env.Time, TimeSpan.FromHours(2), "the finalizer looks again at the rating deadline", [env.PhaseOneOperator!.Controller]);
        await Eventually.HoldsAsync(async () => await env.GetLeaseAsync("gone") is null, "the window closed, the partial m_final settled the lease and it went", env.Time);
        var settlement = await env.Anyone.GetSettlementAsync(h.Hex);
        Assert.NotNull(settlement);
        Assert.Equal("Withheld", settlement.Deposit);
        Assert.Equal("BackToRenter", settlement.Rent);
        await env.AuditAsync();
        Assert.DoesNotContain((await env.Client.CoreV1.ListNamespacedSecretAsync(PhaseTwoEnvironment.Namespace)).Items, s => s.Type == GrantIssuer.SecretType);
    }

    [Fact]
    public async Task A_lease_deleted_while_active_goes_as_soon_as_both_ratings_settle_it()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        await env.StartOperatorAsync(withPhaseOne: true);
        var builder = LeaseBuilder.For(env.Parties.Renter).In(PhaseTwoEnvironment.Namespace, "rated").To(env.Parties.Leaser, env.Parties.Escrow)
            .SignedAt(env.Time.GetUtcNow()).Shape(LeaseBuilder.V5e, "2x2").Chips(4);
        var request = builder.BuildRequest();
        await env.Client.CustomObjects.CreateNamespacedCustomObjectAsync(builder.Build(request), Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural);
        await env.WaitForPhaseAsync("rated", LeasePhase.Active);
        await env.Client.CustomObjects.DeleteNamespacedCustomObjectAsync(Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural, "rated");
        var waiting = await env.WaitForPhaseAsync("rated", LeasePhase.AwaitingRatings);

        // R rates against the digest phase I kept in the Lease's status; β rates; the default 72 h window is not waited for.
        var digest = waiting.Status!.GrantDigest!;
        var mm = RpoiEquations.SignRenterRating(request, digest, new Protocol.Messages.Rating(4, "", env.Time.GetUtcNow()), env.Parties.Renter);
        await env.ApplyAsync(PhaseTwoEnvironment.RenterRatingResource("rated-renter", "rated", mm));
        await env.ApplyAsync(PhaseTwoEnvironment.LeaserRatingResource("rated-leaser", "rated", 4));
        await Eventually.HoldsAsync(async () => await env.GetLeaseAsync("rated") is null, "both ratings settle the deleted lease and it goes", env.Time);
        var settlement = await env.Anyone.GetSettlementAsync(RpoiEquations.TransactionHashOf(request).Hex);
        Assert.Equal(("ToRenter", "ToLeaser"), (settlement!.Deposit, settlement.Rent));
        Assert.True(env.Time.GetUtcNow().UtcDateTime < DateTime.SpecifyKind(waiting.Status!.RatingDeadline!.Value, DateTimeKind.Utc));
        await env.AuditAsync();
    }
}
