using Prometheus;

namespace Rpoi.Kube.Observability;

/// <summary>
/// The runtime's Prometheus metrics, under controller-runtime's and client-go's names so existing
/// dashboards and alerts work unchanged. Built on a caller-supplied registry so tests do not share state.
/// </summary>
public sealed class KubeMetrics
{
    /// <summary>Creates (or reuses, when already registered) the collectors in <paramref name="registry"/>.</summary>
    public KubeMetrics(CollectorRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        Registry = registry;
        var f = Metrics.WithCustomRegistry(registry);
        string[] queue = ["name"];

        // client-go's workqueue buckets: 1 ns to 10 s in powers of ten.
        var queueBuckets = Histogram.ExponentialBuckets(1e-9, 10, 11);
        WorkQueueDepth = f.CreateGauge("workqueue_depth", "Current depth of the work queue.", queue);
        WorkQueueAdds = f.CreateCounter("workqueue_adds_total", "Total number of adds handled by the work queue.", queue);
        WorkQueueQueueDuration = f.CreateHistogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in the work queue before being requested.",
            new HistogramConfiguration { LabelNames = queue, Buckets = queueBuckets });
        WorkQueueWorkDuration = f.CreateHistogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from the work queue takes.",
            new HistogramConfiguration { LabelNames = queue, Buckets = queueBuckets });
        WorkQueueRetries = f.CreateCounter("workqueue_retries_total", "Total number of retries handled by the work queue.", queue);

        ReconcileTotal = f.CreateCounter(
            "controller_runtime_reconcile_total",
            "Total number of reconciliations per controller.",
            "controller",
            "result");
        ReconcileErrors = f.CreateCounter(
            "controller_runtime_reconcile_errors_total",
            "Total number of reconciliation errors per controller.",
            "controller");
        ReconcileTime = f.CreateHistogram(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller.",
            new HistogramConfiguration { LabelNames = ["controller"], Buckets = Histogram.ExponentialBuckets(0.005, 2, 14) });
        RestClientRequests = f.CreateCounter(
            "rest_client_requests_total",
            "Number of HTTP requests, partitioned by status code, method, and host.",
            "code",
            "method",
            "host");

        // No client-go counterpart (its broadcaster only logs drops), hence the runtime's own prefix.
        EventsDropped = f.CreateCounter(
            "rpoi_kube_events_dropped_total",
            "Events that never reached the API server, by reason (queue_full, stopped, write_failed, shutdown).",
            "reason");
    }

    /// <summary>The registry the collectors live in (serve it on <c>/metrics</c>).</summary>
    public CollectorRegistry Registry { get; }

    /// <summary><c>workqueue_depth{name}</c>.</summary>
    public Gauge WorkQueueDepth { get; }

    /// <summary><c>workqueue_adds_total{name}</c>.</summary>
    public Counter WorkQueueAdds { get; }

    /// <summary><c>workqueue_queue_duration_seconds{name}</c>.</summary>
    public Histogram WorkQueueQueueDuration { get; }

    /// <summary><c>workqueue_work_duration_seconds{name}</c>.</summary>
    public Histogram WorkQueueWorkDuration { get; }

    /// <summary><c>workqueue_retries_total{name}</c>.</summary>
    public Counter WorkQueueRetries { get; }

    /// <summary><c>controller_runtime_reconcile_total{controller,result}</c>.</summary>
    public Counter ReconcileTotal { get; }

    /// <summary><c>controller_runtime_reconcile_errors_total{controller}</c>.</summary>
    public Counter ReconcileErrors { get; }

    /// <summary><c>controller_runtime_reconcile_time_seconds{controller}</c>.</summary>
    public Histogram ReconcileTime { get; }

    /// <summary><c>rest_client_requests_total{code,method,host}</c>.</summary>
    public Counter RestClientRequests { get; }

    /// <summary><c>rpoi_kube_events_dropped_total{reason}</c>: events the recorder dropped instead of writing.</summary>
    public Counter EventsDropped { get; }
}
