namespace Rpoi.Kube.ApiServer.Tests.Support;

/// <summary>Polls a condition until it holds (Kueue's Eventually): no sleeps that guess how long something takes.</summary>
internal static class Eventually
{
    public static async Task HoldsAsync(Func<Task<bool>> condition, TimeSpan? timeout = null, string? because = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                last = e;
            }

            await Task.Yield();
            await Task.Delay(20);
        }

        throw new TimeoutException($"condition did not hold within {timeout ?? TimeSpan.FromSeconds(10)}: {because}", last);
    }

    public static Task HoldsAsync(Func<bool> condition, TimeSpan? timeout = null, string? because = null) =>
        HoldsAsync(() => Task.FromResult(condition()), timeout, because);
}
