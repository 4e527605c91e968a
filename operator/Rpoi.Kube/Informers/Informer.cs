using System.Net;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Rpoi.Kube.Informers;

/// <summary>The type-free face of an informer, for hosts that start informers and report readiness.</summary>
public interface IInformer
{
    /// <summary>The watched resource, e.g. <c>widgets.example.test</c>.</summary>
    string Resource { get; }

    /// <summary>True once the first list has been cached.</summary>
    bool HasSynced { get; }

    /// <summary>Lists and watches until <paramref name="cancellationToken"/> is cancelled.</summary>
    Task RunAsync(CancellationToken cancellationToken);

    /// <summary>Completes when <see cref="HasSynced"/> becomes true.</summary>
    Task WaitForSyncAsync(CancellationToken cancellationToken);
}

/// <summary>Timing of an informer's watches and reconnects.</summary>
public sealed record InformerOptions
{
    /// <summary>Clock for reconnect delays and for timing watch streams. Defaults to the system clock.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Jitter source for reconnect delays and watch timeouts; seed it in tests.</summary>
    public Random Random { get; init; } = Random.Shared;

    /// <summary>First delay after a failed list or watch (client-go: 800 ms).</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(800);

    /// <summary>Largest delay between attempts (client-go: 30 s).</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Each watch asks the server to end it after a random time in [<see cref="MinWatchTimeout"/>, 2 ×
    /// <see cref="MinWatchTimeout"/>] (<c>timeoutSeconds</c>), so watches of many clients do not all end at once
    /// (client-go's reflector: 5 min, i.e. 5–10 min). At least 1 s.
    /// </summary>
    public TimeSpan MinWatchTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Logger; silent when null.</summary>
    public ILogger? Logger { get; init; }

    /// <summary>
    /// Objects per list page (client-go's reflector: 500). A page is read whole before the informer trims it, so a smaller
    /// page lowers the memory peak of a list of big objects (GKE Nodes are ~9 KB of JSON each) at the cost of more requests.
    /// </summary>
    public int ListPageSize { get; init; } = 500;
}

/// <summary>
/// client-go's reflector + shared informer for one resource type: list, then watch from the list's
/// resourceVersion with bookmarks and a randomised <c>timeoutSeconds</c>. A stream that ends (the server's
/// timeout, EOF, a connection closed between events) is routine: the informer watches again at once from the
/// last seen resourceVersion, with no backoff and no warning. On 410 Gone it re-lists and diffs the cache into
/// synthetic add/update/delete notifications; on a real failure (connect error, HTTP error status, an ERROR
/// event, an unreadable event, a watch that ends within a second having delivered nothing) it retries after an
/// exponential, jittered backoff. Cached objects are stripped of <c>managedFields</c> and the last-applied
/// annotation to keep memory small, then rewritten by the optional transform (fields no controller reads).
/// </summary>
/// <typeparam name="T">The object type.</typeparam>
public sealed class Informer<T> : IInformer
    where T : class, IKubernetesObject<V1ObjectMeta>
{
    private const string LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration";

    /// <summary>client-go's "very short watch": a stream that ends this soon having delivered nothing is a failure.</summary>
    private static readonly TimeSpan VeryShortWatch = TimeSpan.FromSeconds(1);

    private readonly IResourceClient<T> _client;
    private readonly InformerOptions _options;
    private readonly ILogger _log;
    private readonly Func<T, T>? _transform;
    private readonly List<IResourceEventHandler<T>> _handlers = [];
    private readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _running;
    private long _lists;
    private long _watches;
    private long _watchEnds;
    private long _failures;

    /// <summary>Creates an informer; call <see cref="RunAsync"/> to start it.</summary>
    /// <param name="client">Lists and watches the resource.</param>
    /// <param name="options">Timing and logging.</param>
    /// <param name="transform">
    /// Rewrites each object before it enters the cache and reaches handlers (client-go's <c>SetTransform</c>): keep what
    /// the controllers read and drop the rest, so a cache of thousands of objects stays small. It gets an object the
    /// informer owns and may change it in place. Whoever reads such a cache must then never write a cached object back
    /// whole (PUT), only patch. Runs after <c>managedFields</c> and the last-applied annotation are stripped.
    /// </param>
    public Informer(IResourceClient<T> client, InformerOptions? options = null, Func<T, T>? transform = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        _client = client;
        _transform = transform;
        _options = options ?? new InformerOptions();
        if (_options.MinWatchTimeout < TimeSpan.FromSeconds(1) || _options.MinWatchTimeout > TimeSpan.FromSeconds(int.MaxValue / 2))
        {
            throw new ArgumentOutOfRangeException(nameof(options), _options.MinWatchTimeout,
                $"InformerOptions.MinWatchTimeout must be at least 1 s (client-go uses 5 min); got {_options.MinWatchTimeout}.");
        }

        if (_options.ListPageSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), _options.ListPageSize, $"InformerOptions.ListPageSize must be at least 1 (client-go uses 500); got {_options.ListPageSize}.");
        }

        _log = _options.Logger ?? NullLogger.Instance;
    }

    /// <inheritdoc/>
    public string Resource => _client.Resource;

    /// <summary>The local cache.</summary>
    public Store<T> Store { get; } = new();

    /// <inheritdoc/>
    public bool HasSynced => _synced.Task.IsCompleted;

    /// <summary>The resourceVersion the next watch resumes from.</summary>
    public string? LastResourceVersion { get; private set; }

    /// <summary>How many times the informer has listed (1 + re-lists after 410 Gone).</summary>
    public long ListCount => Interlocked.Read(ref _lists);

    /// <summary>How many watch streams the informer has opened.</summary>
    public long WatchCount => Interlocked.Read(ref _watches);

    /// <summary>How many watch streams ended normally (server timeout, EOF, connection closed) and were resumed at once.</summary>
    public long WatchEndCount => Interlocked.Read(ref _watchEnds);

    /// <summary>How many list or watch attempts failed and were retried after a backoff (410 Gone is not one: it re-lists).</summary>
    public long FailureCount => Interlocked.Read(ref _failures);

    /// <summary>Adds a handler. Add handlers before <see cref="RunAsync"/> so they see the initial list.</summary>
    public void AddEventHandler(IResourceEventHandler<T> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        lock (_handlers)
        {
            _handlers.Add(handler);
        }
    }

    /// <inheritdoc/>
    public Task WaitForSyncAsync(CancellationToken cancellationToken) => _synced.Task.WaitAsync(cancellationToken);

    /// <inheritdoc/>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _running, 1) == 1)
        {
            throw new InvalidOperationException($"The informer for {Resource} is already running; share it instead of starting it twice.");
        }

        try
        {
            await LoopAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Volatile.Write(ref _running, 0);
        }
    }

    private async Task LoopAsync(CancellationToken ct)
    {
        var needList = true;
        var failures = 0;
        while (!ct.IsCancellationRequested)
        {
            Exception failure;
            try
            {
                if (needList)
                {
                    await ListAndReplaceAsync(ct).ConfigureAwait(false);
                    needList = false;
                }

                var end = await WatchOnceAsync(ct).ConfigureAwait(false);
                if (end.Failure is null)
                {
                    // Every API server ends every watch sooner or later (timeoutSeconds, its own limit, a restart,
                    // a proxy): routine, so watch again at once from where we are (client-go treats io.EOF alike).
                    Interlocked.Increment(ref _watchEnds);
                    failures = 0;
                    _log.LogDebug(end.ClosedBy, "Watch of {Resource} ended after {Duration} and {Events} events; resuming from resourceVersion {ResourceVersion}",
                        Resource, end.Duration, end.Events, LastResourceVersion);
                    continue;
                }

                failure = end.Failure;
                needList = end.Relist;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // Every failure of the API is retried; the loop must not die.
            catch (Exception e)
#pragma warning restore CA1031
            {
                failure = e;
            }

            if (IsGone(failure))
            {
                // The history we would resume from is gone: only a fresh list can tell what we missed.
                _log.LogInformation("Watch of {Resource} expired (410 Gone); re-listing", Resource);
                needList = true;
                continue;
            }

            failures++;
            Interlocked.Increment(ref _failures);
            var delay = Backoff(failures);
            _log.LogWarning(failure, "List/watch of {Resource} failed ({Failures} in a row); retrying in {Delay}{Relist}",
                Resource, failures, delay, needList ? " with a fresh list" : string.Empty);
            try
            {
                await Task.Delay(delay, _options.Time, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task ListAndReplaceAsync(CancellationToken ct)
    {
        // Paged like client-go's reflector, and each page trimmed before the next is read, so the peak is a page of whole
        // objects plus the cache, not the whole list twice.
        var initial = !HasSynced;
        var pages = new List<T>();
        string? resourceVersion = null;
        try
        {
            await foreach (var page in _client.ListPagesAsync(_options.ListPageSize, ct).ConfigureAwait(false))
            {
                pages.AddRange(page.Items.Select(Prepare));
                // Every page of a real server's list is one snapshot; the first page's version is that snapshot's.
                resourceVersion ??= page.ResourceVersion;
            }
        }
        catch (Exception e) when (IsGone(e) && resourceVersion is not null)
        {
            // The snapshot expired between pages: one whole list instead (client-go's pager does the same).
            var whole = await _client.ListAsync(ct).ConfigureAwait(false);
            pages = [.. whole.Items.Select(Prepare)];
            resourceVersion = whole.ResourceVersion;
        }

        var list = new ResourceList<T>(pages, resourceVersion ?? string.Empty);
        Interlocked.Increment(ref _lists);
        var seen = new HashSet<ObjectKey>();
        foreach (var cached in list.Items)
        {
            var key = ObjectKey.Of(cached);
            seen.Add(key);
            var old = Store.Upsert(cached);
            if (old is null)
            {
                Notify(h => h.OnAdd(cached, initial));
            }
            else if (old.Metadata.ResourceVersion != cached.Metadata.ResourceVersion)
            {
                Notify(h => h.OnUpdate(old, cached));
            }
        }

        // Objects deleted while we were not watching: tell handlers with their last known state.
        foreach (var key in Store.Keys())
        {
            if (!seen.Contains(key) && Store.Remove(key) is { } gone)
            {
                Notify(h => h.OnDelete(gone));
            }
        }

        LastResourceVersion = list.ResourceVersion;
        _synced.TrySetResult();
    }

    /// <summary>How one watch stream ended: <see cref="Failure"/> null is a normal end.</summary>
    private readonly record struct WatchEnd(int Events, TimeSpan Duration, Exception? Failure, bool Relist, Exception? ClosedBy);

    private async Task<WatchEnd> WatchOnceAsync(CancellationToken ct)
    {
        using var watchCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        Exception? streamError = null;
        void OnError(Exception e)
        {
            // A server ERROR event (e.g. 410 Gone) or a line we cannot read ends this stream; the caller decides
            // between re-list and reconnect. A skipped unreadable event would be a change we silently missed.
            streamError ??= e;
            watchCts.Cancel();
        }

        // client-go's reflector: random in [min, 2*min], so that many clients' watches do not end together.
        var min = _options.MinWatchTimeout.TotalSeconds;
        var timeoutSeconds = (int)(min + (_options.Random.NextDouble() * min));
        Interlocked.Increment(ref _watches);
        var started = _options.Time.GetTimestamp();
        var events = 0;
        Exception? closedBy = null;
        try
        {
            await foreach (var (type, obj) in _client.WatchAsync(LastResourceVersion ?? string.Empty, timeoutSeconds, OnError, watchCts.Token).ConfigureAwait(false))
            {
                events++;
                Apply(type, obj);
            }
        }
        catch (OperationCanceledException) when (streamError is not null && !ct.IsCancellationRequested)
        {
        }
        catch (JsonException e) when (!ct.IsCancellationRequested)
        {
            streamError ??= e;
        }
        catch (Exception e) when (!ct.IsCancellationRequested && IsStreamEnd(e))
        {
            closedBy = e;
        }

        var duration = _options.Time.GetElapsedTime(started);
        if (streamError is not null)
        {
            // Only a list can recover the change an unreadable event carried.
            return new WatchEnd(events, duration, streamError, Relist: streamError is not KubernetesException, closedBy);
        }

        if (events == 0 && duration < VeryShortWatch)
        {
            // client-go's "very short watch": a server that closes every watch at once must not cause a busy loop.
            var tooShort = new IOException(
                $"very short watch: the watch of {Resource} ended after {duration.TotalMilliseconds:0} ms without delivering an event", closedBy);
            return new WatchEnd(events, duration, tooShort, Relist: false, closedBy);
        }

        return new WatchEnd(events, duration, null, Relist: false, closedBy);
    }

    /// <summary>
    /// True when <paramref name="e"/> means an open watch stream ended (EOF, also before its first line, which
    /// KubernetesClient reports as an <see cref="EndOfStreamException"/>; a connection reset or closed), not that
    /// the watch could not be opened. client-go treats these (io.EOF, IsProbableEOF) as the end of the watch.
    /// </summary>
    internal static bool IsStreamEnd(Exception e)
    {
        if (e is HttpRequestException
            {
                HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError
                or HttpRequestError.SecureConnectionError or HttpRequestError.ProxyTunnelError
                or HttpRequestError.UserAuthenticationError or HttpRequestError.VersionNegotiationError
                or HttpRequestError.ConfigurationLimitExceeded,
            })
        {
            return false;
        }

        for (var x = e; x is not null; x = x.InnerException)
        {
            if (x is IOException)
            {
                return true;
            }
        }

        return false;
    }

    private void Apply(WatchEventType type, T obj)
    {
        var rv = obj.Metadata?.ResourceVersion;
        switch (type)
        {
            case WatchEventType.Added:
            case WatchEventType.Modified:
                {
                    var cached = Prepare(obj);
                    var old = Store.Upsert(cached);
                    if (old is null)
                    {
                        Notify(h => h.OnAdd(cached, false));
                    }
                    else if (old.Metadata.ResourceVersion != rv)
                    {
                        Notify(h => h.OnUpdate(old, cached));
                    }

                    break;
                }

            case WatchEventType.Deleted:
                {
                    var gone = Store.Remove(ObjectKey.Of(obj));
                    if (gone is not null)
                    {
                        var last = Prepare(obj);
                        Notify(h => h.OnDelete(last));
                    }

                    break;
                }

            case WatchEventType.Bookmark:
            case WatchEventType.Error:
            default:
                break;
        }

        if (!string.IsNullOrEmpty(rv))
        {
            LastResourceVersion = rv;
        }
    }

    private void Notify(Action<IResourceEventHandler<T>> call)
    {
        IResourceEventHandler<T>[] handlers;
        lock (_handlers)
        {
            handlers = [.. _handlers];
        }

        foreach (var h in handlers)
        {
            try
            {
                call(h);
            }
#pragma warning disable CA1031 // One faulty handler must not stop the informer or the other handlers.
            catch (Exception e)
#pragma warning restore CA1031
            {
                _log.LogError(e, "An event handler of {Resource} failed", Resource);
            }
        }
    }

    private TimeSpan Backoff(int failures)
    {
        var baseMs = _options.InitialBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(failures - 1, 30));
        var jittered = Math.Min(baseMs, _options.MaxBackoff.TotalMilliseconds) * (1 + (_options.Random.NextDouble() * 0.5));
        return TimeSpan.FromMilliseconds(Math.Min(jittered, _options.MaxBackoff.TotalMilliseconds));
    }

    internal static bool IsGone(Exception? e) => e switch
    {
        KubernetesException k => k.Status?.Code == (int)HttpStatusCode.Gone,
        HttpOperationException h => h.Response?.StatusCode == HttpStatusCode.Gone,
        _ => false,
    };

    /// <summary>What the cache keeps of <paramref name="obj"/>: stripped of managedFields and the last-applied annotation, namespace, kind and finalizers pooled (<see cref="StringPool.Shared"/>), then the transform's result.</summary>
    private T Prepare(T obj)
    {
        if (obj.Metadata is not null)
        {
            obj.Metadata.ManagedFields = null;
            obj.Metadata.Annotations?.Remove(LastAppliedAnnotation);
            // Shared by every object of a namespace or kind: one copy instead of one per cached object.
            obj.Metadata.NamespaceProperty = StringPool.Shared.Intern(obj.Metadata.NamespaceProperty);
            StringPool.Shared.InternAll(obj.Metadata.Finalizers);
        }

        obj.ApiVersion = StringPool.Shared.Intern(obj.ApiVersion);
        obj.Kind = StringPool.Shared.Intern(obj.Kind);

        return _transform is null ? obj : _transform(obj);
    }
}
