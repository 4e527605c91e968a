using System.CommandLine;
using Rpoi.Cli.Support;
using Rpoi.Escrow.Client;

namespace Rpoi.Cli.Commands;

/// <summary><c>kubectl rpoi balance</c>: the renter's free balance on π.</summary>
internal static class BalanceCommand
{
    public static Command Create(CommandFactory f)
    {
        var address = new Option<string?>("--address") { Description = "The account to show (default: the address of --key)." };
        var leaser = new Option<bool>("--leaser") { Description = "Show the leaser β's account (its address from discovery): where the rent goes." };
        var escrowUrl = new Option<string?>("--escrow-url") { Description = "π's URL (default: from the operator's discovery ConfigMap)." };
        var output = ReadOutput.Create();
        var command = new Command("balance", "Show your account's free balance on the escrow π.") { address, leaser, escrowUrl, output };
        f.Handle(command, async (ctx, parse, ct) =>
        {
            if (parse.GetValue(leaser) && parse.GetValue(address) is not null)
            {
                throw new CliException(ExitCodes.Usage, "--leaser and --address both name an account; give one");
            }

            var discovery = parse.GetValue(leaser) || parse.GetValue(escrowUrl) is null ? await ctx.DiscoveryAsync(ct).ConfigureAwait(false) : null;
            var account = parse.GetValue(leaser) ? discovery!.Leaser.Address : parse.GetValue(address) ?? ctx.LoadKeys().Identity.Address;
            var url = parse.GetValue(escrowUrl) ?? discovery!.Escrow.Url;
            using var escrow = Open(url);
            var view = await EscrowCallAsync(() => escrow.Client.GetAccountAsync(account, ct), url).ConfigureAwait(false);
            if (ReadOutput.TryWrite(ctx.Out, parse.GetValue(output), new BalanceView(view.Address, url, [.. view.Balances.Select(b => new AmountView(b.Amount, b.Denom))])))
            {
                return ExitCodes.Ok;
            }

            ctx.Out.WriteLine($"account {view.Address} on π {url}");
            if (view.Balances.Count == 0)
            {
                ctx.Out.WriteLine("  (no funds)");
            }

            foreach (var b in view.Balances)
            {
                ctx.Out.WriteLine($"  {b.Amount} {b.Denom}");
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    internal static EscrowConnection Open(string url)
    {
        if (!Uri.TryCreate(url.EndsWith('/') ? url : url + "/", UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new CliException(ExitCodes.Usage, $"escrow URL '{url}' is not an http(s) URL");
        }

        var http = new HttpClient();
        return new EscrowConnection(http, new EscrowClient(http, new EscrowClientOptions { BaseAddress = uri, MaxAttempts = 2, AttemptTimeout = TimeSpan.FromSeconds(10) }));
    }

    internal static async Task<T> EscrowCallAsync<T>(Func<Task<T>> call, string url)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (EscrowException e) when (e.Status == 0)
        {
            throw new CliException(ExitCodes.Unreachable, $"cannot reach π at {url}: {e.Message}; check the URL (--escrow-url) and that π runs", e);
        }
        catch (EscrowException e)
        {
            throw new CliException(ExitCodes.EscrowRefused, $"π refused ({e.Reason}{(e.Field is null ? "" : ", field " + e.Field)}): {e.Message}", e);
        }
    }
}

/// <summary>An escrow client and the HttpClient it owns.</summary>
internal sealed record EscrowConnection(HttpClient Http, EscrowClient Client) : IDisposable
{
    public void Dispose() => Http.Dispose();
}
