using Rpoi.Kube.ApiServer;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Operator.Tests.Support;

namespace Rpoi.Operator.Tests.PhaseOne;

/// <summary>
/// How many API writes a lease costs on its way to Active: a regression guard for the write path (issue #5: at most 6
/// per lease, events counted separately). A Lease from <c>kubectl rpoi request</c> carries the finalizer already, which
/// saves the finalizer patch; a hand-written one without it costs that one write more.
/// </summary>
public sealed class ApiCostTests
{
    [Fact]
    public async Task A_hand_written_lease_reaches_active_with_at_most_seven_writes()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        await env.StartOperatorAsync();

        var writes = await WritesToActiveAsync(env, env.Lease("counted").Build());

        // Finalizer, node claim, ServiceAccount, RoleBinding, token, Secret, status (which records σ's digest too, so the
        // grant costs no metadata patch). No Role per lease (the RoleBinding points at the shipped ClusterRole).
        Assert.True(writes.Count <= 7, $"{writes.Count} writes: {string.Join("; ", writes)}");
        Assert.DoesNotContain(writes, w => w.Contains("/roles", StringComparison.Ordinal));
        Assert.Single(writes, w => w.StartsWith("POST /apis/rbac.authorization.k8s.io/v1/namespaces/", StringComparison.Ordinal) && w.EndsWith("/rolebindings", StringComparison.Ordinal));
        // One metadata patch of the Lease: the finalizer it lacked.
        Assert.Single(writes, w => w.StartsWith("PATCH ", StringComparison.Ordinal) && w.EndsWith("/leases/counted", StringComparison.Ordinal));
        Assert.Single(writes, w => w.StartsWith("PATCH /api/v1/nodes/", StringComparison.Ordinal));
        Assert.Single(writes, w => w.EndsWith("/leases/counted/status", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_lease_carrying_the_finalizer_reaches_active_with_at_most_six_writes_and_is_still_returned_on_deletion()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        await env.StartOperatorAsync();

        var writes = await WritesToActiveAsync(env, env.Lease("tooled").WithFinalizer().Build());

        // Node claim, ServiceAccount, RoleBinding, token, Secret, status; the Lease's metadata is never written.
        Assert.True(writes.Count <= 6, $"{writes.Count} writes: {string.Join("; ", writes)}");
        Assert.DoesNotContain(writes, w => w.EndsWith("/leases/tooled", StringComparison.Ordinal));
        Assert.Single(writes, w => w.StartsWith("PATCH /api/v1/nodes/", StringComparison.Ordinal));
        Assert.Single(writes, w => w.EndsWith("/leases/tooled/status", StringComparison.Ordinal));

        // The finalizer the operator did not write still holds the Lease for the normal return.
        await env.DeleteLeaseAsync("tooled");
        var returned = await env.WaitForPhaseAsync("tooled", LeasePhase.AwaitingRatings);
        Assert.NotNull(returned.Metadata.DeletionTimestamp);
        Assert.Equal([LeaseConditions.Finalizer], returned.Metadata.Finalizers);
        Assert.All(await env.NodesAsync(), n => Assert.True(TpuNodePools.IsClean(n), $"{n.Metadata.Name} still carries lease marks"));
        Assert.Equal((false, false, false), await env.AccessObjectsAsync("tooled"));
    }

    [Fact]
    public async Task A_lease_deleted_before_the_operator_saw_it_still_passes_through_the_operator()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        await env.ApplyAsync(env.Lease("early").WithFinalizer().Build());
        await env.DeleteLeaseAsync("early");
        var held = await env.GetLeaseAsync("early");
        Assert.NotNull(held?.Metadata.DeletionTimestamp);

        await env.StartOperatorAsync();

        // Returned before any pledge: nothing charged, nothing claimed, and then the operator lets it go.
        await Eventually.HoldsAsync(async () => await env.GetLeaseAsync("early") is null, "the operator released the deleted Lease", env.Time);
        Assert.Equal(0, env.FakeEscrow!.Debits);
        Assert.All(await env.NodesAsync(), n => Assert.True(TpuNodePools.IsClean(n), $"{n.Metadata.Name} carries lease marks"));
    }

    /// <summary>
    /// Creates <paramref name="lease"/>, waits for Active and its one Active event, and returns the successful writes
    /// the operator made on the way, except events (counted separately) and the test's own create.
    /// </summary>
    private static async Task<List<string>> WritesToActiveAsync(PhaseOneEnvironment env, Lease lease)
    {
        var before = env.Server.Requests.Count;
        await env.ApplyAsync(lease);
        await env.WaitForPhaseAsync(lease.Metadata.Name, LeasePhase.Active);
        // One event tells the whole way to Active (pledge, claim, grant), not one event per step. The server logs a request
        // as its answer starts, after the watch event of that write may have reached the test, so the status write the
        // test just saw may be logged after the event that followed it.
        var status = $"/leases/{lease.Metadata.Name}/status";
        await Eventually.HoldsAsync(
            () => Task.FromResult(env.Server.Requests.Skip(before) is { } log && log.Any(IsEvent) && log.Any(r => r.Method == "PATCH" && r.StatusCode < 400 && r.Path.EndsWith(status, StringComparison.Ordinal))),
            "the Active status write and the Active event were logged", env.Time);
        var requests = env.Server.Requests.Skip(before).ToList();
        Assert.Single(requests, r => r.Method == "POST" && IsEvent(r));
        var create = Assert.Single(requests, r => r.Method == "POST" && r.Path.EndsWith("/leases", StringComparison.Ordinal));
        return requests
            .Where(r => r.Method is "POST" or "PUT" or "PATCH" or "DELETE" && r.StatusCode < 400)
            .Where(r => !IsEvent(r) && r != create)
            .Select(r => $"{r.Method} {r.Path}")
            .ToList();
    }

    private static bool IsEvent(RecordedRequest request) => request.Path.Contains("/events", StringComparison.Ordinal);
}
