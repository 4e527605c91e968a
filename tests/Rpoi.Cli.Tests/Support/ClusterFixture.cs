using System.Text.Json;
using k8s;
using k8s.Models;
using Rpoi.Kube.ApiServer;
using Rpoi.Operator.Discovery;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Operator.PhaseOne.Grant;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Cli.Tests.Support;

/// <summary>
/// The Kubernetes API test server with the RPOI CRDs and a discovery ConfigMap, and β's and π's keys, but no
/// operator: tests play β themselves with the Protocol (status, sealed grant, receipt), so each CLI command is
/// checked on exactly the objects it reads.
/// </summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    public const string Namespace = "team-a";

    public KubeApiServer Server { get; private set; } = null!;

    public Kubernetes Client { get; private set; } = null!;

    public PartyKeyPair Leaser { get; } = PartyKeyPair.Generate(PartyRole.Leaser);

    public PartyKeyPair Escrow { get; } = PartyKeyPair.Generate(PartyRole.Escrow);

    public string Dir { get; } = Directory.CreateTempSubdirectory("rpoi-cluster-").FullName;

    public string Kubeconfig => Path.Combine(Dir, "kubeconfig");

    public async Task InitializeAsync()
    {
        Server = await KubeApiServer.StartAsync(new KubeApiServerOptions
        {
            InitialNamespaces = ["default", "kube-system", "kube-public", DiscoveryDocument.DefaultNamespace, Namespace, "team-b"],
        });
        foreach (var crd in Rpoi.Sandbox.Sandbox.LoadCrds())
        {
            Server.RegisterCustomResourceDefinition(crd);
        }

        Server.WriteKubeconfig(Kubeconfig, Namespace);
        Client = new Kubernetes(new KubernetesClientConfiguration { Host = Server.Url, AccessToken = Server.Options.Token });
        var capacity = new[]
        {
            new TpuCapacity(new TpuShape("tpu-v6e-slice", "2x2"), 1, 8, 4, 1),
            new TpuCapacity(new TpuShape("tpu-v5-lite-podslice", "4x4"), 4, 16, 16, 1),
            new TpuCapacity(new TpuShape("tpu-v5-lite-podslice", "2x4"), 1, 16, 8, 1),
        };
        var doc = DiscoveryBuilder.Build(new DiscoveryOptions(Leaser.Identity, Escrow.Identity, new Uri("http://127.0.0.1:1/"), DiscoveryDocument.DefaultNamespace), capacity, DateTimeOffset.UtcNow);
        await DiscoveryPublisher.WriteAsync(Client, DiscoveryBuilder.ToConfigMap(doc, DiscoveryDocument.DefaultNamespace), CancellationToken.None);
    }

    /// <summary>What β does when a lease becomes Active: the status and the sealed grant in <c>&lt;lease&gt;-access</c>.</summary>
    public async Task<AccessGrant> ActivateAsync(string name, PartyKeyPair? signAs = null, int hosts = 1)
    {
        var lease = await GetLeaseAsync(name);
        var em = Signed<LeaseRequest>.Parse(JsonSerializer.Serialize(lease.Spec.Request)).Value;
        var verified = RpoiEquations.VerifyRequest(em).Value;
        var id = new LeaseIdentity(Namespace, name, lease.Metadata.Uid);
        var shape = new TpuShape(em.Payload.Accelerator, em.Payload.Topology);
        var now = DateTimeOffset.UtcNow;
        // As β does: one node per host of the slice, each pod asking for its host's share of the chips.
        var nodes = hosts == 1 ? new[] { $"node-{name}" } : Enumerable.Range(0, hosts).Select(i => $"node-{name}-{i}").ToArray();
        var grant = new AccessGrant(nodes, "pool-a", shape.Accelerator, shape.Topology, PodPlacement.NodeSelector(id, shape), PodPlacement.LeaseToleration(id),
            LeaseAccess.Kubeconfig(new ClusterEndpointOptions(Server.Url, null), id, "lease-token"), PodPlacement.PodTemplate(id, shape, em.Payload.Chips / hosts, "img"), now, now.AddHours(1));
        var sealedGrant = RpoiEquations.SealGrant(verified, grant, signAs ?? Leaser);
        await Client.CoreV1.CreateNamespacedSecretAsync(new V1Secret
        {
            Metadata = new V1ObjectMeta { Name = GrantIssuer.SecretName(name), NamespaceProperty = Namespace },
            Type = GrantIssuer.SecretType,
            Data = new Dictionary<string, byte[]> { [GrantIssuer.DataKey] = sealedGrant.ToUtf8Bytes() },
        }, Namespace);
        await PatchStatusAsync(name, new { phase = "Active", transactionHash = verified.H.Hex, activeSince = now.UtcDateTime, nodes = grant.NodeNames, nodePool = grant.NodePool });
        return grant;
    }

    public async Task<Lease> GetLeaseAsync(string name)
    {
        var raw = await Client.CustomObjects.GetNamespacedCustomObjectAsync(Lease.Group, Lease.Version, Namespace, Lease.Plural, name);
        return KubernetesJson.Deserialize<Lease>(((JsonElement)raw).GetRawText());
    }

    public Task PatchStatusAsync(string name, object status) =>
        Client.CustomObjects.PatchNamespacedCustomObjectStatusAsync(
            new V1Patch(JsonSerializer.Serialize(new { status }), V1Patch.PatchType.MergePatch), Lease.Group, Lease.Version, Namespace, Lease.Plural, name);

    public async Task DisposeAsync()
    {
        Client?.Dispose();
        if (Server is not null)
        {
            await Server.DisposeAsync();
        }

        Directory.Delete(Dir, recursive: true);
    }
}
