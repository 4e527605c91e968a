using System.Diagnostics;

namespace Rpoi.Kube.Tests;

/// <summary>Polls a condition until it holds (Kueue's <c>Eventually</c>); never a fixed sleep.</summary>
internal static class Eventually
{
    public static async Task HoldsAsync(Func<bool> condition, TimeSpan? timeout = null, string? because = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(10);
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > limit)
            {
                Assert.Fail($"Condition not met within {limit.TotalSeconds:0.#} s{(because is null ? string.Empty : ": " + because)}");
            }

            // Polling interval, not a wait for the condition itself.
            await Task.Delay(10);
        }
    }

    public static async Task HoldsAsync(Func<Task<bool>> condition, TimeSpan? timeout = null, string? because = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(10);
        var sw = Stopwatch.StartNew();
        while (!await condition())
        {
            if (sw.Elapsed > limit)
            {
                Assert.Fail($"Condition not met within {limit.TotalSeconds:0.#} s{(because is null ? string.Empty : ": " + because)}");
            }

            await Task.Delay(20);
        }
    }
}
