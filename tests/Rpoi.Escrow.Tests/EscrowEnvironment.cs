using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Rpoi.Escrow.Client;
using Rpoi.Escrow.Storage;
using Rpoi.Protocol.Keys;

namespace Rpoi.Escrow.Tests;

/// <summary>Which database a suite runs on.</summary>
public interface IStoreProvider
{
    /// <summary>A fresh, empty store; null when the suite is explicitly skipped.</summary>
    Task<IEscrowStore?> CreateAsync();

    /// <summary>Removes the test's database or schema.</summary>
    Task CleanupAsync(IEscrowStore store);

    /// <summary>Runs raw SQL against the store's database (for the tamper tests).</summary>
    Task ExecuteRawAsync(IEscrowStore store, string sql);

    /// <summary>A new store over the same database as <paramref name="store"/> (a π restart).</summary>
    IEscrowStore Reopen(IEscrowStore store);
}

/// <summary>
/// One running π for one test: a real Kestrel server on 127.0.0.1, a fresh database, π's and β's
/// keys, a fake clock, and typed clients for the admin, the leaser and anyone.
/// </summary>
public sealed class EscrowEnvironment : IAsyncDisposable
{
    public const string AdminToken = "test-admin-token";

    private readonly IStoreProvider _provider;
    private WebApplication _app;

    private EscrowEnvironment(IStoreProvider provider, WebApplication app, IEscrowStore store, Uri baseAddress, FakeTimeProvider time, EscrowOptions options, PartyKeyPair pi, PartyKeyPair leaser)
    {
        _app = app;
        _provider = provider;
        Store = store;
        BaseAddress = baseAddress;
        Time = time;
        Options = options;
        Pi = pi;
        Leaser = leaser;
        Http = new HttpClient();
        Admin = ClientFor(EscrowCredentials.Admin(AdminToken));
        Operator = ClientFor(EscrowCredentials.Leaser(leaser));
        Anyone = ClientFor(EscrowCredentials.None);
    }

    public IEscrowStore Store { get; private set; }

    public Uri BaseAddress { get; private set; }

    public FakeTimeProvider Time { get; }

    public EscrowOptions Options { get; }

    /// <summary>π's keys.</summary>
    public PartyKeyPair Pi { get; }

    /// <summary>β's keys (the one leaser π trusts).</summary>
    public PartyKeyPair Leaser { get; }

    public HttpClient Http { get; }

    public IEscrowClient Admin { get; private set; }

    public IEscrowClient Operator { get; private set; }

    public IEscrowClient Anyone { get; private set; }

    /// <summary>The test's lease builder, bound to this π and β.</summary>
    public Leases Leases => new(this);

    public IEscrowClient ClientFor(EscrowCredentials credentials) =>
        new EscrowClient(Http, new EscrowClientOptions { BaseAddress = BaseAddress, Credentials = credentials, Time = Time, MaxAttempts = 1 });

    public static async Task<EscrowEnvironment?> StartAsync(IStoreProvider provider)
    {
        var store = await provider.CreateAsync();
        if (store is null)
        {
            return null;
        }

        await store.InitializeAsync();
        // Real time as the start, so signed calls and requests look like today's.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var options = new EscrowOptions();
        var pi = PartyKeyPair.Generate(PartyRole.Escrow);
        var leaser = PartyKeyPair.Generate(PartyRole.Leaser);
        var (app, address) = await StartAppAsync(store, time, options, pi, leaser);
        return new EscrowEnvironment(provider, app, store, address, time, options, pi, leaser);
    }

    private static async Task<(WebApplication App, Uri Address)> StartAppAsync(IEscrowStore store, FakeTimeProvider time, EscrowOptions options, PartyKeyPair pi, PartyKeyPair leaser)
    {
        var parts = new EscrowHostParts(store, pi, time, [leaser.Identity], Encoding.UTF8.GetBytes(AdminToken));
        var app = EscrowHost.Build(options, parts, "http://127.0.0.1:0");
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return (app, new Uri(address + "/"));
    }

    /// <summary>
    /// Stops π and starts a new one over the same database, keys and clock (a process restart): nothing of the old
    /// process survives but what the database holds. The typed clients follow the new address.
    /// </summary>
    public async Task RestartAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        await Store.DisposeAsync();
        Store = _provider.Reopen(Store);
        await Store.InitializeAsync();
        (_app, BaseAddress) = await StartAppAsync(Store, Time, Options, Pi, Leaser);
        Admin = ClientFor(EscrowCredentials.Admin(AdminToken));
        Operator = ClientFor(EscrowCredentials.Leaser(Leaser));
        Anyone = ClientFor(EscrowCredentials.None);
    }

    /// <summary>
    /// A second π on the same database, keys and clock (another replica of one Deployment): its own store, pool and
    /// Kestrel server. Its store is initialised while a third store on the same database initialises too, as replicas
    /// starting together do.
    /// </summary>
    public async Task<EscrowReplica> StartReplicaAsync()
    {
        var store = _provider.Reopen(Store);
        await using (var concurrent = _provider.Reopen(Store))
        {
            await Task.WhenAll(store.InitializeAsync(), concurrent.InitializeAsync());
        }

        var (app, address) = await StartAppAsync(store, Time, Options, Pi, Leaser);
        return new EscrowReplica(app, store, address, this);
    }

    /// <summary>Credits <paramref name="amount"/> uusd to <paramref name="address"/> through the admin on-ramp.</summary>
    public Task<DepositReceipt> FundAsync(string address, long amount) =>
        Admin.DepositAsync(new DepositRequest("dep-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)), address, new EscrowAmount(amount.ToString(System.Globalization.CultureInfo.InvariantCulture), "uusd")));

    /// <summary>Free uusd balance of an address.</summary>
    public async Task<long> BalanceAsync(string address)
    {
        var account = await Anyone.GetAccountAsync(address);
        var uusd = account.Balances.SingleOrDefault(b => b.Denom == "uusd");
        return uusd is null ? 0 : long.Parse(uusd.Amount, System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The ledger's head: entry count and hash. Equal before and after means nothing moved.</summary>
    public async Task<(long Entries, string Head)> HeadAsync()
    {
        var audit = await Anyone.VerifyLedgerAsync();
        Assert.True(audit.Ok, string.Join("; ", audit.Problems));
        return (audit.Entries, audit.Head);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        await Store.DisposeAsync();
        await _provider.CleanupAsync(Store);
    }

    /// <summary>Runs raw SQL on this test's database, bypassing π.</summary>
    public Task ExecuteRawAsync(string sql) => _provider.ExecuteRawAsync(Store, sql);
}

/// <summary>Another π replica over the same database as its <see cref="EscrowEnvironment"/>.</summary>
public sealed class EscrowReplica : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly IEscrowStore _store;

    internal EscrowReplica(WebApplication app, IEscrowStore store, Uri baseAddress, EscrowEnvironment env)
    {
        _app = app;
        _store = store;
        var options = new EscrowClientOptions { BaseAddress = baseAddress, Credentials = EscrowCredentials.Leaser(env.Leaser), Time = env.Time, MaxAttempts = 1 };
        Operator = new EscrowClient(env.Http, options);
        Anyone = new EscrowClient(env.Http, new EscrowClientOptions { BaseAddress = baseAddress, Credentials = EscrowCredentials.None, Time = env.Time, MaxAttempts = 1 });
    }

    public IEscrowClient Operator { get; }

    public IEscrowClient Anyone { get; }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        await _store.DisposeAsync();
    }
}
