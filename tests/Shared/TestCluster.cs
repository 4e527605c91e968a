using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Rpoi.Kube.ApiServer;

namespace Rpoi.Tests.Shared;

/// <summary>A custom resource type the fixture cleans up after (finalizers stripped before the namespace goes).</summary>
/// <param name="Group">API group, for example <c>rpoi.io</c>.</param>
/// <param name="Version">Served version, for example <c>v1alpha1</c>.</param>
/// <param name="Plural">Plural resource name, for example <c>leases</c>.</param>
public sealed record TrackedResource(string Group, string Version, string Plural);

/// <summary>What a test class needs from its cluster.</summary>
public sealed record TestClusterOptions
{
    /// <summary>Options for the in-memory server (ignored against a real cluster); <c>ApplySchemaDefaults</c> is always turned on.</summary>
    public KubeApiServerOptions? Server { get; init; }

    /// <summary>CRD manifests (YAML or JSON, one document each) installed and waited for until Established.</summary>
    public IReadOnlyList<string> Crds { get; init; } = [];

    /// <summary>Prefix of the fresh namespace; a GUID suffix keeps parallel runs apart.</summary>
    public string NamespacePrefix { get; init; } = "rpoi-test";
}

/// <summary>
/// The cluster an integration test talks to: the in-memory <see cref="KubeApiServer"/> by default, or the
/// real cluster named by <c>RPOI_TEST_KUBECONFIG</c> (kind, GKE, ...). Either way the test gets a fresh
/// namespace, installed CRDs and a KubernetesClient; on dispose the fixture strips the finalizers it may
/// have left on tracked kinds and deletes the namespace, so a real cluster is left as it was found
/// (the CRDs stay installed: other runs share them).
/// </summary>
public sealed class TestCluster : IAsyncDisposable
{
    /// <summary>The environment variable that switches the integration tests to a real cluster.</summary>
    public const string KubeconfigVariable = "RPOI_TEST_KUBECONFIG";

    private readonly KubeApiServer? _server;
    private readonly List<TrackedResource> _tracked = [];
    private readonly string _home;

    private TestCluster(KubeApiServer? server, KubernetesClientConfiguration config, string kubeconfigPath, string @namespace, string home)
    {
        _server = server;
        Config = config;
        KubeconfigPath = kubeconfigPath;
        Namespace = @namespace;
        _home = home;
        Client = new Kubernetes(config);
    }

    /// <summary>The kubeconfig of the real cluster to test against, or null to use the in-memory server.</summary>
    public static string? RealKubeconfig =>
        Environment.GetEnvironmentVariable(KubeconfigVariable) is { Length: > 0 } path ? path : null;

    /// <summary>Whether this test run targets a real cluster (tests needing server-only hooks skip then).</summary>
    public static bool RealClusterConfigured => RealKubeconfig is not null;

    /// <summary>Whether this instance talks to a real cluster.</summary>
    public bool IsReal => _server is null;

    /// <summary>
    /// The in-memory server, for fault injection and other server-only hooks. Tests that use it must first
    /// <c>Skip.If(TestCluster.RealClusterConfigured, ...)</c>.
    /// </summary>
    public KubeApiServer Server => _server ?? throw new InvalidOperationException(
        $"this test uses a test-server-only hook but {KubeconfigVariable} points at a real cluster; skip it with Skip.If(TestCluster.RealClusterConfigured, \"<why>\")");

    /// <summary>The fresh namespace of this fixture (exists until dispose).</summary>
    public string Namespace { get; }

    /// <summary>A kubeconfig file for tools such as kubectl.</summary>
    public string KubeconfigPath { get; }

    /// <summary>Client configuration (for extra clients with their own handlers).</summary>
    public KubernetesClientConfiguration Config { get; }

    /// <summary>A client for the cluster, disposed with the fixture.</summary>
    public Kubernetes Client { get; }

    /// <summary>Starts the server or connects to the real cluster, installs the CRDs and creates the namespace.</summary>
    public static async Task<TestCluster> StartAsync(TestClusterOptions? options = null)
    {
        options ??= new TestClusterOptions();
        var home = Directory.CreateTempSubdirectory("rpoi-cluster-").FullName;
        var @namespace = $"{options.NamespacePrefix}-{Guid.NewGuid():N}"[..Math.Min(63, options.NamespacePrefix.Length + 13)].TrimEnd('-');
        TestCluster cluster;
        if (RealKubeconfig is { } kubeconfig)
        {
            if (!File.Exists(kubeconfig))
            {
                throw new FileNotFoundException($"{KubeconfigVariable}={kubeconfig}: no such kubeconfig file; unset the variable to use the in-memory test server", kubeconfig);
            }

            cluster = new TestCluster(null, KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig), Path.GetFullPath(kubeconfig), @namespace, home);
        }
        else
        {
            // Schema defaults on, as on a real API server, so both modes see the same objects.
            var server = await KubeApiServer.StartAsync((options.Server ?? new KubeApiServerOptions { BookmarkInterval = TimeSpan.FromMilliseconds(200) }) with { ApplySchemaDefaults = true });
            var path = server.WriteKubeconfig(Path.Combine(home, "kubeconfig"));
            cluster = new TestCluster(server, new KubernetesClientConfiguration { Host = server.Url, AccessToken = server.Options.Token }, path, @namespace, home);
        }

        try
        {
            foreach (var crd in options.Crds)
            {
                await cluster.InstallCrdAsync(crd);
            }

            await cluster.Client.CoreV1.CreateNamespaceAsync(new V1Namespace
            {
                Metadata = new V1ObjectMeta { Name = @namespace, Labels = new Dictionary<string, string> { ["rpoi.io/test"] = "true" } },
            });
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>A new client with extra handlers (fault counting, request logging); the caller disposes it.</summary>
    public Kubernetes NewClient(params DelegatingHandler[] handlers) => new(Config, handlers);

    /// <summary>Strip finalizers of this kind in the namespace before it is deleted (for kinds installed by kubectl).</summary>
    public void Track(TrackedResource resource)
    {
        lock (_tracked)
        {
            if (!_tracked.Contains(resource))
            {
                _tracked.Add(resource);
            }
        }
    }

    /// <summary>Creates the CRD, or replaces it when it already exists (a real cluster from an earlier run), and waits until it is Established.</summary>
    public async Task InstallCrdAsync(string manifest)
    {
        var crd = ParseManifest(manifest);
        var name = crd["metadata"]!["name"]!.GetValue<string>();
        try
        {
            await Client.CustomObjects.CreateClusterCustomObjectAsync<JsonElement>(crd, "apiextensions.k8s.io", "v1", "customresourcedefinitions");
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            var existing = await Client.CustomObjects.GetClusterCustomObjectAsync<JsonElement>("apiextensions.k8s.io", "v1", "customresourcedefinitions", name);
            crd["metadata"]!["resourceVersion"] = existing.GetProperty("metadata").GetProperty("resourceVersion").GetString();
            await Client.CustomObjects.ReplaceClusterCustomObjectAsync<JsonElement>(crd, "apiextensions.k8s.io", "v1", "customresourcedefinitions", name);
        }

        var spec = crd["spec"]!;
        foreach (var version in spec["versions"]!.AsArray())
        {
            Track(new TrackedResource(spec["group"]!.GetValue<string>(), version!["name"]!.GetValue<string>(), spec["names"]!["plural"]!.GetValue<string>()));
        }

        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var current = await Client.ApiextensionsV1.ReadCustomResourceDefinitionAsync(name);
            if (current.Status?.Conditions?.Any(c => c.Type == "Established" && c.Status == "True") == true)
            {
                return;
            }

            if (deadline.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new TimeoutException($"CRD {name} was not Established within 30 s: {KubernetesJson.Serialize(current.Status)}");
            }

            await Task.Delay(100); // polling interval
        }
    }

    /// <summary>Parses one YAML or JSON manifest into a JSON object.</summary>
    public static JsonObject ParseManifest(string manifest)
    {
        var trimmed = manifest.TrimStart();
        if (trimmed.StartsWith('{'))
        {
            return JsonNode.Parse(trimmed)!.AsObject();
        }

        var obj = KubernetesYaml.Deserialize<Dictionary<string, object>>(manifest);
        return JsonNode.Parse(JsonSerializer.Serialize(obj))!.AsObject();
    }

    /// <summary>
    /// On a real cluster: strip finalizers from tracked kinds in the namespace (nothing runs to remove them
    /// once the test ends) and delete the namespace. The test server simply stops.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (IsReal)
            {
                await CleanUpRealClusterAsync();
            }
        }
        finally
        {
            Client.Dispose();
            if (_server is not null)
            {
                await _server.DisposeAsync();
            }

            try
            {
                Directory.Delete(_home, recursive: true);
            }
            catch (IOException)
            {
                // A tool still exiting may hold a file; the OS cleans temp directories.
            }
        }
    }

    private async Task CleanUpRealClusterAsync()
    {
        TrackedResource[] tracked;
        lock (_tracked)
        {
            tracked = [.. _tracked];
        }

        foreach (var r in tracked)
        {
            JsonElement list;
            try
            {
                list = await Client.CustomObjects.ListNamespacedCustomObjectAsync<JsonElement>(r.Group, r.Version, Namespace, r.Plural);
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
            {
                continue; // the kind is not served (any more)
            }

            foreach (var item in list.GetProperty("items").EnumerateArray())
            {
                var meta = item.GetProperty("metadata");
                if (!meta.TryGetProperty("finalizers", out var finalizers) || finalizers.GetArrayLength() == 0)
                {
                    continue;
                }

                try
                {
                    await Client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(new V1Patch("""{"metadata":{"finalizers":null}}""", V1Patch.PatchType.MergePatch),
                        r.Group, r.Version, Namespace, r.Plural, meta.GetProperty("name").GetString());
                }
                catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
                {
                    // Gone in the meantime: nothing to strip.
                }
            }
        }

        try
        {
            await Client.CoreV1.DeleteNamespaceAsync(Namespace, new V1DeleteOptions { PropagationPolicy = "Background" });
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            // Already deleted by the test.
        }
    }
}
