using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Rpoi.Kube.ApiServer;

/// <summary>One request the server answered (for assertions on what a client sent).</summary>
/// <param name="Method">HTTP method.</param>
/// <param name="Path">Request path.</param>
/// <param name="Query">Query string including the leading <c>?</c>, or empty.</param>
/// <param name="ContentType">Request content type, or null.</param>
/// <param name="StatusCode">The status code answered (200 for watches and lists whose response started).</param>
public sealed record RecordedRequest(string Method, string Path, string Query, string? ContentType, int StatusCode);

/// <summary>
/// An in-memory Kubernetes API server on a loopback port, for tests and the local sandbox. It serves discovery,
/// OpenAPI v3, built-in kinds, CRD-defined kinds, watches, tables and Status errors the way kubectl and
/// KubernetesClient expect. It knows nothing about RPOI. Start it with <see cref="StartAsync"/>; dispose it to stop.
/// </summary>
public sealed class KubeApiServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly RequestHandler _handler;
    /// <summary>How many answered requests <see cref="Requests"/> keeps (the oldest are dropped; the sandbox runs for long).</summary>
    public const int RequestLogSize = 10_000;

    private readonly ConcurrentQueue<RecordedRequest> _requests;
    private readonly SemaphoreSlim _snapshotGate = new(1, 1);

    private KubeApiServer(WebApplication app, RequestHandler handler, string url, KubeApiServerOptions options, ConcurrentQueue<RecordedRequest> requests)
    {
        _requests = requests;
        _app = app;
        _handler = handler;
        Url = url;
        Options = options;
    }

    /// <summary>Base URL, e.g. <c>http://127.0.0.1:41234</c>.</summary>
    public string Url { get; }

    /// <summary>The options the server runs with.</summary>
    public KubeApiServerOptions Options { get; }

    /// <summary>Fault injection: failing requests, latency, cut watches.</summary>
    public FaultInjector Faults => _handler.Faults;

    /// <summary>The current (global) resourceVersion.</summary>
    public long ResourceVersion => _handler.Store.CurrentResourceVersion;

    /// <summary>Number of watch streams open now.</summary>
    public int OpenWatches => _handler.Store.WatcherCount;

    /// <summary>Objects restored from <see cref="KubeApiServerOptions.RestoreFrom"/> at start (0 when it started empty).</summary>
    public int RestoredObjects => _handler.RestoredObjects;

    /// <summary>Test hook: called with the temporary file once it is written and before it is renamed into place.</summary>
    internal Action<string>? AfterSnapshotTempWritten { get; set; }

    /// <summary>
    /// Requests answered so far (at most <see cref="RequestLogSize"/>), in the order their responses started; a request
    /// is here before its client can read any of the response.
    /// </summary>
    public IReadOnlyList<RecordedRequest> Requests => _requests.ToArray();

    /// <summary>Starts a server on 127.0.0.1 (port from <paramref name="options"/>, 0 = any free port).</summary>
    public static async Task<KubeApiServer> StartAsync(KubeApiServerOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new KubeApiServerOptions();
        // Built first: restoring a snapshot can fail, and then nothing else has been started.
        var handler = new RequestHandler(options);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, options.Port);
            k.AllowSynchronousIO = false;
        });
        var app = builder.Build();
        var requests = new ConcurrentQueue<RecordedRequest>();
        app.Run(async ctx =>
        {
            // Logged as the response starts, before the client can read any of it: a test that looks at Requests right
            // after its call returned must find that call (logging after the handler returned lost that race under
            // load). A request whose response never started (the client went away first) is logged when it ends.
            var logged = 0;
            ctx.Response.OnStarting(() =>
            {
                Log(ctx.Response.StatusCode);
                return Task.CompletedTask;
            });
            Log(await handler.HandleAsync(ctx).ConfigureAwait(false));

            void Log(int status)
            {
                if (Interlocked.Exchange(ref logged, 1) != 0)
                {
                    return;
                }

                requests.Enqueue(new RecordedRequest(ctx.Request.Method, ctx.Request.Path.Value ?? "",
                    ctx.Request.QueryString.Value ?? "", ctx.Request.ContentType, status));
                while (requests.Count > RequestLogSize && requests.TryDequeue(out _))
                {
                }
            }
        });
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // E.g. the fixed port is taken: release what was built before reporting the failure.
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var port = new Uri(address).Port;
        var url = $"http://127.0.0.1:{port}";
        handler.HostPort = $"127.0.0.1:{port}";
        return new KubeApiServer(app, handler, url, options, requests);
    }

    /// <summary>A kubeconfig (YAML) that points at this server with a bearer token user.</summary>
    public string KubeconfigYaml(string defaultNamespace = "default") =>
        string.Join('\n',
            "apiVersion: v1",
            "kind: Config",
            "clusters:",
            "- name: test",
            "  cluster:",
            $"    server: {Url}",
            "users:",
            "- name: test",
            "  user:",
            $"    token: {Options.Token}",
            "contexts:",
            "- name: test",
            "  context:",
            "    cluster: test",
            "    user: test",
            $"    namespace: {defaultNamespace}",
            "current-context: test",
            "");

    /// <summary>Writes <see cref="KubeconfigYaml"/> to <paramref name="path"/> and returns the path.</summary>
    public string WriteKubeconfig(string path, string defaultNamespace = "default")
    {
        File.WriteAllText(path, KubeconfigYaml(defaultNamespace), new UTF8Encoding(false));
        return path;
    }

    /// <summary>
    /// Creates (or replaces) a CustomResourceDefinition from its JSON, exactly as a POST by kubectl would, and
    /// returns the resource types it now serves. Invalid definitions throw <see cref="ApiException"/>.
    /// </summary>
    public IReadOnlyList<ResourceType> RegisterCustomResourceDefinition(string crdJson) =>
        _handler.RegisterCrd(Json.ParseObject(Encoding.UTF8.GetBytes(crdJson), "CRD"));

    /// <summary>Served resource types (built-in and custom).</summary>
    public IReadOnlyList<ResourceType> ResourceTypes => _handler.Registry.All.ToList();

    /// <summary>A stored object as JSON, or null; for assertions that bypass HTTP.</summary>
    public JsonObject? GetObject(string apiVersion, string kind, string? @namespace, string name)
    {
        var type = _handler.Registry.FindByKind(apiVersion, kind)
            ?? throw new ArgumentException($"no served resource has apiVersion {apiVersion} and kind {kind}", nameof(kind));
        return _handler.Store.TryGet(type, type.Namespaced ? @namespace : null, name) is { } stored
            ? (type.Conversion is null ? (JsonObject)stored.Node.DeepClone() : type.FromStorage(stored.Node))
            : null;
    }

    /// <summary>
    /// Writes every object (CRDs included) and the resourceVersion counter to <paramref name="path"/>, for
    /// <see cref="KubeApiServerOptions.RestoreFrom"/>. The objects are taken at one instant, the file is written as
    /// <c>path.tmp</c> and renamed over <paramref name="path"/>: a crash leaves the previous snapshot whole. Saves are
    /// serialized; the server keeps answering while one runs. Returns the number of objects written.
    /// </summary>
    public async Task<int> SaveSnapshotAsync(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        await _snapshotGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var (rv, buckets) = _handler.Store.Export();
            var savedAt = Options.TimeProvider.GetUtcNow();
            var hook = AfterSnapshotTempWritten;
            await Task.Run(() => Snapshot.Write(path, rv, buckets, savedAt, hook), cancellationToken).ConfigureAwait(false);
            return buckets.Sum(b => b.Objects.Count);
        }
        finally
        {
            _snapshotGate.Release();
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _handler.Store.CutAllWatches();
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _snapshotGate.Dispose();
    }

    internal static string FormatRv(long rv) => rv.ToString(CultureInfo.InvariantCulture);
}
