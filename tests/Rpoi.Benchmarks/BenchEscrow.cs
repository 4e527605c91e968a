using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Rpoi.Escrow;
using Rpoi.Escrow.Client;
using Rpoi.Escrow.Storage;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;
using Rpoi.Tests.Shared;

namespace Rpoi.Benchmarks;

/// <summary>
/// π for one phase I round: the real π (Rpoi.Escrow on a fresh SQLite file, served on 127.0.0.1 and reached over HTTP
/// through the operator's own <see cref="EscrowClient"/> with β's signed calls), or the in-memory π for comparison.
/// The renter is funded for every lease of the round.
/// </summary>
internal sealed class BenchEscrow : IAsyncDisposable
{
    private const string AdminToken = "bench-admin";
    private readonly WebApplication? host;
    private readonly HttpClient? http;
    private readonly InMemoryEscrow? memory;
    private readonly string? directory;

    private BenchEscrow(IEscrowClient client, string describe, WebApplication? host, HttpClient? http, InMemoryEscrow? memory, string? directory)
    {
        Client = client;
        Describe = describe;
        this.host = host;
        this.http = http;
        this.memory = memory;
        this.directory = directory;
    }

    /// <summary>The client the operator pledges through.</summary>
    public IEscrowClient Client { get; }

    public string Describe { get; }

    public static async Task<BenchEscrow> StartAsync(string kind, PartyKeyPair escrowKeys, PartyKeyPair leaser, PartyKeyPair renter, int leases)
    {
        var funds = new EscrowAmount((1_500_000L * leases).ToString(CultureInfo.InvariantCulture), "uusd");
        if (kind == "memory")
        {
            var escrow = new InMemoryEscrow(escrowKeys, TimeProvider.System);
            await escrow.DepositAsync(new DepositRequest("fund-renter", renter.Identity.Address, funds));
            return new BenchEscrow(escrow, "in-memory π (no HTTP)", null, null, escrow, null);
        }

        var dir = Directory.CreateTempSubdirectory("rpoi-bench-escrow-").FullName;
        var database = Path.Combine(dir, "escrow.db");
        var store = new SqliteEscrowStore(database);
        await store.InitializeAsync(CancellationToken.None);
        var app = EscrowHost.Build(new EscrowOptions { Database = database },
            new EscrowHostParts(store, escrowKeys, TimeProvider.System, [leaser.Identity], Encoding.UTF8.GetBytes(AdminToken)), "http://127.0.0.1:0", b => b.Logging.ClearProviders());
        await app.StartAsync();
        var url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single() + "/";
        var http = new HttpClient();
        var admin = new EscrowClient(http, new EscrowClientOptions { BaseAddress = new Uri(url), Credentials = EscrowCredentials.Admin(AdminToken) });
        await admin.DepositAsync(new DepositRequest("fund-renter", renter.Identity.Address, funds));
        var client = new EscrowClient(http, new EscrowClientOptions { BaseAddress = new Uri(url), Credentials = EscrowCredentials.Leaser(leaser) });
        return new BenchEscrow(client, $"real π on SQLite ({database}) over HTTP at {url}", app, http, null, dir);
    }

    /// <summary>What π saw, for the round's report.</summary>
    public string Summary() => memory is not null
        ? $"{memory.Debits} debits, {memory.PledgeCalls} pledge calls"
        : "pledges over HTTP to π on SQLite";

    public async ValueTask DisposeAsync()
    {
        if (host is not null)
        {
            await host.StopAsync();
            await host.DisposeAsync();
        }

        http?.Dispose();
        if (directory is not null)
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(directory, recursive: true);
        }
    }
}
