using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Rpoi.Kube.ApiServer.Tests.Support;

namespace Rpoi.Kube.ApiServer.Tests;

/// <summary>
/// <see cref="KubeApiServer.SaveSnapshotAsync"/> and <see cref="KubeApiServerOptions.RestoreFrom"/>: objects of every
/// kind come back as stored, resourceVersions only go up across the restart, old watches get 410, and a bad or half
/// written file is refused or never produced.
/// </summary>
public sealed class SnapshotTests : IAsyncLifetime
{
    /// <summary>A cluster-scoped custom resource, beside the namespaced Widget.</summary>
    private const string GadgetCrd = """
        {"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"gadgets.example.test"},
         "spec":{"group":"example.test","scope":"Cluster","names":{"plural":"gadgets","singular":"gadget","kind":"Gadget"},
          "versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object",
            "properties":{"spec":{"type":"object","properties":{"color":{"type":"string","enum":["red","blue"]}}}}}}}]}}
        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("kube-snapshot-").FullName;
    private readonly List<IAsyncDisposable> _servers = [];
    private readonly List<Kubernetes> _clients = [];

    private string SnapshotPath => Path.Combine(_dir, "objects.json");

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var c in _clients)
        {
            c.Dispose();
        }

        foreach (var s in _servers)
        {
            await s.DisposeAsync();
        }

        Directory.Delete(_dir, recursive: true);
    }

    private async Task<(KubeApiServer Server, Kubernetes Client)> StartAsync(string? restoreFrom = null, bool widgets = true)
    {
        var (server, client) = await TestServer.StartAsync(new KubeApiServerOptions { BookmarkInterval = TimeSpan.FromMilliseconds(200), RestoreFrom = restoreFrom }, widgets);
        _servers.Add(server);
        _clients.Add(client);
        return (server, client);
    }

    /// <summary>A namespace, a Secret, a Node with status, a ServiceAccount, two Widgets (one held by a finalizer while deleted) and a Gadget.</summary>
    private static async Task PopulateAsync(KubeApiServer server, Kubernetes client)
    {
        server.RegisterCustomResourceDefinition(GadgetCrd);
        await client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = "team-x" } });
        await client.CoreV1.CreateNamespacedSecretAsync(new V1Secret
        {
            Metadata = new V1ObjectMeta { Name = "access", Labels = new Dictionary<string, string> { ["app"] = "a" } },
            StringData = new Dictionary<string, string> { ["token"] = "t0k3n" },
        }, "team-x");
        await client.CoreV1.CreateNamespacedServiceAccountAsync(new V1ServiceAccount { Metadata = new V1ObjectMeta { Name = "renter" } }, "team-x");
        var node = await client.CoreV1.CreateNodeAsync(new V1Node { Metadata = new V1ObjectMeta { Name = "n1", Annotations = new Dictionary<string, string> { ["claimed-by"] = "x" } } });
        node.Status = new V1NodeStatus { Allocatable = new Dictionary<string, ResourceQuantity> { ["google.com/tpu"] = new("8") } };
        await client.CoreV1.ReplaceNodeStatusAsync(node, "n1");

        await CreateWidgetAsync(client, Widgets.New("w1", 3, "team-x", "fast"));
        await client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(new V1Patch("""{"spec":{"size":4}}""", V1Patch.PatchType.MergePatch),
            Widgets.Group, Widgets.Version, "team-x", Widgets.Plural, "w1"); // generation 2
        await client.CustomObjects.PatchNamespacedCustomObjectStatusAsync<JsonElement>(
            new V1Patch("""{"status":{"observedGeneration":2,"conditions":[{"type":"Ready","status":"True"}]}}""", V1Patch.PatchType.MergePatch),
            Widgets.Group, Widgets.Version, "team-x", Widgets.Plural, "w1");
        var held = Widgets.New("held", 1, "team-x");
        held["metadata"]!["finalizers"] = new JsonArray("example.test/cleanup");
        await CreateWidgetAsync(client, held);
        await client.CustomObjects.DeleteNamespacedCustomObjectAsync(Widgets.Group, Widgets.Version, "team-x", Widgets.Plural, "held");
        await client.CustomObjects.CreateClusterCustomObjectAsync<JsonElement>(
            new JsonObject { ["apiVersion"] = "example.test/v1", ["kind"] = "Gadget", ["metadata"] = new JsonObject { ["name"] = "g1" }, ["spec"] = new JsonObject { ["color"] = "red" } },
            Widgets.Group, "v1", "gadgets");
    }

    private static Task<JsonElement> CreateWidgetAsync(Kubernetes client, JsonObject widget) =>
        client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonElement>(widget, Widgets.Group, Widgets.Version, widget["metadata"]!["namespace"]!.GetValue<string>(), Widgets.Plural);

    private static readonly (string ApiVersion, string Kind, string? Namespace, string Name)[] Populated =
    [
        ("v1", "Namespace", null, "team-x"),
        ("v1", "Secret", "team-x", "access"),
        ("v1", "ServiceAccount", "team-x", "renter"),
        ("v1", "Node", null, "n1"),
        ("example.test/v1", "Widget", "team-x", "w1"),
        ("example.test/v1", "Widget", "team-x", "held"),
        ("example.test/v1", "Gadget", null, "g1"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition", null, "widgets.example.test"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition", null, "gadgets.example.test"),
    ];

    /// <summary>The "resources" part of a snapshot file (everything but savedAt).</summary>
    private static JsonNode Resources(string path) => JsonNode.Parse(File.ReadAllText(path))!["resources"]!;

    [Fact]
    public async Task Objects_of_every_kind_come_back_exactly_as_stored()
    {
        var (before, client) = await StartAsync();
        await PopulateAsync(before, client);
        var saved = await before.SaveSnapshotAsync(SnapshotPath);

        var (after, client2) = await StartAsync(SnapshotPath, widgets: false);

        Assert.Equal(saved, after.RestoredObjects);
        Assert.Equal(before.ResourceVersion, after.ResourceVersion);
        foreach (var (apiVersion, kind, ns, name) in Populated)
        {
            var original = before.GetObject(apiVersion, kind, ns, name);
            Assert.NotNull(original);
            Assert.True(JsonNode.DeepEquals(original, after.GetObject(apiVersion, kind, ns, name)), $"{kind} {name} changed across the restore");
        }

        // The fields the brief names, spelled out: uid, generation, finalizers, deletionTimestamp, status.
        var w1 = after.GetObject("example.test/v1", "Widget", "team-x", "w1")!;
        Assert.Equal(2, w1["metadata"]!["generation"]!.GetValue<long>());
        Assert.Equal("True", w1["status"]!["conditions"]![0]!["status"]!.GetValue<string>());
        var held = after.GetObject("example.test/v1", "Widget", "team-x", "held")!;
        Assert.NotNull(held["metadata"]!["deletionTimestamp"]);
        Assert.Equal("example.test/cleanup", held["metadata"]!["finalizers"]![0]!.GetValue<string>());
        Assert.Equal("8", after.GetObject("v1", "Node", null, "n1")!["status"]!["allocatable"]!["google.com/tpu"]!.GetValue<string>());

        // Saving the restored server writes the same objects: nothing was added, dropped or rewritten.
        var again = Path.Combine(_dir, "again.json");
        await after.SaveSnapshotAsync(again);
        Assert.True(JsonNode.DeepEquals(Resources(SnapshotPath), Resources(again)));

        // The CRDs are served again, with their schemas: the API validates and the finalizer still completes the deletion.
        var listed = await client2.CustomObjects.ListClusterCustomObjectAsync<JsonElement>(Widgets.Group, "v1", "gadgets");
        Assert.Equal("g1", listed.GetProperty("items")[0].GetProperty("metadata").GetProperty("name").GetString());
        var invalid = await Assert.ThrowsAsync<HttpOperationException>(() => CreateWidgetAsync(client2, Widgets.New("bad", 0, "team-x")));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, invalid.Response.StatusCode);
        await client2.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(new V1Patch("""{"metadata":{"finalizers":null}}""", V1Patch.PatchType.MergePatch),
            Widgets.Group, Widgets.Version, "team-x", Widgets.Plural, "held");
        Assert.Null(after.GetObject("example.test/v1", "Widget", "team-x", "held"));
    }

    [Fact]
    public async Task Resource_versions_only_go_up_and_watches_from_before_the_restart_get_410()
    {
        var (before, client) = await StartAsync();
        var early = await client.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "early" } }, "default");
        await client.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "late" } }, "default");
        await before.SaveSnapshotAsync(SnapshotPath);
        var savedRv = before.ResourceVersion;

        var (after, client2) = await StartAsync(SnapshotPath, widgets: false);

        var list = await client2.CoreV1.ListNamespacedSecretAsync("default");
        Assert.Equal(savedRv.ToString(System.Globalization.CultureInfo.InvariantCulture), list.Metadata.ResourceVersion);
        var fresh = await client2.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "fresh" } }, "default");
        Assert.True(long.Parse(fresh.Metadata.ResourceVersion, System.Globalization.CultureInfo.InvariantCulture) > savedRv);

        // Before the restart: the events since are unknown, so 410 Expired and the client relists (as after compaction).
        var gone = await WatchErrorAsync(client2, early.Metadata.ResourceVersion);
        var kex = Assert.IsType<KubernetesException>(gone);
        Assert.Equal(410, kex.Status.Code);
        Assert.Equal("Expired", kex.Status.Reason);

        // From the list taken after the restart: the watch resumes and sees what came after it, in order.
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await using var events = client2.CoreV1.WatchListNamespacedSecretAsync("default", resourceVersion: list.Metadata.ResourceVersion, cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token);
        Assert.True(await events.MoveNextAsync());
        Assert.Equal((WatchEventType.Added, "fresh"), (events.Current.Item1, events.Current.Item2.Metadata.Name));
    }

    private static async Task<Exception?> WatchErrorAsync(Kubernetes client, string resourceVersion)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Exception? error = null;
        try
        {
            await foreach (var _ in client.CoreV1.WatchListNamespacedSecretAsync("default", resourceVersion: resourceVersion, onError: e => error = e, cancellationToken: cts.Token))
            {
                return new InvalidOperationException("the watch from before the restart delivered an event");
            }
        }
        catch (KubernetesException e)
        {
            error = e;
        }

        return error;
    }

    [Fact]
    public async Task Custom_resources_are_restored_after_their_CRD_whatever_the_order_in_the_file()
    {
        var (before, client) = await StartAsync();
        await CreateWidgetAsync(client, Widgets.New("w", 2));
        await before.SaveSnapshotAsync(SnapshotPath);
        var doc = JsonNode.Parse(File.ReadAllText(SnapshotPath))!.AsObject();
        var resources = doc["resources"]!.AsArray();
        var crds = resources.Single(r => r!["resource"]!.GetValue<string>() == "customresourcedefinitions")!;
        resources.Remove(crds);
        resources.Add(crds);
        var crdsLast = Path.Combine(_dir, "crds-last.json");
        File.WriteAllText(crdsLast, doc.ToJsonString());

        var (after, _) = await StartAsync(crdsLast, widgets: false);

        Assert.NotNull(after.GetObject("example.test/v1", "Widget", "default", "w"));
    }

    [Fact]
    public async Task A_corrupt_foreign_or_missing_snapshot_is_refused_naming_the_file_and_the_fix()
    {
        var (before, client) = await StartAsync();
        await CreateWidgetAsync(client, Widgets.New("w", 2));
        await before.SaveSnapshotAsync(SnapshotPath);
        var text = File.ReadAllText(SnapshotPath);

        var truncated = Write("truncated.json", text[..(text.Length / 2)]);
        var foreign = Write("foreign.json", """{"apiVersion":"v1","kind":"List","items":[]}""");
        var noCrd = JsonNode.Parse(text)!.AsObject();
        var resources = noCrd["resources"]!.AsArray();
        resources.Remove(resources.Single(r => r!["resource"]!.GetValue<string>() == "customresourcedefinitions"));
        var orphans = Write("orphans.json", noCrd.ToJsonString());
        var invalid = Write("invalid.json", text.Replace("\"size\":2", "\"size\":0", StringComparison.Ordinal));
        var missing = Path.Combine(_dir, "missing.json");

        foreach (var (path, why) in new[] { (truncated, "not valid JSON"), (foreign, "not a snapshot"), (orphans, "widgets.example.test"), (invalid, "spec.size"), (missing, "cannot read") })
        {
            var e = await Assert.ThrowsAsync<SnapshotException>(() => KubeApiServer.StartAsync(new KubeApiServerOptions { RestoreFrom = path }));
            Assert.Equal(path, e.Path);
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
            Assert.Contains(why, e.Message, StringComparison.Ordinal);
            if (path != missing)
            {
                Assert.Contains("delete it to start with an empty server", e.Message, StringComparison.Ordinal);
            }
        }

        string Write(string name, string content)
        {
            var path = Path.Combine(_dir, name);
            File.WriteAllText(path, content);
            return path;
        }
    }

    [Fact]
    public async Task A_save_interrupted_before_the_rename_leaves_the_previous_snapshot_whole()
    {
        var (server, client) = await StartAsync();
        await client.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "first" } }, "default");
        await server.SaveSnapshotAsync(SnapshotPath);
        var good = await File.ReadAllBytesAsync(SnapshotPath);
        await client.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "second" } }, "default");

        // The process dies once the temporary file is complete, before it replaces the snapshot.
        string? temp = null;
        server.AfterSnapshotTempWritten = t =>
        {
            temp = t;
            throw new IOException("simulated crash before the rename");
        };
        await Assert.ThrowsAsync<IOException>(() => server.SaveSnapshotAsync(SnapshotPath));

        Assert.Equal(good, await File.ReadAllBytesAsync(SnapshotPath));
        Assert.True(File.Exists(temp), "the interrupted save's temporary file is where a crash would leave it");
        var (restored, _) = await StartAsync(SnapshotPath, widgets: false);
        Assert.NotNull(restored.GetObject("v1", "Secret", "default", "first"));
        Assert.Null(restored.GetObject("v1", "Secret", "default", "second"));

        // The next save replaces the leftover and the snapshot.
        server.AfterSnapshotTempWritten = null;
        await server.SaveSnapshotAsync(SnapshotPath);
        Assert.False(File.Exists(temp));
        var (latest, _) = await StartAsync(SnapshotPath, widgets: false);
        Assert.NotNull(latest.GetObject("v1", "Secret", "default", "second"));
    }
}
