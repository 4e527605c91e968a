using System.Diagnostics;
using Microsoft.Extensions.Time.Testing;

namespace Rpoi.Operator.Tests.Support;

/// <summary>
/// Polls a condition until it holds (Kueue's <c>Eventually</c>), instead of sleeping or counting events. When given a
/// <see cref="FakeTimeProvider"/> it also moves that clock a little on every poll, so backoffs and requeues that the
/// code under test scheduled on the injected clock fire as they would in real time.
/// </summary>
public static class Eventually
{
    /// <summary>Default patience: generous for a loaded 2-core CI machine, still fast when things work.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(20);

    /// <summary>Waits until <paramref name="condition"/> returns true; fails with <paramref name="because"/> otherwise.</summary>
    public static async Task HoldsAsync(Func<Task<bool>> condition, string because, FakeTimeProvider? time = null, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var limit = timeout ?? DefaultTimeout;
        var watch = Stopwatch.StartNew();
        Exception? last = null;
        while (true)
        {
            try
            {
                if (await condition().ConfigureAwait(false))
                {
                    return;
                }

                last = null;
            }
#pragma warning disable CA1031 // A condition that throws (object not there yet) is just "not yet".
            catch (Exception e)
#pragma warning restore CA1031
            {
                last = e;
            }

            if (watch.Elapsed > limit)
            {
                Assert.Fail($"not within {limit.TotalSeconds:0} s: {because}{(last is null ? string.Empty : $" (last error: {last.Message})")}");
            }

            time?.Advance(TimeSpan.FromMilliseconds(100));
            await Task.Delay(20).ConfigureAwait(false);
        }
    }

    /// <summary>Waits until <paramref name="read"/> returns a value satisfying <paramref name="predicate"/>, and returns it.</summary>
    public static async Task<T> ReturnsAsync<T>(Func<Task<T?>> read, Func<T, bool> predicate, string because, FakeTimeProvider? time = null, TimeSpan? timeout = null)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(read);
        ArgumentNullException.ThrowIfNull(predicate);
        T? found = null;
        await HoldsAsync(async () =>
        {
            found = await read().ConfigureAwait(false);
            return found is not null && predicate(found);
        }, because, time, timeout).ConfigureAwait(false);
        return found!;
    }
}
