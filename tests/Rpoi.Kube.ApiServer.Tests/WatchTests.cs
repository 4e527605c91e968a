using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Time.Testing;
using Rpoi.Kube.ApiServer.Tests.Support;

namespace Rpoi.Kube.ApiServer.Tests;

/// <summary>Watches through the real KubernetesClient's IAsyncEnumerable watch methods.</summary>
public sealed class WatchTests : IAsyncLifetime
{
    private KubeApiServer _server = null!;
    private Kubernetes _client = null!;
    private readonly CancellationTokenSource _cts = new(TimeSpan.FromSeconds(30));

    public async Task InitializeAsync() => (_server, _client) = await TestServer.StartAsync(new KubeApiServerOptions
    {
        BookmarkInterval = TimeSpan.FromMilliseconds(100),
        WatchHistorySize = 5,
    });

    public async Task DisposeAsync()
    {
        await _cts.CancelAsync();
        _client.Dispose();
        await _server.DisposeAsync();
        _cts.Dispose();
    }

    /// <summary>Pumps a watch into a channel so tests can wait for the next event with a timeout.</summary>
    private Channel<(WatchEventType Type, T Object)> Pump<T>(IAsyncEnumerable<(WatchEventType, T)> watch, Action<Exception>? onError = null)
    {
        var channel = Channel.CreateUnbounded<(WatchEventType, T)>();
        _ = Task.Run(async () =>
        {
            try
            {
                await foreach (var e in watch.WithCancellation(_cts.Token))
                {
                    await channel.Writer.WriteAsync(e);
                }

                channel.Writer.TryComplete();
            }
            catch (Exception e)
            {
                onError?.Invoke(e);
                channel.Writer.TryComplete(e);
            }
        });
        return channel;
    }

    private static async Task<(WatchEventType Type, T Object)> NextAsync<T>(Channel<(WatchEventType, T)> channel, Func<(WatchEventType Type, T Object), bool>? skip = null)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            var e = await channel.Reader.ReadAsync(timeout.Token);
            if (skip is null || !skip(e))
            {
                return e;
            }
        }
    }

    private static bool IsBookmark<T>((WatchEventType Type, T Object) e) => e.Type == WatchEventType.Bookmark;

    private Task<V1Secret> CreateSecretAsync(string name, string? label = null) =>
        _client.CoreV1.CreateNamespacedSecretAsync(new V1Secret
        {
            Metadata = new V1ObjectMeta { Name = name, Labels = label is null ? null : new Dictionary<string, string> { ["app"] = label } },
        }, "default");

    [Fact]
    public async Task Watch_from_now_sends_existing_objects_then_changes()
    {
        await CreateSecretAsync("before");
        var events = Pump(_client.CoreV1.WatchListNamespacedSecretAsync("default", cancellationToken: _cts.Token));
        var first = await NextAsync(events);
        Assert.Equal((WatchEventType.Added, "before"), (first.Type, first.Object.Metadata.Name));
        await Eventually.HoldsAsync(() => _server.OpenWatches == 1);

        await CreateSecretAsync("after");
        var added = await NextAsync(events);
        Assert.Equal((WatchEventType.Added, "after"), (added.Type, added.Object.Metadata.Name));
        await _client.CoreV1.DeleteNamespacedSecretAsync("before", "default");
        var deleted = await NextAsync(events);
        Assert.Equal((WatchEventType.Deleted, "before"), (deleted.Type, deleted.Object.Metadata.Name));
    }

    [Fact]
    public async Task Watch_resumes_from_a_resourceVersion_without_gaps_or_repeats()
    {
        await CreateSecretAsync("a");
        var list = await _client.CoreV1.ListNamespacedSecretAsync("default");
        await CreateSecretAsync("b");
        await CreateSecretAsync("c");
        var events = Pump(_client.CoreV1.WatchListNamespacedSecretAsync("default", resourceVersion: list.Metadata.ResourceVersion, cancellationToken: _cts.Token));
        Assert.Equal("b", (await NextAsync(events)).Object.Metadata.Name);
        Assert.Equal("c", (await NextAsync(events)).Object.Metadata.Name);
    }

    [Fact]
    public async Task Custom_resource_watch_with_label_selector_sees_selector_transitions()
    {
        var events = Pump(_client.CustomObjects.WatchListNamespacedCustomObjectAsync(
            Widgets.Group, Widgets.Version, "default", Widgets.Plural, labelSelector: "team=blue", cancellationToken: _cts.Token));
        await Eventually.HoldsAsync(() => _server.OpenWatches == 1);
        var w = Widgets.New("w", 1);
        await _client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonElement>(w, Widgets.Group, Widgets.Version, "default", Widgets.Plural);
        await Patch("w", """{"metadata":{"labels":{"team":"blue"}}}""");
        var added = await NextAsync(events);
        Assert.Equal(WatchEventType.Added, added.Type);
        await Patch("w", """{"spec":{"size":2}}""");
        var modified = await NextAsync(events);
        Assert.Equal(WatchEventType.Modified, modified.Type);
        Assert.Equal(2, ((JsonElement)modified.Object).GetProperty("spec").GetProperty("size").GetInt32());
        await Patch("w", """{"metadata":{"labels":{"team":"red"}}}""");
        Assert.Equal(WatchEventType.Deleted, (await NextAsync(events)).Type);

        Task Patch(string name, string json) => _client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(
            new V1Patch(json, V1Patch.PatchType.MergePatch), Widgets.Group, Widgets.Version, "default", Widgets.Plural, name);
    }

    [Fact]
    public async Task Bookmarks_carry_the_current_resourceVersion()
    {
        var events = Pump(_client.CoreV1.WatchListNamespacedSecretAsync("default", allowWatchBookmarks: true, cancellationToken: _cts.Token));
        await CreateSecretAsync("x");
        var added = await NextAsync(events, IsBookmark);
        var bookmark = await NextAsync(events, e => !IsBookmark(e));
        Assert.True(long.Parse(bookmark.Object.Metadata.ResourceVersion) >= long.Parse(added.Object.Metadata.ResourceVersion));
    }

    [Fact]
    public async Task Too_old_resourceVersion_is_410_Gone_as_an_error_event()
    {
        var start = (await _client.CoreV1.ListNamespacedSecretAsync("default")).Metadata.ResourceVersion;
        for (var i = 0; i < 8; i++)
        {
            await CreateSecretAsync($"s{i}");
        }

        Exception? error = null;
        var events = Pump(_client.CoreV1.WatchListNamespacedSecretAsync("default", resourceVersion: start, onError: e => error = e, cancellationToken: _cts.Token));
        await Eventually.HoldsAsync(() => events.Reader.Completion.IsCompleted);
        var kex = Assert.IsType<KubernetesException>(error);
        Assert.Equal(410, kex.Status.Code);
        Assert.Equal("Expired", kex.Status.Reason);
        Assert.Contains("too old resource version", kex.Status.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Watch_ends_after_timeoutSeconds()
    {
        var events = Pump(_client.CoreV1.WatchListNamespacedSecretAsync("default", timeoutSeconds: 1, cancellationToken: _cts.Token));
        await Eventually.HoldsAsync(() => events.Reader.Completion.IsCompleted, TimeSpan.FromSeconds(10));
        Assert.Equal(0, _server.OpenWatches);
    }

    [Fact]
    public async Task Cut_watches_ends_every_stream()
    {
        var a = Pump(_client.CoreV1.WatchListNamespacedSecretAsync("default", cancellationToken: _cts.Token));
        var b = Pump(_client.CustomObjects.WatchListNamespacedCustomObjectAsync(Widgets.Group, Widgets.Version, "default", Widgets.Plural, cancellationToken: _cts.Token));
        await Eventually.HoldsAsync(() => _server.OpenWatches == 2);
        Assert.Equal(2, _server.Faults.CutWatches());
        await Eventually.HoldsAsync(() => a.Reader.Completion.IsCompleted && b.Reader.Completion.IsCompleted);
    }

    [Fact]
    public async Task Send_initial_events_ends_with_the_annotated_bookmark()
    {
        await CreateSecretAsync("one");
        await CreateSecretAsync("two");
        using var http = new HttpClient();
        var url = $"{_server.Url}/api/v1/namespaces/default/secrets?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&fieldSelector=metadata.name%3Done";
        using var response = await http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, _cts.Token);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(_cts.Token));
        var first = JsonNode.Parse((await reader.ReadLineAsync(_cts.Token))!)!;
        Assert.Equal("ADDED", first["type"]!.GetValue<string>());
        Assert.Equal("one", first["object"]!["metadata"]!["name"]!.GetValue<string>());
        var end = JsonNode.Parse((await reader.ReadLineAsync(_cts.Token))!)!;
        Assert.Equal("BOOKMARK", end["type"]!.GetValue<string>());
        Assert.Equal("true", end["object"]!["metadata"]!["annotations"]!["k8s.io/initial-events-end"]!.GetValue<string>());

        using var bad = await http.GetAsync($"{_server.Url}/api/v1/namespaces/default/secrets?watch=true&sendInitialEvents=true", _cts.Token);
        Assert.Equal(422, (int)bad.StatusCode);
    }

    [Fact]
    public async Task A_watcher_that_falls_behind_is_dropped_without_blocking_writers()
    {
        await using var server = await KubeApiServer.StartAsync(new KubeApiServerOptions { WatchQueueCapacity = 2 });
        using var http = new HttpClient();
        // Open a watch and never read it: the queue fills and the server drops the watcher.
        using var response = await http.GetAsync($"{server.Url}/api/v1/namespaces/default/configmaps?watch=true", HttpCompletionOption.ResponseHeadersRead, _cts.Token);
        await Eventually.HoldsAsync(() => server.OpenWatches == 1);
        using var client = new Kubernetes(new KubernetesClientConfiguration { Host = server.Url });
        var payload = new string('x', 64 * 1024);
        for (var i = 0; i < 200; i++)
        {
            await client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = $"c{i}" }, Data = new Dictionary<string, string> { ["p"] = payload } }, "default");
        }

        await Eventually.HoldsAsync(() => server.OpenWatches == 0, because: "the slow watcher should be dropped");
    }

    [Fact]
    public async Task Bookmarks_follow_the_server_clock()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await KubeApiServer.StartAsync(new KubeApiServerOptions { TimeProvider = clock, BookmarkInterval = TimeSpan.FromMinutes(1) });
        using var client = new Kubernetes(new KubernetesClientConfiguration { Host = server.Url });
        var events = Pump(client.CoreV1.WatchListNamespacedSecretAsync("default", allowWatchBookmarks: true, cancellationToken: _cts.Token));
        await Eventually.HoldsAsync(() => server.OpenWatches == 1);
        Assert.False(events.Reader.TryRead(out _), "no bookmark before the interval passes on the server clock");
        await Eventually.HoldsAsync(() =>
        {
            clock.Advance(TimeSpan.FromMinutes(1));
            return events.Reader.TryPeek(out _);
        });
        var bookmark = await NextAsync(events);
        Assert.Equal(WatchEventType.Bookmark, bookmark.Type);
        Assert.Equal(server.ResourceVersion.ToString(System.Globalization.CultureInfo.InvariantCulture), bookmark.Object.Metadata.ResourceVersion);
    }

    /// <summary>Reads a raw watch body line by line; the channel completes when the body ends (cleanly or not).</summary>
    private Channel<string> Lines(Stream body)
    {
        var channel = Channel.CreateUnbounded<string>();
        _ = Task.Run(async () =>
        {
            try
            {
                using var reader = new StreamReader(body);
                while (await reader.ReadLineAsync(_cts.Token) is { } line)
                {
                    await channel.Writer.WriteAsync(line);
                }

                channel.Writer.TryComplete();
            }
            catch (Exception e)
            {
                channel.Writer.TryComplete(e);
            }
        });
        return channel;
    }

    [Fact]
    public async Task A_watch_ends_cleanly_after_its_timeoutSeconds_with_a_bookmark_two_seconds_before()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await KubeApiServer.StartAsync(new KubeApiServerOptions { TimeProvider = clock, BookmarkInterval = TimeSpan.FromMinutes(1) });
        using var http = new HttpClient();
        using var response = await http.GetAsync(
            $"{server.Url}/api/v1/namespaces/kube-system/configmaps?watch=true&allowWatchBookmarks=true&timeoutSeconds=30",
            HttpCompletionOption.ResponseHeadersRead, _cts.Token);
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        var lines = Lines(await response.Content.ReadAsStreamAsync(_cts.Token));

        clock.Advance(TimeSpan.FromSeconds(27.5));
        Assert.False(lines.Reader.Completion.IsCompleted, "the watch must stay open until its timeoutSeconds");

        // kube-apiserver's cacher sends a bookmark 2 s before the deadline, so the client resumes from a fresh version.
        clock.Advance(TimeSpan.FromSeconds(0.5));
        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var bookmark = JsonNode.Parse(await lines.Reader.ReadAsync(wait.Token))!;
        Assert.Equal("BOOKMARK", (string?)bookmark["type"]);
        Assert.Equal(server.ResourceVersion.ToString(System.Globalization.CultureInfo.InvariantCulture), (string?)bookmark["object"]!["metadata"]!["resourceVersion"]);

        clock.Advance(TimeSpan.FromSeconds(1.9));
        Assert.False(lines.Reader.Completion.IsCompleted, "the watch must stay open until its timeoutSeconds");
        clock.Advance(TimeSpan.FromSeconds(0.1));

        // The body just ends: no ERROR event, no broken chunk (the reader would fault).
        await lines.Reader.Completion.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(lines.Reader.TryRead(out var extra), $"nothing after the bookmark, got {extra}");
        await Eventually.HoldsAsync(() => server.OpenWatches == 0);
    }

    [Fact]
    public async Task A_watch_without_timeoutSeconds_ends_between_the_min_request_timeout_and_twice_it()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await KubeApiServer.StartAsync(new KubeApiServerOptions { TimeProvider = clock, MinRequestTimeout = TimeSpan.FromSeconds(100) });
        using var http = new HttpClient();
        var watches = new List<Channel<string>>();
        for (var i = 0; i < 5; i++)
        {
            var response = await http.GetAsync($"{server.Url}/api/v1/namespaces/kube-system/configmaps?watch=true", HttpCompletionOption.ResponseHeadersRead, _cts.Token);
            Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
            watches.Add(Lines(await response.Content.ReadAsStreamAsync(_cts.Token)));
        }

        clock.Advance(TimeSpan.FromSeconds(99.9));
        Assert.All(watches, w => Assert.False(w.Reader.Completion.IsCompleted, "no watch may end before --min-request-timeout"));
        clock.Advance(TimeSpan.FromSeconds(100.1));
        foreach (var w in watches)
        {
            await w.Reader.Completion.WaitAsync(TimeSpan.FromSeconds(10));
        }

        Assert.Equal(0, server.OpenWatches);
    }

    [Fact]
    public async Task A_negative_min_request_timeout_is_refused_with_the_option_named()
    {
        var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => KubeApiServer.StartAsync(new KubeApiServerOptions { MinRequestTimeout = TimeSpan.FromSeconds(-1) }));
        Assert.Contains("KubeApiServerOptions.MinRequestTimeout", e.Message, StringComparison.Ordinal);
    }
}
