using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Rpoi.Operator.Entities;
using RatingResource = Rpoi.Operator.Entities.Rating;

namespace Rpoi.Chaos;

/// <summary>
/// The harness's own API calls. They go through the same faulty API server as the operator's, so each is retried on
/// what a careful client retries (409 Conflict from the injector, 429, 5xx, a dropped connection): the renter is a
/// user with patience, not part of what is tested.
/// </summary>
internal static class Api
{
    public static async Task<T> RetryAsync<T>(Func<Task<T>> call, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await call().ConfigureAwait(false);
            }
            catch (Exception e) when (attempt < 200 && IsTransient(e) && !ct.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(50 * attempt, 500)), ct).ConfigureAwait(false);
            }
        }
    }

    public static Task RetryAsync(Func<Task> call, CancellationToken ct) =>
        RetryAsync(
            async () =>
            {
                await call().ConfigureAwait(false);
                return true;
            },
            ct);

    public static async Task<Lease?> GetLeaseAsync(IKubernetes client, string ns, string name, CancellationToken ct) =>
        await RetryAsync(
            async () =>
            {
                try
                {
                    return await client.CustomObjects.GetNamespacedCustomObjectAsync<Lease>(Lease.Group, Lease.Version, ns, Lease.Plural, name, ct).ConfigureAwait(false);
                }
                catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
                {
                    return null;
                }
            },
            ct).ConfigureAwait(false);

    public static async Task<RatingResource?> GetRatingAsync(IKubernetes client, string ns, string name, CancellationToken ct) =>
        await RetryAsync(
            async () =>
            {
                try
                {
                    return await client.CustomObjects.GetNamespacedCustomObjectAsync<RatingResource>(Lease.Group, Lease.Version, ns, RatingResource.Plural, name, ct).ConfigureAwait(false);
                }
                catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
                {
                    return null;
                }
            },
            ct).ConfigureAwait(false);

    /// <summary>Creates a custom object; AlreadyExists after a retried create counts as created.</summary>
    public static Task CreateAsync(IKubernetes client, object body, string ns, string plural, CancellationToken ct) =>
        RetryAsync(
            async () =>
            {
                try
                {
                    await client.CustomObjects.CreateNamespacedCustomObjectAsync(body, Lease.Group, Lease.Version, ns, plural, cancellationToken: ct).ConfigureAwait(false);
                }
                catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict && e.Response.Content.Contains("AlreadyExists", StringComparison.Ordinal))
                {
                }
            },
            ct);

    public static Task RequestReturnAsync(IKubernetes client, string ns, string name, CancellationToken ct) =>
        RetryAsync(
            () => client.CustomObjects.PatchNamespacedCustomObjectAsync(
                new V1Patch("{\"spec\":{\"returnRequested\":true}}", V1Patch.PatchType.MergePatch), Lease.Group, Lease.Version, ns, Lease.Plural, name, cancellationToken: ct),
            ct);

    public static Task<V1NodeList> NodesAsync(IKubernetes client, string labelSelector, CancellationToken ct) =>
        RetryAsync(() => client.CoreV1.ListNodeAsync(labelSelector: labelSelector, cancellationToken: ct), ct);

    private static bool IsTransient(Exception e) => e switch
    {
        HttpOperationException h => h.Response.StatusCode is HttpStatusCode.Conflict or HttpStatusCode.TooManyRequests || (int)h.Response.StatusCode >= 500,
        HttpRequestException or IOException or TaskCanceledException => true,
        _ => false,
    };
}
