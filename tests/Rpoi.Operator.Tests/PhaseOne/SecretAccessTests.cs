using k8s;
using k8s.Models;
using Rpoi.Kube.ApiServer;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Grant;
using Rpoi.Operator.Tests.Support;

namespace Rpoi.Operator.Tests.PhaseOne;

/// <summary>
/// Issue 8's RBAC: the operator may create, update and delete Secrets in lease namespaces but never read them. Phase I
/// must work (grant, restart, replace a stale Secret, return) without a single GET, LIST or WATCH of a Secret.
/// </summary>
public sealed class SecretAccessTests
{
    [Fact]
    public async Task Grant_restart_and_return_never_read_a_secret()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        await env.StartOperatorAsync();
        await env.ApplyAsync(env.Lease("quiet").Build());
        var active = await env.WaitForPhaseAsync("quiet", LeasePhase.Active);

        await env.StopOperatorAsync();
        await env.StartOperatorAsync();
        await Eventually.HoldsAsync(() => Task.FromResult(env.Operator!.Controller.ReconcileCount > 0), "the restarted operator reconciled", env.Time);
        // The restart found the grant recorded on the Lease: same validity, nothing re-issued.
        Assert.Equal(active.Status!.ExpiresAt, (await env.GetLeaseAsync("quiet"))!.Status!.ExpiresAt);

        bool IsLeasePatch(RecordedRequest r) => r.Method == "PATCH" && r.Path.EndsWith("/leases/quiet", StringComparison.Ordinal);
        var patchesBefore = env.Server.Requests.Count(IsLeasePatch);
        await env.RequestReturnAsync("quiet");
        // Counted after the test's own patch of spec.returnRequested; the operator only reacts to it. Wait until that
        // patch is in the log.
        await Eventually.HoldsAsync(() => Task.FromResult(env.Server.Requests.Count(IsLeasePatch) > patchesBefore), "the return request was logged");
        var beforeReturn = env.Server.Requests.Count;
        var returned = await env.WaitForPhaseAsync("quiet", LeasePhase.AwaitingRatings);
        // Checked before this test reads any Secret itself: until here only the operator talked to the server about Secrets.
        AssertNoSecretReads(env, "grant, restart and return");
        Assert.NotNull(active.Status!.GrantDigest);
        Assert.Equal(active.Status.GrantDigest, returned.Status!.GrantDigest);
        Assert.Null(await env.AccessSecretAsync("quiet"));
        // The return writes no metadata of the Lease: the digest was recorded in status with the grant.
        Assert.DoesNotContain(env.Server.Requests.Skip(beforeReturn), IsLeasePatch);
    }

    [Fact]
    public async Task A_stale_access_secret_is_replaced_without_reading_it()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        // Left over from someone else (or an interrupted earlier attempt): the create answers 409.
        await env.Client.CoreV1.CreateNamespacedSecretAsync(
            new V1Secret
            {
                Metadata = new V1ObjectMeta { Name = GrantIssuer.SecretName("stale"), Annotations = new Dictionary<string, string> { ["left"] = "over" } },
                StringData = new Dictionary<string, string> { ["junk"] = "x" },
            },
            PhaseOneEnvironment.Namespace);
        await env.StartOperatorAsync();
        await env.ApplyAsync(env.Lease("stale").Build());
        var lease = await env.WaitForPhaseAsync("stale", LeasePhase.Active);
        AssertNoSecretReads(env, "replacing a stale Secret");

        var secret = (await env.AccessSecretAsync("stale"))!;
        Assert.Equal(GrantIssuer.SecretType, secret.Type);
        Assert.False(secret.Metadata.Annotations.ContainsKey("left"), "the stale Secret was replaced wholesale");
        Assert.Equal([GrantIssuer.DataKey], secret.Data.Keys);
        Assert.Equal(lease.Status!.GrantDigest, secret.Metadata.Annotations[GrantIssuer.DigestAnnotation]);
        Assert.Contains(env.Server.Requests, r => r.Method == "PUT" && r.Path.EndsWith("/secrets/" + GrantIssuer.SecretName("stale"), StringComparison.Ordinal) && r.StatusCode < 400);
    }

    /// <summary>Fails when any GET of a Secret (read or list, any namespace) was answered so far.</summary>
    private static void AssertNoSecretReads(PhaseOneEnvironment env, string what)
    {
        var reads = env.Server.Requests
            .Where(r => r.Method == "GET" && r.Path.Contains("/secrets", StringComparison.Ordinal))
            .Select(r => $"{r.Path}?{r.Query}")
            .ToList();
        Assert.True(reads.Count == 0, $"{what}: the operator read Secrets: {string.Join("; ", reads)}");
    }
}
