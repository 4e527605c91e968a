using System.Text;
using k8s;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Operator.PhaseOne.Grant;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Operator.Tests.Support;
using Rpoi.Protocol;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Operator.Tests.PhaseOne;

/// <summary>The happy path: a signed Lease becomes Active with a grant only R opens and β signed.</summary>
public sealed class GrantTests
{
    [Fact]
    public async Task Signed_lease_becomes_active_with_a_grant_only_the_renter_opens()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        var nodes = await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e-2x2", hosts: 2);
        await env.StartOperatorAsync();
        var builder = env.Lease("train").Shape(LeaseBuilder.V5e, "2x2").Chips(4).Duration(TimeSpan.FromHours(2));
        var request = builder.BuildRequest();
        await env.ApplyAsync(builder.Build(request));

        var lease = await env.WaitForPhaseAsync("train", LeasePhase.Active);
        var status = lease.Status!;
        Assert.Equal(RpoiEquations.TransactionHashOf(request).Hex, status.TransactionHash);
        Assert.Equal(env.Parties.Renter.Identity.Address, status.Renter);
        Assert.Equal(4, status.Chips);
        Assert.Single(status.Nodes!);
        Assert.Contains(status.Nodes![0], nodes);
        Assert.Equal("v5e-2x2", status.NodePool);
        Assert.Null(status.QueuePosition);
        Assert.Equal(GrantIssuer.SecretName("train"), status.AccessSecretName);
        Assert.Equal(status.ActiveSince!.Value.AddHours(2), status.ExpiresAt);
        foreach (var type in new[] { LeaseConditions.Verified, LeaseConditions.Pledged, LeaseConditions.Allocated, LeaseConditions.Ready })
        {
            var condition = Assert.Single(status.Conditions!, c => c.Type == type);
            Assert.Equal("True", condition.Status);
        }

        // The claimed node carries the lease's label, UID annotation and taint; the other one stays free.
        var claimed = Assert.Single(await env.NodesOfAsync("train"));
        Assert.Equal(lease.Metadata.Uid, claimed.Metadata.Annotations[TpuLabels.LeaseUidAnnotation]);
        Assert.Contains(claimed.Spec.Taints, t => t.Key == TpuLabels.LeaseTaintKey && t.Value == PhaseOneEnvironment.Namespace && t.Effect == "NoSchedule");
        Assert.Contains(claimed.Spec.Taints, t => t.Key == TpuLabels.GkeTpuTaintKey);
        Assert.Single(await env.NodesAsync(), TpuNodePools.IsClean);

        // The Secret: type, annotations, owner, and a sealed grant that R opens and β signed.
        var secret = await env.AccessSecretAsync("train");
        Assert.NotNull(secret);
        Assert.Equal(GrantIssuer.SecretType, secret.Type);
        Assert.Equal(status.TransactionHash, secret.Metadata.Annotations[GrantIssuer.HashAnnotation]);
        Assert.Equal(env.Parties.Renter.Identity.KeyId, secret.Metadata.Annotations[GrantIssuer.RenterKeyAnnotation]);
        var owner = Assert.Single(secret.Metadata.OwnerReferences);
        Assert.Equal(lease.Metadata.Uid, owner.Uid);
        var sealedGrant = SealedMessage.Parse(Encoding.UTF8.GetString(secret.Data[GrantIssuer.DataKey])).Value;

        var opened = RpoiEquations.OpenGrant(sealedGrant, env.Parties.Renter, request, env.Parties.Leaser.Identity);
        Assert.True(opened.IsOk, opened.Message);
        var sigma = opened.Value.Grant;
        Assert.Equal(status.Nodes, sigma.NodeNames);
        Assert.Equal("2x2", sigma.Topology);
        Assert.Equal("train", sigma.NodeSelector[TpuLabels.LeaseNameLabel]);
        Assert.Equal(PhaseOneEnvironment.Namespace, sigma.Toleration.Value);
        Assert.Equal(status.ExpiresAt, sigma.ValidUntil.UtcDateTime);
        Assert.Equal(opened.Value.GrantDigest, secret.Metadata.Annotations[GrantIssuer.DigestAnnotation]);
        var podLimits = sigma.PodTemplate.GetProperty("spec").GetProperty("containers")[0].GetProperty("resources").GetProperty("limits");
        Assert.Equal("4", podLimits.GetProperty(TpuLabels.TpuResource).GetString());

        // The kubeconfig is usable: it points at the cluster, in the lease's namespace, with the SA token.
        using var kubeconfig = new MemoryStream(Encoding.UTF8.GetBytes(sigma.Kubeconfig));
        var config = KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig);
        Assert.Equal(PhaseOneEnvironment.Namespace, config.Namespace);
        Assert.False(string.IsNullOrEmpty(config.AccessToken));
        using var renterClient = new Kubernetes(config);
        Assert.Empty((await renterClient.CoreV1.ListNamespacedPodAsync(config.Namespace)).Items);
        // Access comes from a RoleBinding in the lease's namespace to the shipped lease-user ClusterRole; no Role per lease.
        Assert.Equal((true, false, true), await env.AccessObjectsAsync("train"));
        var binding = await env.Client.RbacAuthorizationV1.ReadNamespacedRoleBindingAsync(LeaseAccess.AccessName("train"), PhaseOneEnvironment.Namespace);
        Assert.Equal(("ClusterRole", LeaseAccess.DefaultClusterRole), (binding.RoleRef.Kind, binding.RoleRef.Name));
        var subject = Assert.Single(binding.Subjects);
        Assert.Equal(("ServiceAccount", LeaseAccess.AccessName("train"), PhaseOneEnvironment.Namespace), (subject.Kind, subject.Name, subject.NamespaceProperty));
        Assert.Equal(lease.Metadata.Uid, Assert.Single(binding.Metadata.OwnerReferences).Uid);

        // The Lease's status records what a restart and phase II need, so the operator never reads the Secret back, and
        // nothing of the grant lands in the Lease's metadata.
        Assert.Equal(opened.Value.GrantDigest, status.GrantDigest);
        Assert.Equal(sigma.ValidFrom.UtcDateTime, status.ActiveSince);
        Assert.Equal(sigma.ValidUntil.UtcDateTime, status.ExpiresAt);
        Assert.DoesNotContain(lease.Metadata.Annotations ?? new Dictionary<string, string>(), a => a.Key.StartsWith("rpoi.io/", StringComparison.Ordinal));
        var found = GrantIssuer.Find(lease, RpoiEquations.TransactionHashOf(request));
        Assert.Equal(new IssuedGrant(GrantIssuer.SecretName("train"), opened.Value.GrantDigest, sigma.ValidFrom, sigma.ValidUntil), found);
        Assert.Null(GrantIssuer.Find(lease, RpoiEquations.TransactionHashOf(env.Lease("other-h").BuildRequest())));

        // Nobody else opens it: not another renter key, not β, and not under another H.
        var stranger = PartyKeyPair.Generate(PartyRole.Renter);
        Assert.Equal(ReasonCode.WrongRecipient, RpoiEquations.OpenGrant(sealedGrant, stranger, request, env.Parties.Leaser.Identity).Reason);
        var otherRequest = env.Lease("other").BuildRequest();
        Assert.False(RpoiEquations.OpenGrant(sealedGrant, env.Parties.Renter, otherRequest, env.Parties.Leaser.Identity).IsOk);
        // And it is β's signature: verifying under another leaser's key fails.
        var impostor = PartyKeyPair.Generate(PartyRole.Leaser);
        Assert.False(RpoiEquations.OpenGrant(sealedGrant, env.Parties.Renter, request, impostor.Identity).IsOk);

        Assert.Equal(1, env.FakeEscrow!.Debits);
        Assert.Equal("Held", env.FakeEscrow.Pledge(status.TransactionHash!)!.State);
    }
}
