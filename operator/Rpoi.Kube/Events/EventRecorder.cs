using System.Security.Cryptography;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

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
/// Writes events.k8s.io/v1 Events. An event identical to one recorded in the last
/// <see cref="SeriesWindow"/> (same object, type, reason, action, note) is not created again: the
/// first event's <c>series</c> count and last-observed time are patched instead, as client-go does.
/// </summary>
public sealed class KubeEventRecorder : IEventRecorder
{
    private const int MaxTracked = 4096;
    private readonly IKubernetes _client;
    private readonly string _controller;
    private readonly string _instance;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Tracked> _recent = new(StringComparer.Ordinal);

    /// <summary>Creates a recorder.</summary>
    /// <param name="client">The Kubernetes client.</param>
    /// <param name="reportingController">e.g. <c>example.test/widget-controller</c>.</param>
    /// <param name="reportingInstance">The pod or host name of this replica.</param>
    /// <param name="time">Clock for event times.</param>
    /// <param name="logger">Logger for failed writes.</param>
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

    /// <summary>How long an event stays open for series aggregation (client-go: 6 minutes).</summary>
    public TimeSpan SeriesWindow { get; init; } = TimeSpan.FromMinutes(6);

    /// <inheritdoc/>
    public async Task RecordAsync(IKubernetesObject<V1ObjectMeta> regarding, string type, string reason, string action, string? note, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(regarding);
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        ArgumentException.ThrowIfNullOrWhiteSpace(action);
        if (type is not (EventTypes.Normal or EventTypes.Warning))
        {
            throw new ArgumentException($"Event type '{type}' is invalid; use \"Normal\" or \"Warning\".", nameof(type));
        }

        var meta = regarding.Metadata;
        var ns = string.IsNullOrEmpty(meta?.NamespaceProperty) ? "default" : meta.NamespaceProperty;
        var identity = $"{meta?.Uid ?? meta?.Name}\n{regarding.Kind}\n{type}\n{reason}\n{action}\n{note}";
        var now = _time.GetUtcNow();
        Tracked? existing;
        lock (_gate)
        {
            existing = _recent.TryGetValue(identity, out var t) && now - t.First < SeriesWindow ? t : null;
        }

        try
        {
            if (existing is not null)
            {
                var count = Interlocked.Increment(ref existing.Count);
                var patch = new JsonObject
                {
                    ["series"] = new JsonObject { ["count"] = count, ["lastObservedTime"] = now.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", System.Globalization.CultureInfo.InvariantCulture) },
                };
                await _client.EventsV1.PatchNamespacedEventAsync(new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch), existing.Name, ns, cancellationToken: cancellationToken).ConfigureAwait(false);
                return;
            }

            var name = $"{meta?.Name ?? "object"}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}";
            var ev = new Eventsv1Event
            {
                ApiVersion = "events.k8s.io/v1",
                Kind = "Event",
                Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns },
                EventTime = now.UtcDateTime,
                Type = type,
                Reason = reason,
                Action = action,
                Note = note is { Length: > 1024 } ? note[..1024] : note,
                ReportingController = _controller,
                ReportingInstance = _instance,
                Regarding = new V1ObjectReference
                {
                    ApiVersion = regarding.ApiVersion,
                    Kind = regarding.Kind,
                    Name = meta?.Name,
                    NamespaceProperty = meta?.NamespaceProperty,
                    Uid = meta?.Uid,
                    ResourceVersion = meta?.ResourceVersion,
                },
            };
            await _client.EventsV1.CreateNamespacedEventAsync(ev, ns, cancellationToken: cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                if (_recent.Count >= MaxTracked)
                {
                    _recent.Clear();
                }

                _recent[identity] = new Tracked(name, now);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
#pragma warning disable CA1031 // Events are best effort (as in client-go): never fail the caller.
        catch (Exception e)
#pragma warning restore CA1031
        {
            _log.LogWarning(e, "Could not record event {Reason} on {Name}", reason, meta?.Name);
            if (existing is not null)
            {
                // The aggregated event is gone or unwritable: start a fresh one next time.
                lock (_gate)
                {
                    _recent.Remove(identity);
                }
            }
        }
    }

    private sealed class Tracked(string name, DateTimeOffset first)
    {
        public int Count = 1;

        public string Name { get; } = name;

        public DateTimeOffset First { get; } = first;
    }
}
