namespace Rpoi.Operator.PhaseOne.Allocation;

/// <summary>Chips an Active lease holds until it expires.</summary>
/// <param name="Chips">Chips it holds.</param>
/// <param name="ExpiresAt">Its <c>status.expiresAt</c>.</param>
public sealed record ActiveHold(int Chips, DateTimeOffset ExpiresAt);

/// <summary>
/// When a waiting lease can expect its chips, from what the operator knows for sure: the chips free now and the expiry of
/// the Active leases of its shape. Pure. It is a lower bound (a lease returned early frees chips sooner), not a promise.
/// </summary>
public static class QueueForecast
{
    /// <summary>
    /// The earliest time at which <paramref name="needed"/> chips (the lease's own and those of the older leases ahead of
    /// it, which are served first) are free together, or null when the free chips already cover them (the lease waits
    /// for something else, such as a claim in flight) or when the Active leases' expiry never frees enough.
    /// </summary>
    public static DateTimeOffset? EarliestFree(int needed, int freeNow, IEnumerable<ActiveHold> active)
    {
        ArgumentNullException.ThrowIfNull(active);
        var free = freeNow;
        if (free >= needed)
        {
            return null;
        }

        foreach (var hold in active.OrderBy(a => a.ExpiresAt))
        {
            free += hold.Chips;
            if (free >= needed)
            {
                return hold.ExpiresAt;
            }
        }

        return null;
    }
}
