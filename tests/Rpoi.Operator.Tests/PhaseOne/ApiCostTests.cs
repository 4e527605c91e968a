using Rpoi.Operator.Entities;
using Rpoi.Operator.Tests.Support;

namespace Rpoi.Operator.Tests.PhaseOne;

/// <summary>How many API writes a lease costs on its way to Active: a regression guard for the write path.</summary>
public sealed class ApiCostTests
{
    [Fact]
    public async Task A_lease_reaches_active_with_a_bounded_number_of_writes()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        await env.StartOperatorAsync();
        var before = env.Server.Requests.Count;
        await env.ApplyAsync(env.Lease("counted").Build());
        await env.WaitForPhaseAsync("counted", LeasePhase.Active);
        // One event tells the whole way to Active (pledge, claim, grant), not one event per step.
        await Eventually.HoldsAsync(() => Task.FromResult(env.Server.Requests.Skip(before).Any(r => r.Path.Contains("/events", StringComparison.Ordinal))), "the Active event was recorded", env.Time);
        Assert.Single(env.Server.Requests.Skip(before), r => r.Method == "POST" && r.Path.Contains("/events", StringComparison.Ordinal));

        var writes = env.Server.Requests.Skip(before)
            .Where(r => r.Method is "POST" or "PUT" or "PATCH" or "DELETE" && r.StatusCode < 400)
            .Where(r => !r.Path.Contains("/events", StringComparison.Ordinal))
            .Select(r => $"{r.Method} {r.Path}")
            .ToList();
        // The Lease create, then: finalizer, node claim, ServiceAccount, RoleBinding, token, Secret, status (which records
        // σ's digest too). No Role per lease any more (the RoleBinding points at the shipped ClusterRole).
        Assert.True(writes.Count <= 8, $"{writes.Count} writes: {string.Join("; ", writes)}");
        Assert.DoesNotContain(writes, w => w.Contains("/roles", StringComparison.Ordinal));
        Assert.Single(writes, w => w.StartsWith("POST /apis/rbac.authorization.k8s.io/v1/namespaces/", StringComparison.Ordinal) && w.EndsWith("/rolebindings", StringComparison.Ordinal));
        // One metadata patch of the Lease, its finalizer: the grant is recorded in status.grantDigest, not in annotations.
        Assert.Single(writes, w => w.StartsWith("PATCH ", StringComparison.Ordinal) && w.EndsWith("/leases/counted", StringComparison.Ordinal));
        Assert.Single(writes, w => w.StartsWith("PATCH /api/v1/nodes/", StringComparison.Ordinal));
        Assert.Single(writes, w => w.EndsWith("/leases/counted/status", StringComparison.Ordinal));
    }
}
