using System.CommandLine;
using k8s;
using k8s.Models;
using Rpoi.Cli.Support;
using Rpoi.Operator.Entities;

namespace Rpoi.Cli.Commands;

/// <summary><c>kubectl rpoi return &lt;lease&gt;</c>: ends the lease early by setting <c>spec.returnRequested: true</c> (it cannot be withdrawn).</summary>
internal static class ReturnCommand
{
    public static Command Create(CommandFactory f)
    {
        var lease = new Argument<string>("lease") { Description = "The Lease's name." };
        var wait = new Option<bool>("--wait") { Description = "Wait until the operator has released the nodes (phase AwaitingRatings) and show the rating deadline." };
        var timeout = Flags.DurationSeconds("--timeout", 300);
        timeout.Description = "How long --wait waits: seconds, or 90s, 2m, 1h30m (default 5m).";
        var command = new Command("return", "Return a lease early: set spec.returnRequested so the operator releases the nodes, revokes access and opens the rating window.") { lease, wait, timeout };
        f.Handle(command, async (ctx, parse, ct) =>
        {
            var name = parse.GetValue(lease)!;
            var ns = ctx.Namespace;
            var (current, _) = await ctx.GetLeaseAsync(name, ct).ConfigureAwait(false);
            if (current.Status?.Phase is LeasePhase.Returning or LeasePhase.AwaitingRatings or LeasePhase.Settling or LeasePhase.Settled or LeasePhase.Failed)
            {
                ctx.Out.WriteLine($"lease {ns}/{name} has already ended (phase {current.Status.Phase}); nothing to return");
                return ExitCodes.Ok;
            }

            if (current.Spec.ReturnRequested != true)
            {
                // A merge patch of the one field: the CRD forbids setting it back to false, so this is the whole return.
                var patch = new V1Patch("{\"spec\":{\"returnRequested\":true}}", V1Patch.PatchType.MergePatch);
                await ctx.CallAsync(() => ctx.Kube().CustomObjects.PatchNamespacedCustomObjectAsync(patch, Lease.Group, Lease.Version, ns, Lease.Plural, name, cancellationToken: ct),
                    $"lease {ns}/{name}", "check the name and -n").ConfigureAwait(false);
            }

            ctx.Out.WriteLine($"lease.rpoi.io/{name} return requested in {ns}");
            if (current.Status?.Phase is not LeasePhase.Active)
            {
                ctx.Out.WriteLine($"note: the lease was {current.Status?.Phase?.ToString() ?? "not yet seen by the operator"}, not Active: if π holds no pledge yet it ends Failed (ReturnedBeforePledge, nothing charged); if π holds ρ + ω, π refunds both in full (row NeverServed) and it ends Settled (docs/cli.md, 'cancel')");
                return ExitCodes.Ok;
            }

            var window = TimeSpan.FromSeconds(current.Spec.RatingWindowSeconds ?? 259_200);
            DateTimeOffset deadline = ctx.Time.GetUtcNow() + window;
            if (parse.GetValue(wait))
            {
                var returned = await LeaseWaiter.WaitAsync(ctx, name, new HashSet<LeasePhase> { LeasePhase.AwaitingRatings, LeasePhase.Settling, LeasePhase.Settled }, TimeSpan.FromSeconds(parse.GetValue(timeout)), ct).ConfigureAwait(false);
                if (returned.Status?.RatingDeadline is { } d)
                {
                    deadline = new DateTimeOffset(DateTime.SpecifyKind(d, DateTimeKind.Utc));
                }
            }

            RatingWarning(ctx.Err, ns, name, deadline, parse.GetValue(wait) ? "" : "about ");
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>The rating reminder: without the renter's rating π withholds ρ (the failure table, docs/protocol.md).</summary>
    internal static void RatingWarning(TextWriter w, string ns, string name, DateTimeOffset deadline, string approx = "") =>
        w.WriteLine($"warning: rate this lease by {approx}{AccessCommand.UtcText(deadline)}: π withholds your deposit ρ unless you rate within the rating window (kubectl rpoi rate {name} -n {ns} --score 1-5 --apply)");
}
