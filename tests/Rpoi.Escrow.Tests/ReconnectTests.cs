using Npgsql;
using Rpoi.Escrow.Client;
using Rpoi.Escrow.Storage;

namespace Rpoi.Escrow.Tests;

/// <summary>
/// π's writer against a PostgreSQL connection that breaks under it (RPOI_TEST_POSTGRES): the server process behind the
/// writer's connection is terminated with <c>pg_terminate_backend</c> from another connection, as a database restart
/// does to every session. Idle between groups, in a group before its COMMIT, and after a COMMIT whose answer is lost:
/// no call fails, nothing is applied twice, and the ledger audits ok.
/// </summary>
public sealed class PostgresReconnectTests : IAsyncLifetime
{
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
    public async Task The_writer_reconnects_when_its_connection_is_killed_and_no_call_fails_or_doubles()
    {
        if (_env is not { } env)
        {
            return;
        }

        var store = (SqlEscrowStore)env.Store;
        var a = await env.Leases.Deposit(100).Rent(900).PledgedAsync();
        var b = await env.Leases.Deposit(100).Rent(900).PledgedAsync();
        var c = await env.Leases.Deposit(100).Rent(900).PledgedAsync();
        var (entriesBefore, _) = await env.HeadAsync();
        var leaserBefore = await env.BalanceAsync(env.Leaser.Identity.Address);

        // 1. Every server process of this π killed while idle, as a restart does: the writer's and the pooled readers'. The
        // next calls (the client does not retry: MaxAttempts = 1) meet dead connections and run again on new ones: a
        // read first (a pooled connection), a pledge (a read, then a write), a settlement, and reads.
        var writerPid = WriterPid(store);
        var killed = await TerminateAllAsync(env);
        Assert.Contains(writerPid, killed);
        Assert.Equal(leaserBefore, await env.BalanceAsync(env.Leaser.Identity.Address));
        var d = await env.Leases.Deposit(100).Rent(900).PledgedAsync();
        var settledA = await env.Operator.SettleAsync(Finals.For(env, a, true, true));
        Assert.Equal(("ToRenter", "ToLeaser"), (settledA.Deposit, settledA.Rent));
        Assert.True(store.Reconnects >= 1, "the writer should have re-run the group on a new connection");
        Assert.Equal(0, await env.BalanceAsync(d.RenterAddress));
        Assert.NotNull(await env.Anyone.GetSettlementAsync(a.H));

        // 2. Killed inside a group, before its COMMIT: a new deposit, a conflicting use of its id (refused because of the
        // write before it in the same group) and a settlement, queued as one group; the whole group is re-run.
        var killedBeforeCommit = 0;
        store.BeforeCommit = async connection =>
        {
            if (Interlocked.Increment(ref killedBeforeCommit) == 1)
            {
                await TerminateAsync(((NpgsqlConnection)connection).ProcessID);
            }
        };
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        store.WriterGate = gate.Task;
        Task<DepositRecord> deposit, conflict;
        Task<SettlementView> settleB;
        var someone = env.Leases.Build().RenterAddress;
        try
        {
            deposit = store.DepositAsync(new DepositCommand("r-1", someone, "uusd", 70, DateTimeOffset.UtcNow));
            conflict = store.DepositAsync(new DepositCommand("r-1", someone, "uusd", 71, DateTimeOffset.UtcNow));
            settleB = env.Operator.SettleAsync(Finals.For(env, b, true, true));
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (store.QueuedWrites < 3)
            {
                Assert.True(DateTime.UtcNow < deadline, $"only {store.QueuedWrites} of 3 writes were queued after 30 s");
                await Task.Delay(5);
            }
        }
        finally
        {
            store.WriterGate = null;
            gate.SetResult();
        }

        Assert.Equal(70, (await deposit).Amount);
        Assert.Equal(EscrowReasons.DepositConflict, (await Assert.ThrowsAsync<EscrowRefusedException>(() => conflict)).Reason);
        Assert.Equal("ToLeaser", (await settleB).Rent);
        Assert.True(killedBeforeCommit >= 2, "the group should have reached COMMIT twice: killed once, then committed");
        store.BeforeCommit = null;

        // 3. The COMMIT went through but its answer was lost (the connection died right after): the re-run reads the
        // settlement back by H and answers with the receipt that was committed, moving nothing a second time.
        var lostAnswers = 0;
        store.AfterCommit = async connection =>
        {
            if (Interlocked.Increment(ref lostAnswers) == 1)
            {
                await TerminateAsync(((NpgsqlConnection)connection).ProcessID);
                throw new NpgsqlException("test: the answer to COMMIT was lost", new EndOfStreamException());
            }
        };
        var settledC = await env.Operator.SettleAsync(Finals.For(env, c, true, true));
        store.AfterCommit = null;
        Assert.Equal(2, lostAnswers);
        var storedC = await env.Anyone.GetSettlementAsync(c.H);
        Assert.Equal(storedC!.Receipt.GetRawText(), settledC.Receipt.GetRawText());

        // Exactly once: two entries per settlement, one per deposit and two per pledge, each party paid once, the chain whole.
        var (entriesAfter, _) = await env.HeadAsync();
        Assert.Equal(entriesBefore + 3 + 7, entriesAfter);
        Assert.Equal(leaserBefore + 2700, await env.BalanceAsync(env.Leaser.Identity.Address));
        foreach (var lease in new[] { a, b, c })
        {
            Assert.Equal(100, await env.BalanceAsync(lease.RenterAddress));
        }

        Assert.Equal(70, await env.BalanceAsync(someone));
    }

    /// <summary>The server process behind the writer's connection (opened by the writes before).</summary>
    private static int WriterPid(SqlEscrowStore store) =>
        Assert.IsType<NpgsqlConnection>(store.WriterConnection).ProcessID;

    /// <summary>Ends every server process of this test's π (its schema is their application_name); returns their ids.</summary>
    private static async Task<List<int>> TerminateAllAsync(EscrowEnvironment env)
    {
        var schema = ((PostgresEscrowStore)env.Store).Schema;
        var admin = new NpgsqlConnectionStringBuilder(Environment.GetEnvironmentVariable(PostgresProvider.Variable)) { Pooling = false };
        await using var connection = new NpgsqlConnection(admin.ToString());
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT pid FROM pg_stat_activity WHERE application_name = @app AND pid <> pg_backend_pid()", connection);
        cmd.Parameters.AddWithValue("app", schema!);
        var pids = new List<int>();
        await using (var reader = await cmd.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                pids.Add(reader.GetInt32(0));
            }
        }

        Assert.True(pids.Count >= 2, $"expected the writer's and at least one pooled reader's process, found {pids.Count}");
        foreach (var pid in pids)
        {
            await TerminateAsync(pid);
        }

        return pids;
    }

    /// <summary>Ends a backend from a connection of its own and waits (up to 10 s, server side) until it has exited.</summary>
    private static async Task TerminateAsync(int pid)
    {
        var admin = new NpgsqlConnectionStringBuilder(Environment.GetEnvironmentVariable(PostgresProvider.Variable)) { Pooling = false };
        await using var connection = new NpgsqlConnection(admin.ToString());
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT pg_terminate_backend(@pid, 10000)", connection);
        cmd.Parameters.AddWithValue("pid", pid);
        Assert.True((bool)(await cmd.ExecuteScalarAsync())!, $"backend {pid} did not exit within 10 s");
    }
}
