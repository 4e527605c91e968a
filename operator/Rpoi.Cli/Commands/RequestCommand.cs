using System.CommandLine;
using Rpoi.Cli.Support;
using Rpoi.Operator.Discovery;
using Rpoi.Operator.Entities;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Cli.Commands;

/// <summary><c>kubectl rpoi request</c>: builds m from flags, signs it (eq. 1) and prints or applies the Lease.</summary>
internal static class RequestCommand
{
    public static Command Create(CommandFactory f)
    {
        var name = new Option<string>("--name") { Description = "The Lease's name (the signature binds the request to it and to the namespace).", Required = true };
        var chips = Flags.WholeNumber("--chips", 1, 1_000_000, "of chips, at least 1 (a multiple of the slice's chips)");
        chips.Description = "Number of TPU chips M (a multiple of the topology's chips per slice).";
        chips.Required = true;
        var accelerator = new Option<string>("--accelerator") { Description = "GKE TPU accelerator type, e.g. tpu-v5-lite-podslice, tpu-v6e-slice (see 'kubectl rpoi offers').", Required = true };
        var topology = new Option<string>("--topology") { Description = "Slice topology, e.g. 2x4 (see 'kubectl rpoi offers').", Required = true };
        var duration = new Option<string>("--duration") { Description = "How long the lease runs: seconds, or 30m, 4h, 1d, 1h30m.", Required = true };
        var deposit = new Option<string>("--deposit") { Description = "Deposit ρ, returned after a good settlement: integer amount + denomination, e.g. 1500000uusd.", Required = true };
        var rent = new Option<string>("--rent") { Description = "Rent ω paid to the leaser, e.g. 9000000uusd.", Required = true };
        var ratingWindow = new Option<string?>("--rating-window") { Description = "How long after the return ratings are collected (default: the operator's, 72h)." };
        var leaser = new Option<string?>("--leaser") { Description = "β's address; with --escrow, signs offline without reading discovery." };
        var escrow = new Option<string?>("--escrow") { Description = "π's address; with --leaser, signs offline without reading discovery." };
        var apply = new Option<bool>("--apply") { Description = "Create the Lease in the cluster instead of printing it." };
        var format = new Option<string>("--output", "-o") { Description = "Print format: yaml or json.", DefaultValueFactory = _ => "yaml" };
        format.AcceptOnlyFromAmong("yaml", "json");
        var command = new Command("request", "Sign a lease request E(m) and print the Lease (commit it, GitOps style) or --apply it.")
        {
            name, chips, accelerator, topology, duration, deposit, rent, ratingWindow, leaser, escrow, apply, format,
        };
        f.Handle(command, async (ctx, parse, ct) =>
        {
            var leaseName = parse.GetValue(name)!;
            if (!Values.IsObjectName(leaseName))
            {
                throw new CliException(ExitCodes.Usage, $"--name '{leaseName}' is not a valid Kubernetes name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit");
            }

            var chipCount = parse.GetValue(chips);
            if (chipCount < 1)
            {
                throw new CliException(ExitCodes.Usage, $"--chips must be at least 1, got {chipCount}");
            }

            var accel = parse.GetValue(accelerator)!;
            var topo = parse.GetValue(topology)!;
            if (!Values.TryParseDuration(parse.GetValue(duration), out var durationSeconds))
            {
                throw new CliException(ExitCodes.Usage, $"--duration: '{parse.GetValue(duration)}' is not a duration: give seconds (3600) or 30m, 4h, 1d, 1h30m");
            }

            var depositMoney = Money(parse.GetValue(deposit), "--deposit");
            var rentMoney = Money(parse.GetValue(rent), "--rent");
            if (depositMoney.Denom != rentMoney.Denom)
            {
                throw new CliException(ExitCodes.Usage, $"--deposit is in {depositMoney.Denom} but --rent is in {rentMoney.Denom}: use one denomination");
            }

            long? windowSeconds = null;
            if (parse.GetValue(ratingWindow) is { } rw)
            {
                windowSeconds = Values.TryParseDuration(rw, out var w) ? w : throw new CliException(ExitCodes.Usage, $"--rating-window: '{rw}' is not a duration: give seconds (259200) or 1h, 72h, 3d");
            }

            var ns = ctx.Flags.Namespace is { Length: > 0 } || parse.GetValue(leaser) is not null && parse.GetValue(escrow) is not null ? ctx.NamespaceOffline : ctx.Namespace;
            if (!Values.IsNamespaceName(ns))
            {
                throw new CliException(ExitCodes.Usage, $"-n/--namespace '{ns}' is not a valid namespace name");
            }

            var keys = ctx.LoadKeys();
            var (leaserAddress, escrowAddress) = await PartiesAsync(ctx, parse.GetValue(leaser), parse.GetValue(escrow), accel, topo, chipCount, ct).ConfigureAwait(false);

            var m = Requests.New(keys.Identity, leaserAddress, escrowAddress, accel, topo, chipCount, durationSeconds, ctx.Time.GetUtcNow(), depositMoney, rentMoney, new LeaseRef(ns, leaseName));
            var em = RpoiEquations.SignRequest(m, keys);
            var h = RpoiEquations.TransactionHashOf(em);
            var manifest = Manifests.Lease(em, windowSeconds);
            if (!parse.GetValue(apply))
            {
                ctx.Out.Write(Manifests.Render(manifest, parse.GetValue(format)!,
                [
                    $"RPOI lease request signed by renter {keys.Identity.Address} (key {keys.Identity.KeyId})",
                    $"transaction hash H = {h.Hex}",
                    $"valid for {ns}/{leaseName} only; the operator refuses it after 24 h (replay guard)",
                ]));
                return ExitCodes.Ok;
            }

            await CheckBalanceAsync(ctx, keys.Identity.Address, depositMoney, rentMoney, ct).ConfigureAwait(false);
            await ctx.CreateAsync(manifest, Lease.Group, Lease.Version, Lease.Plural, ns, $"lease {ns}/{leaseName}", ct).ConfigureAwait(false);
            ctx.Out.WriteLine($"lease.rpoi.io/{leaseName} created in {ns}");
            ctx.Out.WriteLine($"transaction hash H = {h.Hex}");
            ctx.Out.WriteLine($"next: kubectl rpoi access {leaseName} -n {ns} --wait");
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>
    /// Refuses before anything is applied when π shows less than ρ + ω free: the pledge would fail and the Lease end Failed.
    /// π is the authority, so when it cannot be asked (or the parties were given offline) this only warns and goes on.
    /// </summary>
    private static async Task CheckBalanceAsync(CliContext ctx, string renter, Money deposit, Money rent, CancellationToken ct)
    {
        string url;
        try
        {
            url = (await ctx.DiscoveryAsync(ct).ConfigureAwait(false)).Escrow.Url;
        }
        catch (CliException e)
        {
            ctx.Err.WriteLine($"warning: could not check your balance on π ({e.Message}); the operator's pledge will refuse the lease if it is short");
            return;
        }

        var need = System.Numerics.BigInteger.Parse(deposit.Amount, System.Globalization.CultureInfo.InvariantCulture) + System.Numerics.BigInteger.Parse(rent.Amount, System.Globalization.CultureInfo.InvariantCulture);
        System.Numerics.BigInteger have;
        try
        {
            using var escrow = BalanceCommand.Open(url);
            var view = await BalanceCommand.EscrowCallAsync(() => escrow.Client.GetAccountAsync(renter, ct), url).ConfigureAwait(false);
            var free = view.Balances.FirstOrDefault(b => b.Denom == deposit.Denom)?.Amount ?? "0";
            have = System.Numerics.BigInteger.Parse(free, System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (CliException e) when (e.ExitCode == ExitCodes.Unreachable)
        {
            ctx.Err.WriteLine($"warning: could not check your balance on π at {url} ({e.Message}); the operator's pledge will refuse the lease if it is short");
            return;
        }

        if (have < need)
        {
            throw new CliException(ExitCodes.EscrowRefused,
                $"your balance on π ({renter}) is {have} {deposit.Denom}, short of ρ + ω = {need} {deposit.Denom} by {need - have} {deposit.Denom}; nothing was applied. Fund the account (sandbox: kubectl rpoi sandbox fund) or ask for less");
        }
    }

    private static Money Money(string? text, string flag) =>
        Values.TryParseMoney(text, out var money)
            ? money
            : throw new CliException(ExitCodes.Usage, $"{flag} '{text}' is not an amount: give an integer in the smallest unit followed by the denomination, e.g. 1500000uusd");

    private static async Task<(string Leaser, string Escrow)> PartiesAsync(CliContext ctx, string? leaser, string? escrow, string accelerator, string topology, int chips, CancellationToken ct)
    {
        if (leaser is not null && escrow is not null)
        {
            CheckAddress(leaser, "--leaser");
            CheckAddress(escrow, "--escrow");
            return (leaser, escrow);
        }

        var doc = await ctx.DiscoveryAsync(ct).ConfigureAwait(false);
        CheckOffer(ctx, doc, accelerator, topology, chips);
        return (leaser ?? doc.Leaser.Address, escrow ?? doc.Escrow.Address);
    }

    private static void CheckAddress(string address, string flag)
    {
        if (!address.StartsWith(PartyIdentity.AddressPrefix, StringComparison.Ordinal) || address.Length != 37)
        {
            throw new CliException(ExitCodes.Usage, $"{flag} '{address}' is not an RPOI address (rpoi1 followed by 32 characters); copy it from 'kubectl get configmap rpoi-discovery -n rpoi-system -o yaml'");
        }
    }

    private static void CheckOffer(CliContext ctx, DiscoveryDocument doc, string accelerator, string topology, int chips)
    {
        if (doc.Offers.Count == 0)
        {
            return;
        }

        var offer = doc.Offers.FirstOrDefault(o => o.Accelerator == accelerator && o.Topology == topology);
        if (offer is null)
        {
            var list = string.Join(", ", doc.Offers.Select(o => $"{o.Accelerator} {o.Topology}"));
            throw new CliException(ExitCodes.Usage, $"--accelerator {accelerator} --topology {topology} is not on offer here; choose one of: {list} (kubectl rpoi offers)");
        }

        if (chips % offer.ChipsPerSlice != 0)
        {
            throw new CliException(ExitCodes.Usage, $"--chips {chips} is not a multiple of {offer.ChipsPerSlice}, the chips in one {topology} slice; ask for {Math.Max(1, chips / offer.ChipsPerSlice) * offer.ChipsPerSlice} or {(chips / offer.ChipsPerSlice + 1) * offer.ChipsPerSlice}");
        }

        if (offer.FreeChips < chips)
        {
            ctx.Err.WriteLine($"note: only {offer.FreeChips} of {offer.TotalChips} {accelerator} {topology} chips are free now; the lease will wait in the queue for {chips}");
        }
    }
}
