using System.Net;
using System.Reflection;
using System.Security.Cryptography;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Rpoi.Escrow;
using Rpoi.Escrow.Client;
using Rpoi.Escrow.Storage;
using Rpoi.Kube.ApiServer;
using Rpoi.Operator.Discovery;
using Rpoi.Operator.Hosting;
using Rpoi.Protocol.Keys;

namespace Rpoi.Sandbox;

/// <summary>
/// The local sandbox: on 127.0.0.1, the Kubernetes API test server with simulated GKE TPU node pools and the RPOI
/// CRDs, the escrow π on SQLite, the operator (β) and its discovery ConfigMap, plus a funded demo renter. Keys, the
/// ledger and the API server's objects (<see cref="SnapshotFile"/>, saved at stop and every
/// <see cref="SandboxOptions.SaveInterval"/>) live in <see cref="SandboxOptions.Directory"/>, so a restart resumes
/// where the sandbox stopped: the operator lists the restored Leases and nodes and carries on from their status.
/// </summary>
public sealed class Sandbox : IAsyncDisposable
{
    /// <summary>The demo renter's key file name in the sandbox directory.</summary>
    public const string RenterKeyFile = "renter.key";

    /// <summary>The API server's objects, saved at stop and restored at start; delete it to start with an empty cluster.</summary>
    public const string SnapshotFile = "api-objects.json";

    private readonly CancellationTokenSource stopping = new();
    private readonly List<Task> background = [];
    private KubeApiServer? api;
    private Microsoft.AspNetCore.Builder.WebApplication? escrowApp;
    private IEscrowStore? store;
    private Kubernetes? client;
    private HttpClient? escrowHttp;
    private TextWriter log = TextWriter.Null;
    private long savedResourceVersion = -1;
    private bool disposed;

    private Sandbox(SandboxOptions options) => Options = options;

    /// <summary>The options it runs with.</summary>
    public SandboxOptions Options { get; }

    /// <summary>What it tells other commands; also written to <c>sandbox.json</c>.</summary>
    public SandboxState State { get; private set; } = null!;

    /// <summary>The API server.</summary>
    public KubeApiServer Api => api!;

    /// <summary>β's keys.</summary>
    public PartyKeyPair Leaser { get; private set; } = null!;

    /// <summary>π's keys.</summary>
    public PartyKeyPair Escrow { get; private set; } = null!;

    /// <summary>The demo renter's keys.</summary>
    public PartyKeyPair Renter { get; private set; } = null!;

    /// <summary>π's admin token (deposits), kept in <c>admin.token</c>.</summary>
    public string AdminToken { get; private set; } = "";

    /// <summary>Whether the hosted operator runs phase II (ratings and settlement with π).</summary>
    public bool Settles { get; private set; }

    /// <summary>Starts everything, writes the kubeconfig and <c>sandbox.json</c>; <paramref name="log"/> gets one line per step.</summary>
    public static async Task<Sandbox> StartAsync(SandboxOptions options, TextWriter log, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        var sandbox = new Sandbox(options);
        try
        {
            await sandbox.StartCoreAsync(log, cancellationToken).ConfigureAwait(false);
            return sandbox;
        }
        catch
        {
            await sandbox.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task StartCoreAsync(TextWriter log, CancellationToken ct)
    {
        this.log = log;
        var dir = Path.GetFullPath(Options.Directory);
        Directory.CreateDirectory(dir);
        var time = Options.Time;
        Leaser = LoadOrCreateKeys(Path.Combine(dir, "leaser.key"), PartyRole.Leaser, time);
        Escrow = LoadOrCreateKeys(Path.Combine(dir, "escrow.key"), PartyRole.Escrow, time);
        Renter = LoadOrCreateKeys(Path.Combine(dir, RenterKeyFile), PartyRole.Renter, time);
        File.WriteAllText(Path.Combine(dir, "renter.identity.json"), Renter.Identity.ToJson() + "\n");
        File.WriteAllText(Path.Combine(dir, "leaser.identity.json"), Leaser.Identity.ToJson() + "\n");
        File.WriteAllText(Path.Combine(dir, "escrow.identity.json"), Escrow.Identity.ToJson() + "\n");
        AdminToken = LoadOrCreateToken(Path.Combine(dir, "admin.token"));

        // 1. The Kubernetes API server (from the objects saved at the last stop, if any), CRDs, namespaces and the
        // simulated TPU nodes; what the snapshot already holds is kept, not created again.
        var snapshot = SnapshotPath;
        api = await KubeApiServer.StartAsync(new KubeApiServerOptions
        {
            Port = Options.ApiPort,
            TimeProvider = time,
            BookmarkInterval = TimeSpan.FromSeconds(5),
            InitialNamespaces = ["default", "kube-system", "kube-public", "kube-node-lease", Options.OperatorNamespace, Options.RenterNamespace],
            RestoreFrom = File.Exists(snapshot) ? snapshot : null,
        }, ct).ConfigureAwait(false);

        // The embedded CRDs replace restored ones, so a rebuilt sandbox serves its own schemas.
        foreach (var crd in LoadCrds())
        {
            api.RegisterCustomResourceDefinition(crd);
        }

        var kubeconfig = api.WriteKubeconfig(Path.Combine(dir, "kubeconfig"), Options.RenterNamespace);
        client = new Kubernetes(new KubernetesClientConfiguration { Host = api.Url, AccessToken = api.Options.Token });
        await CreateNodesAsync(client, ct).ConfigureAwait(false);
        await log.WriteLineAsync($"kubernetes API  {api.Url}  ({Options.NodePools.Sum(p => p.Nodes)} simulated TPU nodes in {Options.NodePools.Count} node pools; " +
            (api.RestoredObjects > 0 ? $"{api.RestoredObjects} objects restored from {snapshot})" : $"objects saved to {snapshot} at stop)")).ConfigureAwait(false);

        // 2. π on SQLite, trusting β, with the demo renter funded once.
        var dbPath = Path.Combine(dir, "escrow.db");
        store = new SqliteEscrowStore(dbPath);
        await store.InitializeAsync(ct).ConfigureAwait(false);
        var escrowOptions = new EscrowOptions { Database = dbPath, KeyFile = Path.Combine(dir, "escrow.key"), GenerateKeyFile = false };
        escrowApp = EscrowHost.Build(escrowOptions, new EscrowHostParts(store, Escrow, time, [Leaser.Identity], System.Text.Encoding.UTF8.GetBytes(AdminToken)),
            $"http://127.0.0.1:{Options.EscrowPort}", b => b.Logging.ClearProviders());
        await escrowApp.StartAsync(ct).ConfigureAwait(false);
        var escrowUrl = BoundUrl(escrowApp.Services);
        escrowHttp = new HttpClient();
        var admin = new EscrowClient(escrowHttp, new EscrowClientOptions { BaseAddress = new Uri(escrowUrl + "/"), Credentials = EscrowCredentials.Admin(AdminToken), Time = time });
        await admin.DepositAsync(new DepositRequest($"sandbox-funding-{Renter.Identity.Address}", Renter.Identity.Address,
            new EscrowAmount(Options.RenterFunding.ToString(System.Globalization.CultureInfo.InvariantCulture), Options.Denom)), ct).ConfigureAwait(false);
        await log.WriteLineAsync($"escrow π        {escrowUrl}  (ledger {dbPath})").ConfigureAwait(false);

        // 3. The operator β, exactly as its container runs it (OperatorApp), and its discovery ConfigMap.
        var started = new TaskCompletionSource<OperatorRuntime>(TaskCreationOptions.RunContinuationsAsynchronously);
        string[] operatorArgs =
        [
            "--leaser-key-file", Path.Combine(dir, "leaser.key"),
            "--escrow-url", escrowUrl + "/",
            "--escrow-address", Escrow.Identity.Address,
            "--cluster-server", api.Url,
            "--kubeconfig", kubeconfig,
            "--namespace", Options.OperatorNamespace,
            "--leader-election", "false",
            "--metrics-port", "-1",
            "--workers", "2",
        ];
        var operatorRun = Task.Run(() => OperatorApp.RunAsync(operatorArgs, stopping.Token, started.SetResult), CancellationToken.None);
        background.Add(operatorRun);
        if (await Task.WhenAny(started.Task, operatorRun).WaitAsync(TimeSpan.FromSeconds(60), ct).ConfigureAwait(false) != started.Task)
        {
            throw new InvalidOperationException($"the operator did not start (exit code {(operatorRun.IsCompleted ? operatorRun.Result : -1)}); its log is above");
        }

        var runtime = await started.Task.ConfigureAwait(false);
        var publisher = new DiscoveryPublisher(client, runtime.PhaseOne.Tpus,
            new DiscoveryOptions(Leaser.Identity, Escrow.Identity, new Uri(escrowUrl + "/"), Options.OperatorNamespace) { RefreshInterval = Options.DiscoveryRefresh },
            time, NullLogger<DiscoveryPublisher>.Instance);
        await PublishDiscoveryAsync(publisher, ct).ConfigureAwait(false);
        background.Add(Task.Run(() => publisher.RunAsync(stopping.Token), CancellationToken.None));
        Settles = runtime.Host.Controllers.Any(c => c.Name == Operator.PhaseTwo.PhaseTwoController.SettlementControllerName);
        await log.WriteLineAsync($"operator β      {Leaser.Identity.Address}  ({(Settles ? "phases I and II" : "phase I only: leases stop at AwaitingRatings")}; discovery: configmap {Options.OperatorNamespace}/{DiscoveryDocument.ConfigMapName})").ConfigureAwait(false);

        State = new SandboxState(Environment.ProcessId, api.Url, escrowUrl, kubeconfig, Path.Combine(dir, RenterKeyFile), Renter.Identity.Address,
            Leaser.Identity.Address, Escrow.Identity.Address, Options.RenterNamespace, Options.OperatorNamespace, OperatorRunning: true, time.GetUtcNow())
        { Settles = Settles };
        State.Save(dir);
        if (Options.SaveInterval > TimeSpan.Zero)
        {
            background.Add(Task.Run(() => SaveEveryAsync(Options.SaveInterval, stopping.Token), CancellationToken.None));
        }
    }

    /// <summary>The file the API server's objects are saved to and restored from.</summary>
    public string SnapshotPath => Path.Combine(Path.GetFullPath(Options.Directory), SnapshotFile);

    /// <summary>
    /// Saves the API server's objects to <see cref="SnapshotPath"/> (atomically: the previous file stays whole until
    /// the new one is complete) unless nothing changed since the last save. Returns whether it wrote.
    /// </summary>
    public async Task<bool> SaveAsync(CancellationToken cancellationToken)
    {
        var rv = Api.ResourceVersion;
        if (rv == Interlocked.Read(ref savedResourceVersion))
        {
            return false;
        }

        await Api.SaveSnapshotAsync(SnapshotPath, cancellationToken).ConfigureAwait(false);
        Interlocked.Exchange(ref savedResourceVersion, rv);
        return true;
    }

    /// <summary>
    /// Crash safety: a save every interval, only when the resourceVersion moved (reading it is one lock; an idle
    /// sandbox writes nothing). A failed save is logged and retried on the next tick.
    /// </summary>
    private async Task SaveEveryAsync(TimeSpan interval, CancellationToken ct)
    {
        using var timer = new PeriodicTimer(interval, Options.Time);
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                try
                {
                    await SaveAsync(ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    await log.WriteLineAsync($"could not save the API objects to {SnapshotPath}: {e.Message}; retrying in {interval.TotalSeconds:0}s").ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping: the final save happens in DisposeAsync once the operator has stopped writing.
        }
    }

    /// <summary>
    /// Publishes discovery once. The operator publishes it too, and after a restore the ConfigMap exists with the old
    /// URLs, so both replace it at once: the loser gets 409, and its next read sees the winner's data.
    /// </summary>
    private static async Task PublishDiscoveryAsync(DiscoveryPublisher publisher, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await publisher.PublishOnceAsync(ct).ConfigureAwait(false);
                return;
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict && attempt < 5)
            {
                // Re-read and compare again.
            }
        }
    }

    /// <summary>The CRD documents (JSON) embedded from <c>crds/</c>.</summary>
    public static IReadOnlyList<string> LoadCrds()
    {
        var assembly = typeof(Sandbox).Assembly;
        var result = new List<string>();
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith("crds/", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var reader = new StreamReader(stream);
            var crd = KubernetesYaml.Deserialize<V1CustomResourceDefinition>(reader.ReadToEnd());
            result.Add(KubernetesJson.Serialize(crd));
        }

        return result.Count > 0 ? result : throw new InvalidOperationException("no CRDs embedded in Rpoi.Sandbox: run 'dotnet run --project operator/Rpoi.Operator -- generate-crds crds/' and rebuild");
    }

    private async Task CreateNodesAsync(Kubernetes kube, CancellationToken ct)
    {
        foreach (var node in SandboxNodes.Create(Options.NodePools))
        {
            V1Node created;
            try
            {
                created = await kube.CoreV1.CreateNodeAsync(node, cancellationToken: ct).ConfigureAwait(false);
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
            {
                continue;
            }

            // Like a kubelet: the status (allocatable TPU chips, Ready) is reported through the status subresource.
            created.Status = node.Status;
            await kube.CoreV1.ReplaceNodeStatusAsync(created, created.Metadata.Name, cancellationToken: ct).ConfigureAwait(false);
        }
    }

    private static string BoundUrl(IServiceProvider services)
    {
        var address = services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return $"http://127.0.0.1:{new Uri(address).Port}";
    }

    private static PartyKeyPair LoadOrCreateKeys(string path, PartyRole role, TimeProvider time)
    {
        if (!File.Exists(path))
        {
            KeyFile.Save(path, PartyKeyPair.Generate(role), time.GetUtcNow());
        }

        var loaded = KeyFile.Load(path);
        return loaded.IsOk ? loaded.Value.Keys : throw new InvalidOperationException($"sandbox key file {path}: {loaded.Message}; delete the sandbox directory to start afresh");
    }

    private static string LoadOrCreateToken(string path)
    {
        if (!File.Exists(path))
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            using var writer = new StreamWriter(new FileStream(path, options));
            writer.Write(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24)));
        }

        return File.ReadAllText(path).Trim();
    }

    /// <summary>
    /// Stops the operator, saves the API server's objects (when the sandbox had fully started), stops π and the API
    /// server, and removes <c>sandbox.json</c>. The keys, the ledger and the saved objects stay.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        await stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(background).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException)
        {
            // Shutting down: a loop that ends by cancellation or is slow to stop must not keep the process alive.
        }

        // After the operator has stopped, so the snapshot holds its last writes; never after a failed start, which
        // would replace a good snapshot with a partial cluster.
        if (api is not null && State is not null)
        {
            try
            {
                var saved = await SaveAsync(CancellationToken.None).ConfigureAwait(false);
                await log.WriteLineAsync(saved ? $"API objects saved to {SnapshotPath}" : $"API objects saved to {SnapshotPath} (unchanged since the last periodic save)").ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                await log.WriteLineAsync($"could not save the API objects to {SnapshotPath}: {e.Message}; the next 'sandbox up' starts from the previous save").ConfigureAwait(false);
            }
        }

        if (escrowApp is not null)
        {
            await escrowApp.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await escrowApp.DisposeAsync().ConfigureAwait(false);
        }

        if (store is not null)
        {
            await store.DisposeAsync().ConfigureAwait(false);
        }

        client?.Dispose();
        escrowHttp?.Dispose();
        if (api is not null)
        {
            await api.DisposeAsync().ConfigureAwait(false);
        }

        if (State is not null && State.Pid == Environment.ProcessId)
        {
            File.Delete(SandboxState.PathIn(Path.GetFullPath(Options.Directory)));
        }

        stopping.Dispose();
    }
}
