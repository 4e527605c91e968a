using k8s;
using k8s.Models;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Operator.Tests.Support;

namespace Rpoi.Operator.Tests.PhaseOne;

/// <summary>An operator restart at any step never pledges twice, never leaks or doubles a claim.</summary>
public sealed class RestartTests
{
    [Fact]
    public async Task Restart_after_active_changes_nothing()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 3);
        await env.StartOperatorAsync();
        await env.ApplyAsync(env.Lease("steady").Chips(8).Build());
        var before = await env.WaitForPhaseAsync("steady", LeasePhase.Active);
        var secretBefore = (await env.AccessSecretAsync("steady"))!.Metadata.ResourceVersion;
        // The Active event is written just after the status; count writes only once both have landed (the server logs a
        // request as its answer starts, after the write's watch event went out, so the status write may be logged late).
        await Eventually.HoldsAsync(
            () => Task.FromResult(env.Server.Requests is { } log
                && log.Any(r => r.Method == "POST" && r.Path.Contains("/events", StringComparison.Ordinal))
                && log.Any(r => r.Method == "PATCH" && r.StatusCode < 400 && r.Path.EndsWith("/leases/steady/status", StringComparison.Ordinal))),
            "the Active status write and the Active event were logged", env.Time);
        var writesBefore = env.Server.Requests.Count(r => r.Method is not ("GET" or "LIST" or "WATCH"));

        await env.StopOperatorAsync();
        await env.StartOperatorAsync();
        // Let the restarted operator reconcile the lease at least once (it requeues all cached objects on start).
        await Eventually.HoldsAsync(() => Task.FromResult(env.Operator!.Controller.ReconcileCount > 0), "the restarted operator reconciled", env.Time);

        var after = await env.GetLeaseAsync("steady");
        Assert.Equal(before.Metadata.ResourceVersion, after!.Metadata.ResourceVersion);
        Assert.Equal(secretBefore, (await env.AccessSecretAsync("steady"))!.Metadata.ResourceVersion);
        Assert.Equal(2, (await env.NodesOfAsync("steady")).Count);
        Assert.Equal(1, env.FakeEscrow!.PledgeCalls);
        Assert.Equal(1, env.FakeEscrow.Debits);
        Assert.Equal(writesBefore, env.Server.Requests.Count(r => r.Method is not ("GET" or "LIST" or "WATCH")));
    }

    [Fact]
    public async Task A_claim_left_by_a_lease_that_vanished_while_the_operator_was_down_is_released_on_start()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 2);
        await env.StartOperatorAsync();
        await env.ApplyAsync(env.Lease("vanished").Chips(4).Build());
        await env.ApplyAsync(env.Lease("kept").Chips(4).Build());
        await env.WaitForPhaseAsync("vanished", LeasePhase.Active);
        await env.WaitForPhaseAsync("kept", LeasePhase.Active);
        var claimed = (await env.NodesOfAsync("vanished")).Select(n => n.Metadata.Name).ToList();
        Assert.Single(claimed);

        // With no operator running, someone strips the finalizer and deletes the Lease: its finalizer never runs.
        await env.StopOperatorAsync();
        await env.Client.CustomObjects.PatchNamespacedCustomObjectAsync(
            new V1Patch("""{"metadata":{"finalizers":null}}""", V1Patch.PatchType.MergePatch), Lease.Group, Lease.Version, PhaseOneEnvironment.Namespace, Lease.Plural, "vanished");
        await env.DeleteLeaseAsync("vanished");
        Assert.Null(await env.GetLeaseAsync("vanished"));
        Assert.Equal(claimed, (await env.NodesOfAsync("vanished")).Select(n => n.Metadata.Name));

        await env.StartOperatorAsync();
        await Eventually.HoldsAsync(async () => (await env.NodesAsync()).Single(n => n.Metadata.Name == claimed[0]).Metadata.Labels?.ContainsKey(TpuLabels.LeaseNameLabel) != true,
            "the orphaned node lost its lease marks", env.Time);
        var freed = (await env.NodesAsync()).Single(n => n.Metadata.Name == claimed[0]);
        Assert.DoesNotContain(freed.Spec.Taints ?? [], t => t.Key == TpuLabels.LeaseTaintKey);
        Assert.False(freed.Metadata.Annotations?.ContainsKey(TpuLabels.LeaseUidAnnotation) == true);
        // The live lease keeps its node.
        Assert.Single(await env.NodesOfAsync("kept"));
        Assert.Equal(LeasePhase.Active, (await env.GetLeaseAsync("kept"))!.Status!.Phase);
    }

    [Fact]
    public async Task A_new_lease_under_the_name_of_a_vanished_one_frees_the_old_claim()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 2);
        await env.StartOperatorAsync();
        var first = await env.ApplyAsync(env.Lease("reused").Chips(4).Build());
        await env.WaitForPhaseAsync("reused", LeasePhase.Active);
        var oldNode = Assert.Single(await env.NodesOfAsync("reused")).Metadata.Name;

        // The first Lease vanishes without its finalizer running, and a new Lease of the same name takes its place.
        await env.StopOperatorAsync();
        await env.Client.CustomObjects.PatchNamespacedCustomObjectAsync(
            new V1Patch("""{"metadata":{"finalizers":null}}""", V1Patch.PatchType.MergePatch), Lease.Group, Lease.Version, PhaseOneEnvironment.Namespace, Lease.Plural, "reused");
        await env.DeleteLeaseAsync("reused");
        var second = await env.ApplyAsync(env.Lease("reused").Chips(4).Build());
        Assert.NotEqual(first.Metadata.Uid, second.Metadata.Uid);

        await env.StartOperatorAsync();
        await env.WaitForPhaseAsync("reused", LeasePhase.Active);
        // Every node marked for this name now carries the new Lease's UID; the old claim was released, not left behind.
        await Eventually.HoldsAsync(async () => (await env.NodesAsync()).Where(n => n.Metadata.Labels?.ContainsKey(TpuLabels.LeaseNameLabel) == true)
            .All(n => n.Metadata.Annotations?[TpuLabels.LeaseUidAnnotation] == second.Metadata.Uid), "only the new lease's marks remain", env.Time);
        Assert.Single(await env.NodesOfAsync("reused"));
        var old = (await env.NodesAsync()).Single(n => n.Metadata.Name == oldNode);
        string? oldOwner = null;
        old.Metadata.Annotations?.TryGetValue(TpuLabels.LeaseUidAnnotation, out oldOwner);
        Assert.True(oldOwner is null || oldOwner == second.Metadata.Uid, $"node {oldNode} is still marked for uid {oldOwner}");
    }

    [Fact]
    public async Task A_partial_multi_host_claim_left_by_a_crash_is_completed_before_the_lease_is_active()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eMultiHost4x4Async(env.Client, "s1");
        // The Lease exists (with the finalizer, so the operator starts at the claim) and a crash left two of the four
        // hosts of slice s1 marked for it.
        var lease = await env.ApplyAsync(env.Lease("half").Shape("tpu-v5-lite-podslice", "4x4").Chips(16).WithFinalizer().Build());
        var id = new LeaseIdentity(PhaseOneEnvironment.Namespace, "half", lease.Metadata.Uid);
        foreach (var name in new[] { "gke-s1-0", "gke-s1-1" })
        {
            var node = await env.Client.CoreV1.ReadNodeAsync(name);
            GkeTpuProvider.AddMarks(node, id, env.Time.GetUtcNow());
            await env.Client.CoreV1.ReplaceNodeAsync(node, name);
        }

        await env.StartOperatorAsync();
        var active = await env.WaitForPhaseAsync("half", LeasePhase.Active);
        Assert.Equal(["gke-s1-0", "gke-s1-1", "gke-s1-2", "gke-s1-3"], active.Status!.Nodes);
        Assert.Equal(4, (await env.NodesOfAsync("half")).Count);
        Assert.Equal(16, active.Status.Chips);
    }

    [Fact]
    public async Task Crash_before_any_status_write_resumes_without_a_second_pledge_or_claim()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 3);
        // Every status write fails: the operator pledges, claims and writes the grant, but never records any of it.
        env.Server.Faults.FailNext(10_000, 500, verb: "patch", resource: "leases/status");
        await env.StartOperatorAsync();
        await env.ApplyAsync(env.Lease("bumpy").Chips(4).Build());
        await Eventually.HoldsAsync(async () => await env.AccessSecretAsync("bumpy") is not null, "the grant was written before the status write failed", env.Time);
        Assert.Equal(1, env.FakeEscrow!.Debits);
        Assert.Null((await env.GetLeaseAsync("bumpy"))!.Status?.Phase);

        await env.StopOperatorAsync();
        env.Server.Faults.Clear();
        await env.StartOperatorAsync();

        var lease = await env.WaitForPhaseAsync("bumpy", LeasePhase.Active);
        Assert.Equal(1, env.FakeEscrow.Debits);
        Assert.Single(await env.NodesOfAsync("bumpy"));
        Assert.Equal(2, (await env.NodesAsync()).Count(TpuNodePools.IsClean));
        Assert.Equal(lease.Status!.Nodes, (await env.NodesOfAsync("bumpy")).Select(n => n.Metadata.Name));
    }

    [Fact]
    public async Task Escrow_outage_is_retried_and_pledges_once()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V6eSingleHostAsync(env.Client, "v6e", hosts: 1);
        env.FakeEscrow!.FailNext(3);
        await env.StartOperatorAsync();
        await env.ApplyAsync(env.Lease("patient").Shape(LeaseBuilder.V6e, "2x2").Build());
        await env.WaitForPhaseAsync("patient", LeasePhase.Active);
        Assert.Equal(1, env.FakeEscrow.Debits);
        Assert.Equal(1, env.FakeEscrow.PledgeCalls);
    }

    [Fact]
    public async Task Restart_while_queued_keeps_the_fifo_order()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        await env.StartOperatorAsync();
        await env.ApplyAsync(env.Lease("holder").Build());
        await env.WaitForPhaseAsync("holder", LeasePhase.Active);
        // "older" is created before "younger" but named after it, so name order cannot explain the result.
        env.Time.Advance(TimeSpan.FromSeconds(1));
        await env.ApplyAsync(env.Lease("zz-older").Build());
        env.Time.Advance(TimeSpan.FromSeconds(1));
        await env.ApplyAsync(env.Lease("aa-younger").Build());
        await Eventually.ReturnsAsync(() => env.GetLeaseAsync("aa-younger"), l => l.Status?.QueuePosition == 2, "younger queues second", env.Time);

        await env.StopOperatorAsync();
        await env.RequestReturnAsync("holder");
        await env.StartOperatorAsync();

        await env.WaitForPhaseAsync("zz-older", LeasePhase.Active);
        var younger = await Eventually.ReturnsAsync(() => env.GetLeaseAsync("aa-younger"), l => l.Status?.QueuePosition == 1, "younger is next", env.Time);
        Assert.Equal(LeasePhase.Pending, younger.Status!.Phase);
        Assert.Empty(await env.NodesOfAsync("aa-younger"));
    }
}
