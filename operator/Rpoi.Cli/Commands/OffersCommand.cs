using System.CommandLine;

namespace Rpoi.Cli.Commands;

/// <summary><c>kubectl rpoi offers</c>: the accelerators and topologies on offer and their free capacity, from discovery.</summary>
internal static class OffersCommand
{
    public static Command Create(CommandFactory f)
    {
        var command = new Command("offers", "List the TPU accelerators and topologies you can rent here, with the chips free now.");
        f.Handle(command, async (ctx, parse, ct) =>
        {
            var doc = await ctx.DiscoveryAsync(ct).ConfigureAwait(false);
            var w = ctx.Out;
            w.WriteLine($"leaser β {doc.Leaser.Address}, escrow π {doc.Escrow.Address} at {doc.Escrow.Url}");
            w.WriteLine($"capacity as of {AccessCommand.UtcText(doc.UpdatedAt)}");
            if (doc.Offers.Count == 0)
            {
                w.WriteLine("no TPU node pools on offer");
                return ExitCodes.Ok;
            }

            w.WriteLine($"{"ACCELERATOR",-24} {"TOPOLOGY",-9} {"CHIPS/SLICE",11} {"HOSTS/SLICE",11} {"FREE CHIPS",10} {"FREE SLICES",11} {"TOTAL CHIPS",11}");
            foreach (var o in doc.Offers)
            {
                w.WriteLine($"{o.Accelerator,-24} {o.Topology,-9} {o.ChipsPerSlice,11} {o.HostsPerSlice,11} {o.FreeChips,10} {o.FreeSlices,11} {o.TotalChips,11}");
            }

            return ExitCodes.Ok;
        });
        return command;
    }
}
