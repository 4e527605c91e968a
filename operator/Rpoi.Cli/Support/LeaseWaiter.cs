using Rpoi.Operator.Entities;

namespace Rpoi.Cli.Support;

/// <summary>Polls a Lease until it reaches one of the wanted phases, printing each phase change and its reason.</summary>
internal static class LeaseWaiter
{
    public static async Task<Lease> WaitAsync(CliContext ctx, string name, IReadOnlySet<LeasePhase> wanted, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = ctx.Time.GetUtcNow() + timeout;
        LeasePhase? last = null;
        string? lastMessage = null;
        while (true)
        {
            var (lease, _) = await ctx.GetLeaseAsync(name, ct).ConfigureAwait(false);
            var phase = lease.Status?.Phase;
            var ready = lease.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready");
            var message = ready?.Message;
            if (phase != last || message != lastMessage)
            {
                var queue = lease.Status?.QueuePosition is { } q ? $" (queue position {q})" : "";
                ctx.Err.WriteLine($"{ctx.Time.GetUtcNow():HH:mm:ss} {name}: {phase?.ToString() ?? "(no status yet)"}{queue}{(string.IsNullOrEmpty(message) ? "" : " - " + message)}");
                last = phase;
                lastMessage = message;
            }

            if (phase is { } p && wanted.Contains(p))
            {
                return lease;
            }

            if (phase == LeasePhase.Failed)
            {
                throw new CliException(ExitCodes.LeaseFailed, $"lease {ctx.Namespace}/{name} failed: {ready?.Reason}: {message}; fix the cause and create a new Lease (kubectl rpoi request ...)");
            }

            if (phase is { } now && HasEnded(now, wanted))
            {
                throw new CliException(ExitCodes.LeaseEnded, $"lease {ctx.Namespace}/{name} has ended (phase {phase}) and will not become {string.Join(" or ", wanted)}; see 'kubectl rpoi status {name} -n {ctx.Namespace}'");
            }

            if (ctx.Time.GetUtcNow() >= deadline)
            {
                throw new CliException(ExitCodes.Timeout, $"lease {ctx.Namespace}/{name} is still {phase?.ToString() ?? "without status"} after {timeout.TotalSeconds:0}s; wait longer with --timeout, or look at 'kubectl describe tpulease {name} -n {ctx.Namespace}' (is the operator running?)");
            }

            await Task.Delay(ctx.Env.PollInterval, ctx.Time, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// True when a lease in <paramref name="phase"/> is past its use and past every wanted phase in the lease's one-way
    /// order: Returning ends a wait for Active, but not one for AwaitingRatings (the enum lists the phases in that order).
    /// </summary>
    internal static bool HasEnded(LeasePhase phase, IReadOnlySet<LeasePhase> wanted) =>
        (phase is LeasePhase.Returning or LeasePhase.AwaitingRatings or LeasePhase.Settling or LeasePhase.Settled) && wanted.All(w => w < phase);
}
