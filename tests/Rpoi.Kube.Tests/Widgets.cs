using System.Text.Json.Serialization;
using k8s;
using k8s.Models;
using Rpoi.Kube.ApiServer;
using Rpoi.Kube.Informers;
using Rpoi.Tests.Shared;

namespace Rpoi.Kube.Tests;

/// <summary>A test-local custom resource (group example.test), so these tests do not depend on the operator's CRDs.</summary>
public sealed class Widget : IKubernetesObject<V1ObjectMeta>
{
    public const string Group = "runtime.example.test";

    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = $"{Group}/v1";

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = "Widget";

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [JsonPropertyName("spec")]
    public WidgetSpec Spec { get; set; } = new();

    [JsonPropertyName("status")]
    public WidgetStatus? Status { get; set; }
}

public sealed class WidgetSpec
{
    [JsonPropertyName("size")]
    public int Size { get; set; }

    [JsonPropertyName("owner")]
    public string? Owner { get; set; }
}

public sealed class WidgetStatus
{
    [JsonPropertyName("observedSize")]
    public int ObservedSize { get; set; }

    [JsonPropertyName("conditions")]
    public IList<V1Condition>? Conditions { get; set; }
}

/// <summary>
/// The Widget CRD on a <see cref="TestCluster"/>: the in-memory API server by default, or the real cluster
/// named by <c>RPOI_TEST_KUBECONFIG</c>. Each instance has its own fresh namespace.
/// </summary>
internal sealed class WidgetCluster : IAsyncDisposable
{
    public static readonly CustomResource Resource = new(Widget.Group, "v1", "widgets");

    // Its own group (not example.test): the API server tests install a different Widget CRD, and on a
    // real cluster both suites share one set of CRDs.
    private const string Crd = """
        {
          "apiVersion": "apiextensions.k8s.io/v1",
          "kind": "CustomResourceDefinition",
          "metadata": { "name": "widgets.runtime.example.test" },
          "spec": {
            "group": "runtime.example.test",
            "scope": "Namespaced",
            "names": { "plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList" },
            "versions": [{
              "name": "v1", "served": true, "storage": true,
              "subresources": { "status": {} },
              "schema": { "openAPIV3Schema": {
                "type": "object",
                "properties": {
                  "spec": { "type": "object", "properties": { "size": { "type": "integer" }, "owner": { "type": "string" } } },
                  "status": { "type": "object", "x-kubernetes-preserve-unknown-fields": true }
                }
              } }
            }]
          }
        }
        """;

    private WidgetCluster(TestCluster cluster)
    {
        Cluster = cluster;
        Widgets = ResourceClients.Custom<Widget>(Client, Resource, Namespace);
    }

    /// <summary>The underlying fixture.</summary>
    public TestCluster Cluster { get; }

    /// <summary>The in-memory server; only for tests that skip on a real cluster.</summary>
    public KubeApiServer Server => Cluster.Server;

    public bool IsReal => Cluster.IsReal;

    public string Namespace => Cluster.Namespace;

    public Kubernetes Client => Cluster.Client;

    public IResourceClient<Widget> Widgets { get; }

    public static async Task<WidgetCluster> StartAsync(int watchHistory = 10_000, TimeProvider? serverTime = null) =>
        new(await TestCluster.StartAsync(new TestClusterOptions
        {
            Server = new KubeApiServerOptions
            {
                BookmarkInterval = TimeSpan.FromMilliseconds(200),
                WatchHistorySize = watchHistory,
                TimeProvider = serverTime ?? TimeProvider.System,
            },
            Crds = [Crd],
            NamespacePrefix = "kube-tests",
        }));

    public Kubernetes NewClient(params DelegatingHandler[] handlers) => Cluster.NewClient(handlers);

    public async Task<Widget> CreateAsync(string name, int size = 0, string? owner = null)
    {
        var w = new Widget { Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = Namespace }, Spec = new WidgetSpec { Size = size, Owner = owner } };
        var raw = await Client.CustomObjects.CreateNamespacedCustomObjectAsync(w, Resource.Group, Resource.Version, Namespace, Resource.Plural);
        return KubernetesJson.Deserialize<Widget>(KubernetesJson.Serialize(raw));
    }

    public Task<Widget> SetSizeAsync(string name, int size) =>
        Widgets.PatchAsync(new ObjectKey(Namespace, name), new V1Patch($$$"""{"spec":{"size":{{{size}}}}}""", V1Patch.PatchType.MergePatch), CancellationToken.None);

    public Task DeleteAsync(string name) =>
        Client.CustomObjects.DeleteNamespacedCustomObjectAsync(Resource.Group, Resource.Version, Namespace, Resource.Plural, name);

    public ValueTask DisposeAsync() => Cluster.DisposeAsync();
}
