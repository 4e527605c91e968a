using System.Collections.Concurrent;
using Prometheus;
using Rpoi.Operator.Entities;

namespace Rpoi.Operator.PhaseOne.Leases;

/// <summary>
/// Phase I metrics: <c>rpoi_leases{phase}</c>, <c>rpoi_tpu_chips{state}</c> (claimed, waiting) and
/// <c>rpoi_lease_time_to_active_seconds</c>. Kept from the reconciler's own transitions (no extra API reads).
/// </summary>
public sealed class PhaseOneMetrics
{
    private readonly Gauge leases;
    private readonly Gauge chips;
    private readonly Histogram timeToActive;
    // By UID. The lease's namespace and name are kept apart, not joined into a "namespace/name" string: these are the
    // cached Lease's own strings, where a joined key would be one more string per lease (BENCHMARKS.md "memcache").
    private readonly ConcurrentDictionary<string, (string Namespace, string Name, string Phase, long Claimed, long Waiting)> known = new(StringComparer.Ordinal);
    private readonly Lock gate = new();

    /// <summary>Creates (or reuses) the collectors in <paramref name="registry"/>.</summary>
    public PhaseOneMetrics(CollectorRegistry registry)
    {
        var factory = Metrics.WithCustomRegistry(registry);
        leases = factory.CreateGauge("rpoi_leases", "Leases by phase, as last written by this operator.", "phase");
        chips = factory.CreateGauge("rpoi_tpu_chips", "TPU chips held by leases (claimed) or asked by leases waiting in the queue (waiting).", "state");
        // 10 ms to ~5 min: the target is p99 <= 500 ms on the test server; real clusters add escrow latency.
        timeToActive = factory.CreateHistogram("rpoi_lease_time_to_active_seconds", "Seconds from Lease creation to phase Active.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.01, 2, 15) });
    }

    /// <summary>Records the lease's current phase and chips (idempotent: repeating the same state changes nothing).</summary>
    public void Observe(string uid, string @namespace, string name, LeasePhase? phase, long claimedChips, long waitingChips)
    {
        var phaseName = phase?.ToString() ?? "Unknown";
        lock (gate)
        {
            if (known.TryGetValue(uid, out var before))
            {
                leases.WithLabels(before.Phase).Dec();
                chips.WithLabels("claimed").Dec(before.Claimed);
                chips.WithLabels("waiting").Dec(before.Waiting);
            }

            known[uid] = (@namespace, name, phaseName, claimedChips, waitingChips);
            leases.WithLabels(phaseName).Inc();
            chips.WithLabels("claimed").Inc(claimedChips);
            chips.WithLabels("waiting").Inc(waitingChips);
        }
    }

    /// <summary>Forgets a lease that no longer exists.</summary>
    public void Forget(string uid)
    {
        lock (gate)
        {
            if (known.TryRemove(uid, out var before))
            {
                leases.WithLabels(before.Phase).Dec();
                chips.WithLabels("claimed").Dec(before.Claimed);
                chips.WithLabels("waiting").Dec(before.Waiting);
            }
        }
    }

    /// <summary>Forgets a lease by its <c>namespace/name</c> key (when the object is gone and its UID unknown).</summary>
    public void ForgetByKey(string key)
    {
        foreach (var (uid, entry) in known)
        {
            if (key.Length == entry.Namespace.Length + 1 + entry.Name.Length && key.StartsWith(entry.Namespace, StringComparison.Ordinal)
                && key[entry.Namespace.Length] == '/' && key.EndsWith(entry.Name, StringComparison.Ordinal))
            {
                Forget(uid);
            }
        }
    }

    /// <summary>Records the time from creation to Active.</summary>
    public void BecameActive(TimeSpan sinceCreation) => timeToActive.Observe(Math.Max(0, sinceCreation.TotalSeconds));
}
