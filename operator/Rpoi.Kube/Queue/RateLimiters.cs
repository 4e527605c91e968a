namespace Rpoi.Kube.Queue;

/// <summary>
/// Decides how long an item waits before it is retried (client-go's <c>workqueue.TypedRateLimiter</c>).
/// </summary>
/// <typeparam name="TKey">The queue's key type.</typeparam>
public interface IRateLimiter<in TKey>
    where TKey : notnull
{
    /// <summary>Records one more failure of <paramref name="key"/> and returns how long it must wait.</summary>
    TimeSpan When(TKey key);

    /// <summary>Forgets the failure history of <paramref name="key"/> (call after a success).</summary>
    void Forget(TKey key);

    /// <summary>How many times <paramref name="key"/> has failed since it was last forgotten.</summary>
    int NumRequeues(TKey key);
}

/// <summary>
/// Per-key exponential backoff: <c>baseDelay * 2^failures</c>, capped at <c>maxDelay</c>
/// (client-go's <c>ItemExponentialFailureRateLimiter</c>).
/// </summary>
public sealed class ExponentialFailureRateLimiter<TKey> : IRateLimiter<TKey>
    where TKey : notnull
{
    private readonly Dictionary<TKey, int> _failures = [];
    private readonly Lock _gate = new();

    /// <summary>Creates the limiter.</summary>
    /// <param name="baseDelay">Delay after the first failure (client-go: 5 ms).</param>
    /// <param name="maxDelay">Upper bound of the delay (client-go: 1000 s).</param>
    public ExponentialFailureRateLimiter(TimeSpan baseDelay, TimeSpan maxDelay)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(baseDelay, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDelay, baseDelay);
        BaseDelay = baseDelay;
        MaxDelay = maxDelay;
    }

    /// <summary>Delay after the first failure.</summary>
    public TimeSpan BaseDelay { get; }

    /// <summary>Upper bound of the delay.</summary>
    public TimeSpan MaxDelay { get; }

    /// <inheritdoc/>
    public TimeSpan When(TKey key)
    {
        int exp;
        lock (_gate)
        {
            _failures.TryGetValue(key, out exp);
            _failures[key] = exp + 1;
        }

        // Compute in double so 2^exp cannot overflow for keys that fail for days.
        var ticks = BaseDelay.Ticks * Math.Pow(2, exp);
        return ticks >= MaxDelay.Ticks ? MaxDelay : TimeSpan.FromTicks((long)ticks);
    }

    /// <inheritdoc/>
    public void Forget(TKey key)
    {
        lock (_gate)
        {
            _failures.Remove(key);
        }
    }

    /// <inheritdoc/>
    public int NumRequeues(TKey key)
    {
        lock (_gate)
        {
            return _failures.TryGetValue(key, out var n) ? n : 0;
        }
    }
}

/// <summary>
/// An overall token bucket shared by all keys (client-go's <c>BucketRateLimiter</c>): up to
/// <c>burst</c> retries pass at once, then <c>qps</c> per second. Each call reserves a token.
/// </summary>
public sealed class TokenBucketRateLimiter<TKey> : IRateLimiter<TKey>
    where TKey : notnull
{
    private readonly TimeProvider _time;
    private readonly double _qps;
    private readonly double _burst;
    private readonly Lock _gate = new();
    private double _tokens;
    private long _last;

    /// <summary>Creates a full bucket.</summary>
    public TokenBucketRateLimiter(double qps, int burst, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(qps, 0);
        ArgumentOutOfRangeException.ThrowIfLessThan(burst, 1);
        _time = time;
        _qps = qps;
        _burst = burst;
        _tokens = burst;
        _last = time.GetTimestamp();
    }

    /// <inheritdoc/>
    public TimeSpan When(TKey key)
    {
        lock (_gate)
        {
            var now = _time.GetTimestamp();
            _tokens = Math.Min(_burst, _tokens + (_time.GetElapsedTime(_last, now).TotalSeconds * _qps));
            _last = now;
            _tokens -= 1;

            // A negative balance is a reservation: the caller waits until it is paid back.
            return _tokens >= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds(-_tokens / _qps);
        }
    }

    /// <inheritdoc/>
    public void Forget(TKey key)
    {
    }

    /// <inheritdoc/>
    public int NumRequeues(TKey key) => 0;
}

/// <summary>Combines limiters: the longest delay wins (client-go's <c>MaxOfRateLimiter</c>).</summary>
public sealed class MaxOfRateLimiter<TKey>(params IRateLimiter<TKey>[] limiters) : IRateLimiter<TKey>
    where TKey : notnull
{
    /// <inheritdoc/>
    public TimeSpan When(TKey key)
    {
        var max = TimeSpan.Zero;
        foreach (var limiter in limiters)
        {
            var d = limiter.When(key);
            if (d > max)
            {
                max = d;
            }
        }

        return max;
    }

    /// <inheritdoc/>
    public void Forget(TKey key)
    {
        foreach (var limiter in limiters)
        {
            limiter.Forget(key);
        }
    }

    /// <inheritdoc/>
    public int NumRequeues(TKey key) => limiters.Length == 0 ? 0 : limiters.Max(l => l.NumRequeues(key));
}

/// <summary>Factory for the controller default limiter.</summary>
public static class RateLimiters
{
    /// <summary>
    /// client-go's <c>DefaultControllerRateLimiter</c>: per-key 5 ms doubling to 1000 s, combined (max)
    /// with an overall 10 QPS, burst 100 bucket.
    /// </summary>
    public static IRateLimiter<TKey> DefaultController<TKey>(TimeProvider time)
        where TKey : notnull =>
        new MaxOfRateLimiter<TKey>(
            new ExponentialFailureRateLimiter<TKey>(TimeSpan.FromMilliseconds(5), TimeSpan.FromSeconds(1000)),
            new TokenBucketRateLimiter<TKey>(10, 100, time));
}
