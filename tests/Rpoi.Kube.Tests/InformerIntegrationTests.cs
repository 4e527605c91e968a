using System.Collections.Concurrent;
using Microsoft.Extensions.Time.Testing;
using Rpoi.Kube.Informers;
using Rpoi.Tests.Shared;

namespace Rpoi.Kube.Tests;

/// <summary>The informer against the in-memory API server: resume, 410 re-list, indexes.</summary>
public sealed class InformerIntegrationTests
{
    private sealed class Recorder : IResourceEventHandler<Widget>
    {
        public ConcurrentQueue<(string Type, string Name, long Rv)> Events { get; } = new();

        public void OnAdd(Widget obj, bool isInInitialList) => Record("add", obj);

        public void OnUpdate(Widget oldObj, Widget newObj) => Record("update", newObj);

        public void OnDelete(Widget lastKnown) => Record("delete", lastKnown);

        private void Record(string type, Widget w) => Events.Enqueue((type, w.Metadata.Name, long.Parse(w.Metadata.ResourceVersion, System.Globalization.CultureInfo.InvariantCulture)));
    }

    [SkippableFact]
    public async Task Watch_resumes_after_the_server_cuts_the_stream_without_missing_or_repeating_events()
    {
        Skip.If(TestCluster.RealClusterConfigured, "needs fault injection: the test server cuts the watch streams");
        await using var cluster = await WidgetCluster.StartAsync();
        var informer = new Informer<Widget>(cluster.Widgets, new InformerOptions { InitialBackoff = TimeSpan.FromMilliseconds(50) });
        var recorder = new Recorder();
        informer.AddEventHandler(recorder);
        await using var run = Background.Run(informer.RunAsync);
        await informer.WaitForSyncAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));

        for (var i = 0; i < 30; i++)
        {
            await cluster.CreateAsync($"w{i}", i);
            if (i % 10 == 9)
            {
                await Eventually.HoldsAsync(() => cluster.Server.OpenWatches == 1);
                Assert.Equal(1, cluster.Server.Faults.CutWatches());
            }
        }

        for (var i = 0; i < 30; i++)
        {
            await cluster.SetSizeAsync($"w{i}", 100 + i);
            if (i % 7 == 0)
            {
                cluster.Server.Faults.CutWatches();
            }
        }

        await Eventually.HoldsAsync(() => recorder.Events.Count >= 60);
        var events = recorder.Events.ToArray();
        Assert.Equal(60, events.Length);
        Assert.Equal(30, events.Count(e => e.Type == "add"));
        Assert.Equal(30, events.Count(e => e.Type == "update"));

        // Every write produced exactly one notification, in the order the server stamped them.
        Assert.Equal(events.Select(e => e.Rv).Order(), events.Select(e => e.Rv));
        Assert.Equal(60, events.Select(e => e.Rv).Distinct().Count());
        Assert.Equal(1, informer.ListCount);
        Assert.True(informer.WatchCount >= 4, $"expected reconnects, saw {informer.WatchCount} watches");
        Assert.All(informer.Store.List(), w => Assert.Equal(100 + int.Parse(w.Metadata.Name[1..], System.Globalization.CultureInfo.InvariantCulture), w.Spec.Size));
    }

    [SkippableFact]
    public async Task Informer_rides_sixty_server_watch_timeouts_with_no_missed_event_no_relist_and_no_warning()
    {
        Skip.If(TestCluster.RealClusterConfigured, "drives the server's clock past each watch's timeoutSeconds");

        // One clock for server and informer: advancing it past a watch's timeoutSeconds makes the server end the
        // stream exactly as kube-apiserver does, with no fault injection.
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var cluster = await WidgetCluster.StartAsync(serverTime: clock);
        var log = new WarningLog();
        var informer = new Informer<Widget>(cluster.Widgets, new InformerOptions { Time = clock, Random = new Random(12), Logger = log });
        var recorder = new Recorder();
        informer.AddEventHandler(recorder);
        await using var run = Background.Run(informer.RunAsync);
        await informer.WaitForSyncAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));

        const int Ends = 60;
        for (var i = 0; i < Ends; i++)
        {
            // The server logs a watch once its response has started, i.e. once it has armed the watch's deadline.
            await Eventually.HoldsAsync(() => WidgetWatches(cluster).Count == i + 1, because: $"watch {i + 1} should be open");
            await cluster.CreateAsync($"w{i}", i);
            await Eventually.HoldsAsync(() => informer.Store.Get(new ObjectKey(cluster.Namespace, $"w{i}")) is not null);

            // Past any timeout the informer can ask for: the stream ends; the write after it lands while the informer
            // is between watches or on the next one, and must arrive either way.
            clock.Advance(TimeSpan.FromSeconds(601));
            await cluster.SetSizeAsync($"w{i}", 1000 + i);
        }

        await Eventually.HoldsAsync(() => recorder.Events.Count >= 2 * Ends && informer.WatchEndCount >= Ends);
        var events = recorder.Events.ToArray();
        Assert.Equal(2 * Ends, events.Length);
        Assert.Equal(events.Select(e => e.Rv).Order(), events.Select(e => e.Rv));
        Assert.Equal(2 * Ends, events.Select(e => e.Rv).Distinct().Count());
        Assert.All(informer.Store.List(), w => Assert.Equal(1000 + int.Parse(w.Metadata.Name[1..], System.Globalization.CultureInfo.InvariantCulture), w.Spec.Size));
        Assert.Equal(1, informer.ListCount);
        Assert.Equal(0, informer.FailureCount);
        Assert.Empty(log.Warnings);

        // Every watch asked the server to end it after 5-10 minutes and allowed bookmarks, as client-go's reflector does.
        var watches = WidgetWatches(cluster);
        Assert.True(watches.Count > Ends, $"{watches.Count} watches for {Ends} ends");
        var timeouts = watches.Select(r => int.Parse(QueryValue(r.Query, "timeoutSeconds"), System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.All(timeouts, t => Assert.InRange(t, 300, 600));
        Assert.True(timeouts.Distinct().Count() > 10, "timeoutSeconds should be randomised");
        Assert.All(watches, r => Assert.Equal("true", QueryValue(r.Query, "allowWatchBookmarks")));
    }

    private static List<Rpoi.Kube.ApiServer.RecordedRequest> WidgetWatches(WidgetCluster cluster) =>
        [.. cluster.Server.Requests.Where(r => r.Path.EndsWith("/widgets", StringComparison.Ordinal) && QueryValue(r.Query, "watch") == "true")];

    private static string QueryValue(string query, string name) =>
        System.Web.HttpUtility.ParseQueryString(query)[name] ?? string.Empty;

    [SkippableFact]
    public async Task Expired_history_relists_and_diffs_the_cache()
    {
        Skip.If(TestCluster.RealClusterConfigured, "needs fault injection and a 5-event watch history to force 410 Gone");
        await using var cluster = await WidgetCluster.StartAsync(watchHistory: 5);
        for (var i = 0; i < 4; i++)
        {
            await cluster.CreateAsync($"w{i}", i);
        }

        // A long first backoff keeps the informer away while history rolls past its resourceVersion.
        var informer = new Informer<Widget>(cluster.Widgets, new InformerOptions { InitialBackoff = TimeSpan.FromSeconds(1.5), MaxBackoff = TimeSpan.FromSeconds(2) });
        var recorder = new Recorder();
        informer.AddEventHandler(recorder);
        await using var run = Background.Run(informer.RunAsync);
        await informer.WaitForSyncAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        await Eventually.HoldsAsync(() => cluster.Server.OpenWatches == 1);

        cluster.Server.Faults.FailNext(1, 503, verb: "watch", resource: "widgets");
        cluster.Server.Faults.CutWatches();
        await Eventually.HoldsAsync(() => informer.WatchCount == 2);

        await cluster.DeleteAsync("w0");
        await cluster.SetSizeAsync("w1", 41);
        for (var i = 10; i < 20; i++)
        {
            await cluster.CreateAsync($"w{i}", i);
        }

        await Eventually.HoldsAsync(() => informer.ListCount == 2 && informer.Store.Count == 13);
        Assert.Null(informer.Store.Get(new ObjectKey(cluster.Namespace, "w0")));
        Assert.Equal(41, informer.Store.Get(new ObjectKey(cluster.Namespace, "w1"))!.Spec.Size);
        var events = recorder.Events.ToArray();
        Assert.Contains(("delete", "w0"), events.Select(e => (e.Type, e.Name)));
        Assert.Contains(("update", "w1"), events.Select(e => (e.Type, e.Name)));
        Assert.Equal(10, events.Count(e => e.Type == "add" && e.Name.Length == 3));
        Assert.Single(events, e => e.Type == "update");
    }

    [Fact]
    public async Task Named_index_finds_related_objects_from_the_cache()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        var informer = new Informer<Widget>(cluster.Widgets);
        informer.Store.AddIndex("by-owner", w => w.Spec.Owner is { } o ? [o] : []);
        await cluster.CreateAsync("a", owner: "lease-1");
        await cluster.CreateAsync("b", owner: "lease-1");
        await cluster.CreateAsync("c", owner: "lease-2");
        await using var run = Background.Run(informer.RunAsync);
        await informer.WaitForSyncAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(["a", "b"], informer.Store.ByIndex("by-owner", "lease-1").Select(w => w.Metadata.Name).Order());

        await cluster.DeleteAsync("a");
        await Eventually.HoldsAsync(() => informer.Store.ByIndex("by-owner", "lease-1").Count == 1);
        Assert.Equal("b", informer.Store.ByIndex("by-owner", "lease-1")[0].Metadata.Name);
    }
}
