using System.Data.Common;
using Rpoi.Escrow.Client;
using Rpoi.Escrow.Storage;
using Rpoi.Protocol.Keys;

namespace Rpoi.Escrow.Tests;

public abstract partial class EscrowSuite
{
    /// <summary>
    /// Group commit: six writes held back until all are queued, so the writer commits them as one group. One fails inside
    /// the database (a trigger raises on its INSERT, mid-batch) and one is refused by π's own check after its reads; each
    /// rolls back to its own savepoint, and the four others (two of them settlements over HTTP) commit, chained from the
    /// head the failed ones left untouched.
    /// </summary>
    [Fact]
    public async Task A_failed_write_in_a_group_rolls_back_alone_and_the_others_commit()
    {
        if (Skipped)
        {
            return;
        }

        await Env.ExecuteRawAsync(Env.Store is PostgresEscrowStore
            ? """
              CREATE FUNCTION boom() RETURNS trigger AS $$
              BEGIN IF NEW.deposit_id = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END; $$ LANGUAGE plpgsql;
              CREATE TRIGGER boom BEFORE INSERT ON deposits FOR EACH ROW EXECUTE FUNCTION boom();
              """
            : "CREATE TRIGGER boom BEFORE INSERT ON deposits WHEN NEW.deposit_id = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END;");
        var first = await Env.Leases.Deposit(100).Rent(900).PledgedAsync();
        var second = await Env.Leases.Deposit(100).Rent(900).PledgedAsync();
        var (entriesBefore, _) = await Env.HeadAsync();
        var leaserBefore = await Env.BalanceAsync(Env.Leaser.Identity.Address);
        var a = PartyKeyPair.Generate(PartyRole.Renter).Identity.Address;
        var bomb = PartyKeyPair.Generate(PartyRole.Renter).Identity.Address;
        var store = (SqlEscrowStore)Env.Store;
        var now = DateTimeOffset.UtcNow;

        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        store.WriterGate = gate.Task;
        Task<SettlementView> settleFirst, settleSecond;
        Task<DepositRecord> kept, failed, refused, last;
        try
        {
            kept = store.DepositAsync(new DepositCommand("g-1", a, "uusd", 100, now));
            failed = store.DepositAsync(new DepositCommand("boom", bomb, "uusd", 40, now));
            refused = store.DepositAsync(new DepositCommand("g-1", a, "uusd", 999, now));
            settleFirst = Env.Operator.SettleAsync(Finals.For(Env, first, true, true));
            settleSecond = Env.Operator.SettleAsync(Finals.For(Env, second, true, true));
            // The HTTP calls reach the queue on their own schedule: wait (bounded) until both are in it.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (store.QueuedWrites < 5)
            {
                Assert.True(DateTime.UtcNow < deadline, $"only {store.QueuedWrites} of 5 writes were queued after 30 s");
                await Task.Delay(5);
            }

            last = store.DepositAsync(new DepositCommand("g-6", a, "uusd", 25, now));
            Assert.Equal(6, store.QueuedWrites);
        }
        finally
        {
            store.WriterGate = null;
            gate.SetResult();
        }

        var keptRecord = await kept;
        var lastRecord = await last;
        Assert.Equal(6, store.LastGroupSize);
        Assert.Contains("boom", (await Assert.ThrowsAnyAsync<DbException>(() => failed)).Message, StringComparison.Ordinal);
        Assert.Equal(EscrowReasons.DepositConflict, (await Assert.ThrowsAsync<EscrowRefusedException>(() => refused)).Reason);
        var settled = await Task.WhenAll(settleFirst, settleSecond);
        Assert.All(settled, s => Assert.Equal(("ToRenter", "ToLeaser"), (s.Deposit, s.Rent)));

        // Kept: 1 + 2 + 2 + 1 entries, one chain (the audit re-hashes it), the failed deposit nowhere.
        var (entriesAfter, _) = await Env.HeadAsync();
        Assert.Equal(entriesBefore + 6, entriesAfter);
        Assert.Equal(entriesBefore + 1, keptRecord.Seq);
        Assert.Equal(entriesAfter, lastRecord.Seq);
        Assert.Equal(125, await Env.BalanceAsync(a));
        Assert.Equal(0, await Env.BalanceAsync(bomb));
        Assert.Equal(100, await Env.BalanceAsync(first.RenterAddress));
        Assert.Equal(100, await Env.BalanceAsync(second.RenterAddress));
        Assert.Equal(leaserBefore + 1800, await Env.BalanceAsync(Env.Leaser.Identity.Address));

        // The writer goes on after the group: a later write commits and chains on.
        var after = await store.DepositAsync(new DepositCommand("g-7", a, "uusd", 1, now));
        Assert.Equal(entriesAfter + 1, after.Seq);
        Assert.Equal(entriesAfter + 1, (await Env.HeadAsync()).Entries);
    }
}
