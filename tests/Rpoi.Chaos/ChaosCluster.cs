using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Rpoi.Kube.ApiServer;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Allocation;

namespace Rpoi.Chaos;

/// <summary>A chaos run cannot start: bad flags, an unreadable or unreachable kubeconfig, a cluster it must not touch.</summary>
public sealed class ChaosSetupException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The Kubernetes API a chaos run goes against: the in-process API test server (with its fault injector), or the
/// cluster of a kubeconfig (no server-side faults). Either way the run gets its own namespaces and fake TPU Nodes,
/// each carrying <see cref="RunLabel"/> = <see cref="RunId"/>, so everything it lists, checks and deletes is its own.
/// </summary>
internal sealed class ChaosCluster : IAsyncDisposable
{
    /// <summary>Marks every Node and namespace a run made (not under rpoi.io/, which the end checks look for on nodes).</summary>
    public const string RunLabel = "chaos.rpoi.io/run";

    private readonly KubeApiServer? server;
    private readonly List<string> createdCrds = [];
    private readonly List<string> createdNamespaces = [];
    private readonly List<string> createdNodes = [];
    private readonly CancellationTokenSource stopHeartbeat = new();
    private Task heartbeat = Task.CompletedTask;

    private ChaosCluster(Kubernetes client, string kubeconfigPath, string serverUrl, KubeApiServer? server, string runId, string renterNs, string operatorNs)
    {
        Client = client;
        KubeconfigPath = kubeconfigPath;
        ServerUrl = serverUrl;
        this.server = server;
        RunId = runId;
        RenterNamespace = renterNs;
        OperatorNamespace = operatorNs;
    }

    public Kubernetes Client { get; }

    /// <summary>The kubeconfig the operator replicas are started with.</summary>
    public string KubeconfigPath { get; }

    /// <summary>The API server URL (the operator's <c>--cluster-server</c>).</summary>
    public string ServerUrl { get; }

    public string RunId { get; }

    public string RenterNamespace { get; }

    public string OperatorNamespace { get; }

    /// <summary>The test server's fault injector; null against a kubeconfig's cluster.</summary>
    public FaultInjector? Faults => server?.Faults;

    public bool IsExternal => server is null;

    /// <summary>Label selector of this run's Nodes.</summary>
    public string NodeSelector => $"{RunLabel}={RunId}";

    /// <summary>Starts the in-process API test server with the CRDs registered (the fault-injecting mode).</summary>
    public static async Task<ChaosCluster> StartInProcessAsync(string dir, int seed, string renterNs, string operatorNs, CancellationToken ct)
    {
        var server = await KubeApiServer.StartAsync(ServerOptions([operatorNs, renterNs]), ct).ConfigureAwait(false);
        foreach (var crd in Sandbox.Sandbox.LoadCrds())
        {
            server.RegisterCustomResourceDefinition(crd);
        }

        var client = new Kubernetes(new KubernetesClientConfiguration { Host = server.Url, AccessToken = server.Options.Token });
        var kubeconfig = server.WriteKubeconfig(Path.Combine(dir, "kubeconfig"), operatorNs);
        return new ChaosCluster(client, kubeconfig, server.Url, server, $"seed{seed}", renterNs, operatorNs);
    }

    /// <summary>The test server's options for a chaos run (also for <c>serve-api</c>, the server as a process of its own).</summary>
    public static KubeApiServerOptions ServerOptions(IEnumerable<string> extraNamespaces) => new()
    {
        BookmarkInterval = TimeSpan.FromSeconds(1),
        WatchHistorySize = 500_000,
        WatchQueueCapacity = 100_000,
        ApplySchemaDefaults = true,
        // Watches end on their own too, as a real server ends them after --min-request-timeout.
        MinRequestTimeout = TimeSpan.FromSeconds(20),
        InitialNamespaces = ["default", "kube-system", "kube-public", "kube-node-lease", .. extraNamespaces],
    };

    /// <summary>
    /// Reads <paramref name="kubeconfigPath"/> and proves the cluster answers and may be used, before anything is
    /// created: a missing or unreadable file, an unreachable server, refused credentials or foreign TPU nodes (which the
    /// operator would lease out) all throw <see cref="ChaosSetupException"/> naming the file.
    /// </summary>
    public static async Task<ChaosCluster> ConnectAsync(string kubeconfigPath, int seed, CancellationToken ct)
    {
        var path = Path.GetFullPath(kubeconfigPath);
        if (!File.Exists(path))
        {
            throw new ChaosSetupException($"kubeconfig {path}: no such file (set RPOI_TEST_KUBECONFIG or --kubeconfig to a kubeconfig of the cluster to run against)");
        }

        KubernetesClientConfiguration config;
        try
        {
            config = KubernetesClientConfiguration.BuildConfigFromConfigFile(path);
        }
#pragma warning disable CA1031 // The client throws several types (YAML, KubeConfigException, IO); each means the same here.
        catch (Exception e)
#pragma warning restore CA1031
        {
            throw new ChaosSetupException($"kubeconfig {path} cannot be read: {e.Message.ReplaceLineEndings(" ")}", e);
        }

        var client = new Kubernetes(config);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(15));
            await client.CoreV1.ListNamespaceAsync(limit: 1, cancellationToken: timeout.Token).ConfigureAwait(false);
            var foreign = (await client.CoreV1.ListNodeAsync(labelSelector: TpuLabels.Accelerator, cancellationToken: timeout.Token).ConfigureAwait(false)).Items
                .Where(n => n.Metadata.Labels?.ContainsKey(RunLabel) != true).Select(n => n.Metadata.Name).ToList();
            if (foreign.Count > 0)
            {
                throw new ChaosSetupException($"kubeconfig {path}: the cluster at {config.Host} has TPU nodes the chaos run did not make ({string.Join(", ", foreign.Take(5))}); the operator would lease them out, so use a cluster without TPU nodes (kind, minikube)");
            }
        }
        catch (Exception e) when (e is HttpRequestException or HttpOperationException or OperationCanceledException or IOException && !ct.IsCancellationRequested)
        {
            client.Dispose();
            var why = e is HttpOperationException h ? $"{(int)h.Response.StatusCode} {h.Response.StatusCode}" : e is OperationCanceledException ? "no answer within 15 s" : e.Message.ReplaceLineEndings(" ");
            throw new ChaosSetupException($"kubeconfig {path}: the cluster at {config.Host} cannot be used ({why}); check its server address and credentials", e);
        }

        var runId = FormattableString.Invariant($"s{seed}-{Guid.NewGuid().ToString("N")[..8]}");
        return new ChaosCluster(client, path, config.Host, null, runId, $"rpoi-chaos-{runId}", $"rpoi-chaos-{runId}-op");
    }

    /// <summary>Against a kubeconfig's cluster: installs the CRDs from crds/ that are missing, and makes the run's namespaces.</summary>
    public async Task PrepareAsync(CancellationToken ct)
    {
        if (server is not null)
        {
            return;
        }

        foreach (var json in Sandbox.Sandbox.LoadCrds())
        {
            var crd = KubernetesJson.Deserialize<V1CustomResourceDefinition>(json);
            try
            {
                await Client.ApiextensionsV1.ReadCustomResourceDefinitionAsync(crd.Metadata.Name, cancellationToken: ct).ConfigureAwait(false);
                continue;
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
            {
            }

            crd.Metadata.Labels = new Dictionary<string, string> { [RunLabel] = RunId };
            await Api.RetryAsync(() => Client.ApiextensionsV1.CreateCustomResourceDefinitionAsync(crd, cancellationToken: ct), ct).ConfigureAwait(false);
            createdCrds.Add(crd.Metadata.Name);
        }

        // A new CRD serves only once it is Established.
        foreach (var name in createdCrds)
        {
            await PollAsync(
                $"CustomResourceDefinition {name} Established",
                async () => (await Client.ApiextensionsV1.ReadCustomResourceDefinitionAsync(name, cancellationToken: ct).ConfigureAwait(false)).Status?.Conditions?
                    .Any(c => c.Type == "Established" && c.Status == "True") == true,
                ct).ConfigureAwait(false);
        }

        foreach (var ns in new[] { OperatorNamespace, RenterNamespace })
        {
            createdNamespaces.Add(ns);
            await Api.RetryAsync(
                () => Client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = ns, Labels = new Dictionary<string, string> { [RunLabel] = RunId } } }, cancellationToken: ct),
                ct).ConfigureAwait(false);
        }
    }

    /// <summary>Creates the run's fake TPU Nodes (named after the run, labelled with it).</summary>
    public async Task CreateNodesAsync(IReadOnlyList<Sandbox.SimulatedNodePool> pools, TextWriter log, CancellationToken ct)
    {
        foreach (var node in Sandbox.SandboxNodes.Create(pools))
        {
            node.Metadata.Labels[RunLabel] = RunId;
            if (server is null)
            {
                node.Metadata.Name = $"rpoi-chaos-{RunId}-{node.Metadata.Name["gke-sandbox-".Length..]}";
            }

            createdNodes.Add(node.Metadata.Name);
            await Api.RetryAsync(() => Client.CoreV1.CreateNodeAsync(node, cancellationToken: ct), ct).ConfigureAwait(false);
        }

        if (server is null)
        {
            // No kubelet posts for these nodes, so a real node-lifecycle controller would mark them Ready=Unknown after
            // its grace period (40 s) and the operator would stop using them; the harness posts the heartbeat instead.
            heartbeat = Task.Run(() => HeartbeatAsync(log, stopHeartbeat.Token), CancellationToken.None);
        }
    }

    /// <summary>
    /// Deletes what this run made, also after a failure: its Nodes, its namespaces (after taking the finalizers off
    /// what is left in them, since no operator may be running to remove its own) and the CRDs it installed.
    /// Returns what could not be removed (empty when all is gone).
    /// </summary>
    public async Task<IReadOnlyList<string>> CleanupAsync(CancellationToken ct)
    {
        await stopHeartbeat.CancelAsync().ConfigureAwait(false);
        await heartbeat.ConfigureAwait(false);
        if (server is not null)
        {
            return [];
        }

        var left = new List<string>();
        foreach (var name in createdNodes)
        {
            await TryAsync(left, $"node {name}", () => Client.CoreV1.DeleteNodeAsync(name, cancellationToken: ct)).ConfigureAwait(false);
        }

        foreach (var ns in createdNamespaces)
        {
            foreach (var plural in new[] { Lease.Plural, Rpoi.Operator.Entities.Rating.Plural })
            {
                await TryAsync(left, $"{plural} in {ns}", async () =>
                {
                    var list = (System.Text.Json.JsonElement)await Client.CustomObjects.ListNamespacedCustomObjectAsync(Lease.Group, Lease.Version, ns, plural, cancellationToken: ct).ConfigureAwait(false);
                    foreach (var item in list.GetProperty("items").EnumerateArray())
                    {
                        var name = item.GetProperty("metadata").GetProperty("name").GetString();
                        await Client.CustomObjects.PatchNamespacedCustomObjectAsync(new V1Patch("{\"metadata\":{\"finalizers\":null}}", V1Patch.PatchType.MergePatch), Lease.Group, Lease.Version, ns, plural, name, cancellationToken: ct).ConfigureAwait(false);
                    }
                }).ConfigureAwait(false);
            }

            await TryAsync(left, $"namespace {ns}", () => Client.CoreV1.DeleteNamespaceAsync(ns, cancellationToken: ct)).ConfigureAwait(false);
        }

        foreach (var ns in createdNamespaces)
        {
            await TryAsync(left, $"namespace {ns} (still terminating)", () => PollAsync($"namespace {ns} gone", async () => !(await ExistsAsync(() => Client.CoreV1.ReadNamespaceAsync(ns, cancellationToken: ct)).ConfigureAwait(false)), ct)).ConfigureAwait(false);
        }

        foreach (var name in createdCrds)
        {
            await TryAsync(left, $"customresourcedefinition {name}", () => Client.ApiextensionsV1.DeleteCustomResourceDefinitionAsync(name, cancellationToken: ct)).ConfigureAwait(false);
        }

        return left;
    }

    public async ValueTask DisposeAsync()
    {
        await stopHeartbeat.CancelAsync().ConfigureAwait(false);
        await heartbeat.ConfigureAwait(false);
        stopHeartbeat.Dispose();
        Client.Dispose();
        if (server is not null)
        {
            await server.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task HeartbeatAsync(TextWriter log, CancellationToken ct)
    {
        var since = DateTime.UtcNow;
        var failures = 0;
        while (!ct.IsCancellationRequested)
        {
            var patch = new V1Patch(
                KubernetesJson.Serialize(new { status = new { conditions = new[] { new { type = "Ready", status = "True", reason = "ChaosHeartbeat", message = "posted by the chaos harness", lastHeartbeatTime = DateTime.UtcNow, lastTransitionTime = since } } } }),
                V1Patch.PatchType.StrategicMergePatch);
            foreach (var name in createdNodes)
            {
                try
                {
                    await Client.CoreV1.PatchNodeStatusAsync(patch, name, cancellationToken: ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is HttpRequestException or HttpOperationException or IOException && !ct.IsCancellationRequested)
                {
                    // The next beat tries again (the grace period is four beats long); say so, but only the first few times.
                    if (++failures <= 3)
                    {
                        log.WriteLine($"[chaos] node heartbeat of {name} failed: {e.Message}");
                    }
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return;
                }
            }

            try
            {
                await Task.Delay(TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static async Task<bool> ExistsAsync(Func<Task> read)
    {
        try
        {
            await read().ConfigureAwait(false);
            return true;
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }
    }

    private static async Task TryAsync(List<string> left, string what, Func<Task> action)
    {
        try
        {
            await action().ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
        }
#pragma warning disable CA1031 // Cleanup goes on with the rest and reports what it could not remove.
        catch (Exception e)
#pragma warning restore CA1031
        {
            left.Add($"{what}: {e.Message.ReplaceLineEndings(" ")}");
        }
    }

    private static async Task PollAsync(string what, Func<Task<bool>> condition, CancellationToken ct)
    {
        var deadline = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(120);
        while (!await Api.RetryAsync(condition, ct).ConfigureAwait(false))
        {
            if (DateTimeOffset.UtcNow > deadline)
            {
                throw new TimeoutException($"{what}: not within 120 s");
            }

            await Task.Delay(200, ct).ConfigureAwait(false);
        }
    }
}
