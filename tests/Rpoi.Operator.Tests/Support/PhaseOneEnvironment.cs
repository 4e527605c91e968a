using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Time.Testing;
using Rpoi.Escrow.Client;
using Rpoi.Kube.ApiServer;
using Rpoi.Operator.Entities;
using Rpoi.Operator.Hosting;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Operator.PhaseOne.Grant;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Tests.Shared;

namespace Rpoi.Operator.Tests.Support;

/// <summary>
/// One test's world: the in-memory API server (real HTTP on loopback) with the Lease CRD, the three parties, an
/// in-memory π (or a given one), a fake clock shared by server and operator, and the operator itself, which can be
/// stopped and started again to test restarts. Talks to the server through the real KubernetesClient.
/// </summary>
public sealed class PhaseOneEnvironment : IAsyncDisposable
{
    /// <summary>The namespace tests put leases in unless they make their own.</summary>
    public const string Namespace = "team-a";

    private readonly OperatorReplicas<PhaseOneController> replicas;

    private PhaseOneEnvironment(KubeApiServer server, Kubernetes client, FakeTimeProvider time, TestParties parties, IEscrowClient escrow)
    {
        Server = server;
        Client = client;
        Time = time;
        Parties = parties;
        Escrow = escrow;
        replicas = new OperatorReplicas<PhaseOneController>(server, time);
    }

    /// <summary>The API server.</summary>
    public KubeApiServer Server { get; }

    /// <summary>A client for the test's own reads and writes.</summary>
    public Kubernetes Client { get; }

    /// <summary>The clock of the server and the operator.</summary>
    public FakeTimeProvider Time { get; }

    /// <summary>R, β, π.</summary>
    public TestParties Parties { get; }

    /// <summary>π as the operator sees it.</summary>
    public IEscrowClient Escrow { get; }

    /// <summary>π when it is the in-memory one (null when a real service was given).</summary>
    public InMemoryEscrow? FakeEscrow => Escrow as InMemoryEscrow;

    /// <summary>The first running operator replica, if any.</summary>
    public PhaseOneController? Operator => replicas.Running.FirstOrDefault();

    /// <summary>The phase I options the operator runs with.</summary>
    public PhaseOneOptions Options => new()
    {
        Leaser = Parties.Leaser,
        EscrowAddress = Parties.Escrow.Identity.Address,
        Cluster = new ClusterEndpointOptions(Server.Url, null),
        DefaultRatingWindow = TimeSpan.FromHours(72),
    };

    /// <summary>Starts a server with the CRDs and the test namespace, and funds the renter on π.</summary>
    public static async Task<PhaseOneEnvironment> StartAsync(TestParties? parties = null, Func<TestParties, TimeProvider, IEscrowClient>? escrow = null)
    {
        var time = new FakeTimeProvider(Truncate(DateTimeOffset.UtcNow));
        var server = await KubeApiServer.StartAsync(new KubeApiServerOptions { TimeProvider = time, BookmarkInterval = TimeSpan.FromSeconds(5) });
        var client = new Kubernetes(new KubernetesClientConfiguration { Host = server.Url, AccessToken = server.Options.Token });
        parties ??= new TestParties();
        var pi = escrow?.Invoke(parties, time) ?? new InMemoryEscrow(parties.Escrow, time, parties.Leaser.Identity);
        var env = new PhaseOneEnvironment(server, client, time, parties, pi);
        foreach (var file in Directory.GetFiles(RepoPaths.Crds, "rpoi.io_*.yaml"))
        {
            var crd = KubernetesYaml.Deserialize<V1CustomResourceDefinition>(await File.ReadAllTextAsync(file));
            await client.ApiextensionsV1.CreateCustomResourceDefinitionAsync(crd);
        }

        await env.CreateNamespaceAsync(Namespace);
        if (pi is InMemoryEscrow fake)
        {
            await fake.DepositAsync(new DepositRequest("fund-renter", parties.Renter.Identity.Address, new EscrowAmount("1000000000", "uusd")));
        }

        return env;
    }

    /// <summary>A lease builder for this environment's renter, leaser and escrow, signed "now" on the fake clock.</summary>
    public LeaseBuilder Lease(string name, string? @namespace = null) =>
        LeaseBuilder.For(Parties.Renter).In(@namespace ?? Namespace, name).To(Parties.Leaser, Parties.Escrow).SignedAt(Time.GetUtcNow());

    /// <summary>Creates a namespace.</summary>
    public async Task CreateNamespaceAsync(string name) =>
        await Client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = name } });

    /// <summary>
    /// Starts an operator replica (phase I controller on the Rpoi.Kube host) in the background. Calling it twice runs
    /// two replicas without leader election: the worst case for claim exclusivity.
    /// </summary>
    public Task StartOperatorAsync(int workers = 2) =>
        replicas.StartAsync(
            (_, builder) => PhaseOneController.Register(builder, Options, Escrow, workers: workers),
            controller => controller.Controller.Queue is not null,
            "the operator's informers synced and its controller started");

    /// <summary>Stops every operator replica (a crash or a rollout, from the cluster's point of view).</summary>
    public Task StopOperatorAsync() => replicas.StopAllAsync();

    /// <summary>Creates the Lease.</summary>
    public async Task<Lease> ApplyAsync(Lease lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        return await Client.CustomObjects.CreateNamespacedCustomObjectAsync<Lease>(lease, Entities.Lease.Group, Entities.Lease.Version, lease.Metadata.NamespaceProperty, Entities.Lease.Plural);
    }

    /// <summary>Reads the Lease, or null.</summary>
    public async Task<Lease?> GetLeaseAsync(string name, string? @namespace = null)
    {
        try
        {
            return await Client.CustomObjects.GetNamespacedCustomObjectAsync<Lease>(Entities.Lease.Group, Entities.Lease.Version, @namespace ?? Namespace, Entities.Lease.Plural, name);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Waits until the Lease reaches <paramref name="phase"/> and returns it.</summary>
    public Task<Lease> WaitForPhaseAsync(string name, LeasePhase phase, string? @namespace = null, TimeSpan? timeout = null) =>
        Eventually.ReturnsAsync(() => GetLeaseAsync(name, @namespace), l => l.Status?.Phase == phase, $"Lease {name} reaches phase {phase}", Time, timeout);

    /// <summary>Sets <c>spec.returnRequested</c>.</summary>
    public async Task RequestReturnAsync(string name, string? @namespace = null)
    {
        var patch = new V1Patch("{\"spec\":{\"returnRequested\":true}}", V1Patch.PatchType.MergePatch);
        await Client.CustomObjects.PatchNamespacedCustomObjectAsync(patch, Entities.Lease.Group, Entities.Lease.Version, @namespace ?? Namespace, Entities.Lease.Plural, name);
    }

    /// <summary>Deletes the Lease (the finalizer keeps it until the operator released it).</summary>
    public async Task DeleteLeaseAsync(string name, string? @namespace = null) =>
        await Client.CustomObjects.DeleteNamespacedCustomObjectAsync(Entities.Lease.Group, Entities.Lease.Version, @namespace ?? Namespace, Entities.Lease.Plural, name);

    /// <summary>All nodes.</summary>
    public async Task<IList<V1Node>> NodesAsync() => (await Client.CoreV1.ListNodeAsync()).Items;

    /// <summary>Nodes claimed by the lease named <paramref name="name"/>.</summary>
    public async Task<IReadOnlyList<V1Node>> NodesOfAsync(string name, string? @namespace = null) =>
        (await NodesAsync()).Where(n => TpuSlices.LabelOf(n, TpuLabels.LeaseNameLabel) == name && TpuSlices.LabelOf(n, TpuLabels.LeaseNamespaceLabel) == (@namespace ?? Namespace)).ToList();

    /// <summary>The access Secret of a lease, or null.</summary>
    public async Task<V1Secret?> AccessSecretAsync(string name, string? @namespace = null)
    {
        try
        {
            return await Client.CoreV1.ReadNamespacedSecretAsync(GrantIssuer.SecretName(name), @namespace ?? Namespace);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Whether the lease's ServiceAccount, Role and RoleBinding exist (all three, or which ones).</summary>
    public async Task<(bool ServiceAccount, bool Role, bool RoleBinding)> AccessObjectsAsync(string name, string? @namespace = null)
    {
        var ns = @namespace ?? Namespace;
        var accessName = LeaseAccess.AccessName(name);
        var sa = (await Client.CoreV1.ListNamespacedServiceAccountAsync(ns)).Items.Any(s => s.Metadata.Name == accessName);
        var role = (await Client.RbacAuthorizationV1.ListNamespacedRoleAsync(ns)).Items.Any(s => s.Metadata.Name == accessName);
        var binding = (await Client.RbacAuthorizationV1.ListNamespacedRoleBindingAsync(ns)).Items.Any(s => s.Metadata.Name == accessName);
        return (sa, role, binding);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await StopOperatorAsync();
        Client.Dispose();
        await Server.DisposeAsync();
    }

    private static DateTimeOffset Truncate(DateTimeOffset t) => new(t.UtcTicks - (t.UtcTicks % TimeSpan.TicksPerSecond), TimeSpan.Zero);
}
