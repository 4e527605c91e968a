namespace Rpoi.Protocol.Checks;

/// <summary>Replay-guard limits for requests (PROTOCOL.md: 24 h max age, 5 min future skew).</summary>
/// <param name="MaxAge">Oldest acceptable request timestamp relative to now.</param>
/// <param name="MaxFutureSkew">How far in the future a timestamp may be (clock skew).</param>
public sealed record RequestPolicy(TimeSpan MaxAge, TimeSpan MaxFutureSkew)
{
    /// <summary>24 hours and 5 minutes.</summary>
    public static RequestPolicy Default { get; } = new(TimeSpan.FromHours(24), TimeSpan.FromMinutes(5));
}
