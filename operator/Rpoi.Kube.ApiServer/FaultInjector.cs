namespace Rpoi.Kube.ApiServer;

/// <summary>
/// Faults to inject into a running <see cref="KubeApiServer"/>: failing requests, latency, cut watches.
/// Matching is by Kubernetes verb (get, list, watch, create, update, patch, delete, deletecollection) and
/// resource (plural, or <c>plural/subresource</c> such as <c>widgets/status</c>); null matches anything.
/// </summary>
public sealed class FaultInjector
{
    private readonly Lock _gate = new();
    private readonly List<FailureRule> _failures = [];
    private readonly List<LatencyRule> _latencies = [];
    private readonly Func<int> _cutWatches;
    private readonly Dictionary<int, int> _injected = [];

    internal FaultInjector(Func<int> cutWatches) => _cutWatches = cutWatches;

    private sealed class FailureRule(string? verb, string? resource, int statusCode, int remaining)
    {
        public string? Verb { get; } = verb;

        public string? Resource { get; } = resource;

        public int StatusCode { get; } = statusCode;

        public int Remaining { get; set; } = remaining;
    }

    private sealed record LatencyRule(string? Verb, string? Resource, TimeSpan Delay);

    /// <summary>
    /// Fails the next <paramref name="count"/> requests that match with <paramref name="statusCode"/>
    /// (e.g. 409 Conflict, 429 TooManyRequests with Retry-After: 1, 500 InternalError, 503 ServiceUnavailable).
    /// </summary>
    public void FailNext(int count, int statusCode, string? verb = null, string? resource = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        if (statusCode is < 400 or > 599)
        {
            throw new ArgumentOutOfRangeException(nameof(statusCode), statusCode, "statusCode must be an HTTP error code (400-599).");
        }

        lock (_gate)
        {
            _failures.Add(new FailureRule(verb, resource, statusCode, count));
        }
    }

    /// <summary>Delays every matching request by <paramref name="delay"/> (measured on the server's TimeProvider).</summary>
    public void AddLatency(TimeSpan delay, string? verb = null, string? resource = null)
    {
        lock (_gate)
        {
            _latencies.Add(new LatencyRule(verb, resource, delay));
        }
    }

    /// <summary>Removes every pending failure and latency rule.</summary>
    public void Clear()
    {
        lock (_gate)
        {
            _failures.Clear();
            _latencies.Clear();
        }
    }

    /// <summary>
    /// How many requests were answered with an injected failure so far, per status code (armed rules that never matched
    /// are not counted), so a chaos run can report the faults that really hit.
    /// </summary>
    public IReadOnlyDictionary<int, int> Injected
    {
        get
        {
            lock (_gate)
            {
                return new Dictionary<int, int>(_injected);
            }
        }
    }

    /// <summary>Ends every open watch stream now (clients see the stream close, as when an API server restarts); returns how many.</summary>
    public int CutWatches() => _cutWatches();

    internal (int? FailWith, TimeSpan Delay) Evaluate(string verb, string resource)
    {
        lock (_gate)
        {
            var delay = TimeSpan.Zero;
            foreach (var l in _latencies)
            {
                if (Matches(l.Verb, l.Resource, verb, resource))
                {
                    delay += l.Delay;
                }
            }

            for (var i = 0; i < _failures.Count; i++)
            {
                var f = _failures[i];
                if (Matches(f.Verb, f.Resource, verb, resource))
                {
                    if (--f.Remaining == 0)
                    {
                        _failures.RemoveAt(i);
                    }

                    _injected[f.StatusCode] = _injected.GetValueOrDefault(f.StatusCode) + 1;

                    return (f.StatusCode, delay);
                }
            }

            return (null, delay);
        }
    }

    private static bool Matches(string? ruleVerb, string? ruleResource, string verb, string resource) =>
        (ruleVerb is null || string.Equals(ruleVerb, verb, StringComparison.OrdinalIgnoreCase)) &&
        (ruleResource is null || string.Equals(ruleResource, resource, StringComparison.OrdinalIgnoreCase));
}
