using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Prometheus;
using Rpoi.Kube.Controllers;
using Rpoi.Kube.Hosting;
using Rpoi.Kube.Informers;
using Rpoi.Tests.Shared;

namespace Rpoi.Kube.Tests;

public sealed class RuntimeExtrasTests
{
    [Fact]
    public void Status_merge_patch_carries_only_the_difference_and_nulls_removed_fields()
    {
        var before = JsonNode.Parse("""{"a":1,"b":{"x":1,"y":2},"c":[1,2],"gone":"v"}""")!.AsObject();
        var after = JsonNode.Parse("""{"a":1,"b":{"x":1,"y":3},"c":[1,2,3],"new":true}""")!.AsObject();
        var patch = StatusUpdates.MergePatch(before, after);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"b":{"y":3},"c":[1,2,3],"gone":null,"new":true}"""), patch), patch.ToJsonString());
    }

    [SkippableFact]
    public async Task Built_in_kinds_work_through_the_same_informer()
    {
        Skip.If(TestCluster.RealClusterConfigured, "creates a Node; a test must not add fake Nodes to a real cluster");
        await using var cluster = await WidgetCluster.StartAsync();
        var nodes = new Informer<V1Node>(ResourceClients.Nodes(cluster.Client));
        await using var run = Background.Run(nodes.RunAsync);
        await nodes.WaitForSyncAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        await cluster.Client.CoreV1.CreateNodeAsync(new V1Node { Metadata = new V1ObjectMeta { Name = "tpu-node-1", Labels = new Dictionary<string, string> { ["pool"] = "tpu" } } });
        await Eventually.HoldsAsync(() => nodes.Store.Get(new ObjectKey(null, "tpu-node-1")) is not null);

        var patched = await ResourceClients.Nodes(cluster.Client).PatchAsync(
            new ObjectKey(null, "tpu-node-1"),
            new V1Patch("""{"metadata":{"labels":{"pool":"tpu-v5e"}}}""", V1Patch.PatchType.MergePatch),
            CancellationToken.None);
        Assert.Equal("tpu-v5e", patched.Metadata.Labels["pool"]);
        await Eventually.HoldsAsync(() => nodes.Store.Get(new ObjectKey(null, "tpu-node-1"))?.Metadata.Labels["pool"] == "tpu-v5e");
    }

    [SkippableFact]
    public async Task The_hosts_shared_informer_caches_what_TransformCached_keeps_and_refuses_a_late_transform()
    {
        Skip.If(TestCluster.RealClusterConfigured, "creates a Node; a test must not add fake Nodes to a real cluster");
        await using var cluster = await WidgetCluster.StartAsync();
        var builder = new OperatorHostBuilder(cluster.Client, Metrics.NewCustomRegistry());
        Func<V1Node, V1Node> dropStatus = n =>
        {
            n.Status = null;
            return n;
        };
        builder.TransformCached(dropStatus);
        var nodes = builder.Informer(ResourceClients.Nodes(cluster.Client));
        Assert.Same(nodes, builder.Informer(ResourceClients.Nodes(cluster.Client)));
        // The same transform again (a second controller sharing the cache asks for it) is no change: accepted.
        Assert.Same(builder, builder.TransformCached(dropStatus));
        var late = Assert.Throws<InvalidOperationException>(() => builder.TransformCached<V1Node>(n => n));
        Assert.Contains("call TransformCached<V1Node> first", late.Message, StringComparison.Ordinal);

        await using var run = Background.Run(nodes.RunAsync);
        await nodes.WaitForSyncAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        await cluster.Client.CoreV1.CreateNodeAsync(new V1Node
        {
            Metadata = new V1ObjectMeta { Name = "tpu-node-t" },
            Status = new V1NodeStatus { Images = [new V1ContainerImage { Names = ["big/image:1"], SizeBytes = 1 }] },
        });
        await Eventually.HoldsAsync(() => nodes.Store.Get(new ObjectKey(null, "tpu-node-t")) is not null);

        Assert.Null(nodes.Store.Get(new ObjectKey(null, "tpu-node-t"))!.Status);
        // The server still has the whole object: the transform shapes the cache only.
        Assert.Single((await cluster.Client.CoreV1.ReadNodeAsync("tpu-node-t")).Status.Images);
    }

    [SkippableFact]
    public async Task An_informer_lists_in_pages_of_500_and_caches_every_object()
    {
        Skip.If(TestCluster.RealClusterConfigured, "counts the requests the test server logged");
        await using var cluster = await WidgetCluster.StartAsync();
        await Parallel.ForEachAsync(Enumerable.Range(0, 1_234), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, _) => await cluster.CreateAsync($"w-{i:D4}"));
        var informer = new Informer<Widget>(ResourceClients.Custom<Widget>(cluster.Client, WidgetCluster.Resource, cluster.Namespace));

        await using var run = Background.Run(informer.RunAsync);
        await informer.WaitForSyncAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(1_234, informer.Store.Count);
        var lists = cluster.Server.Requests.Where(q => q.Method == "GET" && q.Path.EndsWith("/" + WidgetCluster.Resource.Plural, StringComparison.Ordinal) && !q.Query.Contains("watch=true", StringComparison.Ordinal)).ToList();
        Assert.True(lists.Count == 3, string.Join("\n", cluster.Server.Requests.Where(q => q.Method == "GET").Select(q => q.Path + "?" + q.Query).Take(10)));
        Assert.All(lists, q => Assert.Contains("limit=500", q.Query, StringComparison.Ordinal));
        Assert.Equal(2, lists.Count(q => q.Query.Contains("continue=", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Untyped_entities_cache_custom_objects_as_json()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        await cluster.CreateAsync("u", 7);
        var informer = new Informer<Rpoi.Kube.Entities.UntypedEntity>(ResourceClients.Custom<Rpoi.Kube.Entities.UntypedEntity>(cluster.Client, WidgetCluster.Resource, cluster.Namespace));
        await using var run = Background.Run(informer.RunAsync);
        await informer.WaitForSyncAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        var u = Assert.Single(informer.Store.List());
        Assert.Equal(("Widget", new ObjectKey(cluster.Namespace, "u")), (u.Kind, ObjectKey.Of(u)));
        Assert.Equal(7, u.Fields["spec"].GetProperty("size").GetInt32());
    }

    [Fact]
    public async Task A_finalizer_patch_on_a_stale_copy_is_refused_and_changes_nothing()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        var stale = await cluster.CreateAsync("s", 1);
        await cluster.SetSizeAsync("s", 2);

        var e = await Assert.ThrowsAsync<k8s.Autorest.HttpOperationException>(() => Finalizers.AddAsync(cluster.Widgets, stale, "example.test/cleanup", CancellationToken.None));
        Assert.Equal(422, (int)e.Response.StatusCode);
        var fresh = (await cluster.Widgets.GetAsync(ObjectKey.Of(stale), CancellationToken.None))!;
        Assert.Null(fresh.Metadata.Finalizers);

        var added = await Finalizers.AddAsync(cluster.Widgets, fresh, "example.test/cleanup", CancellationToken.None);
        Assert.Equal(["example.test/cleanup"], added.Metadata.Finalizers);
        var removed = await Finalizers.RemoveAsync(cluster.Widgets, added, "example.test/cleanup", CancellationToken.None);
        Assert.Empty(removed.Metadata.Finalizers ?? []);
        Assert.Throws<ArgumentException>(() => new Controller<Widget>("x", new Informer<Widget>(cluster.Widgets), cluster.Widgets, new Noop()).AddFinalizer("cleanup", new NoopFinalizer()));
    }

    [Fact]
    public async Task A_finalizer_removal_guarded_by_the_version_a_write_returned_succeeds_where_the_stale_copy_is_refused()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        await cluster.CreateAsync("v", 1);
        var read = (await cluster.Widgets.GetAsync(new ObjectKey(cluster.Namespace, "v"), CancellationToken.None))!;
        var added = await Finalizers.AddAsync(cluster.Widgets, read, "example.test/cleanup", CancellationToken.None);
        var written = (await StatusUpdates.PatchIfChangedAsync(cluster.Widgets, added, added.Status, new WidgetStatus { ObservedSize = 7 }, CancellationToken.None))!;

        var e = await Assert.ThrowsAsync<k8s.Autorest.HttpOperationException>(() => Finalizers.RemoveAsync(cluster.Widgets, added, "example.test/cleanup", CancellationToken.None));
        Assert.Equal(422, (int)e.Response.StatusCode);
        var removed = await Finalizers.RemoveAsync(cluster.Widgets, added, "example.test/cleanup", written.Metadata.ResourceVersion, CancellationToken.None);
        Assert.Empty(removed.Metadata.Finalizers ?? []);
        Assert.Equal(7, removed.Status!.ObservedSize);
    }

    [Fact]
    public async Task A_finalizer_that_writes_status_hands_the_new_version_back_and_the_object_goes_without_a_retry()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        // A fake clock that never moves: a conflict's backoff would never end, and the write's echo is skipped (OwnWrites),
        // so only the handed-back version lets the finalizer go.
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var writes = new OwnWrites<Widget>();
        var builder = new OperatorHostBuilder(cluster.Client, Metrics.NewCustomRegistry(), time);
        var finalizer = new StatusWritingFinalizer(writes.Wrap(cluster.Widgets));
        builder.AddController("widgets", cluster.Widgets, new Noop()).AddFinalizer("example.test/cleanup", finalizer).SkipEchoesOf(writes);
        var host = builder.Build();
        await using var run = Background.Run(host.RunAsync);
        await cluster.CreateAsync("w", 1);
        var key = new ObjectKey(cluster.Namespace, "w");
        await Eventually.HoldsAsync(async () => (await cluster.Widgets.GetAsync(key, CancellationToken.None))?.Metadata.Finalizers?.Contains("example.test/cleanup") == true);

        await cluster.DeleteAsync("w");
        await Eventually.HoldsAsync(async () => await cluster.Widgets.GetAsync(key, CancellationToken.None) is null);
        Assert.True(finalizer.Writes >= 1);
        Assert.Equal(0, host.Metrics.ReconcileTotal.WithLabels("widgets", "error").Value);
    }

    [Fact]
    public async Task A_finalizer_pass_for_an_object_already_gone_is_done_not_an_error()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var builder = new OperatorHostBuilder(cluster.Client, Metrics.NewCustomRegistry(), time);
        // Another pass (a late event the cache still held) already removed the last finalizer, so the object went
        // before this pass's own removal is sent: the server answers 404.
        var finalizer = new AlreadyRemovedFinalizer(cluster.Widgets, "example.test/cleanup");
        builder.AddController("widgets", cluster.Widgets, new Noop()).AddFinalizer("example.test/cleanup", finalizer);
        var host = builder.Build();
        await using var run = Background.Run(host.RunAsync);
        await cluster.CreateAsync("g", 1);
        var key = new ObjectKey(cluster.Namespace, "g");
        await Eventually.HoldsAsync(async () => (await cluster.Widgets.GetAsync(key, CancellationToken.None))?.Metadata.Finalizers?.Contains("example.test/cleanup") == true);

        await cluster.DeleteAsync("g");
        await Eventually.HoldsAsync(() => finalizer.Passes >= 1 && host.Metrics.ReconcileTotal.WithLabels("widgets", "success").Value + host.Metrics.ReconcileTotal.WithLabels("widgets", "error").Value >= 2);
        Assert.Null(await cluster.Widgets.GetAsync(key, CancellationToken.None));
        Assert.Equal(0, host.Metrics.ReconcileTotal.WithLabels("widgets", "error").Value);
    }

    private sealed class AlreadyRemovedFinalizer(IResourceClient<Widget> client, string name) : IFinalizer<Widget>
    {
        private int passes;

        public int Passes => Volatile.Read(ref passes);

        public async Task<ReconcileResult> FinalizeAsync(Widget entity, CancellationToken cancellationToken)
        {
            await Finalizers.RemoveAsync(client, entity, name, cancellationToken);
            Interlocked.Increment(ref passes);
            return ReconcileResult.Done;
        }
    }

    private sealed class StatusWritingFinalizer(IResourceClient<Widget> client) : IFinalizer<Widget>
    {
        private int writes;

        public int Writes => Volatile.Read(ref writes);

        public async Task<ReconcileResult> FinalizeAsync(Widget entity, CancellationToken cancellationToken)
        {
            var written = await StatusUpdates.PatchIfChangedAsync(client, entity, entity.Status, new WidgetStatus { ObservedSize = 99 }, cancellationToken);
            if (written?.Metadata.ResourceVersion is not { } rv)
            {
                return ReconcileResult.Done;
            }

            Interlocked.Increment(ref writes);
            return ReconcileResult.DoneAt(rv);
        }
    }

    [Fact]
    public async Task Host_without_leader_election_reconciles_and_reports_ready_after_sync()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        await cluster.CreateAsync("h");
        var seen = new ConcurrentQueue<string>();
        var builder = new OperatorHostBuilder(cluster.Client, Metrics.NewCustomRegistry());
        builder.AddController("widgets", cluster.Widgets, new Noop(seen), workers: 2);
        var host = builder.Build();
        Assert.False(host.IsReady);
        await using var run = Background.Run(host.RunAsync);
        await Eventually.HoldsAsync(() => host.IsReady && seen.Contains("h"));
        Assert.True(host.IsLeader);
        // The success is counted after the reconciler returns, so it can trail the reconciler's own record by a moment.
        await Eventually.HoldsAsync(() => host.Metrics.ReconcileTotal.WithLabels("widgets", "success").Value == 1);
        Assert.Single(seen);
    }

    private sealed class Noop(ConcurrentQueue<string>? seen = null) : IReconciler<Widget>
    {
        public Task<ReconcileResult> ReconcileAsync(Widget entity, CancellationToken cancellationToken)
        {
            seen?.Enqueue(entity.Metadata.Name);
            return Task.FromResult(ReconcileResult.Done);
        }
    }

    private sealed class NoopFinalizer : IFinalizer<Widget>
    {
        public Task<ReconcileResult> FinalizeAsync(Widget entity, CancellationToken cancellationToken) => Task.FromResult(ReconcileResult.Done);
    }
}

public sealed class CustomEntityTests
{
    [k8s.Models.KubernetesEntity(Group = "example.test", ApiVersion = "v1", Kind = "Gizmo", PluralName = "gizmos")]
    private sealed class Gizmo : Rpoi.Kube.Entities.CustomEntity<GizmoSpec, GizmoStatus>;

    private sealed class GizmoSpec
    {
        public int Size { get; set; }
    }

    private sealed class GizmoStatus
    {
        public bool Ready { get; set; }
    }

    private sealed class Unmarked : Rpoi.Kube.Entities.CustomEntity<GizmoSpec, GizmoStatus>;

    [Fact]
    public void Entity_attribute_locates_the_resource_and_json_uses_kubernetes_field_names()
    {
        Assert.Equal(new Rpoi.Kube.Informers.CustomResource("example.test", "v1", "gizmos"), Rpoi.Kube.Entities.CustomResources.For<Gizmo>());
        var g = k8s.KubernetesJson.Deserialize<Gizmo>("""{"apiVersion":"example.test/v1","kind":"Gizmo","metadata":{"name":"g"},"spec":{"size":3},"status":{"ready":true}}""");
        Assert.Equal(("g", 3, true), (g.Metadata.Name, g.Spec.Size, g.Status!.Ready));
        Assert.Contains("[KubernetesEntity", Assert.Throws<InvalidOperationException>(() => Rpoi.Kube.Entities.CustomResources.For<Unmarked>()).Message, StringComparison.Ordinal);
    }
}
