using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Operator.Tests.Support;

namespace Rpoi.Operator.Tests.PhaseOne;

/// <summary>When chips are short, leases wait in Pending with their place in a FIFO queue and get nodes oldest first.</summary>
public sealed class QueueTests
{
    [Fact]
    public async Task Short_of_chips_leases_wait_in_fifo_order_and_are_claimed_as_nodes_free_up()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        await env.StartOperatorAsync();

        await env.ApplyAsync(env.Lease("first").Build());
        await env.WaitForPhaseAsync("first", LeasePhase.Active);

        // Creation order decides the queue: second is older than third.
        env.Time.Advance(TimeSpan.FromSeconds(1));
        await env.ApplyAsync(env.Lease("second").Build());
        env.Time.Advance(TimeSpan.FromSeconds(1));
        await env.ApplyAsync(env.Lease("third").Build());

        var second = await Eventually.ReturnsAsync(() => env.GetLeaseAsync("second"), l => l.Status?.QueuePosition == 1, "second is next in the queue", env.Time);
        Assert.Equal(LeasePhase.Pending, second.Status!.Phase);
        var secondAllocated = Assert.Single(second.Status.Conditions!, c => c.Type == LeaseConditions.Allocated);
        Assert.Equal(LeaseConditions.InsufficientChips, secondAllocated.Reason);
        Assert.Contains("4 chips of tpu-v5-lite-podslice 2x2 asked", secondAllocated.Message, StringComparison.Ordinal);
        Assert.Contains("0 free now", secondAllocated.Message, StringComparison.Ordinal);

        var third = await Eventually.ReturnsAsync(() => env.GetLeaseAsync("third"), l => l.Status?.QueuePosition == 2, "third waits behind second", env.Time);
        var thirdAllocated = Assert.Single(third.Status!.Conditions!, c => c.Type == LeaseConditions.Allocated);
        Assert.Equal(LeaseConditions.Queued, thirdAllocated.Reason);
        Assert.Contains("1 older lease(s) ahead", thirdAllocated.Message, StringComparison.Ordinal);
        // Pledged while waiting: the money is held, the chips are not yet.
        Assert.Equal(3, env.FakeEscrow!.Debits);

        await env.RequestReturnAsync("first");
        second = await env.WaitForPhaseAsync("second", LeasePhase.Active);
        Assert.Null(second.Status!.QueuePosition);
        third = await Eventually.ReturnsAsync(() => env.GetLeaseAsync("third"), l => l.Status?.QueuePosition == 1, "third moves up to first place", env.Time);
        Assert.Equal(LeasePhase.Pending, third.Status!.Phase);

        await env.RequestReturnAsync("second");
        await env.WaitForPhaseAsync("third", LeasePhase.Active);
        Assert.Single(await env.NodesOfAsync("third"));
    }

    [Fact]
    public async Task A_younger_small_lease_does_not_overtake_an_older_large_one()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 2);
        await env.StartOperatorAsync();
        await env.ApplyAsync(env.Lease("holder").Build());
        await env.WaitForPhaseAsync("holder", LeasePhase.Active);

        env.Time.Advance(TimeSpan.FromSeconds(1));
        await env.ApplyAsync(env.Lease("large").Chips(8).Build());
        await Eventually.ReturnsAsync(() => env.GetLeaseAsync("large"), l => l.Status?.QueuePosition == 1, "large waits for 8 chips", env.Time);
        env.Time.Advance(TimeSpan.FromSeconds(1));
        await env.ApplyAsync(env.Lease("small").Chips(4).Build());
        var small = await Eventually.ReturnsAsync(() => env.GetLeaseAsync("small"), l => l.Status?.QueuePosition == 2, "small queues behind large although 4 chips are free", env.Time);
        Assert.Equal(LeasePhase.Pending, small.Status!.Phase);

        await env.RequestReturnAsync("holder");
        var large = await env.WaitForPhaseAsync("large", LeasePhase.Active);
        Assert.Equal(2, large.Status!.Nodes!.Count);
        await Eventually.ReturnsAsync(() => env.GetLeaseAsync("small"), l => l.Status?.QueuePosition == 1, "small is next", env.Time);
    }

    [Fact]
    public async Task Two_leases_racing_for_the_last_node_across_two_operator_replicas_exactly_one_wins()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V6eSingleHostAsync(env.Client, "v6e", hosts: 1);
        // Two replicas without leader election: only the API's optimistic concurrency keeps the claim exclusive.
        await env.StartOperatorAsync();
        await env.StartOperatorAsync();
        env.Server.Faults.FailNext(2, 409, verb: "patch", resource: "nodes");
        await Task.WhenAll(
            env.ApplyAsync(env.Lease("left").Shape(LeaseBuilder.V6e, "2x2").Build()),
            env.ApplyAsync(env.Lease("right").Shape(LeaseBuilder.V6e, "2x2").Build()));

        await Eventually.HoldsAsync(async () =>
        {
            var phases = new[] { (await env.GetLeaseAsync("left"))?.Status?.Phase, (await env.GetLeaseAsync("right"))?.Status?.Phase };
            return phases.Count(p => p == LeasePhase.Active) == 1 && phases.Count(p => p == LeasePhase.Pending) == 1;
        }, "one lease is Active and the other Pending", env.Time);
        Assert.True(env.Server.Requests.Count(r => r.Method == "PATCH" && r.StatusCode == 409) >= 2, "the injected conflicts were met");
        var node = Assert.Single(await env.NodesAsync());
        var winner = (await env.GetLeaseAsync("left"))!.Status!.Phase == LeasePhase.Active ? "left" : "right";
        Assert.Equal(winner, node.Metadata.Labels[Rpoi.Operator.PhaseOne.Allocation.TpuLabels.LeaseNameLabel]);
        Assert.Single(node.Spec.Taints, t => t.Key == Rpoi.Operator.PhaseOne.Allocation.TpuLabels.LeaseTaintKey);
        Assert.Null(await env.AccessSecretAsync(winner == "left" ? "right" : "left"));
    }

    [Fact]
    public async Task A_multi_host_slice_is_granted_whole()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        var hosts = await TpuNodePools.V5eMultiHost4x4Async(env.Client, "slice");
        await env.StartOperatorAsync();
        await env.ApplyAsync(env.Lease("big").Shape(LeaseBuilder.V5e, "4x4").Chips(16).Build());
        await env.ApplyAsync(env.Lease("also-big").Shape(LeaseBuilder.V5e, "4x4").Chips(16).Build());

        await Eventually.HoldsAsync(async () =>
            (await env.GetLeaseAsync("big"))?.Status?.Phase == LeasePhase.Active ^ (await env.GetLeaseAsync("also-big"))?.Status?.Phase == LeasePhase.Active,
            "exactly one of the two 4x4 leases is Active", env.Time);
        var active = (await env.GetLeaseAsync("big"))!.Status!.Phase == LeasePhase.Active ? "big" : "also-big";
        var waiting = active == "big" ? "also-big" : "big";
        Assert.Equal(hosts, (await env.GetLeaseAsync(active))!.Status!.Nodes);
        Assert.Empty(await env.NodesOfAsync(waiting));
        Assert.Equal(4, (await env.NodesOfAsync(active)).Count);
    }
}
