using k8s;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseTwo;
using Rpoi.Operator.Tests.Support;

namespace Rpoi.Operator.Tests.PhaseTwo;

/// <summary>
/// A Lease deleted before settlement keeps its finalizer until it is settled — at once when both ratings come in, or
/// with the partial m_final when the window closes — and only then goes.
/// </summary>
public sealed class DeletionTests
{
    [Fact]
    public async Task A_deleted_lease_waits_for_the_window_then_submits_the_partial_m_final_and_goes()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        var phaseTwo = await env.StartOperatorAsync(withSettlementFinalizer: true);
        var lease = await env.ReturnedLeaseAsync("gone", ratingWindow: TimeSpan.FromHours(6), extraFinalizer: PhaseTwoEnvironment.TestFinalizer);
        await env.Client.CustomObjects.DeleteNamespacedCustomObjectAsync(Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural, "gone");

        // Still there, still rateable: the renter rates after the delete.
        var deleting = await Eventually.ReturnsAsync(() => env.GetLeaseAsync("gone"), l => l.Metadata.DeletionTimestamp is not null, "the lease is being deleted", env.Time);
        Assert.Contains(PhaseTwoEnvironment.TestFinalizer, deleting.Metadata.Finalizers);
        await env.ApplyAsync(PhaseTwoEnvironment.RenterRatingResource("gone-renter", "gone", env.SignRenterRating(lease, 4)));
        Assert.True((await env.WaitForDecisionAsync("gone-renter")).Status!.Accepted);
        Assert.False(await phaseTwo.Step.CanReleaseFinalizerAsync((await env.GetLeaseAsync("gone"))!, CancellationToken.None));
        Assert.Null(await env.Anyone.GetSettlementAsync(lease.H.Hex));

        await Requeues.AdvanceAsync(env.Time, TimeSpan.FromHours(6), "the finalizer looks again at the rating deadline", [env.FinalizingController!]);
        await Eventually.HoldsAsync(async () => await env.GetLeaseAsync("gone") is null, "the lease is settled and its finalizer removed", env.Time);
        var settlement = await env.Anyone.GetSettlementAsync(lease.H.Hex);
        Assert.NotNull(settlement);
        Assert.Equal("ToRenter", settlement.Deposit);
        Assert.Equal("BackToRenter", settlement.Rent);
        Assert.Equal(PhaseTwoEnvironment.RenterFunds, await env.BalanceAsync(env.Parties.Renter.Identity.Address));
        await Eventually.HoldsAsync(() => Task.FromResult(phaseTwo.Metrics.SettlementCount("leaser_missing") == 1), "the metric counts it once (it is updated right after the status write)", env.Time);
        await env.AuditAsync();
    }

    [Fact]
    public async Task A_deleted_lease_goes_as_soon_as_both_ratings_settle_it()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        await env.StartOperatorAsync(withSettlementFinalizer: true);
        var lease = await env.ReturnedLeaseAsync("quick", ratingWindow: TimeSpan.FromHours(72), extraFinalizer: PhaseTwoEnvironment.TestFinalizer);
        await env.Client.CustomObjects.DeleteNamespacedCustomObjectAsync(Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural, "quick");
        await Eventually.ReturnsAsync(() => env.GetLeaseAsync("quick"), l => l.Metadata.DeletionTimestamp is not null, "the lease is being deleted", env.Time);

        await env.ApplyAsync(PhaseTwoEnvironment.RenterRatingResource("quick-renter", "quick", env.SignRenterRating(lease, 5)));
        await env.ApplyAsync(PhaseTwoEnvironment.LeaserRatingResource("quick-leaser", "quick", 5));
        await Eventually.HoldsAsync(async () => await env.GetLeaseAsync("quick") is null, "the lease settles without waiting 72 h and goes", env.Time);
        Assert.Equal(lease.Rent, await env.BalanceAsync(env.Parties.Leaser.Identity.Address));
        await env.AuditAsync();
    }

    [Fact]
    public async Task Phase_two_holds_nothing_for_a_settled_or_failed_lease()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        var phaseTwo = await env.StartOperatorAsync();
        var settled = new Lease { Metadata = new() { Name = "s", NamespaceProperty = PhaseTwoEnvironment.Namespace }, Status = new LeaseStatus { Phase = LeasePhase.Settled } };
        var failed = new Lease { Metadata = new() { Name = "f", NamespaceProperty = PhaseTwoEnvironment.Namespace }, Status = new LeaseStatus { Phase = LeasePhase.Failed } };
        var active = new Lease { Metadata = new() { Name = "a", NamespaceProperty = PhaseTwoEnvironment.Namespace }, Status = new LeaseStatus { Phase = LeasePhase.Active } };
        foreach (var lease in new[] { settled, failed, active })
        {
            Assert.True(await phaseTwo.Step.CanReleaseFinalizerAsync(lease, CancellationToken.None), $"{lease.Status!.Phase}");
        }

        Assert.False(SettlementStep.Owns(active));
        Assert.True(SettlementStep.Owns(new Lease { Status = new LeaseStatus { Phase = LeasePhase.Settling } }));
    }
}
