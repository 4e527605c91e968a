using System.Net;
using k8s;
using k8s.Models;
using Prometheus;
using Rpoi.Kube.Events;
using Rpoi.Kube.Observability;
using Rpoi.Tests.Shared;

namespace Rpoi.Kube.Tests;

public sealed class ObservabilityTests
{
    [Fact]
    public async Task Rest_client_handler_counts_requests_by_code_method_and_host()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        var metrics = new KubeMetrics(Metrics.NewCustomRegistry());
        using var client = cluster.NewClient(new RestClientMetricsHandler(metrics));
        await client.CoreV1.ListNamespaceAsync();
        await Assert.ThrowsAsync<k8s.Autorest.HttpOperationException>(() => client.CoreV1.ReadNamespacedSecretAsync("missing", cluster.Namespace));
        var host = new Uri(cluster.Cluster.Config.Host).Authority;
        Assert.Equal(1, metrics.RestClientRequests.WithLabels("200", "GET", host).Value);
        Assert.Equal(1, metrics.RestClientRequests.WithLabels("404", "GET", host).Value);
    }

    [Fact]
    public async Task Endpoints_serve_metrics_health_and_readiness()
    {
        var registry = Metrics.NewCustomRegistry();
        var metrics = new KubeMetrics(registry);
        metrics.ReconcileTotal.WithLabels("widgets", "success").Inc(3);
        var ready = false;
        await using var app = await OperatorEndpoints.StartAsync(registry, () => ready);
        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()) };

        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("/healthz", UriKind.Relative))).StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync(new Uri("/readyz", UriKind.Relative))).StatusCode);
        ready = true;
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("/readyz", UriKind.Relative))).StatusCode);
        var text = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        Assert.Contains("controller_runtime_reconcile_total{controller=\"widgets\",result=\"success\"} 3", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Repeated_identical_events_aggregate_into_a_series()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        var widget = await cluster.CreateAsync("evented");
        var recorder = new KubeEventRecorder(cluster.Client, "example.test/widget-controller", "replica-a");

        await recorder.RecordAsync(widget, EventTypes.Normal, "Provisioned", "Provision", "chips claimed", CancellationToken.None);
        await recorder.RecordAsync(widget, EventTypes.Normal, "Provisioned", "Provision", "chips claimed", CancellationToken.None);
        await recorder.RecordAsync(widget, EventTypes.Normal, "Provisioned", "Provision", "chips claimed", CancellationToken.None);
        await recorder.RecordAsync(widget, EventTypes.Warning, "Failed", "Provision", "no capacity", CancellationToken.None);

        var events = (await cluster.Client.EventsV1.ListNamespacedEventAsync(cluster.Namespace)).Items;
        Assert.Equal(2, events.Count);
        var provisioned = Assert.Single(events, e => e.Reason == "Provisioned");
        Assert.Equal(3, provisioned.Series?.Count);
        Assert.Equal(("Widget", "evented", widget.Metadata.Uid), (provisioned.Regarding.Kind, provisioned.Regarding.Name, provisioned.Regarding.Uid));
        Assert.Equal(("example.test/widget-controller", "replica-a", "Provision"), (provisioned.ReportingController, provisioned.ReportingInstance, provisioned.Action));
        Assert.Null(Assert.Single(events, e => e.Reason == "Failed").Series);
    }

    [SkippableFact]
    public async Task Recording_never_throws_when_the_api_refuses()
    {
        Skip.If(TestCluster.RealClusterConfigured, "needs fault injection (500 on events create)");
        await using var cluster = await WidgetCluster.StartAsync();
        var widget = await cluster.CreateAsync("quiet");
        cluster.Server.Faults.FailNext(1, 500, verb: "create", resource: "events");
        var recorder = new KubeEventRecorder(cluster.Client, "example.test/widget-controller", "replica-a");
        await recorder.RecordAsync(widget, EventTypes.Normal, "Seen", "Observe", null, CancellationToken.None);
        await recorder.RecordAsync(widget, EventTypes.Normal, "Seen", "Observe", null, CancellationToken.None);
        Assert.Single((await cluster.Client.EventsV1.ListNamespacedEventAsync(cluster.Namespace)).Items);
    }
}
