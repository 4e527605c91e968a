namespace Rpoi.Kube.Tests;

/// <summary>Runs a long-lived loop (informer, controller, host) for the length of a test and stops it on dispose.</summary>
internal sealed class Background : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();

    private Background(Func<CancellationToken, Task> run) => Task = Task.Run(() => run(_stop.Token));

    public Task Task { get; }

    public static Background Run(Func<CancellationToken, Task> run) => new(run);

    /// <summary>Requests a graceful stop and returns the loop's completion.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WaitAsync(TimeSpan.FromSeconds(20));
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await StopAsync();
        }

        _stop.Dispose();
    }
}
