using Npgsql;
using Rpoi.Escrow.Client;
using Rpoi.Escrow.Storage;
using Rpoi.Protocol.Messages;

namespace Rpoi.Escrow.Tests;

/// <summary>
/// Two π replicas on one PostgreSQL database (RPOI_TEST_POSTGRES): the same E(m)s pledged through both at once, the
/// same and competing m_finals posted to both at once, and the renter's claim racing them. Exactly one settlement per
/// H, every caller answered with that one receipt, balances by the decision table, and the audit ok from either side.
/// </summary>
public sealed class PostgresReplicaTests : IAsyncLifetime
{
    private const int LeaseCount = 24;
    private EscrowEnvironment? _env;

    public async Task InitializeAsync() => _env = await EscrowEnvironment.StartAsync(new PostgresProvider());

    public async Task DisposeAsync()
    {
        if (_env is not null)
        {
            await _env.DisposeAsync();
        }
    }

    [Fact]
    public async Task Two_replicas_settle_each_H_exactly_once_under_concurrent_load()
    {
        if (_env is not { } env)
        {
            return;
        }

        await using var b = await env.StartReplicaAsync();
        var replicas = new[] { env.Operator, b.Operator };
        var leases = Enumerable.Range(0, LeaseCount).Select(_ => env.Leases.Deposit(100).Rent(900).Build()).ToArray();
        foreach (var lease in leases)
        {
            await env.FundAsync(lease.RenterAddress, 1000);
        }

        var (entriesBefore, _) = await env.HeadAsync();
        var leaserBefore = await env.BalanceAsync(env.Leaser.Identity.Address);

        // The same E(m) through both replicas at once, twice each: one pledge, ρ + ω debited once.
        var pledges = await Task.WhenAll(leases.SelectMany(l => Enumerable.Range(0, 4).Select(i => Task.Run(() => replicas[i % 2].PledgeAsync(l.Request)))));
        Assert.Equal(LeaseCount, pledges.Select(p => p.H).Distinct().Count());
        foreach (var lease in leases)
        {
            Assert.Equal(0, await env.BalanceAsync(lease.RenterAddress));
        }

        // Every third lease's renter may claim by now as well: the claim races β's m_finals.
        env.Time.Advance(TimeSpan.FromHours(97) + TimeSpan.FromSeconds(1));
        var calls = new List<(string H, Task<SettlementView> Call)>();
        for (var i = 0; i < leases.Length; i++)
        {
            var lease = leases[i];
            var finals = new[] { Finals.For(env, lease, true, true), Finals.For(env, lease, false, false), Finals.For(env, lease, false, true) };
            for (var k = 0; k < 6; k++)
            {
                var final = finals[k % finals.Length];
                var replica = replicas[k % 2];
                calls.Add((lease.H, Task.Run(() => replica.SettleAsync(final))));
            }

            if (i % 3 == 0)
            {
                var claim = lease.RenterRating();
                calls.Add((lease.H, Task.Run(() => env.Anyone.ClaimAsync(claim))));
                calls.Add((lease.H, Task.Run(() => b.Anyone.ClaimAsync(claim))));
            }
        }

        await Task.WhenAll(calls.Select(c => c.Call));

        long leaserGets = 0;
        foreach (var lease in leases)
        {
            var stored = (await b.Anyone.GetSettlementAsync(lease.H))!;
            Assert.Equal(stored.Receipt.GetRawText(), (await env.Anyone.GetSettlementAsync(lease.H))!.Receipt.GetRawText());
            Assert.All(calls.Where(c => c.H == lease.H), c => Assert.Equal(stored.Receipt.GetRawText(), c.Call.Result.Receipt.GetRawText()));
            var renterGets = (stored.Deposit == "ToRenter" ? 100 : 0) + (stored.Rent == "BackToRenter" ? 900 : 0);
            leaserGets += stored.Rent == "ToLeaser" ? 900 : 0;
            Assert.Equal(renterGets, await env.BalanceAsync(lease.RenterAddress));
            Assert.Equal("Settled", (await env.Anyone.GetPledgeAsync(lease.H))!.State);
        }

        Assert.Equal(leaserGets, await env.BalanceAsync(env.Leaser.Identity.Address) - leaserBefore);

        // Two entries per pledge and two per settlement (ρ and ω each move once), one settlement per H.
        var entries = new List<LedgerEntryView>();
        for (long? after = 0; after is { } a;)
        {
            var page = await b.Anyone.GetLedgerAsync(a, 1000);
            entries.AddRange(page.Entries);
            after = page.Next;
        }

        var settles = entries.Where(e => e.Kind.StartsWith("settle.", StringComparison.Ordinal)).GroupBy(e => e.H!).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(leases.Select(l => l.H).Order(StringComparer.Ordinal), settles.Keys.Order(StringComparer.Ordinal));
        Assert.All(settles.Values, n => Assert.Equal(2, n));
        var (entriesAfter, head) = await env.HeadAsync();
        Assert.Equal(entriesBefore + (4 * LeaseCount), entriesAfter);
        var audit = await b.Anyone.VerifyLedgerAsync();
        Assert.True(audit.Ok, string.Join("; ", audit.Problems));
        Assert.Equal(head, audit.Head);
    }

    [Fact]
    public async Task Replicas_starting_together_on_an_empty_database_both_create_the_schema()
    {
        var baseConnection = Environment.GetEnvironmentVariable(PostgresProvider.Variable);
        if (_env is null || string.IsNullOrWhiteSpace(baseConnection))
        {
            return;
        }

        // Several fresh schemas, three replicas each starting at once: every start must succeed and leave one schema.
        for (var round = 0; round < 5; round++)
        {
            var schema = "escrow_replicas_" + Guid.NewGuid().ToString("N");
            var connection = new NpgsqlConnectionStringBuilder(baseConnection) { SearchPath = schema, Pooling = false }.ToString();
            var stores = Enumerable.Range(0, 3).Select(_ => new PostgresEscrowStore(connection)).ToArray();
            try
            {
                await Task.WhenAll(stores.Select(s => Task.Run(() => s.InitializeAsync())));
                var audit = await stores[1].AuditAsync();
                Assert.True(audit.Ok, string.Join("; ", audit.Problems));
                Assert.Equal(0, audit.Entries);
            }
            finally
            {
                foreach (var store in stores)
                {
                    await store.DisposeAsync();
                }

                await using var admin = new NpgsqlConnection(connection);
                await admin.OpenAsync();
                await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE", admin);
                await drop.ExecuteNonQueryAsync();
            }
        }
    }
}
