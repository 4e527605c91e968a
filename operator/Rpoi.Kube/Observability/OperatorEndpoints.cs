using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Prometheus;

namespace Rpoi.Kube.Observability;

/// <summary>The probe and metrics endpoints every operator serves: <c>/metrics</c>, <c>/healthz</c>, <c>/readyz</c>.</summary>
public static class OperatorEndpoints
{
    /// <summary>
    /// Maps <c>/metrics</c> (from <paramref name="registry"/>), <c>/healthz</c> (always ok while the
    /// process serves) and <c>/readyz</c> (ok once <paramref name="isReady"/> says the informers have synced).
    /// </summary>
    public static IEndpointRouteBuilder MapOperatorEndpoints(this IEndpointRouteBuilder endpoints, CollectorRegistry registry, Func<bool> isReady)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(isReady);
        endpoints.MapMetrics("/metrics", registry);
        endpoints.MapGet("/healthz", () => Results.Text("ok"));
        endpoints.MapGet("/readyz", () => isReady() ? Results.Text("ok") : Results.Text("informers not synced", statusCode: StatusCodes.Status503ServiceUnavailable));
        return endpoints;
    }

    /// <summary>
    /// Starts a small Kestrel host serving the operator endpoints on <paramref name="url"/>
    /// (default: a free loopback port). Read the bound address from the returned app's <c>Urls</c>.
    /// </summary>
    public static async Task<WebApplication> StartAsync(CollectorRegistry registry, Func<bool> isReady, string url = "http://127.0.0.1:0", CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(url);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        var app = builder.Build();
        app.MapOperatorEndpoints(registry, isReady);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        return app;
    }
}
