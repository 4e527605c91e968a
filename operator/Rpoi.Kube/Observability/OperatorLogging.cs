using Microsoft.Extensions.Logging;

namespace Rpoi.Kube.Observability;

/// <summary>Console logging for operators: one line per entry, or JSON for log collectors.</summary>
public static class OperatorLogging
{
    /// <summary>Replaces the logging providers with a console logger; <paramref name="json"/> writes structured JSON lines.</summary>
    public static ILoggingBuilder AddOperatorConsole(this ILoggingBuilder builder, bool json, LogLevel minimumLevel = LogLevel.Information)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.ClearProviders();
        builder.SetMinimumLevel(minimumLevel);
        if (json)
        {
            builder.AddJsonConsole(o =>
            {
                o.IncludeScopes = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                o.UseUtcTimestamp = true;
            });
        }
        else
        {
            builder.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
                o.UseUtcTimestamp = true;
            });
        }

        return builder;
    }

    /// <summary>A standalone logger factory with <see cref="AddOperatorConsole"/>.</summary>
    public static ILoggerFactory CreateFactory(bool json, LogLevel minimumLevel = LogLevel.Information) =>
        LoggerFactory.Create(b => b.AddOperatorConsole(json, minimumLevel));
}
