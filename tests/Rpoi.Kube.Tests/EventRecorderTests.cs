using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Prometheus;
using Rpoi.Kube.Controllers;
using Rpoi.Kube.Events;
using Rpoi.Kube.Hosting;
using Rpoi.Kube.Informers;
using Rpoi.Kube.Observability;
using Rpoi.Tests.Shared;

namespace Rpoi.Kube.Tests;

/// <summary>
/// <see cref="KubeEventRecorder"/>: events are queued and sent in the background in order, repeats aggregate into a
/// series, a full queue drops and counts, and flush, dispose and the host's shutdown send what was queued.
/// </summary>
public sealed class EventRecorderTests
{
    private const string Controller = "example.test/widget-controller";

    /// <summary>
    /// Sits between the recorder and the API server: notes every event write (create or patch) in wire order and, while
    /// holding, keeps each one from reaching the server until <see cref="Release"/>, as a slow API server would.
    /// </summary>
    private sealed class EventGate(bool hold) : DelegatingHandler
    {
        private readonly TaskCompletionSource _release = NewSignal(!hold);

        public ConcurrentQueue<JsonNode> Writes { get; } = new();

        public TaskCompletionSource FirstArrived { get; } = NewSignal(false);

        public void Release() => _release.TrySetResult();

        /// <summary>The notes of the creates, in the order they were sent.</summary>
        public IReadOnlyList<string?> CreatedNotes() =>
            [.. Writes.Where(w => w["kind"]?.GetValue<string>() == "Event").Select(w => w["note"]?.GetValue<string>())];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.Method != HttpMethod.Get && request.RequestUri!.AbsolutePath.Contains("/events", StringComparison.Ordinal))
            {
                Writes.Enqueue(JsonNode.Parse(await request.Content!.ReadAsStringAsync(cancellationToken))!);
                FirstArrived.TrySetResult();
                await _release.Task.WaitAsync(cancellationToken);
            }

            return await base.SendAsync(request, cancellationToken);
        }

        private static TaskCompletionSource NewSignal(bool set)
        {
            var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (set)
            {
                signal.SetResult();
            }

            return signal;
        }
    }

    private static Task RecordAsync(IEventRecorder recorder, Widget widget, string note, string reason = "Stepped") =>
        recorder.RecordAsync(widget, EventTypes.Normal, reason, "Step", note, CancellationToken.None);

    private static async Task<IList<Eventsv1Event>> EventsAsync(WidgetCluster cluster) =>
        (await cluster.Client.EventsV1.ListNamespacedEventAsync(cluster.Namespace)).Items;

    [Fact]
    public async Task Record_returns_before_the_api_server_answers_and_flush_waits_for_the_write()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        var widget = await cluster.CreateAsync("slow");
        using var gate = new EventGate(hold: true);
        using var client = cluster.NewClient(gate);
        await using var recorder = new KubeEventRecorder(client, Controller, "replica-a");

        var recorded = RecordAsync(recorder, widget, "queued");

        // Completed although the server has not even seen the write: the caller (a reconcile) goes on at once.
        Assert.True(recorded.IsCompletedSuccessfully);
        await gate.FirstArrived.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(1, recorder.Pending);
        var flush = recorder.FlushAsync(CancellationToken.None);
        Assert.False(flush.IsCompleted);
        Assert.Empty(await EventsAsync(cluster));

        gate.Release();
        Assert.True(await flush);
        Assert.Equal(0, recorder.Pending);
        Assert.Equal("queued", Assert.Single(await EventsAsync(cluster)).Note);
    }

    [Fact]
    public async Task Events_are_sent_in_the_order_they_were_recorded()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        var widget = await cluster.CreateAsync("ordered");
        using var gate = new EventGate(hold: false);
        using var client = cluster.NewClient(gate);
        await using var recorder = new KubeEventRecorder(client, Controller, "replica-a");
        var notes = Enumerable.Range(0, 30).Select(i => $"step {i:00}").ToList();

        // From several threads at once, but each thread's events in its own order; the sequential part checks total order.
        await Task.WhenAll(Enumerable.Range(0, 3).Select(t => Task.Run(async () =>
        {
            for (var i = 0; i < 5; i++)
            {
                await RecordAsync(recorder, widget, $"thread {t} #{i}");
            }
        })));
        foreach (var note in notes)
        {
            await RecordAsync(recorder, widget, note);
        }

        await Eventually.HoldsAsync(() => gate.CreatedNotes().Count == 45, because: "all 45 events were sent");
        var sent = gate.CreatedNotes();
        Assert.Equal(notes, sent.Skip(15));
        for (var t = 0; t < 3; t++)
        {
            Assert.Equal(Enumerable.Range(0, 5).Select(i => $"thread {t} #{i}"), sent.Take(15).Where(n => n!.StartsWith($"thread {t} ", StringComparison.Ordinal)));
        }

        await Eventually.HoldsAsync(async () => (await EventsAsync(cluster)).Count == 45, because: "the server holds all 45 events");
        Assert.Equal(0, recorder.Dropped);
    }

    [Fact]
    public async Task Repeated_identical_events_aggregate_into_a_series()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        var widget = await cluster.CreateAsync("evented");
        await using var recorder = new KubeEventRecorder(cluster.Client, Controller, "replica-a");

        await recorder.RecordAsync(widget, EventTypes.Normal, "Provisioned", "Provision", "chips claimed", CancellationToken.None);
        await recorder.RecordAsync(widget, EventTypes.Normal, "Provisioned", "Provision", "chips claimed", CancellationToken.None);
        await recorder.RecordAsync(widget, EventTypes.Normal, "Provisioned", "Provision", "chips claimed", CancellationToken.None);
        await recorder.RecordAsync(widget, EventTypes.Warning, "Failed", "Provision", "no capacity", CancellationToken.None);

        IList<Eventsv1Event> events = [];
        await Eventually.HoldsAsync(
            async () => (events = await EventsAsync(cluster)).Any(e => e.Reason == "Failed") && events.Any(e => e.Series?.Count == 3),
            because: "the series reached 3 and the warning was written");
        Assert.Equal(2, events.Count);
        var provisioned = Assert.Single(events, e => e.Reason == "Provisioned");
        Assert.Equal(("Widget", "evented", widget.Metadata.Uid), (provisioned.Regarding.Kind, provisioned.Regarding.Name, provisioned.Regarding.Uid));
        Assert.Equal((Controller, "replica-a", "Provision"), (provisioned.ReportingController, provisioned.ReportingInstance, provisioned.Action));
        Assert.Null(Assert.Single(events, e => e.Reason == "Failed").Series);
    }

    [Fact]
    public async Task A_repeat_whose_first_event_is_gone_starts_a_new_event()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        var widget = await cluster.CreateAsync("expired");
        await using var recorder = new KubeEventRecorder(cluster.Client, Controller, "replica-a");
        await RecordAsync(recorder, widget, "same");
        Assert.True(await recorder.FlushAsync(CancellationToken.None));
        var first = Assert.Single(await EventsAsync(cluster));
        await cluster.Client.EventsV1.DeleteNamespacedEventAsync(first.Metadata.Name, cluster.Namespace);

        await RecordAsync(recorder, widget, "same");
        Assert.True(await recorder.FlushAsync(CancellationToken.None));

        var second = Assert.Single(await EventsAsync(cluster));
        Assert.NotEqual(first.Metadata.Name, second.Metadata.Name);
        Assert.Null(second.Series);
        Assert.Equal(0, recorder.Dropped);
    }

    [Fact]
    public async Task A_full_queue_drops_new_events_counts_them_and_warns_once_per_interval()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        var widget = await cluster.CreateAsync("flooded");
        using var gate = new EventGate(hold: true);
        using var client = cluster.NewClient(gate);
        var metrics = new KubeMetrics(Metrics.NewCustomRegistry());
        var log = new WarningLog();
        await using var recorder = new KubeEventRecorder(client, Controller, "replica-a", logger: log)
        {
            Capacity = 2,
            DropWarningInterval = 2,
            Metrics = metrics,
        };

        // e0 is taken by the send loop (held at the server); e1 and e2 fill the queue; e3..e5 find it full.
        await RecordAsync(recorder, widget, "e0");
        await gate.FirstArrived.Task.WaitAsync(TimeSpan.FromSeconds(10));
        foreach (var note in new[] { "e1", "e2", "e3", "e4", "e5" })
        {
            await RecordAsync(recorder, widget, note);
        }

        Assert.Equal(3, recorder.Dropped);
        Assert.Equal(3, metrics.EventsDropped.WithLabels("queue_full").Value);
        Assert.Equal(2, log.Warnings.Count(w => w.Contains("queue_full", StringComparison.Ordinal)));
        Assert.Equal(3, recorder.Pending);

        gate.Release();
        Assert.True(await recorder.FlushAsync(CancellationToken.None));
        Assert.Equal(["e0", "e1", "e2"], (await EventsAsync(cluster)).Select(e => e.Note).Order(StringComparer.Ordinal));
        Assert.Equal(["e0", "e1", "e2"], gate.CreatedNotes());
    }

    [Fact]
    public async Task Dispose_sends_everything_queued_then_drops_later_events()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        var widget = await cluster.CreateAsync("closing");
        using var gate = new EventGate(hold: true);
        using var client = cluster.NewClient(gate);
        var metrics = new KubeMetrics(Metrics.NewCustomRegistry());
        var recorder = new KubeEventRecorder(client, Controller, "replica-a") { Metrics = metrics };
        foreach (var note in new[] { "a", "b", "c" })
        {
            await RecordAsync(recorder, widget, note);
        }

        await gate.FirstArrived.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var disposing = recorder.DisposeAsync().AsTask();
        Assert.False(disposing.IsCompleted);
        await RecordAsync(recorder, widget, "too late");
        Assert.Throws<ObjectDisposedException>(recorder.Start);

        gate.Release();
        await disposing;
        await recorder.DisposeAsync();
        Assert.Equal(["a", "b", "c"], (await EventsAsync(cluster)).Select(e => e.Note).Order(StringComparer.Ordinal));
        Assert.Equal(1, metrics.EventsDropped.WithLabels("stopped").Value);
        Assert.Equal(1, recorder.Dropped);
    }

    [Fact]
    public async Task Flush_and_dispose_give_up_after_the_drain_timeout_and_count_what_was_left()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        var widget = await cluster.CreateAsync("stuck");
        using var gate = new EventGate(hold: true);
        using var client = cluster.NewClient(gate);
        var metrics = new KubeMetrics(Metrics.NewCustomRegistry());
        var recorder = new KubeEventRecorder(client, Controller, "replica-a") { DrainTimeout = TimeSpan.FromMilliseconds(200), Metrics = metrics };
        await RecordAsync(recorder, widget, "in flight");
        await RecordAsync(recorder, widget, "queued");
        await gate.FirstArrived.Task.WaitAsync(TimeSpan.FromSeconds(10));

        // The server never answers: both waits end at the drain timeout instead of hanging a shutdown.
        Assert.False(await recorder.FlushAsync(CancellationToken.None));
        await recorder.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(2, recorder.Dropped);
        Assert.Equal(2, metrics.EventsDropped.WithLabels("shutdown").Value);
        Assert.Equal(0, recorder.Pending);
        Assert.Empty(await EventsAsync(cluster));
    }

    [SkippableFact]
    public async Task A_transient_failure_is_retried_once_and_a_lasting_one_is_dropped_without_throwing()
    {
        Skip.If(TestCluster.RealClusterConfigured, "needs fault injection (errors on events create)");
        await using var cluster = await WidgetCluster.StartAsync();
        var widget = await cluster.CreateAsync("quiet");
        var metrics = new KubeMetrics(Metrics.NewCustomRegistry());
        await using var recorder = new KubeEventRecorder(cluster.Client, Controller, "replica-a") { RetryDelay = TimeSpan.FromMilliseconds(10), Metrics = metrics };

        cluster.Server.Faults.FailNext(1, 503, verb: "create", resource: "events");
        await RecordAsync(recorder, widget, "retried");
        Assert.True(await recorder.FlushAsync(CancellationToken.None));
        Assert.Equal("retried", Assert.Single(await EventsAsync(cluster)).Note);

        cluster.Server.Faults.FailNext(2, 500, verb: "create", resource: "events");
        await RecordAsync(recorder, widget, "failed twice");
        cluster.Server.Faults.FailNext(1, 400, verb: "create", resource: "events");
        await RecordAsync(recorder, widget, "refused");
        Assert.True(await recorder.FlushAsync(CancellationToken.None));

        // A 400 is not retried: had it been, the second try would have found no fault left and created the event.
        Assert.Equal("retried", Assert.Single(await EventsAsync(cluster)).Note);
        Assert.Equal(2, metrics.EventsDropped.WithLabels("write_failed").Value);
    }

    [Fact]
    public async Task Bad_arguments_throw_and_a_cancelled_record_queues_nothing()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        var widget = await cluster.CreateAsync("strict");
        await using var recorder = new KubeEventRecorder(cluster.Client, Controller, "replica-a");
        // Thrown by the call itself, not through the task: a caller's bug is not queued away into a log line.
        var type = Assert.Throws<ArgumentException>(() => { _ = recorder.RecordAsync(widget, "Info", "Seen", "Observe", null, CancellationToken.None); });
        Assert.Equal("type", type.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => new KubeEventRecorder(cluster.Client, Controller, "replica-a") { Capacity = 0 });

        var cancelled = recorder.RecordAsync(widget, EventTypes.Normal, "Seen", "Observe", null, new CancellationToken(canceled: true));
        Assert.True(cancelled.IsCanceled);
        Assert.Equal(0, recorder.Pending);
    }

    [Fact]
    public async Task A_reconcile_is_not_held_by_its_events_and_the_host_sends_them_before_it_stops()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        await cluster.CreateAsync("hosted");
        using var gate = new EventGate(hold: true);
        using var client = cluster.NewClient(gate);
        var builder = new OperatorHostBuilder(client, Metrics.NewCustomRegistry());
        var recorder = builder.EventRecorder(Controller, "replica-a");
        Assert.Same(recorder, builder.EventRecorder(Controller, "replica-a"));
        var reconciled = new ConcurrentQueue<string>();
        builder.AddController("widgets", ResourceClients.Custom<Widget>(client, WidgetCluster.Resource, cluster.Namespace), new Recording(recorder, reconciled));
        var host = builder.Build();
        var run = Background.Run(host.RunAsync);

        // Both events are recorded and the reconcile finished while the first write is still held at the server.
        await gate.FirstArrived.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await Eventually.HoldsAsync(() => reconciled.Contains("hosted") && host.Metrics.ReconcileTotal.WithLabels("widgets", "success").Value == 1);
        Assert.Equal(2, recorder.Pending);

        var stopping = run.StopAsync();
        Assert.False(run.Task.IsCompleted);
        gate.Release();
        await stopping;
        await run.DisposeAsync();

        // No waiting here: the host returned only after the queued events were written.
        Assert.Equal(["first", "second"], (await EventsAsync(cluster)).Select(e => e.Note).Order(StringComparer.Ordinal));
        Assert.Equal(0, recorder.Dropped);
    }

    private sealed class Recording(IEventRecorder events, ConcurrentQueue<string> reconciled) : IReconciler<Widget>
    {
        public async Task<ReconcileResult> ReconcileAsync(Widget entity, CancellationToken cancellationToken)
        {
            await events.RecordAsync(entity, EventTypes.Normal, "Seen", "Reconcile", "first", cancellationToken);
            await events.RecordAsync(entity, EventTypes.Normal, "Seen", "Reconcile", "second", cancellationToken);
            reconciled.Enqueue(entity.Metadata.Name);
            return ReconcileResult.Done;
        }
    }
}
