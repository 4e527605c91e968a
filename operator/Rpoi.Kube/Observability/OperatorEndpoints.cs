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
        // RequestDelegates, not lambdas returning IResult: those go through RequestDelegateFactory, which compiles expression
        // trees (System.Linq.Expressions and their JIT code stay in the process) for two constant answers.
        endpoints.MapGet("/healthz", context => Text(context, StatusCodes.Status200OK, "ok"));
        endpoints.MapGet("/readyz", context => isReady()
            ? Text(context, StatusCodes.Status200OK, "ok")
            : Text(context, StatusCodes.Status503ServiceUnavailable, "informers not synced"));
        return endpoints;
    }

    private static Task Text(HttpContext context, int status, string body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(body, context.RequestAborted);
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
