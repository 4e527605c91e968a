using System.Net;
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

/// <summary>Timing of an informer's reconnects.</summary>
public sealed record InformerOptions
{
    /// <summary>Clock for reconnect delays. Defaults to the system clock.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Jitter source for reconnect delays.</summary>
    public Random Random { get; init; } = Random.Shared;

    /// <summary>First delay after a failed list or watch (client-go: 800 ms).</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(800);

    /// <summary>Largest delay between attempts (client-go: 30 s).</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Logger; silent when null.</summary>
    public ILogger? Logger { get; init; }
}

/// <summary>
/// client-go's reflector + shared informer for one resource type: list, then watch from the list's
/// resourceVersion with bookmarks; on 410 Gone re-list and diff the cache into synthetic
/// add/update/delete notifications; on any other failure reconnect from the last seen
/// resourceVersion after an exponential, jittered backoff. Cached objects are stripped of
/// <c>managedFields</c> and the last-applied annotation to keep memory small.
/// </summary>
/// <typeparam name="T">The object type.</typeparam>
public sealed class Informer<T> : IInformer
    where T : class, IKubernetesObject<V1ObjectMeta>
{
    private const string LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration";

    private readonly IResourceClient<T> _client;
    private readonly InformerOptions _options;
    private readonly ILogger _log;
    private readonly List<IResourceEventHandler<T>> _handlers = [];
    private readonly TaskCompletionSource _synced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _running;
    private long _lists;
    private long _watches;

    /// <summary>Creates an informer; call <see cref="RunAsync"/> to start it.</summary>
    public Informer(IResourceClient<T> client, InformerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        _client = client;
        _options = options ?? new InformerOptions();
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
            Exception? failure = null;
            try
            {
                if (needList)
                {
                    await ListAndReplaceAsync(ct).ConfigureAwait(false);
                    needList = false;
                }

                var (error, delivered) = await WatchOnceAsync(ct).ConfigureAwait(false);
                failure = error;
                if (failure is null && delivered)
                {
                    // A cleanly closed stream (server timeout) is routine: resume at once.
                    failures = 0;
                    continue;
                }

                // A stream that closes before delivering anything, again and again, must not become a busy loop.
                failure ??= new IOException($"The watch of {Resource} closed without delivering an event.");
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
            var delay = Backoff(failures);
            _log.LogWarning(failure, "List/watch of {Resource} failed ({Failures} in a row); retrying in {Delay}", Resource, failures, delay);
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
        var list = await _client.ListAsync(ct).ConfigureAwait(false);
        Interlocked.Increment(ref _lists);
        var initial = !HasSynced;
        var seen = new HashSet<ObjectKey>();
        foreach (var item in list.Items)
        {
            Strip(item);
            var key = ObjectKey.Of(item);
            seen.Add(key);
            var old = Store.Upsert(item);
            if (old is null)
            {
                Notify(h => h.OnAdd(item, initial));
            }
            else if (old.Metadata.ResourceVersion != item.Metadata.ResourceVersion)
            {
                Notify(h => h.OnUpdate(old, item));
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

    private async Task<(Exception? Error, bool Delivered)> WatchOnceAsync(CancellationToken ct)
    {
        using var watchCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        Exception? streamError = null;
        void OnError(Exception e)
        {
            if (e is KubernetesException)
            {
                // A server ERROR event ends this stream; the caller decides between re-list and reconnect.
                streamError ??= e;
                watchCts.Cancel();
            }
            else
            {
                _log.LogWarning(e, "Skipping an unreadable watch event of {Resource}", Resource);
            }
        }

        Interlocked.Increment(ref _watches);
        var delivered = false;
        try
        {
            await foreach (var (type, obj) in _client.WatchAsync(LastResourceVersion ?? string.Empty, OnError, watchCts.Token).ConfigureAwait(false))
            {
                delivered = true;
                Apply(type, obj);
            }
        }
        catch (OperationCanceledException) when (streamError is not null && !ct.IsCancellationRequested)
        {
        }

        return (streamError, delivered);
    }

    private void Apply(WatchEventType type, T obj)
    {
        var rv = obj.Metadata?.ResourceVersion;
        switch (type)
        {
            case WatchEventType.Added:
            case WatchEventType.Modified:
                {
                    Strip(obj);
                    var old = Store.Upsert(obj);
                    if (old is null)
                    {
                        Notify(h => h.OnAdd(obj, false));
                    }
                    else if (old.Metadata.ResourceVersion != rv)
                    {
                        Notify(h => h.OnUpdate(old, obj));
                    }

                    break;
                }

            case WatchEventType.Deleted:
                {
                    var gone = Store.Remove(ObjectKey.Of(obj));
                    if (gone is not null)
                    {
                        Strip(obj);
                        Notify(h => h.OnDelete(obj));
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

    private static void Strip(T obj)
    {
        if (obj.Metadata is null)
        {
            return;
        }

        obj.Metadata.ManagedFields = null;
        obj.Metadata.Annotations?.Remove(LastAppliedAnnotation);
    }
}
