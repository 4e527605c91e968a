using k8s;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Grant;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Operator.Tests.Support;

namespace Rpoi.Operator.Tests.PhaseOne;

/// <summary>Return by each of the three triggers leaves nodes clean, credentials revoked and the rating window open.</summary>
public sealed class ReturnTests
{
    public enum Trigger
    {
        Expiry,
        ReturnRequested,
        Deletion,
    }

    [Theory]
    [InlineData(Trigger.Expiry)]
    [InlineData(Trigger.ReturnRequested)]
    [InlineData(Trigger.Deletion)]
    public async Task Return_releases_nodes_revokes_access_and_awaits_ratings(Trigger trigger)
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eMultiHost4x4Async(env.Client, "slice");
        await env.StartOperatorAsync();
        await env.ApplyAsync(env.Lease("job").Shape(LeaseBuilder.V5e, "4x4").Chips(16).Duration(TimeSpan.FromHours(1)).RatingWindow(TimeSpan.FromHours(48)).Build());
        var active = await env.WaitForPhaseAsync("job", LeasePhase.Active);
        var digest = (await env.AccessSecretAsync("job"))!.Metadata.Annotations[GrantIssuer.DigestAnnotation];
        Assert.Equal(digest, active.Status!.GrantDigest);

        switch (trigger)
        {
            case Trigger.Expiry:
                // Not yet: the lease is still Active a minute before its end.
                await Requeues.AdvanceAsync(env.Time, active.Status!.ExpiresAt!.Value - env.Time.GetUtcNow().UtcDateTime - TimeSpan.FromMinutes(1), "the return at expiry", [env.Operator!.Controller]);
                Assert.Equal(LeasePhase.Active, (await env.GetLeaseAsync("job"))!.Status!.Phase);
                env.Time.Advance(TimeSpan.FromMinutes(1));
                break;
            case Trigger.ReturnRequested:
                await env.RequestReturnAsync("job");
                break;
            case Trigger.Deletion:
                await env.DeleteLeaseAsync("job");
                break;
        }

        var returned = await env.WaitForPhaseAsync("job", LeasePhase.AwaitingRatings);
        var status = returned.Status!;
        Assert.NotNull(status.ReturnedAt);
        Assert.Equal(status.ReturnedAt!.Value.AddHours(48), status.RatingDeadline);
        Assert.Equal(LeaseConditions.Returned, Assert.Single(status.Conditions!, c => c.Type == LeaseConditions.Ready).Reason);
        // The Secret is gone, but status.grantDigest keeps σ's digest for phase II.
        Assert.Equal(digest, status.GrantDigest);
        Assert.All(await env.NodesAsync(), n => Assert.True(TpuNodePools.IsClean(n), $"{n.Metadata.Name} still carries lease marks"));
        Assert.Equal((false, false, false), await env.AccessObjectsAsync("job"));
        Assert.Null(await env.AccessSecretAsync("job"));
        if (trigger == Trigger.Deletion)
        {
            // Phase II hand-off: the pledge is still held, so the finalizer keeps the Lease until settlement.
            Assert.NotNull(returned.Metadata.DeletionTimestamp);
            Assert.Contains(LeaseConditions.Finalizer, returned.Metadata.Finalizers);
        }

        Assert.Equal(1, env.FakeEscrow!.Debits);
    }

    [Fact]
    public async Task A_deleted_returned_lease_is_held_until_phase_two_lets_it_go()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        await env.StartOperatorAsync();
        await env.ApplyAsync(env.Lease("handoff").Build());
        await env.WaitForPhaseAsync("handoff", LeasePhase.Active);
        await env.DeleteLeaseAsync("handoff");
        await env.WaitForPhaseAsync("handoff", LeasePhase.AwaitingRatings);

        var phaseTwo = new SettlementGate();
        env.Operator!.Reconciler.SettlementFinalizer = phaseTwo;
        // Any change wakes the Lease; phase II says "not yet" first.
        await TouchAsync(env, "1");
        await Eventually.HoldsAsync(() => Task.FromResult(phaseTwo.Calls > 0), "the finalizer asked phase II", env.Time);
        Assert.NotNull(await env.GetLeaseAsync("handoff"));

        phaseTwo.Settled = true;
        await TouchAsync(env, "2");
        await Eventually.HoldsAsync(async () => await env.GetLeaseAsync("handoff") is null, "the settled Lease is gone", env.Time);
    }

    private static async Task TouchAsync(PhaseOneEnvironment env, string value)
    {
        var patch = new k8s.Models.V1Patch($"{{\"metadata\":{{\"annotations\":{{\"test/touch\":\"{value}\"}}}}}}", k8s.Models.V1Patch.PatchType.MergePatch);
        await env.Client.CustomObjects.PatchNamespacedCustomObjectAsync(patch, Lease.Group, Lease.Version, PhaseOneEnvironment.Namespace, Lease.Plural, "handoff");
    }

    /// <summary>Stands in for phase II's settlement finalizer: keeps the Lease until told it is settled.</summary>
    private sealed class SettlementGate : Rpoi.Kube.Controllers.IFinalizer<Lease>
    {
        private int calls;

        public volatile bool Settled;

        public int Calls => Volatile.Read(ref calls);

        public Task<Rpoi.Kube.Controllers.ReconcileResult> FinalizeAsync(Lease entity, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref calls);
            Assert.Equal(LeasePhase.AwaitingRatings, entity.Status?.Phase);
            return Task.FromResult(Settled ? Rpoi.Kube.Controllers.ReconcileResult.Done : Rpoi.Kube.Controllers.ReconcileResult.RequeueAfter(TimeSpan.FromHours(1)));
        }
    }

    [Fact]
    public async Task Deleting_a_lease_that_never_verified_lets_it_go_at_once()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await env.StartOperatorAsync();
        await env.ApplyAsync(env.Lease("bad").TamperedWith(p => p["chips"] = 8).Build());
        await env.WaitForPhaseAsync("bad", LeasePhase.Failed);
        await env.DeleteLeaseAsync("bad");
        await Eventually.HoldsAsync(async () => await env.GetLeaseAsync("bad") is null, "the Failed lease is deleted without waiting for phase II", env.Time);
    }

    [Fact]
    public async Task Return_asked_before_the_pledge_charges_nothing()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        await env.StartOperatorAsync();
        await env.ApplyAsync(env.Lease("never-mind").ReturnRequested().Build());
        var lease = await env.WaitForPhaseAsync("never-mind", LeasePhase.Failed);
        Assert.Equal(LeaseConditions.ReturnedBeforePledge, Assert.Single(lease.Status!.Conditions!, c => c.Type == LeaseConditions.Ready).Reason);
        Assert.Equal(0, env.FakeEscrow!.PledgeCalls);
        Assert.All(await env.NodesAsync(), n => Assert.True(TpuNodePools.IsClean(n)));
    }
}
