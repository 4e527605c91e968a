using System.CommandLine;
using Rpoi.Cli.Support;

namespace Rpoi.Cli.Commands;

/// <summary><c>kubectl rpoi offers</c>: the accelerators and topologies on offer and their free capacity, from discovery.</summary>
internal static class OffersCommand
{
    public static Command Create(CommandFactory f)
    {
        var output = ReadOutput.Create();
        var command = new Command("offers", "List the TPU accelerators and topologies you can rent here, with the chips free now.") { output };
        f.Handle(command, async (ctx, parse, ct) =>
        {
            var doc = await ctx.DiscoveryAsync(ct).ConfigureAwait(false);
            var w = ctx.Out;
            var view = new OffersView(doc.Leaser.Address, doc.Escrow.Address, doc.Escrow.Url, doc.UpdatedAt,
                [.. doc.Offers.Select(o => new OfferView(o.Accelerator, o.Topology, o.ChipsPerSlice, o.HostsPerSlice, o.FreeChips, o.FreeSlices, o.TotalChips))]);
            if (ReadOutput.TryWrite(w, parse.GetValue(output), view))
            {
                return ExitCodes.Ok;
            }

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
