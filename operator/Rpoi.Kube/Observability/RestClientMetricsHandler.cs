using System.Globalization;

namespace Rpoi.Kube.Observability;

/// <summary>
/// Counts API requests as client-go's <c>rest_client_requests_total{code,method,host}</c>. Pass it to
/// <c>new Kubernetes(config, handler)</c>; transport failures are counted with code <c>&lt;error&gt;</c>.
/// </summary>
public sealed class RestClientMetricsHandler(KubeMetrics metrics) : DelegatingHandler
{
    /// <inheritdoc/>
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var host = request.RequestUri?.Authority ?? string.Empty;
        try
        {
            var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            metrics.RestClientRequests.WithLabels(((int)response.StatusCode).ToString(CultureInfo.InvariantCulture), request.Method.Method, host).Inc();
            return response;
        }
        catch (Exception)
        {
            metrics.RestClientRequests.WithLabels("<error>", request.Method.Method, host).Inc();
            throw;
        }
    }
}
