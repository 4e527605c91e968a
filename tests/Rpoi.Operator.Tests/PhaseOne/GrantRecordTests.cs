using System.Text;
using k8s;
using Rpoi.Kube.Controllers;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Grant;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Operator.Tests.Support;
using Rpoi.Protocol;
using Rpoi.Protocol.Messages;

namespace Rpoi.Operator.Tests.PhaseOne;

/// <summary>
/// The record of the issued grant σ is the Lease's status (<c>grantDigest</c> with <c>activeSince</c> and
/// <c>expiresAt</c>), written with phase Active: phase I never writes the Lease's metadata except for its finalizer.
/// </summary>
public sealed class GrantRecordTests
{
    [Fact]
    public async Task Phase_one_patches_no_lease_metadata_but_the_finalizer()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        await env.StartOperatorAsync();
        var applied = env.Lease("plain").Build();
        applied.Metadata.Annotations = new Dictionary<string, string> { ["team.example/owner"] = "ml-infra" };
        var before = env.Server.Requests.Count;
        await env.ApplyAsync(applied);

        var active = await env.WaitForPhaseAsync("plain", LeasePhase.Active);
        // The server logs a request as its answer starts, after the watch event the test waited on: the finalizer patch
        // may still be on its way into the log.
        await Eventually.HoldsAsync(() => Task.FromResult(MetadataPatches(env, "plain", before).Count >= 1), "the finalizer patch was logged");
        Assert.Single(MetadataPatches(env, "plain", before));
        Assert.Equal(applied.Metadata.Annotations, active.Metadata.Annotations);
        Assert.Equal([LeaseConditions.Finalizer], active.Metadata.Finalizers);
        Assert.Matches("^[0-9a-f]{64}$", active.Status!.GrantDigest);

        await env.RequestReturnAsync("plain");
        var returned = await env.WaitForPhaseAsync("plain", LeasePhase.AwaitingRatings);
        // With the test's own patch of spec.returnRequested, the whole life counts two writes of the Lease object: the operator's finalizer and that patch.
        await Eventually.HoldsAsync(() => Task.FromResult(MetadataPatches(env, "plain", before).Count >= 2), "the return request was logged");
        Assert.Equal(2, MetadataPatches(env, "plain", before).Count);
        Assert.Equal(applied.Metadata.Annotations, returned.Metadata.Annotations);
        Assert.Equal(active.Status.GrantDigest, returned.Status!.GrantDigest);
    }

    [Fact]
    public async Task A_reconcile_from_a_cache_older_than_the_stored_grant_does_not_issue_again()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        await env.StartOperatorAsync();
        var created = await env.ApplyAsync(env.Lease("lagging").Build());
        var active = await env.WaitForPhaseAsync("lagging", LeasePhase.Active);
        var secret = (await env.AccessSecretAsync("lagging"))!;

        // What a key queued before the Active status write sees when the informer has not delivered that write yet.
        var stale = KubernetesJson.Deserialize<Lease>(KubernetesJson.Serialize(active));
        stale.Status = null;
        stale.Metadata.ResourceVersion = created.Metadata.ResourceVersion;
        var result = await env.Operator!.Reconciler.ReconcileAsync(stale, CancellationToken.None);

        Assert.IsType<ReconcileResult.Retry>(result);
        var after = (await env.GetLeaseAsync("lagging"))!;
        Assert.Equal(active.Metadata.ResourceVersion, after.Metadata.ResourceVersion);
        var secretAfter = (await env.AccessSecretAsync("lagging"))!;
        Assert.Equal(secret.Metadata.ResourceVersion, secretAfter.Metadata.ResourceVersion);
        Assert.Equal(after.Status!.GrantDigest, secretAfter.Metadata.Annotations[GrantIssuer.DigestAnnotation]);
    }

    [Fact]
    public async Task A_crash_between_the_secret_and_the_status_write_reissues_one_consistent_grant()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        // The Secret is written but the status write that would record it fails, as if the operator died in between.
        env.Server.Faults.FailNext(10_000, 500, verb: "patch", resource: "leases/status");
        await env.StartOperatorAsync();
        var builder = env.Lease("torn");
        var request = builder.BuildRequest();
        await env.ApplyAsync(builder.Build(request));
        await Eventually.HoldsAsync(async () => await env.AccessSecretAsync("torn") is not null, "the Secret was written before the status write failed", env.Time);
        Assert.Null((await env.GetLeaseAsync("torn"))!.Status?.GrantDigest);

        await env.StopOperatorAsync();
        env.Server.Faults.Clear();
        await env.StartOperatorAsync();

        // The restart finds no grant in status, so it issues again: the Secret it leaves and the status agree.
        var lease = await env.WaitForPhaseAsync("torn", LeasePhase.Active);
        var secret = (await env.AccessSecretAsync("torn"))!;
        Assert.Equal(lease.Status!.GrantDigest, secret.Metadata.Annotations[GrantIssuer.DigestAnnotation]);
        var opened = RpoiEquations.OpenGrant(SealedMessage.Parse(Encoding.UTF8.GetString(secret.Data[GrantIssuer.DataKey])).Value, env.Parties.Renter, request, env.Parties.Leaser.Identity);
        Assert.True(opened.IsOk, opened.Message);
        Assert.Equal(lease.Status.GrantDigest, opened.Value.GrantDigest);
        Assert.Equal(lease.Status.ExpiresAt, opened.Value.Grant.ValidUntil.UtcDateTime);
        Assert.Equal(1, env.FakeEscrow!.Debits);
    }

    /// <summary>Successful writes (PATCH or PUT) of the Lease object itself, not its status, answered since request <paramref name="from"/>.</summary>
    private static List<string> MetadataPatches(PhaseOneEnvironment env, string name, int from) =>
        [.. env.Server.Requests.Skip(from)
            .Where(r => r.Method is "PATCH" or "PUT" && r.StatusCode < 400 && r.Path.EndsWith($"/leases/{name}", StringComparison.Ordinal))
            .Select(r => r.Path)];
}
