using System.Net;
using k8s.Autorest;

namespace Rpoi.Kube.Controllers;

/// <summary>Optimistic-concurrency helpers (client-go's <c>retry.RetryOnConflict</c>).</summary>
public static class Conflicts
{
    /// <summary>True for 409 Conflict (a stale resourceVersion or an existing name).</summary>
    public static bool IsConflict(Exception e) => e is HttpOperationException { Response.StatusCode: HttpStatusCode.Conflict };

    /// <summary>
    /// Reads fresh state and applies <paramref name="mutate"/>; on 409 Conflict reads again and retries,
    /// up to <paramref name="attempts"/> times (client-go's DefaultRetry: 5 attempts, 10 ms apart).
    /// </summary>
    /// <param name="read">Reads the object's current state from the API server (not the cache).</param>
    /// <param name="mutate">Writes based on the fresh state; a 409 from it triggers a retry.</param>
    /// <param name="attempts">How many times to try.</param>
    /// <param name="delay">Pause between attempts (default 10 ms).</param>
    /// <param name="time">Clock for the pause.</param>
    /// <param name="cancellationToken">Cancels the retries.</param>
    public static async Task<TResult> RetryOnConflictAsync<TState, TResult>(
        Func<CancellationToken, Task<TState>> read,
        Func<TState, CancellationToken, Task<TResult>> mutate,
        int attempts = 5,
        TimeSpan? delay = null,
        TimeProvider? time = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(read);
        ArgumentNullException.ThrowIfNull(mutate);
        ArgumentOutOfRangeException.ThrowIfLessThan(attempts, 1);
        for (var attempt = 1; ; attempt++)
        {
            var state = await read(cancellationToken).ConfigureAwait(false);
            try
            {
                return await mutate(state, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpOperationException e) when (IsConflict(e) && attempt < attempts)
            {
                await Task.Delay(delay ?? TimeSpan.FromMilliseconds(10), time ?? TimeProvider.System, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
