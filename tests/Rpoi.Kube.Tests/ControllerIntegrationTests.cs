using k8s;
using System.Collections.Concurrent;
using k8s.Models;
using Microsoft.Extensions.Time.Testing;
using Prometheus;
using Rpoi.Kube.Controllers;
using Rpoi.Kube.Informers;
using Rpoi.Kube.Observability;
using Rpoi.Kube.Queue;
using Rpoi.Tests.Shared;

namespace Rpoi.Kube.Tests;

/// <summary>Informer → queue → workers → reconciler against the in-memory API server.</summary>
public sealed class ControllerIntegrationTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    /// <summary>A reconciler scripted per test: records what it saw and answers with <see cref="Answer"/>.</summary>
    private sealed class ScriptedReconciler : IReconciler<Widget>
    {
        public ConcurrentQueue<(string Name, int Size, long At)> Seen { get; } = new();

        public ConcurrentQueue<ObjectKey> Deleted { get; } = new();

        public Func<Widget, int, CancellationToken, Task<ReconcileResult>> Answer { get; set; } = (_, _, _) => Task.FromResult(ReconcileResult.Done);

        public int Count => Seen.Count;

        public int SizeSeenLast(string name) => Seen.LastOrDefault(s => s.Name == name).Size;

        public Task<ReconcileResult> ReconcileAsync(Widget entity, CancellationToken cancellationToken)
        {
            Seen.Enqueue((entity.Metadata.Name, entity.Spec.Size, System.Diagnostics.Stopwatch.GetTimestamp()));
            return Answer(entity, Seen.Count, cancellationToken);
        }

        public Task DeletedAsync(ObjectKey key, CancellationToken cancellationToken)
        {
            Deleted.Enqueue(key);
            return Task.CompletedTask;
        }
    }

    private static (Informer<Widget> Informer, Controller<Widget> Controller) Build(WidgetCluster cluster, IReconciler<Widget> reconciler, ControllerOptions? options = null)
    {
        var informer = new Informer<Widget>(cluster.Widgets, new InformerOptions { InitialBackoff = TimeSpan.FromMilliseconds(50) });
        return (informer, new Controller<Widget>("widgets", informer, cluster.Widgets, reconciler, options));
    }

    [Fact]
    public async Task An_event_storm_on_one_object_collapses_into_few_reconciles_that_see_the_final_state()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        await cluster.CreateAsync("storm", 0);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reconciler = new ScriptedReconciler();

        // The first reconcile holds its key while the storm arrives, as a slow reconcile would.
        reconciler.Answer = async (_, n, _) =>
        {
            if (n == 1)
            {
                await gate.Task;
            }

            return ReconcileResult.Done;
        };
        var (informer, controller) = Build(cluster, reconciler);
        await using var informerRun = Background.Run(informer.RunAsync);
        await using var controllerRun = Background.Run(controller.RunAsync);
        await Eventually.HoldsAsync(() => reconciler.Count == 1);

        for (var i = 1; i <= 1000; i++)
        {
            await cluster.SetSizeAsync("storm", i);
        }

        await Eventually.HoldsAsync(() => informer.Store.Get(new ObjectKey(cluster.Namespace, "storm"))?.Spec.Size == 1000);
        gate.SetResult();
        await Eventually.HoldsAsync(() => reconciler.SizeSeenLast("storm") == 1000, Timeout);
        await Eventually.HoldsAsync(() => controller.Queue is { Count: 0, InFlight: 0 });

        Assert.InRange(reconciler.Count, 2, 3);
        Assert.Single(reconciler.Seen, s => s.Size == 0);
    }

    [Fact]
    public async Task Errors_requeue_with_per_key_exponential_backoff_then_forget_on_success()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        var time = new FakeTimeProvider();
        var metrics = new KubeMetrics(Metrics.NewCustomRegistry());
        var reconciler = new ScriptedReconciler
        {
            Answer = (_, n, _) => Task.FromResult(n <= 3 ? ReconcileResult.Error($"attempt {n} failed") : ReconcileResult.Done),
        };
        var (informer, controller) = Build(cluster, reconciler, new ControllerOptions
        {
            Time = time,
            Metrics = metrics,
            RateLimiter = new ExponentialFailureRateLimiter<ObjectKey>(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(60)),
        });
        await cluster.CreateAsync("flaky");
        await using var informerRun = Background.Run(informer.RunAsync);
        await using var controllerRun = Background.Run(controller.RunAsync);
        var key = new ObjectKey(cluster.Namespace, "flaky");

        // Retries come after 1 s, 2 s, 4 s of (fake) time, never earlier.
        foreach (var (wait, attempts) in new[] { (1, 2), (2, 3), (4, 4) })
        {
            // The retry's timer must exist before the clock moves, or the advance would be missed.
            await Eventually.HoldsAsync(() => reconciler.Count == attempts - 1 && controller.Queue!.NumRequeues(key) == attempts - 1 && controller.Queue.Delayed == 1);
            time.Advance(TimeSpan.FromSeconds(wait) - TimeSpan.FromMilliseconds(1));
            Assert.Equal(attempts - 1, reconciler.Count);
            time.Advance(TimeSpan.FromMilliseconds(1));
            await Eventually.HoldsAsync(() => reconciler.Count == attempts);
        }

        await Eventually.HoldsAsync(() => controller.Queue!.NumRequeues(key) == 0);
        // Outcomes are counted just after the queue is told, so wait for the last one.
        await Eventually.HoldsAsync(() => metrics.ReconcileTotal.WithLabels("widgets", "success").Value == 1);
        Assert.Equal(3, metrics.ReconcileErrors.WithLabels("widgets").Value);
        Assert.Equal(3, metrics.ReconcileTotal.WithLabels("widgets", "error").Value);
        Assert.Equal(1, metrics.ReconcileTotal.WithLabels("widgets", "success").Value);
        Assert.Equal(3, metrics.WorkQueueRetries.WithLabels("widgets").Value);
    }

    [Fact]
    public async Task RequeueAfter_comes_back_on_the_clock()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        var time = new FakeTimeProvider();
        var reconciler = new ScriptedReconciler { Answer = (_, _, _) => Task.FromResult(ReconcileResult.RequeueAfter(TimeSpan.FromMinutes(5))) };
        var (informer, controller) = Build(cluster, reconciler, new ControllerOptions { Time = time });
        await cluster.CreateAsync("timer");
        await using var informerRun = Background.Run(informer.RunAsync);
        await using var controllerRun = Background.Run(controller.RunAsync);
        // The requeue's timer must exist before the clock moves, or the advance would be missed.
        await Eventually.HoldsAsync(() => reconciler.Count == 1 && controller.Queue!.Delayed == 1);
        time.Advance(TimeSpan.FromMinutes(4));
        Assert.Equal(1, reconciler.Count);
        time.Advance(TimeSpan.FromMinutes(1));
        await Eventually.HoldsAsync(() => reconciler.Count == 2);
    }

    [Fact]
    public async Task The_echo_of_the_reconcilers_own_write_is_skipped_but_anyone_elses_write_is_reconciled()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        await cluster.CreateAsync("echo", 1);
        var writes = new OwnWrites<Widget>();
        var client = writes.Wrap(cluster.Widgets);
        var reconciler = new ScriptedReconciler();
        // Each reconcile records what it saw in status, through the recording client.
        reconciler.Answer = async (w, _, ct) =>
        {
            await StatusUpdates.PatchIfChangedAsync(client, w, w.Status, new WidgetStatus { ObservedSize = w.Spec.Size }, ct);
            return ReconcileResult.Done;
        };
        var (informer, controller) = Build(cluster, reconciler);
        controller.SkipEchoesOf(writes);
        await using var informerRun = Background.Run(informer.RunAsync);
        await using var controllerRun = Background.Run(controller.RunAsync);
        var key = new ObjectKey(cluster.Namespace, "echo");

        // Every event is either reconciled or skipped as an echo: the create, then the status write's echo. Normally the
        // echo is skipped; on a busy machine it can reach the cache before the write's own answer and is then reconciled
        // (that reconcile finds nothing to do). Either way nothing is left recorded.
        await Eventually.HoldsAsync(() => informer.Store.Get(key)?.Status?.ObservedSize == 1);
        await Eventually.HoldsAsync(() => controller.ReconcileCount + controller.SkippedEchoCount == 2);
        Assert.Equal(0, writes.Pending);
        Assert.InRange(controller.ReconcileCount, 1, 2);

        // Someone else's change is reconciled as always, and the echo of the status write it causes is handled the same way.
        await cluster.SetSizeAsync("echo", 2);
        await Eventually.HoldsAsync(() => informer.Store.Get(key)?.Status?.ObservedSize == 2);
        await Eventually.HoldsAsync(() => controller.ReconcileCount + controller.SkippedEchoCount == 4);
        Assert.Equal(0, writes.Pending);
        Assert.InRange(controller.ReconcileCount, 2, 4);
        Assert.Equal([1, 2], reconciler.Seen.Select(s => s.Size).Distinct());
    }

    [Fact]
    public void OwnWrites_matches_exactly_the_recorded_version_once()
    {
        var writes = new OwnWrites<Widget>();
        Widget Version(string rv) => new() { Metadata = new V1ObjectMeta { Name = "w", NamespaceProperty = "ns", ResourceVersion = rv } };
        writes.Record(Version("5"));
        Assert.False(writes.IsEcho(Version("4")));
        Assert.True(writes.IsEcho(Version("5")));
        Assert.False(writes.IsEcho(Version("5")));
        writes.Record(Version("7"));
        writes.Forget(new ObjectKey("ns", "w"));
        Assert.False(writes.IsEcho(Version("7")));
    }

    [Fact]
    public void OwnWrites_leaves_nothing_behind_when_the_echo_is_handled_while_the_write_is_being_recorded()
    {
        var writes = new OwnWrites<Widget>();
        Widget Version(string rv) => new() { Metadata = new V1ObjectMeta { Name = "w", NamespaceProperty = "ns", ResourceVersion = rv } };
        var cached = "4";
        var echoSeenEarly = false;
        // The first look at the cache still finds the old version; right after it, the informer (on its own thread in
        // real life) stores version 5 and the controller checks the echo, before Record has written its entry.
        writes.ObserveCache(_ =>
        {
            var seen = cached;
            if (seen == "4" && !echoSeenEarly)
            {
                cached = "5";
                echoSeenEarly = !writes.IsEcho(Version("5"));
            }

            return seen;
        });

        writes.Record(Version("5"));

        Assert.True(echoSeenEarly);
        Assert.Equal(0, writes.Pending);

        // When the cache did not move, the write stays recorded until its echo arrives.
        writes.Record(Version("6"));
        Assert.Equal(1, writes.Pending);
        Assert.True(writes.IsEcho(Version("6")));
        Assert.Equal(0, writes.Pending);
    }

    [SkippableFact]
    public async Task Status_write_retries_on_409_with_fresh_state_and_skips_unchanged_status()
    {
        Skip.If(TestCluster.RealClusterConfigured, "needs fault injection (409 on widgets/status) and the server request log");
        await using var cluster = await WidgetCluster.StartAsync();
        var created = await cluster.CreateAsync("c", 3);
        var key = ObjectKey.Of(created);
        var time = new FakeTimeProvider();

        // Someone else writes first: our copy's resourceVersion is stale, the server refuses it.
        await cluster.SetSizeAsync("c", 4);
        var stale = await Assert.ThrowsAsync<k8s.Autorest.HttpOperationException>(() =>
            StatusUpdates.PatchIfChangedAsync(cluster.Widgets, created, created.Status, new WidgetStatus { ObservedSize = 3 }, CancellationToken.None));
        Assert.True(Conflicts.IsConflict(stale));

        cluster.Server.Faults.FailNext(2, 409, verb: "patch", resource: "widgets/status");
        var reads = 0;
        var written = await Conflicts.RetryOnConflictAsync(
            async ct =>
            {
                reads++;
                return (await cluster.Widgets.GetAsync(key, ct))!;
            },
            (fresh, ct) =>
            {
                var status = new WidgetStatus { ObservedSize = fresh.Spec.Size, Conditions = [] };
                Conditions.Set(status.Conditions, "Ready", Conditions.True, "Observed", null, fresh.Metadata.Generation, time);
                return StatusUpdates.PatchIfChangedAsync(cluster.Widgets, fresh, fresh.Status, status, ct);
            },
            cancellationToken: CancellationToken.None);

        Assert.Equal(3, reads);
        Assert.Equal(4, written!.Status!.ObservedSize);
        Assert.True(Conditions.IsTrue(written.Status.Conditions, "Ready"));

        var requests = cluster.Server.Requests.Count;
        var same = new WidgetStatus { ObservedSize = 4, Conditions = written.Status.Conditions };
        Assert.Null(await StatusUpdates.PatchIfChangedAsync(cluster.Widgets, written, written.Status, same, CancellationToken.None));
        Assert.Equal(requests, cluster.Server.Requests.Count);
    }

    [SkippableFact]
    public async Task Conflict_retry_gives_up_after_the_attempt_limit()
    {
        Skip.If(TestCluster.RealClusterConfigured, "needs fault injection (409 on widgets/status)");
        await using var cluster = await WidgetCluster.StartAsync();
        var created = await cluster.CreateAsync("d", 1);
        cluster.Server.Faults.FailNext(5, 409, verb: "patch", resource: "widgets/status");
        var e = await Assert.ThrowsAsync<k8s.Autorest.HttpOperationException>(() => Conflicts.RetryOnConflictAsync(
            ct => cluster.Widgets.GetAsync(ObjectKey.Of(created), ct),
            (fresh, ct) => StatusUpdates.PatchIfChangedAsync(cluster.Widgets, fresh!, fresh!.Status, new WidgetStatus { ObservedSize = 9 }, ct),
            attempts: 5));
        Assert.True(Conflicts.IsConflict(e));
    }

    private sealed class RecordingFinalizer : IFinalizer<Widget>
    {
        public ConcurrentQueue<string> Finalized { get; } = new();

        public Task<ReconcileResult> FinalizeAsync(Widget entity, CancellationToken cancellationToken)
        {
            Finalized.Enqueue(entity.Metadata.Name);
            return Task.FromResult(ReconcileResult.Done);
        }
    }

    [Fact]
    public async Task Finalizer_is_added_then_run_and_removed_on_delete()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        var reconciler = new ScriptedReconciler();
        var finalizer = new RecordingFinalizer();
        var (informer, controller) = Build(cluster, reconciler);
        controller.AddFinalizer("example.test/cleanup", finalizer);
        await using var informerRun = Background.Run(informer.RunAsync);
        await using var controllerRun = Background.Run(controller.RunAsync);

        await cluster.CreateAsync("f", 1);
        var key = new ObjectKey(cluster.Namespace, "f");
        await Eventually.HoldsAsync(async () => (await cluster.Widgets.GetAsync(key, CancellationToken.None))?.Metadata.Finalizers?.Contains("example.test/cleanup") == true);

        await cluster.DeleteAsync("f");
        await Eventually.HoldsAsync(async () => await cluster.Widgets.GetAsync(key, CancellationToken.None) is null);
        // Finalizers run at least once, as in Kubernetes: a key re-queued while the cache still shows the deleting object
        // (a busy machine) may run it again before the removal is seen, so finalizers must be idempotent.
        Assert.NotEmpty(finalizer.Finalized);
        Assert.All(finalizer.Finalized, name => Assert.Equal("f", name));
        await Eventually.HoldsAsync(() => reconciler.Deleted.Contains(key));
    }

    [Fact]
    public async Task Stopping_lets_the_reconcile_in_flight_finish_with_a_live_token()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var cancelledDuringWork = false;
        var finished = 0;
        var reconciler = new ScriptedReconciler
        {
            Answer = async (_, _, ct) =>
            {
                await release.Task;
                cancelledDuringWork = ct.IsCancellationRequested;
                Interlocked.Increment(ref finished);
                return ReconcileResult.Done;
            },
        };
        var (informer, controller) = Build(cluster, reconciler);
        await cluster.CreateAsync("slow");
        await using var informerRun = Background.Run(informer.RunAsync);
        var controllerRun = Background.Run(controller.RunAsync);
        await Eventually.HoldsAsync(() => reconciler.Count == 1);

        var stopping = controllerRun.StopAsync();
        Assert.False(stopping.IsCompleted);
        await cluster.CreateAsync("late");
        release.SetResult();
        await stopping;
        await controllerRun.DisposeAsync();

        Assert.Equal(1, finished);
        Assert.False(cancelledDuringWork);
        Assert.Equal(1, reconciler.Count);
        Assert.Null(controller.Queue);
    }

    [Fact]
    public async Task Secondary_watch_maps_related_objects_to_the_owner()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        var reconciler = new ScriptedReconciler();
        var (informer, controller) = Build(cluster, reconciler);
        var secrets = new Informer<V1Secret>(ResourceClients.Secrets(cluster.Client, cluster.Namespace));
        controller.Watch(secrets, s => s.Metadata.Labels is { } l && l.TryGetValue("widget", out var w) ? [new ObjectKey(s.Metadata.NamespaceProperty, w)] : []);
        await cluster.CreateAsync("owner");
        await using var informerRun = Background.Run(informer.RunAsync);
        await using var secretsRun = Background.Run(secrets.RunAsync);
        await using var controllerRun = Background.Run(controller.RunAsync);
        await Eventually.HoldsAsync(() => reconciler.Count == 1);

        await cluster.Client.CoreV1.CreateNamespacedSecretAsync(
            new V1Secret { Metadata = new V1ObjectMeta { Name = "s1", Labels = new Dictionary<string, string> { ["widget"] = "owner" } }, StringData = new Dictionary<string, string> { ["k"] = "v" } },
            cluster.Namespace);
        await Eventually.HoldsAsync(() => reconciler.Count == 2);
        Assert.All(reconciler.Seen, s => Assert.Equal("owner", s.Name));
    }
}
