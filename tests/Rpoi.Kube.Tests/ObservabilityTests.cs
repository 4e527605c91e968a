using System.Net;
using k8s;
using k8s.Models;
using Prometheus;
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

        using var health = await http.GetAsync(new Uri("/healthz", UriKind.Relative));
        Assert.Equal((HttpStatusCode.OK, "ok", "text/plain"), (health.StatusCode, await health.Content.ReadAsStringAsync(), health.Content.Headers.ContentType?.MediaType));
        using var notReady = await http.GetAsync(new Uri("/readyz", UriKind.Relative));
        Assert.Equal((HttpStatusCode.ServiceUnavailable, "informers not synced"), (notReady.StatusCode, await notReady.Content.ReadAsStringAsync()));
        ready = true;
        using var readyNow = await http.GetAsync(new Uri("/readyz", UriKind.Relative));
        Assert.Equal((HttpStatusCode.OK, "ok"), (readyNow.StatusCode, await readyNow.Content.ReadAsStringAsync()));
        var text = await http.GetStringAsync(new Uri("/metrics", UriKind.Relative));
        Assert.Contains("controller_runtime_reconcile_total{controller=\"widgets\",result=\"success\"} 3", text, StringComparison.Ordinal);
    }
}
