using System.CommandLine;
using k8s;
using k8s.Models;
using Rpoi.Operator.Entities;

namespace Rpoi.Cli.Commands;

/// <summary>
/// <c>kubectl rpoi cancel &lt;lease&gt;</c>: withdraws a lease that is not Active yet by setting <c>spec.returnRequested</c>
/// (the operator's return path, so a pledge π already holds is settled, never dropped). An Active lease is returned instead.
/// </summary>
internal static class CancelCommand
{
    public static Command Create(CommandFactory f)
    {
        var lease = new Argument<string>("lease") { Description = "The Lease's name." };
        var command = new Command("cancel", "Cancel a lease before it is Active (Pending, Verified, Allocating): the operator stops it; nothing is charged if π holds no pledge yet.") { lease };
        f.Handle(command, async (ctx, parse, ct) =>
        {
            var name = parse.GetValue(lease)!;
            var ns = ctx.Namespace;
            var (current, _) = await ctx.GetLeaseAsync(name, ct).ConfigureAwait(false);
            switch (current.Status?.Phase)
            {
                case LeasePhase.Active:
                    throw new CliException(ExitCodes.Conflict, $"lease {ns}/{name} is Active: it cannot be cancelled, only returned (kubectl rpoi return {name} -n {ns}), which opens the rating window");
                case LeasePhase.Returning or LeasePhase.AwaitingRatings or LeasePhase.Settling or LeasePhase.Settled or LeasePhase.Failed:
                    ctx.Out.WriteLine($"lease {ns}/{name} has already ended (phase {current.Status.Phase}); nothing to cancel");
                    return ExitCodes.Ok;
            }

            if (current.Spec.ReturnRequested != true)
            {
                var patch = new V1Patch("{\"spec\":{\"returnRequested\":true}}", V1Patch.PatchType.MergePatch);
                await ctx.CallAsync(() => ctx.Kube().CustomObjects.PatchNamespacedCustomObjectAsync(patch, Lease.Group, Lease.Version, ns, Lease.Plural, name, cancellationToken: ct),
                    $"lease {ns}/{name}", "check the name and -n").ConfigureAwait(false);
            }

            ctx.Out.WriteLine($"lease.rpoi.io/{name} cancelled in {ns} (spec.returnRequested: true)");
            ctx.Out.WriteLine("if π holds no pledge yet the lease ends Failed (ReturnedBeforePledge) and nothing is charged; if π holds ρ + ω, π refunds both in full (row NeverServed, no rating window) and the lease ends Settled (docs/cli.md)");
            ctx.Out.WriteLine($"next: kubectl rpoi status {name} -n {ns}");
            return ExitCodes.Ok;
        });
        return command;
    }
}
