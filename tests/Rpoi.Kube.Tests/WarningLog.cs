using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Rpoi.Kube.Tests;

/// <summary>A logger that keeps every warning and error, so a test can assert what an operator would see in its logs.</summary>
internal sealed class WarningLog : ILogger
{
    public ConcurrentQueue<string> Warnings { get; } = new();

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (logLevel >= LogLevel.Warning)
        {
            Warnings.Enqueue(exception is null ? formatter(state, exception) : $"{formatter(state, exception)} ({exception.Message})");
        }
    }
}
