using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Rpoi.Kube.Observability;

namespace Rpoi.Kube.Events;

/// <summary>Kubernetes event types.</summary>
public static class EventTypes
{
    /// <summary>Something expected happened.</summary>
    public const string Normal = "Normal";

    /// <summary>Something needs attention.</summary>
    public const string Warning = "Warning";
}

/// <summary>Records events.k8s.io/v1 Events about objects (client-go's <c>events.EventRecorder</c>).</summary>
public interface IEventRecorder
{
    /// <summary>
    /// Records that <paramref name="action"/> was taken on <paramref name="regarding"/> for
    /// <paramref name="reason"/>. Failures are logged, never thrown: an event must not fail a reconcile.
    /// </summary>
    Task RecordAsync(IKubernetesObject<V1ObjectMeta> regarding, string type, string reason, string action, string? note, CancellationToken cancellationToken);
}

/// <summary>
/// Writes events.k8s.io/v1 Events in the background, as client-go's <c>EventBroadcaster</c> does:
/// <see cref="RecordAsync"/> only queues the event (bounded by <see cref="Capacity"/>; when full the event is
/// dropped and counted) and one loop sends queued events in order, so an event never adds an API round trip to
/// the reconcile that records it. An event identical to one recorded in the last <see cref="SeriesWindow"/>
/// (same object, type, reason, action, note) is not created again: the first event's <c>series</c> count and
/// last-observed time are patched instead. <see cref="FlushAsync"/> waits for what is queued;
/// <see cref="DisposeAsync"/> sends what is queued (within <see cref="DrainTimeout"/>) and stops the loop.
/// </summary>
public sealed class KubeEventRecorder : IEventRecorder, IAsyncDisposable
{
    /// <summary>The default <see cref="Capacity"/>, client-go's <c>maxQueuedEvents</c>.</summary>
    public const int DefaultCapacity = 1000;

    private const int MaxTracked = 4096;
    private readonly IKubernetes _client;
    private readonly string _controller;
    private readonly string _instance;
    private readonly TimeProvider _time;
    private readonly ILogger _log;

    // Touched only by the send loop: aggregation needs no lock because one thread sends.
    private readonly Dictionary<string, Tracked> _recent = new(StringComparer.Ordinal);

    // Guards the channel, the loop, the enqueued/sent counts and the flush waiters. Writing under the lock keeps
    // the enqueued count in channel order, so a flush waits exactly for the events queued before it.
    private readonly Lock _gate = new();
    private readonly List<(long Target, TaskCompletionSource Done)> _flushes = [];
    private readonly CancellationTokenSource _abort = new();
    private Channel<PendingEvent>? _channel;
    private Task? _loop;
    private Task? _disposal;
    private long _enqueued;
    private long _processed;
    private long _dropped;

    /// <summary>Creates a recorder; its send loop starts on the first event or on <see cref="Start"/>.</summary>
    /// <param name="client">The Kubernetes client.</param>
    /// <param name="reportingController">e.g. <c>example.test/widget-controller</c>.</param>
    /// <param name="reportingInstance">The pod or host name of this replica.</param>
    /// <param name="time">Clock for event times, the series window and the retry delay.</param>
    /// <param name="logger">Logger for failed writes and drops.</param>
    public KubeEventRecorder(IKubernetes client, string reportingController, string reportingInstance, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrWhiteSpace(reportingController);
        ArgumentException.ThrowIfNullOrWhiteSpace(reportingInstance);
        _client = client;
        _controller = reportingController;
        _instance = reportingInstance;
        _time = time ?? TimeProvider.System;
        _log = logger ?? NullLogger.Instance;
    }

    /// <summary>The <c>reportingController</c> of every event.</summary>
    public string ReportingController => _controller;

    /// <summary>The <c>reportingInstance</c> of every event.</summary>
    public string ReportingInstance => _instance;

    /// <summary>How long an event stays open for series aggregation (client-go: 6 minutes).</summary>
    public TimeSpan SeriesWindow { get; init; } = TimeSpan.FromMinutes(6);

    /// <summary>How many events may wait to be sent; more are dropped (client-go: 1000).</summary>
    public int Capacity
    {
        get;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1, nameof(Capacity));
            field = value;
        }
    } = DefaultCapacity;

    /// <summary>
    /// How long <see cref="DisposeAsync"/> (and <see cref="FlushAsync"/>) wait for queued events. Measured on the
    /// wall clock, not the injected one: it bounds a shutdown, which the pod's termination grace period bounds too.
    /// </summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Wait before the single retry of a write the API server refused for now (429, 5xx, no connection).</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Log a warning for the first dropped event and then once per this many drops.</summary>
    public int DropWarningInterval
    {
        get;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1, nameof(DropWarningInterval));
            field = value;
        }
    } = 100;

    /// <summary>Where to count dropped events (<c>rpoi_kube_events_dropped_total</c>); none when null.</summary>
    public KubeMetrics? Metrics { get; init; }

    /// <summary>Events dropped so far (queue full, recorder stopped, write failed, abandoned at shutdown).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Events queued or being sent.</summary>
    public int Pending
    {
        get
        {
            lock (_gate)
            {
                return (int)(_enqueued - _processed);
            }
        }
    }

    /// <summary>
    /// Queues the event and returns at once (completed); the send loop writes it. Invalid arguments still throw
    /// here, so a caller's bug is not hidden in a log line. A cancelled <paramref name="cancellationToken"/> records
    /// nothing; otherwise the token does not reach the send, which outlives the reconcile that recorded the event.
    /// </summary>
    public Task RecordAsync(IKubernetesObject<V1ObjectMeta> regarding, string type, string reason, string action, string? note, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(regarding);
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        ArgumentException.ThrowIfNullOrWhiteSpace(action);
        if (type is not (EventTypes.Normal or EventTypes.Warning))
        {
            throw new ArgumentException($"Event type '{type}' is invalid; use \"Normal\" or \"Warning\".", nameof(type));
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled(cancellationToken);
        }

        // A snapshot: the caller may change the object after this returns, the event describes it as it was.
        var meta = regarding.Metadata;
        var subject = new V1ObjectReference
        {
            ApiVersion = regarding.ApiVersion,
            Kind = regarding.Kind,
            Name = meta?.Name,
            NamespaceProperty = meta?.NamespaceProperty,
            Uid = meta?.Uid,
            ResourceVersion = meta?.ResourceVersion,
        };
        var pending = new PendingEvent(subject, type, reason, action, note is { Length: > 1024 } ? note[..1024] : note, _time.GetUtcNow());
        string dropReason;
        lock (_gate)
        {
            if (_disposal is not null)
            {
                dropReason = "stopped";
            }
            else if (StartLocked().Writer.TryWrite(pending))
            {
                _enqueued++;
                return Task.CompletedTask;
            }
            else
            {
                dropReason = "queue_full";
            }
        }

        Drop(pending, dropReason, null);
        return Task.CompletedTask;
    }

    /// <summary>Starts the send loop now (it also starts on the first event).</summary>
    /// <exception cref="ObjectDisposedException">The recorder was disposed.</exception>
    public void Start()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposal is not null, this);
            StartLocked();
        }
    }

    /// <summary>
    /// Waits until every event queued before this call has been sent (or given up on). Returns false when that did not
    /// happen within <see cref="DrainTimeout"/>; throws when <paramref name="cancellationToken"/> is cancelled first.
    /// </summary>
    public async Task<bool> FlushAsync(CancellationToken cancellationToken)
    {
        TaskCompletionSource done;
        lock (_gate)
        {
            if (_processed >= _enqueued)
            {
                return true;
            }

            done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _flushes.Add((_enqueued, done));
        }

        try
        {
            await done.Task.WaitAsync(DrainTimeout, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>
    /// Stops taking events, sends what is queued (at most <see cref="DrainTimeout"/>; what is left then is dropped and
    /// counted) and stops the loop. Events recorded afterwards are dropped. Safe to call more than once.
    /// </summary>
    public ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_disposal is null)
            {
                _channel?.Writer.TryComplete();
                _disposal = DrainAsync(_loop);
            }

            return new ValueTask(_disposal);
        }
    }

    private async Task DrainAsync(Task? loop)
    {
        if (loop is not null)
        {
            try
            {
                await loop.WaitAsync(DrainTimeout).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                _log.LogWarning("{Pending} events still unsent after {Timeout}; dropping them", Pending, DrainTimeout);
                await _abort.CancelAsync().ConfigureAwait(false);
                await loop.ConfigureAwait(false);
            }
        }

        _abort.Dispose();
    }

    private Channel<PendingEvent> StartLocked()
    {
        if (_channel is { } channel)
        {
            return channel;
        }

        // Wait mode makes TryWrite refuse when full: the newest event is the one dropped, as in client-go.
        channel = Channel.CreateBounded<PendingEvent>(new BoundedChannelOptions(Capacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
        });
        _channel = channel;
        _loop = Task.Run(() => SendLoopAsync(channel.Reader), CancellationToken.None);
        return channel;
    }

    private async Task SendLoopAsync(ChannelReader<PendingEvent> reader)
    {
        while (await reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
        {
            while (reader.TryRead(out var pending))
            {
                if (_abort.IsCancellationRequested)
                {
                    Drop(pending, "shutdown", null);
                }
                else
                {
                    await SendAsync(pending, _abort.Token).ConfigureAwait(false);
                }

                Sent();
            }
        }
    }

    private void Sent()
    {
        List<TaskCompletionSource>? done = null;
        lock (_gate)
        {
            _processed++;
            for (var i = _flushes.Count - 1; i >= 0; i--)
            {
                if (_flushes[i].Target <= _processed)
                {
                    (done ??= []).Add(_flushes[i].Done);
                    _flushes.RemoveAt(i);
                }
            }
        }

        done?.ForEach(d => d.TrySetResult());
    }

    private async Task SendAsync(PendingEvent e, CancellationToken cancellationToken)
    {
        var ns = string.IsNullOrEmpty(e.Regarding.NamespaceProperty) ? "default" : e.Regarding.NamespaceProperty;
        var identity = $"{e.Regarding.Uid ?? e.Regarding.Name}\n{e.Regarding.Kind}\n{e.Type}\n{e.Reason}\n{e.Action}\n{e.Note}";
        var existing = _recent.TryGetValue(identity, out var t) && e.Time - t.First < SeriesWindow ? t : null;
        try
        {
            if (existing is not null)
            {
                var count = existing.Count + 1;
                var patch = new JsonObject
                {
                    ["series"] = new JsonObject { ["count"] = count, ["lastObservedTime"] = e.Time.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", CultureInfo.InvariantCulture) },
                };
                try
                {
                    await WithOneRetryAsync(
                        ct => _client.EventsV1.PatchNamespacedEventAsync(new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch), existing.Name, ns, cancellationToken: ct),
                        cancellationToken).ConfigureAwait(false);
                    existing.Count = count;
                    return;
                }
                catch (HttpOperationException p) when (p.Response?.StatusCode == HttpStatusCode.NotFound)
                {
                    // The series' first event is gone (expired or deleted): start a new one, as client-go does.
                    _recent.Remove(identity);
                }
            }

            var name = $"{e.Regarding.Name ?? "object"}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}";
            var ev = new Eventsv1Event
            {
                ApiVersion = "events.k8s.io/v1",
                Kind = "Event",
                Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns },
                EventTime = e.Time.UtcDateTime,
                Type = e.Type,
                Reason = e.Reason,
                Action = e.Action,
                Note = e.Note,
                ReportingController = _controller,
                ReportingInstance = _instance,
                Regarding = e.Regarding,
            };
            await WithOneRetryAsync(ct => _client.EventsV1.CreateNamespacedEventAsync(ev, ns, cancellationToken: ct), cancellationToken).ConfigureAwait(false);
            if (_recent.Count >= MaxTracked)
            {
                _recent.Clear();
            }

            _recent[identity] = new Tracked(name, e.Time);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Drop(e, "shutdown", null);
        }
#pragma warning disable CA1031 // Events are best effort (as in client-go): a failed write is logged, never thrown.
        catch (Exception failure)
#pragma warning restore CA1031
        {
            Drop(e, "write_failed", failure);
            if (existing is not null)
            {
                // The aggregated event is unwritable: start a fresh one next time.
                _recent.Remove(identity);
            }
        }
    }

    /// <summary>Runs <paramref name="write"/>, and once more after <see cref="RetryDelay"/> when the failure is transient.</summary>
    private async Task WithOneRetryAsync(Func<CancellationToken, Task> write, CancellationToken cancellationToken)
    {
        try
        {
            await write(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (IsTransient(e) && !cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(RetryDelay, _time, cancellationToken).ConfigureAwait(false);
            await write(cancellationToken).ConfigureAwait(false);
        }
    }

    private static bool IsTransient(Exception e) => e switch
    {
        HttpOperationException { Response: { } r } => r.StatusCode is HttpStatusCode.TooManyRequests || (int)r.StatusCode >= 500,
        HttpRequestException => true,
        _ => false,
    };

    private void Drop(PendingEvent e, string why, Exception? failure)
    {
        var dropped = Interlocked.Increment(ref _dropped);
        Metrics?.EventsDropped.WithLabels(why).Inc();
        if (failure is not null)
        {
            // Every failed write is worth a line: it says what the API server refused.
            _log.LogWarning(failure, "Could not record event {Reason} on {Kind} {Name}", e.Reason, e.Regarding.Kind, e.Regarding.Name);
        }
        else if ((dropped - 1) % DropWarningInterval == 0)
        {
            // A full queue drops many events in a row: one line per DropWarningInterval drops is enough.
            _log.LogWarning("Dropped event {Reason} on {Kind} {Name} ({Why}); {Dropped} events dropped so far", e.Reason, e.Regarding.Kind, e.Regarding.Name, why, dropped);
        }
    }

    private sealed record PendingEvent(V1ObjectReference Regarding, string Type, string Reason, string Action, string? Note, DateTimeOffset Time);

    private sealed class Tracked(string name, DateTimeOffset first)
    {
        public int Count { get; set; } = 1;

        public string Name { get; } = name;

        public DateTimeOffset First { get; } = first;
    }
}
