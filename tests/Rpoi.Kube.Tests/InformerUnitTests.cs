using System.Net;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Time.Testing;
using Rpoi.Kube.Informers;

namespace Rpoi.Kube.Tests;

/// <summary>Informer behaviour against a scripted resource client, so failure paths are exact and clock-driven.</summary>
public sealed class InformerUnitTests
{
    private static V1ConfigMap Map(string name, string rv, bool managed = false) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name,
            NamespaceProperty = "ns",
            ResourceVersion = rv,
            ManagedFields = managed ? [new V1ManagedFieldsEntry { Manager = "kubectl" }] : null,
            Annotations = managed ? new Dictionary<string, string> { ["kubectl.kubernetes.io/last-applied-configuration"] = "{}", ["keep"] = "me" } : null,
        },
    };

    [Fact]
    public async Task Gone_relists_and_synthesises_add_update_delete_from_the_diff()
    {
        var client = new ScriptedClient();
        client.Lists.Enqueue(new ResourceList<V1ConfigMap>([Map("a", "1"), Map("b", "1")], "1"));
        client.Lists.Enqueue(new ResourceList<V1ConfigMap>([Map("a", "7"), Map("c", "6")], "7"));
        client.Watches.Enqueue(Watch.Fails(new KubernetesException(new V1Status { Code = 410, Reason = "Expired" })));
        var informer = new Informer<V1ConfigMap>(client);
        var log = new List<string>();
        informer.AddEventHandler(new ResourceEventHandler<V1ConfigMap>(
            (o, initial) => log.Add($"add {o.Metadata.Name}{(initial ? " (initial)" : string.Empty)}"),
            (old, o) => log.Add($"update {o.Metadata.Name} {old.Metadata.ResourceVersion}->{o.Metadata.ResourceVersion}"),
            o => log.Add($"delete {o.Metadata.Name}")));

        using var cts = new CancellationTokenSource();
        var run = informer.RunAsync(cts.Token);
        await Eventually.HoldsAsync(() => informer.ListCount == 2 && informer.WatchCount == 2);
        await cts.CancelAsync();
        await run;

        Assert.Equal(["add a (initial)", "add b (initial)", "update a 1->7", "add c", "delete b"], log);
        Assert.Equal(["a", "c"], informer.Store.List().Select(m => m.Metadata.Name).Order());
        Assert.Equal(["1", "7"], client.WatchedFrom);
    }

    [Fact]
    public async Task A_broken_stream_reconnects_after_backoff_from_the_last_seen_version()
    {
        var time = new TimerCountingTimeProvider();
        var client = new ScriptedClient();
        client.Lists.Enqueue(new ResourceList<V1ConfigMap>([], "10"));
        client.Watches.Enqueue(Watch.Then([(WatchEventType.Added, Map("a", "11", managed: true)), (WatchEventType.Bookmark, Map(string.Empty, "15"))], new HttpRequestException("connection reset")));
        var informer = new Informer<V1ConfigMap>(client, new InformerOptions { Time = time, Random = new Random(1), InitialBackoff = TimeSpan.FromSeconds(1) });

        using var cts = new CancellationTokenSource();
        var run = informer.RunAsync(cts.Token);
        await Eventually.HoldsAsync(() => informer.LastResourceVersion == "15");

        // Jitter keeps the first delay between 1 s and 1.5 s: nothing before, a reconnect after.
        await Eventually.HoldsAsync(() => time.TimersCreated == 1);
        time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.Single(client.WatchedFrom);
        time.Advance(TimeSpan.FromMilliseconds(600));
        await Eventually.HoldsAsync(() => client.WatchedFrom.Count == 2);
        await cts.CancelAsync();
        await run;

        Assert.Equal(["10", "15"], client.WatchedFrom);
        Assert.Equal(1, informer.ListCount);
        var cached = Assert.Single(informer.Store.List());
        Assert.Null(cached.Metadata.ManagedFields);
        Assert.Equal(["keep"], cached.Metadata.Annotations.Keys);
    }

    [Fact]
    public async Task The_transform_shapes_what_the_cache_and_every_handler_get_from_list_watch_and_delete()
    {
        var client = new ScriptedClient();
        var big = Map("a", "1");
        big.Data = new Dictionary<string, string> { ["keep"] = "k", ["drop"] = new string('x', 4096) };
        client.Lists.Enqueue(new ResourceList<V1ConfigMap>([big], "1"));
        var changed = Map("a", "2");
        changed.Data = new Dictionary<string, string> { ["keep"] = "k2", ["drop"] = "y" };
        var deleted = Map("a", "3");
        deleted.Data = new Dictionary<string, string> { ["drop"] = "z" };
        client.Watches.Enqueue(Watch.Then([(WatchEventType.Modified, changed), (WatchEventType.Deleted, deleted)], new HttpRequestException("end")));
        var transformed = 0;
        var informer = new Informer<V1ConfigMap>(client, transform: m =>
        {
            transformed++;
            m.Data?.Remove("drop");
            return m;
        });
        var seen = new List<string>();
        string Data(V1ConfigMap m) => string.Join(',', (m.Data ?? new Dictionary<string, string>()).Select(kv => $"{kv.Key}={kv.Value}"));
        informer.AddEventHandler(new ResourceEventHandler<V1ConfigMap>(
            (o, _) => seen.Add($"add {Data(o)}"),
            (old, o) => seen.Add($"update {Data(old)} -> {Data(o)}"),
            o => seen.Add($"delete {Data(o)}")));
        var cachedAfterList = new TaskCompletionSource<string>();
        informer.AddEventHandler(new ResourceEventHandler<V1ConfigMap>((o, _) => cachedAfterList.TrySetResult(Data(informer.Store.List().Single()))));

        using var cts = new CancellationTokenSource();
        var run = informer.RunAsync(cts.Token);
        await Eventually.HoldsAsync(() => seen.Count == 3);
        await cts.CancelAsync();
        await run;

        Assert.Equal("keep=k", await cachedAfterList.Task);
        Assert.Equal(["add keep=k", "update keep=k -> keep=k2", "delete "], seen);
        Assert.Equal(3, transformed);
        Assert.Empty(informer.Store.List());
    }

    [Fact]
    public async Task A_list_whose_snapshot_expires_between_pages_is_read_whole_instead()
    {
        var client = new PagedClient { ExpireAfterFirstPage = true };
        client.Lists.Enqueue(new ResourceList<V1ConfigMap>([Map("a", "5"), Map("b", "5"), Map("c", "5")], "5"));
        var informer = new Informer<V1ConfigMap>(client);

        using var cts = new CancellationTokenSource();
        var run = informer.RunAsync(cts.Token);
        await informer.WaitForSyncAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        await cts.CancelAsync();
        await run;

        Assert.Equal(["a", "b", "c"], informer.Store.List().Select(m => m.Metadata.Name).Order());
        Assert.Equal("5", informer.LastResourceVersion);
        Assert.Equal(1, client.PagesServed);
        Assert.Equal(0, informer.FailureCount);
    }

    [Fact]
    public async Task Http_410_on_watch_start_also_relists()
    {
        var client = new ScriptedClient();
        client.Lists.Enqueue(new ResourceList<V1ConfigMap>([Map("a", "1")], "1"));
        client.Lists.Enqueue(new ResourceList<V1ConfigMap>([Map("a", "1")], "3"));
        var gone = new k8s.Autorest.HttpOperationException("gone")
        {
            Response = new k8s.Autorest.HttpResponseMessageWrapper(new HttpResponseMessage(HttpStatusCode.Gone), string.Empty),
        };
        client.Watches.Enqueue(Watch.Then([], gone));
        var informer = new Informer<V1ConfigMap>(client);
        var updates = 0;
        informer.AddEventHandler(new ResourceEventHandler<V1ConfigMap>(onUpdate: (_, _) => updates++));
        using var cts = new CancellationTokenSource();
        var run = informer.RunAsync(cts.Token);
        await Eventually.HoldsAsync(() => client.WatchedFrom.Count == 2);
        await cts.CancelAsync();
        await run;
        Assert.Equal(2, informer.ListCount);
        Assert.Equal(0, updates);
        Assert.Equal(["1", "3"], client.WatchedFrom);
    }

    [Fact]
    public async Task A_stream_that_ends_resumes_at_once_from_the_last_version_without_backoff_or_warning()
    {
        var time = new TimerCountingTimeProvider();
        var client = new ScriptedClient { Clock = time };
        client.Lists.Enqueue(new ResourceList<V1ConfigMap>([], "10"));

        // The three ways a real server's watch ends: the body just ends (its timeout passed), EOF before the first
        // line (KubernetesClient: HttpRequestException over EndOfStreamException), the connection closed between events.
        client.Watches.Enqueue(Watch.Ends([(WatchEventType.Added, Map("a", "11")), (WatchEventType.Modified, Map("a", "12"))], TimeSpan.Zero));
        client.Watches.Enqueue(Watch.Ends([], TimeSpan.FromSeconds(400),
            new HttpRequestException(HttpRequestError.ResponseEnded, "Error while copying content to a stream.", new EndOfStreamException())));
        client.Watches.Enqueue(Watch.Ends([(WatchEventType.Bookmark, Map(string.Empty, "20"))], TimeSpan.FromSeconds(2), new IOException("The response ended prematurely.")));
        var log = new WarningLog();
        var informer = new Informer<V1ConfigMap>(client, new InformerOptions { Time = time, Random = new Random(3), Logger = log });

        using var cts = new CancellationTokenSource();
        var run = informer.RunAsync(cts.Token);
        await Eventually.HoldsAsync(() => client.WatchedFrom.Count == 4);
        await cts.CancelAsync();
        await run;

        // Each resume came at once: no backoff timer was ever armed, nothing was counted as a failure or logged.
        Assert.Equal(["10", "12", "12", "20"], client.WatchedFrom);
        Assert.Equal(0, time.TimersCreated);
        Assert.Equal(3, informer.WatchEndCount);
        Assert.Equal(0, informer.FailureCount);
        Assert.Equal(1, informer.ListCount);
        Assert.Empty(log.Warnings);
        Assert.Equal("12", Assert.Single(informer.Store.List()).Metadata.ResourceVersion);

        // client-go's reflector asks for a random timeout in [5 min, 10 min].
        Assert.All(client.TimeoutsAsked, t => Assert.InRange(t, 300, 600));
        Assert.True(client.TimeoutsAsked.Distinct().Count() > 1, $"timeouts should be randomised: {string.Join(", ", client.TimeoutsAsked)}");
    }

    [Fact]
    public async Task A_very_short_empty_watch_is_a_failure_and_backs_off()
    {
        var time = new TimerCountingTimeProvider();
        var client = new ScriptedClient { Clock = time };
        client.Lists.Enqueue(new ResourceList<V1ConfigMap>([], "10"));

        // A server that closes every watch at once, having sent nothing: without this rule, a busy loop.
        client.Watches.Enqueue(Watch.Ends([], TimeSpan.FromMilliseconds(300)));
        var log = new WarningLog();
        var informer = new Informer<V1ConfigMap>(client, new InformerOptions { Time = time, Random = new Random(3), Logger = log, InitialBackoff = TimeSpan.FromSeconds(1) });

        using var cts = new CancellationTokenSource();
        var run = informer.RunAsync(cts.Token);
        await Eventually.HoldsAsync(() => time.TimersCreated == 1);
        Assert.Single(client.WatchedFrom);
        time.Advance(TimeSpan.FromSeconds(1.5));
        await Eventually.HoldsAsync(() => client.WatchedFrom.Count == 2);
        await cts.CancelAsync();
        await run;

        Assert.Equal(1, informer.FailureCount);
        Assert.Equal(0, informer.WatchEndCount);
        Assert.Contains("very short watch", Assert.Single(log.Warnings), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_connection_that_cannot_be_made_is_a_failure_not_a_stream_end()
    {
        var time = new TimerCountingTimeProvider();
        var client = new ScriptedClient { Clock = time };
        client.Lists.Enqueue(new ResourceList<V1ConfigMap>([], "10"));
        client.Watches.Enqueue(Watch.Ends([], TimeSpan.FromSeconds(5),
            new HttpRequestException(HttpRequestError.ConnectionError, "Connection refused (127.0.0.1:6443)", new IOException("refused"))));
        var log = new WarningLog();
        var informer = new Informer<V1ConfigMap>(client, new InformerOptions { Time = time, Random = new Random(3), Logger = log });

        using var cts = new CancellationTokenSource();
        var run = informer.RunAsync(cts.Token);
        await Eventually.HoldsAsync(() => time.TimersCreated == 1);
        await cts.CancelAsync();
        await run;

        Assert.Equal(1, informer.FailureCount);
        Assert.Equal(0, informer.WatchEndCount);
        Assert.Contains("Connection refused", Assert.Single(log.Warnings), StringComparison.Ordinal);
    }

    [Fact]
    public void A_watch_timeout_below_one_second_is_refused_with_the_option_named()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new Informer<V1ConfigMap>(new ScriptedClient(), new InformerOptions { MinWatchTimeout = TimeSpan.FromMilliseconds(10) }));
        Assert.Contains("InformerOptions.MinWatchTimeout", e.Message, StringComparison.Ordinal);
    }

    /// <summary>Tells the test when the informer has started its backoff delay, so advancing the clock cannot race it.</summary>
    private sealed class TimerCountingTimeProvider : FakeTimeProvider
    {
        private int _timers;

        public int TimersCreated => Volatile.Read(ref _timers);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            Interlocked.Increment(ref _timers);
            return base.CreateTimer(callback, state, dueTime, period);
        }
    }

    /// <summary>One scripted watch stream: its events, then how it ends, after <paramref name="Lasts"/> on the client's clock.</summary>
    private sealed record Watch(IReadOnlyList<(WatchEventType, V1ConfigMap)> Events, Exception? Error, bool ViaOnError, TimeSpan Lasts = default)
    {
        /// <summary>The stream just ends (the server's timeout passed), or ends with <paramref name="e"/> as a closed connection does.</summary>
        public static Watch Ends(IReadOnlyList<(WatchEventType, V1ConfigMap)> events, TimeSpan lasts, Exception? e = null) => new(events, e, false, lasts);

        public static Watch Fails(KubernetesException e) => new([], e, true);

        public static Watch Then(IReadOnlyList<(WatchEventType, V1ConfigMap)> events, Exception e) => new(events, e, false);
    }

    /// <summary>Serves one page, then answers the next page with 410 Expired, as a real server does once the list's snapshot is compacted.</summary>
    private sealed class PagedClient : IResourceClient<V1ConfigMap>
    {
        public Queue<ResourceList<V1ConfigMap>> Lists { get; } = new();

        public bool ExpireAfterFirstPage { get; init; }

        public int PagesServed { get; private set; }

        public string Resource => "configmaps";

        public Task<ResourceList<V1ConfigMap>> ListAsync(CancellationToken cancellationToken) => Task.FromResult(Lists.Dequeue());

        public async IAsyncEnumerable<ResourceList<V1ConfigMap>> ListPagesAsync(int limit, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Task.Yield();
            PagesServed++;
            yield return new ResourceList<V1ConfigMap>([Map("a", "4")], "4");
            if (ExpireAfterFirstPage)
            {
                throw new k8s.Autorest.HttpOperationException("expired")
                {
                    Response = new k8s.Autorest.HttpResponseMessageWrapper(new HttpResponseMessage(HttpStatusCode.Gone), string.Empty),
                };
            }
        }

        public async IAsyncEnumerable<(WatchEventType Type, V1ConfigMap Object)> WatchAsync(string resourceVersion, int timeoutSeconds, Action<Exception> onError, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Channel.CreateUnbounded<int>().Reader.ReadAsync(cancellationToken);
            yield break;
        }

        public Task<V1ConfigMap?> GetAsync(ObjectKey key, CancellationToken cancellationToken) => Task.FromResult<V1ConfigMap?>(null);

        public Task<V1ConfigMap> PatchAsync(ObjectKey key, V1Patch patch, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<V1ConfigMap> PatchStatusAsync(ObjectKey key, V1Patch patch, CancellationToken cancellationToken) => throw new NotSupportedException();
    }

    private sealed class ScriptedClient : IResourceClient<V1ConfigMap>
    {
        public Queue<ResourceList<V1ConfigMap>> Lists { get; } = new();

        public Queue<Watch> Watches { get; } = new();

        public List<string> WatchedFrom { get; } = [];

        public List<int> TimeoutsAsked { get; } = [];

        public string Resource => "configmaps";

        /// <summary>Advanced by each stream's <see cref="Watch.Lasts"/> before it ends, as time passes during a real watch.</summary>
        public FakeTimeProvider? Clock { get; init; }

        public Task<ResourceList<V1ConfigMap>> ListAsync(CancellationToken cancellationToken) => Task.FromResult(Lists.Dequeue());

        public async IAsyncEnumerable<(WatchEventType Type, V1ConfigMap Object)> WatchAsync(string resourceVersion, int timeoutSeconds, Action<Exception> onError, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            lock (WatchedFrom)
            {
                WatchedFrom.Add(resourceVersion);
                TimeoutsAsked.Add(timeoutSeconds);
            }

            if (!Watches.TryDequeue(out var script))
            {
                // No more script: an idle stream that ends only when the informer stops.
                await Channel.CreateUnbounded<int>().Reader.ReadAsync(cancellationToken);
                yield break;
            }

            foreach (var e in script.Events)
            {
                yield return e;
            }

            if (script.Lasts > TimeSpan.Zero)
            {
                Clock!.Advance(script.Lasts);
            }

            if (script.ViaOnError)
            {
                onError(script.Error!);
                await Channel.CreateUnbounded<int>().Reader.ReadAsync(cancellationToken);
            }
            else if (script.Error is not null)
            {
                throw script.Error;
            }
        }

        public Task<V1ConfigMap?> GetAsync(ObjectKey key, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<V1ConfigMap> PatchAsync(ObjectKey key, V1Patch patch, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<V1ConfigMap> PatchStatusAsync(ObjectKey key, V1Patch patch, CancellationToken cancellationToken) => throw new NotSupportedException();
    }
}
