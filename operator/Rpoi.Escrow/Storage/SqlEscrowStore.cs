using System.Data.Common;
using System.Globalization;
using System.Threading.Channels;
using Rpoi.Escrow.Client;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Messages;

namespace Rpoi.Escrow.Storage;

/// <summary>
/// The store over ADO.NET, shared by SQLite and PostgreSQL. Writers are serialised (SQLite: one
/// writer by design; PostgreSQL: a row lock on the ledger head), because each ledger entry needs
/// the hash of the one before: the chain itself is the point of serialisation.
/// </summary>
public abstract class SqlEscrowStore : IEscrowStore
{
    /// <summary>The schema, valid in both dialects.</summary>
    protected const string CommonSchema = """
        CREATE TABLE IF NOT EXISTS ledger_head (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            seq BIGINT NOT NULL,
            hash TEXT NOT NULL);
        INSERT INTO ledger_head (id, seq, hash)
            VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000')
            ON CONFLICT (id) DO NOTHING;
        CREATE TABLE IF NOT EXISTS ledger (
            seq BIGINT PRIMARY KEY,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            h TEXT NULL,
            debit TEXT NOT NULL,
            credit TEXT NOT NULL,
            denom TEXT NOT NULL,
            amount BIGINT NOT NULL CHECK (amount > 0),
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS balances (
            address TEXT NOT NULL,
            denom TEXT NOT NULL,
            amount BIGINT NOT NULL CHECK (amount >= 0),
            PRIMARY KEY (address, denom));
        CREATE TABLE IF NOT EXISTS deposits (
            deposit_id TEXT PRIMARY KEY,
            address TEXT NOT NULL,
            denom TEXT NOT NULL,
            amount BIGINT NOT NULL,
            seq BIGINT NOT NULL);
        CREATE TABLE IF NOT EXISTS pledges (
            h TEXT PRIMARY KEY,
            renter TEXT NOT NULL,
            leaser TEXT NOT NULL,
            deposit_denom TEXT NOT NULL,
            deposit BIGINT NOT NULL CHECK (deposit >= 0),
            rent_denom TEXT NOT NULL,
            rent BIGINT NOT NULL CHECK (rent >= 0),
            state TEXT NOT NULL,
            request TEXT NOT NULL,
            pledged_at TEXT NOT NULL,
            claimable_after TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS settlements (
            h TEXT PRIMARY KEY REFERENCES pledges (h),
            deposit TEXT NOT NULL,
            rent TEXT NOT NULL,
            receipt TEXT NOT NULL,
            settled_at TEXT NOT NULL,
            leaser_final TEXT NULL);
        CREATE TABLE IF NOT EXISTS withheld (
            h TEXT PRIMARY KEY REFERENCES pledges (h),
            denom TEXT NOT NULL,
            amount BIGINT NOT NULL CHECK (amount > 0),
            state TEXT NOT NULL,
            released_to TEXT NULL,
            released_at TEXT NULL);
        """;

    /// <summary>
    /// The request nonces π has accepted (PROTOCOL.md P7): one row per (renter key, nonce) with the H that used it and the
    /// instant its request leaves the age window, after which the age check refuses that request anyway and the row is
    /// pruned. <c>supply</c> is the running total of deposits per denomination, kept so the on-ramp can refuse a deposit
    /// that would take the denomination past 64 bits: every balance, hold and withheld sum is bounded by it. The backfill
    /// fills it once for a database made before the table existed.
    /// </summary>
    protected const string ReplaySchema = """
        CREATE TABLE IF NOT EXISTS request_nonces (
            renter_key_id TEXT NOT NULL,
            nonce TEXT NOT NULL,
            h TEXT NOT NULL,
            expires_at BIGINT NOT NULL,
            PRIMARY KEY (renter_key_id, nonce));
        CREATE INDEX IF NOT EXISTS request_nonces_expiry ON request_nonces (expires_at);
        CREATE TABLE IF NOT EXISTS supply (
            denom TEXT PRIMARY KEY,
            amount BIGINT NOT NULL CHECK (amount >= 0));
        INSERT INTO supply (denom, amount)
            SELECT denom, SUM(amount) FROM deposits WHERE true GROUP BY denom
            ON CONFLICT (denom) DO NOTHING;
        """;

    /// <summary>
    /// Migrations of tables made by an older π, run after <see cref="CommonSchema"/> in the same transaction: each
    /// dialect adds what is missing (SQLite has no ADD COLUMN IF NOT EXISTS, so it asks the catalogue first).
    /// Today one: <c>settlements.leaser_final</c>, β's signed m''' (NULL for rows settled before it existed).
    /// </summary>
    protected abstract Task MigrateAsync(DbConnection connection, DbTransaction tx, CancellationToken ct);

    /// <summary>Runs first in the schema transaction: PostgreSQL serialises replicas that start together here.</summary>
    protected virtual Task BeforeSchemaAsync(DbConnection connection, DbTransaction tx, CancellationToken ct) => Task.CompletedTask;

    /// <summary>Dialect-specific schema (append-only triggers), run after <see cref="CommonSchema"/>.</summary>
    protected abstract string DialectSchema { get; }

    /// <summary>Reads the ledger head inside a write transaction (PostgreSQL locks the row here).</summary>
    protected virtual string HeadQuery => "SELECT seq, hash FROM ledger_head WHERE id = 1";

    /// <summary>Opens a connection from the pool.</summary>
    protected abstract ValueTask<DbConnection> OpenAsync(CancellationToken ct);

    /// <summary>Begins a write transaction that excludes every other writer until it ends.</summary>
    protected abstract ValueTask<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken ct);

    /// <summary>Begins a read-only transaction that sees one consistent snapshot.</summary>
    protected abstract ValueTask<DbTransaction> BeginSnapshotAsync(DbConnection connection, CancellationToken ct);

    /// <summary>Most writes committed together in one transaction (each under its own savepoint).</summary>
    private const int MaxGroup = 32;

    /// <summary>How long the writer keeps re-running a group whose connection broke (a database restart) before it fails it.</summary>
    public static readonly TimeSpan ReconnectWindow = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan FirstReconnectDelay = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan LongestReconnectDelay = TimeSpan.FromSeconds(1);

    private readonly TimeProvider _time;

    /// <summary>A store whose writer waits between reconnect attempts on <paramref name="time"/> (the system clock if null).</summary>
    protected SqlEscrowStore(TimeProvider? time = null) => _time = time ?? TimeProvider.System;

    private readonly Channel<QueuedWrite> _queue = Channel.CreateUnbounded<QueuedWrite>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _writerStart = new();
    private Task? _writer;

    // The writer's own connection, opened once and kept (no open, pragma or pool round per write), and the
    // statements prepared on it, by SQL text. Only the writer loop touches them, so they need no lock.
    private DbConnection? _writerConnection;
    private readonly Dictionary<string, DbCommand> _prepared = new(StringComparer.Ordinal);

    /// <summary>Test hook: while set, the writer waits on it before taking a group, so a test can queue a known group.</summary>
    internal Task? WriterGate { get; set; }

    /// <summary>Writes waiting for the writer (a test waits for its whole group to be queued).</summary>
    internal int QueuedWrites => Volatile.Read(ref _queued);

    // The single-reader channel keeps no count, so the store does (for QueuedWrites only).
    private int _queued;

    /// <summary>Size of the last group the writer committed or failed (for tests).</summary>
    internal int LastGroupSize { get; private set; }

    /// <summary>The writer's open connection, if any (a test finds its server process by it).</summary>
    internal DbConnection? WriterConnection => _writerConnection;

    /// <summary>Test hook: runs on the writer's connection after a group's last write and before its COMMIT.</summary>
    internal Func<DbConnection, Task>? BeforeCommit { get; set; }

    /// <summary>Test hook: runs after a group's COMMIT returned, before any caller is answered (a lost answer throws here).</summary>
    internal Func<DbConnection, Task>? AfterCommit { get; set; }

    /// <summary>Times the writer re-ran a group on a fresh connection after its connection broke (for tests).</summary>
    internal int Reconnects => Volatile.Read(ref _reconnects);

    private int _reconnects;

    /// <summary>
    /// True when <paramref name="failure"/> means the connection to the database broke (or could not be opened), not that
    /// a statement was refused: the group's transaction then died with it, or (a failure during COMMIT) its outcome is
    /// unknown. Either way the group may be re-run on a fresh connection: every write first reads its idempotency key
    /// (deposit id, H, H and address), so a write that did commit is found and answered as committed, never applied
    /// twice. Here: the writer's connection is no longer open; a dialect adds its transport and shutdown errors.
    /// </summary>
    protected virtual bool IsConnectionLost(Exception failure, DbConnection? connection) =>
        failure is not EscrowRefusedException && connection is { State: not System.Data.ConnectionState.Open };

    /// <summary>
    /// Runs a read on a pooled connection. A read changes nothing, so one whose connection broke (a database restart
    /// leaves every idle pooled connection dead) runs again on a fresh one, paced and bounded as a write group is.
    /// </summary>
    private async Task<T> ReadingAsync<T>(Func<DbConnection, Task<T>> read, CancellationToken ct)
    {
        var deadline = _time.GetUtcNow() + ReconnectWindow;
        var delay = FirstReconnectDelay;
        while (true)
        {
            DbConnection? connection = null;
            try
            {
                connection = await OpenAsync(ct);
                return await read(connection);
            }
            catch (Exception failure) when (!ct.IsCancellationRequested && IsConnectionLost(failure, connection) && _time.GetUtcNow() + delay <= deadline)
            {
                OnConnectionLost();
            }
            finally
            {
                if (connection is not null)
                {
                    await connection.DisposeAsync();
                }
            }

            await Task.Delay(delay, _time, ct);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, LongestReconnectDelay.Ticks));
        }
    }

    /// <summary>Called once the writer found its connection broken: a dialect drops pooled connections to the same server.</summary>
    protected virtual void OnConnectionLost()
    {
    }

    /// <summary>
    /// Runs a write transaction. Writes are queued to one writer per store, which commits whatever is waiting together
    /// (group commit, up to <see cref="MaxGroup"/>): each write runs under its own savepoint, so a refused or failed one
    /// rolls back alone and the others still commit; one COMMIT (one fsync on SQLite, one WAL flush on PostgreSQL) then
    /// makes them all durable, and only after it does any caller get its answer. If the group cannot commit, every
    /// write in it fails and nothing of it is kept. The chain needs serial writers anyway, so the queue costs no
    /// parallelism, and it saves the per-commit sync and page writes that bound a durable store.
    /// </summary>
    protected virtual async Task<T> WriteAsync<T>(Func<WriteScope, Task<T>> body, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var write = new QueuedWrite<T>(body, ct);
        StartWriter();
        Interlocked.Increment(ref _queued);
        if (!_queue.Writer.TryWrite(write))
        {
            Interlocked.Decrement(ref _queued);
            throw new ObjectDisposedException(GetType().Name, "the store is closed");
        }

        return await write.Result;
    }

    private void StartWriter()
    {
        if (_writer is not null)
        {
            return;
        }

        lock (_writerStart)
        {
            _writer ??= Task.Run(WriterLoopAsync);
        }
    }

    private async Task WriterLoopAsync()
    {
        var group = new List<QueuedWrite>(MaxGroup);
        try
        {
            while (await _queue.Reader.WaitToReadAsync())
            {
                if (WriterGate is { } gate)
                {
                    await gate;
                }

                group.Clear();
                while (group.Count < MaxGroup && _queue.Reader.TryRead(out var write))
                {
                    Interlocked.Decrement(ref _queued);
                    if (write.Cancellation.IsCancellationRequested)
                    {
                        write.Fail(new OperationCanceledException(write.Cancellation));
                    }
                    else
                    {
                        group.Add(write);
                    }
                }

                if (group.Count > 0)
                {
                    LastGroupSize = group.Count;
                    await CommitGroupAsync(group);
                }
            }
        }
        finally
        {
            await DropWriterConnectionAsync();
        }
    }

    private async Task<DbConnection> WriterConnectionAsync()
    {
        if (_writerConnection is { State: System.Data.ConnectionState.Open } open)
        {
            return open;
        }

        await DropWriterConnectionAsync();
        _writerConnection = await OpenAsync(CancellationToken.None);
        return _writerConnection;
    }

    private async Task DropWriterConnectionAsync()
    {
        foreach (var command in _prepared.Values)
        {
            await command.DisposeAsync();
        }

        _prepared.Clear();
        if (_writerConnection is not null)
        {
            await _writerConnection.DisposeAsync();
            _writerConnection = null;
        }
    }

    /// <summary>
    /// Commits one group; if its connection breaks (a database restart, a killed backend), re-runs the writes still
    /// waiting on a fresh connection, with growing pauses, for up to <see cref="ReconnectWindow"/>. No caller is
    /// answered, refusals included, before the attempt that holds its write has committed: a refusal can depend on a
    /// write before it in the group, which a lost attempt did not keep.
    /// </summary>
    private async Task CommitGroupAsync(List<QueuedWrite> group)
    {
        var deadline = _time.GetUtcNow() + ReconnectWindow;
        var delay = FirstReconnectDelay;
        while (true)
        {
            var failure = await TryCommitGroupAsync(group);
            if (failure is null)
            {
                return;
            }

            var lost = IsConnectionLost(failure, _writerConnection);
            // A refusal rolled back cleanly and leaves the connection as it was; any other failure may have broken it,
            // so the next attempt or group starts on a fresh one.
            if (failure is not EscrowRefusedException)
            {
                await DropWriterConnectionAsync();
            }

            if (lost)
            {
                OnConnectionLost();
                group.RemoveAll(write =>
                {
                    if (!write.Cancellation.IsCancellationRequested)
                    {
                        return false;
                    }

                    write.Fail(new OperationCanceledException(write.Cancellation));
                    return true;
                });
            }

            if (!lost || group.Count == 0 || _time.GetUtcNow() + delay > deadline)
            {
                // Nothing of this group was committed, or (lost during COMMIT, out of time) it is unknown: everyone still
                // waiting hears so and may retry; every write is idempotent, so a retry finds a committed one.
                foreach (var write in group)
                {
                    write.Fail(failure);
                }

                return;
            }

            Interlocked.Increment(ref _reconnects);
            await Task.Delay(delay, _time);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, LongestReconnectDelay.Ticks));
        }
    }

    /// <summary>One attempt at a group: null when it committed and every caller was answered, else what stopped it.</summary>
    private async Task<Exception?> TryCommitGroupAsync(List<QueuedWrite> group)
    {
        var ran = new List<QueuedWrite>(group.Count);
        var refused = new List<(QueuedWrite Write, Exception Failure)>();
        try
        {
            var connection = await WriterConnectionAsync();
            await using var tx = await BeginWriteAsync(connection, CancellationToken.None);
            var batch = new WriteGroup(connection, tx, HeadQuery, _prepared);
            // Alone in its transaction, a write needs no savepoint: a failure rolls back the whole of it.
            var savepoints = group.Count > 1;
            foreach (var write in group)
            {
                var scope = new WriteScope(batch, savepoints);
                if (!savepoints)
                {
                    await write.RunAsync(scope);
                    scope.Keep();
                    ran.Add(write);
                    continue;
                }

                try
                {
                    await write.RunAsync(scope);
                    scope.Keep();
                    ran.Add(write);
                }
                catch (Exception failure) when (!IsConnectionLost(failure, connection))
                {
                    // Undo this write only; the group's head stays where the write found it. If even that fails (SQLite
                    // rolls back the whole transaction on some errors), the group is lost: the outer handler fails every
                    // write in it.
                    await scope.UndoAsync();
                    refused.Add((write, failure));
                }
            }

            await batch.FinishAsync();
            if (BeforeCommit is { } before)
            {
                await before(connection);
            }

            await tx.CommitAsync(CancellationToken.None);
            if (AfterCommit is { } after)
            {
                await after(connection);
            }
        }
        catch (Exception failure)
        {
            return failure;
        }

        foreach (var write in ran)
        {
            write.Complete();
        }

        foreach (var (write, failure) in refused)
        {
            write.Fail(failure);
        }

        return null;
    }

    /// <summary>A write waiting for the writer: its body, and the caller's answer once its group committed.</summary>
    private abstract class QueuedWrite(CancellationToken cancellation)
    {
        public CancellationToken Cancellation { get; } = cancellation;

        public abstract Task RunAsync(WriteScope scope);

        public abstract void Complete();

        public abstract void Fail(Exception failure);
    }

    private sealed class QueuedWrite<T>(Func<WriteScope, Task<T>> body, CancellationToken cancellation) : QueuedWrite(cancellation)
    {
        private readonly TaskCompletionSource<T> _answer = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _value;

        public Task<T> Result => _answer.Task;

        public override async Task RunAsync(WriteScope scope)
        {
            _value = await body(scope);
            await scope.FlushAsync(Cancellation);
        }

        public override void Complete() => _answer.TrySetResult(_value!);

        public override void Fail(Exception failure) => _answer.TrySetException(failure);
    }

    /// <inheritdoc />
    public virtual async Task InitializeAsync(CancellationToken ct = default)
    {
        await using var connection = await OpenAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await BeforeSchemaAsync(connection, tx, ct);
        await Exec(connection, tx, CommonSchema, ct);
        await MigrateAsync(connection, tx, ct);
        await Exec(connection, tx, ReplaySchema, ct);
        await Exec(connection, tx, DialectSchema, ct);
        await tx.CommitAsync(ct);
    }

    /// <inheritdoc />
    public Task<DepositRecord> DepositAsync(DepositCommand command, CancellationToken ct = default) =>
        WriteAsync(async w =>
        {
            DepositRecord? existing = null;
            long supply = 0;
            await w.ReadAsync(
                ct,
                new(
                    "SELECT address, denom, amount, seq FROM deposits WHERE deposit_id = @id",
                    [("id", command.DepositId)],
                    r => existing = new DepositRecord(command.DepositId, r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetInt64(3))),
                new("SELECT amount FROM supply WHERE denom = @d", [("d", command.Denom)], r => supply = r.GetInt64(0)),
                w.BalanceRead(
                    "SELECT address, denom, amount FROM balances WHERE address = @a AND denom = @d",
                    [(command.Address, command.Denom)],
                    ("a", command.Address), ("d", command.Denom)));
            if (existing is not null)
            {
                if (existing.Address != command.Address || existing.Denom != command.Denom || existing.Amount != command.Amount)
                {
                    throw new EscrowRefusedException(
                        EscrowReasons.DepositConflict,
                        "depositId",
                        $"deposit id '{command.DepositId}' was already used for {existing.Amount} {existing.Denom} to {existing.Address}; use a new id for a new deposit",
                        409);
                }

                return existing;
            }

            // Everything π holds in a denomination came in here, so bounding the total bounds every sum the ledger makes.
            if (!TryAdd(supply, command.Amount, out var newSupply))
            {
                throw new EscrowRefusedException(
                    EscrowReasons.AmountOverflow,
                    "amount.amount",
                    $"π already holds {supply} {command.Denom} in total; {command.Amount} more would pass the ledger's 64-bit limit (9223372036854775807); deposit at most {long.MaxValue - supply}");
            }

            await w.AddBalanceAsync(command.Address, command.Denom, command.Amount, "amount.amount", ct);
            w.Exec(
                "INSERT INTO supply (denom, amount) VALUES (@d, @x) ON CONFLICT (denom) DO UPDATE SET amount = excluded.amount",
                ("d", command.Denom), ("x", newSupply));
            var seq = w.Append(command.At, Ledger.Kinds.Deposit, null, Ledger.External, Ledger.Balance(command.Address), command.Denom, command.Amount);
            w.Exec(
                "INSERT INTO deposits (deposit_id, address, denom, amount, seq) VALUES (@id, @a, @d, @x, @s)",
                ("id", command.DepositId), ("a", command.Address), ("d", command.Denom), ("x", command.Amount), ("s", seq));
            return new DepositRecord(command.DepositId, command.Address, command.Denom, command.Amount, seq);
        }, ct);

    /// <inheritdoc />
    public Task<IReadOnlyDictionary<string, long>> GetBalancesAsync(string address, CancellationToken ct = default) =>
        ReadingAsync<IReadOnlyDictionary<string, long>>(
            async connection =>
            {
                var rows = await QueryAsync(
                    connection,
                    null,
                    "SELECT denom, amount FROM balances WHERE address = @a ORDER BY denom",
                    r => (r.GetString(0), r.GetInt64(1)),
                    ct,
                    ("a", address));
                return rows.ToDictionary(x => x.Item1, x => x.Item2, StringComparer.Ordinal);
            },
            ct);

    /// <inheritdoc />
    public Task<PledgeResult> PledgeAsync(PledgeCommand command, CancellationToken ct = default) =>
        WriteAsync(async w =>
        {
            PledgeRecord? existing = null;
            (string H, long ExpiresAt)? used = null;
            var nonce = command.Nonce;
            await w.ReadAsync(
                ct,
                new(PledgeQuery, [("h", command.H)], r => existing = ReadPledge(r)),
                new(
                    "SELECT h, expires_at FROM request_nonces WHERE renter_key_id = @k AND nonce = @n",
                    [("k", nonce?.RenterKeyId ?? string.Empty), ("n", nonce?.Nonce ?? string.Empty)],
                    r => used = (r.GetString(0), r.GetInt64(1))),
                w.BalanceRead(
                    "SELECT address, denom, amount FROM balances WHERE address = @a AND denom IN (@dd, @rd)",
                    [(command.Renter, command.DepositDenom), (command.Renter, command.RentDenom)],
                    ("a", command.Renter), ("dd", command.DepositDenom), ("rd", command.RentDenom)));
            if (existing is not null)
            {
                // H is the hash of E(m), so an equal H is the same request: the pledge stands as it is.
                return new PledgeResult(existing, false);
            }

            if (nonce is not null)
            {
                // The nonce is recorded in the pledge's own transaction: a refused or crashed pledge leaves no nonce
                // behind (the renter can fund and retry the same E(m)), and an accepted one cannot exist without it.
                var now = command.At.ToUnixTimeSeconds();
                if (used is { } prior && prior.H != command.H && prior.ExpiresAt >= now)
                {
                    throw new EscrowRefusedException(
                        nameof(ReasonCode.NonceReplayed),
                        "signedRequest.payload.nonce",
                        $"nonce {nonce.Nonce} was already used by renter {nonce.RenterKeyId} in another request (H {prior.H}); sign a new request (a fresh nonce, as 'kubectl rpoi request' makes)",
                        409);
                }

                w.Exec("DELETE FROM request_nonces WHERE expires_at < @now", ("now", now));
                w.Exec(
                    """
                    INSERT INTO request_nonces (renter_key_id, nonce, h, expires_at) VALUES (@k, @n, @h, @x)
                    ON CONFLICT (renter_key_id, nonce) DO UPDATE SET h = excluded.h, expires_at = excluded.expires_at
                    """,
                    ("k", nonce.RenterKeyId), ("n", nonce.Nonce), ("h", command.H), ("x", nonce.ExpiresAt.ToUnixTimeSeconds()));
            }

            if (command.DepositDenom == command.RentDenom)
            {
                // One debit of ρ + ω, so a refusal names the whole sum the renter must cover.
                if (!TryAdd(command.Deposit, command.Rent, out var total))
                {
                    throw new EscrowRefusedException(EscrowReasons.AmountOverflow, "signedRequest", "deposit + rent exceeds the ledger's 64-bit range (9223372036854775807); sign a request for smaller amounts");
                }

                await w.DebitAsync(command.Renter, command.DepositDenom, total, "signedRequest", ct);
            }
            else
            {
                await w.DebitAsync(command.Renter, command.DepositDenom, command.Deposit, "signedRequest", ct);
                await w.DebitAsync(command.Renter, command.RentDenom, command.Rent, "signedRequest", ct);
            }

            var held = Ledger.Held(command.H);
            w.Append(command.At, Ledger.Kinds.PledgeDeposit, command.H, Ledger.Balance(command.Renter), held, command.DepositDenom, command.Deposit);
            w.Append(command.At, Ledger.Kinds.PledgeRent, command.H, Ledger.Balance(command.Renter), held, command.RentDenom, command.Rent);
            var pledgedAt = Ledger.FormatTime(command.At);
            var claimableAfter = Ledger.FormatTime(command.ClaimableAfter);
            w.Exec(
                """
                INSERT INTO pledges (h, renter, leaser, deposit_denom, deposit, rent_denom, rent, state, request, pledged_at, claimable_after)
                VALUES (@h, @r, @b, @dd, @d, @rd, @rent, @s, @req, @at, @ca)
                """,
                ("h", command.H), ("r", command.Renter), ("b", command.Leaser), ("dd", command.DepositDenom), ("d", command.Deposit),
                ("rd", command.RentDenom), ("rent", command.Rent), ("s", PledgeStates.Held), ("req", command.Request),
                ("at", pledgedAt), ("ca", claimableAfter));

            // The row just written, built from the values bound above (times through the same text
            // round trip as a read) rather than read back, which would cost a round trip under the lock.
            var created = new PledgeRecord(
                command.H, command.Renter, command.Leaser, command.DepositDenom, command.Deposit, command.RentDenom, command.Rent,
                PledgeStates.Held, command.Request, Ledger.ParseTime(pledgedAt), Ledger.ParseTime(claimableAfter));
            return new PledgeResult(created, true);
        }, ct);

    /// <inheritdoc />
    public Task<PledgeRecord?> GetPledgeAsync(string h, CancellationToken ct = default) =>
        ReadingAsync(
            async connection =>
            {
                return await ReadPledgeAsync(connection, null, h, ct);
            },
            ct);

    /// <inheritdoc />
    public Task<SettleResult> SettleAsync(SettleCommand command, CancellationToken ct = default) =>
        WriteAsync(async w =>
        {
            // One round trip: the head lock, then (seeing every writer before us) the settlement, the
            // pledge and the balances of its parties in the pledge's denominations. CROSS JOIN keeps
            // SQLite on the pledge's key first (it honours the written order) instead of scanning balances.
            SettlementRecord? first = null;
            PledgeRecord? found = null;
            var parties = new List<(string Address, string Denom, long Amount)>();
            await w.ReadAsync(
                ct,
                new(SettlementQuery, [("h", command.H)], r => first = ReadSettlement(r)),
                new(PledgeQuery, [("h", command.H)], r => found = ReadPledge(r)),
                new(
                    """
                    SELECT b.address, b.denom, b.amount FROM pledges p CROSS JOIN balances b
                    WHERE p.h = @h AND b.address IN (p.renter, p.leaser) AND b.denom IN (p.deposit_denom, p.rent_denom)
                    """,
                    [("h", command.H)],
                    r => parties.Add((r.GetString(0), r.GetString(1), r.GetInt64(2)))));
            if (first is not null)
            {
                return new SettleResult(first, false);
            }

            var pledge = found
                ?? throw new EscrowRefusedException(EscrowReasons.PledgeNotFound, "h", $"no pledge is held under H {command.H}; pledge E(m) first", 404);
            if (pledge.State != PledgeStates.Held)
            {
                throw new InvalidOperationException($"pledge {pledge.H} is {pledge.State} without a settlement row; the database was edited outside the store");
            }

            w.KnowBalances(
                [(pledge.Renter, pledge.DepositDenom), (pledge.Renter, pledge.RentDenom), (pledge.Leaser, pledge.DepositDenom), (pledge.Leaser, pledge.RentDenom)],
                parties);
            var receipt = command.Receipt(w.HeadSeq + 1);
            var held = Ledger.Held(pledge.H);
            if (command.Deposit == DepositDisposition.ToRenter)
            {
                await w.AddBalanceAsync(pledge.Renter, pledge.DepositDenom, pledge.Deposit, "h", ct);
                w.Append(command.At, Ledger.Kinds.DepositToRenter, pledge.H, held, Ledger.Balance(pledge.Renter), pledge.DepositDenom, pledge.Deposit);
            }
            else if (pledge.Deposit > 0)
            {
                w.Append(command.At, Ledger.Kinds.DepositWithheld, pledge.H, held, Ledger.Withheld(pledge.H), pledge.DepositDenom, pledge.Deposit);
                w.Exec(
                    "INSERT INTO withheld (h, denom, amount, state) VALUES (@h, @d, @x, @s)",
                    ("h", pledge.H), ("d", pledge.DepositDenom), ("x", pledge.Deposit), ("s", WithheldStates.Withheld));
            }

            var rentTo = command.Rent == RentDisposition.ToLeaser ? pledge.Leaser : pledge.Renter;
            await w.AddBalanceAsync(rentTo, pledge.RentDenom, pledge.Rent, "h", ct);
            w.Append(
                command.At,
                command.Rent == RentDisposition.ToLeaser ? Ledger.Kinds.RentToLeaser : Ledger.Kinds.RentToRenter,
                pledge.H, held, Ledger.Balance(rentTo), pledge.RentDenom, pledge.Rent);

            w.Exec("UPDATE pledges SET state = @s WHERE h = @h", ("s", PledgeStates.Settled), ("h", pledge.H));
            w.Exec(
                "INSERT INTO settlements (h, deposit, rent, receipt, settled_at, leaser_final) VALUES (@h, @d, @r, @rc, @at, @f)",
                ("h", pledge.H), ("d", command.Deposit.ToString()), ("r", command.Rent.ToString()), ("rc", receipt), ("at", Ledger.FormatTime(command.At)),
                ("f", command.LeaserFinal));
            return new SettleResult(new SettlementRecord(pledge.H, command.Deposit, command.Rent, receipt, command.At, command.LeaserFinal), true);
        }, ct);

    /// <inheritdoc />
    public Task<SettlementRecord?> GetSettlementAsync(string h, CancellationToken ct = default) =>
        ReadingAsync(
            async connection =>
            {
                return await ReadSettlementAsync(connection, null, h, ct);
            },
            ct);

    /// <inheritdoc />
    public Task<IReadOnlyList<WithheldRecord>> ListWithheldAsync(CancellationToken ct = default) =>
        ReadingAsync<IReadOnlyList<WithheldRecord>>(
            async connection =>
            {
                return await QueryAsync(connection, null, "SELECT h, denom, amount, state, released_to, released_at FROM withheld ORDER BY h", ReadWithheld, ct);
            },
            ct);

    /// <inheritdoc />
    public Task<WithheldRecord> ReleaseAsync(ReleaseCommand command, CancellationToken ct = default) =>
        WriteAsync(async w =>
        {
            WithheldRecord? found = null;
            var balances = new List<(string Address, string Denom, long Amount)>();
            await w.ReadAsync(
                ct,
                new("SELECT h, denom, amount, state, released_to, released_at FROM withheld WHERE h = @h", [("h", command.H)], r => found = ReadWithheld(r)),
                new(
                    "SELECT b.address, b.denom, b.amount FROM withheld w CROSS JOIN balances b WHERE w.h = @h AND b.address = @to AND b.denom = w.denom",
                    [("h", command.H), ("to", command.To)],
                    r => balances.Add((r.GetString(0), r.GetString(1), r.GetInt64(2)))));
            var row = found
                ?? throw new EscrowRefusedException(EscrowReasons.WithheldNotFound, "h", $"nothing is withheld under H {command.H}", 404);
            if (row.State == WithheldStates.Released)
            {
                return row.ReleasedTo == command.To
                    ? row
                    : throw new EscrowRefusedException(
                        EscrowReasons.AlreadyReleased,
                        "to",
                        $"the funds withheld under H {command.H} were already released to {row.ReleasedTo}",
                        409);
            }

            w.KnowBalances([(command.To, row.Denom)], balances);
            await w.AddBalanceAsync(command.To, row.Denom, row.Amount, "to", ct);
            w.Append(command.At, Ledger.Kinds.Release, row.H, Ledger.Withheld(row.H), Ledger.Balance(command.To), row.Denom, row.Amount);
            w.Exec(
                "UPDATE withheld SET state = @s, released_to = @to, released_at = @at WHERE h = @h",
                ("s", WithheldStates.Released), ("to", command.To), ("at", Ledger.FormatTime(command.At)), ("h", row.H));
            return row with { State = WithheldStates.Released, ReleasedTo = command.To, ReleasedAt = command.At };
        }, ct);

    /// <inheritdoc />
    public Task<IReadOnlyList<LedgerEntry>> ReadLedgerAsync(long after, int limit, CancellationToken ct = default) =>
        ReadingAsync<IReadOnlyList<LedgerEntry>>(
            async connection =>
            {
                return await QueryAsync(
                    connection,
                    null,
                    "SELECT seq, at, kind, h, debit, credit, denom, amount, prev_hash, hash FROM ledger WHERE seq > @after ORDER BY seq LIMIT @limit",
                    ReadEntry,
                    ct,
                    ("after", after), ("limit", limit));
            },
            ct);

    /// <inheritdoc />
    public Task<AuditResult> AuditAsync(CancellationToken ct = default) =>
        ReadingAsync(
            async connection =>
            {
                await using var tx = await BeginSnapshotAsync(connection, ct);
                var problems = new List<string>();

                // 1. The chain: consecutive seq, each entry links to the previous hash and hashes to its own.
                var buckets = new Dictionary<(string Bucket, string Denom), decimal>();
                var prev = Ledger.Genesis;
                long count = 0;
                await using (var cmd = Command(connection, tx, "SELECT seq, at, kind, h, debit, credit, denom, amount, prev_hash, hash FROM ledger ORDER BY seq"))
                await using (var reader = await cmd.ExecuteReaderAsync(ct))
                {
                    while (await reader.ReadAsync(ct))
                    {
                        var e = ReadEntry(reader);
                        count++;
                        if (e.Seq != count)
                        {
                            problems.Add($"ledger seq {e.Seq} found where {count} was expected (a row is missing or inserted)");
                        }

                        if (e.PrevHash != prev)
                        {
                            problems.Add($"ledger seq {e.Seq}: prev_hash does not match the hash of the entry before");
                        }

                        if (Ledger.Hash(e) != e.Hash)
                        {
                            problems.Add($"ledger seq {e.Seq}: hash does not match its contents (the row was edited)");
                        }

                        prev = e.Hash;
                        Add(buckets, e.Debit, e.Denom, -e.Amount);
                        Add(buckets, e.Credit, e.Denom, e.Amount);
                    }
                }

                var head = await QueryAsync(connection, tx, "SELECT seq, hash FROM ledger_head WHERE id = 1", r => (r.GetInt64(0), r.GetString(1)), ct);
                if (head.Count != 1 || head[0].Item1 != count || head[0].Item2 != prev)
                {
                    problems.Add("ledger head does not match the last entry (entries were removed or appended outside the store)");
                }

                foreach (var ((bucket, denom), amount) in buckets)
                {
                    if (bucket != Ledger.External && amount < 0)
                    {
                        problems.Add($"replaying the ledger drives {bucket} negative in {denom}");
                    }
                }

                // 2. The tables must be exactly what replaying the ledger gives.
                var expected = buckets.Where(kv => kv.Key.Bucket != Ledger.External && kv.Value != 0)
                    .ToDictionary(kv => kv.Key, kv => kv.Value);
                var actual = new Dictionary<(string Bucket, string Denom), decimal>();
                foreach (var (address, denom, amount) in await QueryAsync(connection, tx, "SELECT address, denom, amount FROM balances", r => (r.GetString(0), r.GetString(1), r.GetInt64(2)), ct))
                {
                    Add(actual, Ledger.Balance(address), denom, amount);
                }

                foreach (var p in await QueryAsync(connection, tx, "SELECT h, deposit_denom, deposit, rent_denom, rent FROM pledges WHERE state = 'Held'", r => (r.GetString(0), r.GetString(1), r.GetInt64(2), r.GetString(3), r.GetInt64(4)), ct))
                {
                    Add(actual, Ledger.Held(p.Item1), p.Item2, p.Item3);
                    Add(actual, Ledger.Held(p.Item1), p.Item4, p.Item5);
                }

                foreach (var w in await QueryAsync(connection, tx, "SELECT h, denom, amount FROM withheld WHERE state = 'Withheld'", r => (r.GetString(0), r.GetString(1), r.GetInt64(2)), ct))
                {
                    Add(actual, Ledger.Withheld(w.Item1), w.Item2, w.Item3);
                }

                foreach (var key in expected.Keys.Union(actual.Keys).Where(k => expected.GetValueOrDefault(k) != actual.GetValueOrDefault(k)).OrderBy(k => k.Bucket, StringComparer.Ordinal))
                {
                    problems.Add($"{key.Bucket} holds {actual.GetValueOrDefault(key)} {key.Denom} in the tables but {expected.GetValueOrDefault(key)} by the ledger");
                }

                // Every bucket is a BIGINT column, so a replayed bucket past 64 bits means the ledger holds moves π never made.
                foreach (var ((bucket, denom), amount) in buckets.Where(kv => kv.Key.Bucket != Ledger.External && kv.Value > long.MaxValue))
                {
                    problems.Add($"replaying the ledger takes {bucket} past the 64-bit range in {denom} ({amount})");
                }

                // 3. The invariant, from the tables: balances + held + withheld = deposits.
                var deposits = await QueryAsync(connection, tx, "SELECT denom, amount FROM deposits", r => (r.GetString(0), r.GetInt64(1)), ct);
                var supply = (await QueryAsync(connection, tx, "SELECT denom, amount FROM supply", r => (r.GetString(0), r.GetInt64(1)), ct))
                    .ToDictionary(x => x.Item1, x => x.Item2, StringComparer.Ordinal);
                var denoms = actual.Keys.Select(k => k.Denom).Concat(deposits.Select(d => d.Item1)).Distinct().Order(StringComparer.Ordinal);
                var totals = new List<DenomTotal>();
                foreach (var denom in denoms)
                {
                    decimal Sum(string prefix) => actual.Where(kv => kv.Key.Denom == denom && kv.Key.Bucket.StartsWith(prefix, StringComparison.Ordinal)).Sum(kv => kv.Value);
                    var total = new DenomTotal(denom, Sum("balance:"), Sum("held:"), Sum("withheld:"), deposits.Where(d => d.Item1 == denom).Sum(d => (decimal)d.Item2));
                    totals.Add(total);
                    if (total.Balances + total.Held + total.Withheld != total.Deposits)
                    {
                        problems.Add($"invariant broken in {denom}: balances {total.Balances} + held {total.Held} + withheld {total.Withheld} != deposits {total.Deposits}");
                    }

                    var external = -buckets.GetValueOrDefault((Ledger.External, denom));
                    if (external != total.Deposits)
                    {
                        problems.Add($"deposits table says {total.Deposits} {denom} came in, the ledger says {external}");
                    }

                    // The sums are exact (decimal); the ledger promises each fits 64 bits, and the on-ramp keeps the total below.
                    foreach (var (what, value) in new[] { ("balances", total.Balances), ("held", total.Held), ("withheld", total.Withheld), ("deposits", total.Deposits) })
                    {
                        if (value > long.MaxValue)
                        {
                            problems.Add($"total {what} in {denom} is {value}, past the ledger's 64-bit range (9223372036854775807)");
                        }
                    }

                    if (supply.GetValueOrDefault(denom) != total.Deposits)
                    {
                        problems.Add($"the supply table says {supply.GetValueOrDefault(denom)} {denom} came in, the deposits table says {total.Deposits}");
                    }
                }

                await tx.CommitAsync(ct);
                return new AuditResult(problems.Count == 0, count, prev, totals, problems);
            },
            ct);

    /// <inheritdoc />
    public virtual async ValueTask DisposeAsync()
    {
        // Queued writes still run and commit; later ones are refused.
        _queue.Writer.TryComplete();
        if (_writer is not null)
        {
            await _writer;
        }

        GC.SuppressFinalize(this);
    }

    /// <summary>Checked 64-bit addition of non-negative amounts: false instead of an overflow.</summary>
    private static bool TryAdd(long a, long b, out long sum)
    {
        try
        {
            sum = checked(a + b);
            return true;
        }
        catch (OverflowException)
        {
            sum = 0;
            return false;
        }
    }

    private static void Add(Dictionary<(string, string), decimal> map, string bucket, string denom, decimal amount) =>
        map[(bucket, denom)] = map.GetValueOrDefault((bucket, denom)) + amount;

    private const string PledgeQuery =
        "SELECT h, renter, leaser, deposit_denom, deposit, rent_denom, rent, state, request, pledged_at, claimable_after FROM pledges WHERE h = @h";

    private const string SettlementQuery = "SELECT h, deposit, rent, receipt, settled_at, leaser_final FROM settlements WHERE h = @h";

    private static PledgeRecord ReadPledge(DbDataReader r) => new(
        r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetInt64(4), r.GetString(5), r.GetInt64(6),
        r.GetString(7), r.GetString(8), Ledger.ParseTime(r.GetString(9)), Ledger.ParseTime(r.GetString(10)));

    private static SettlementRecord ReadSettlement(DbDataReader r) => new(
        r.GetString(0),
        Enum.Parse<DepositDisposition>(r.GetString(1)),
        Enum.Parse<RentDisposition>(r.GetString(2)),
        r.GetString(3),
        Ledger.ParseTime(r.GetString(4)),
        r.IsDBNull(5) ? null : r.GetString(5));

    private static async Task<PledgeRecord?> ReadPledgeAsync(DbConnection c, DbTransaction? tx, string h, CancellationToken ct)
    {
        var rows = await QueryAsync(c, tx, PledgeQuery, ReadPledge, ct, ("h", h));
        return rows.Count == 0 ? null : rows[0];
    }

    private static async Task<SettlementRecord?> ReadSettlementAsync(DbConnection c, DbTransaction? tx, string h, CancellationToken ct)
    {
        var rows = await QueryAsync(c, tx, SettlementQuery, ReadSettlement, ct, ("h", h));
        return rows.Count == 0 ? null : rows[0];
    }

    private static WithheldRecord ReadWithheld(DbDataReader r) => new(
        r.GetString(0),
        r.GetString(1),
        r.GetInt64(2),
        r.GetString(3),
        r.IsDBNull(4) ? null : r.GetString(4),
        r.IsDBNull(5) ? null : Ledger.ParseTime(r.GetString(5)));

    private static LedgerEntry ReadEntry(DbDataReader r) => new(
        r.GetInt64(0),
        Ledger.ParseTime(r.GetString(1)),
        r.GetString(2),
        r.IsDBNull(3) ? null : r.GetString(3),
        r.GetString(4),
        r.GetString(5),
        r.GetString(6),
        r.GetInt64(7),
        r.GetString(8),
        r.GetString(9));

    /// <summary>Builds a command with named parameters (both providers accept <c>@name</c>).</summary>
    protected static DbCommand Command(DbConnection c, DbTransaction? tx, string sql, params (string Name, object? Value)[] parameters)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        Bind(cmd.Parameters, cmd.CreateParameter, parameters);
        return cmd;
    }

    /// <summary>Adds named parameters (null as DBNull) to a command's or a batch command's collection.</summary>
    private static void Bind(DbParameterCollection target, Func<DbParameter> create, (string Name, object? Value)[] parameters)
    {
        foreach (var (name, value) in parameters)
        {
            var p = create();
            p.ParameterName = name;
            p.Value = value ?? DBNull.Value;
            target.Add(p);
        }
    }

    /// <summary>Executes a statement.</summary>
    protected static async Task Exec(DbConnection c, DbTransaction? tx, string sql, CancellationToken ct, params (string, object?)[] parameters)
    {
        await using var cmd = Command(c, tx, sql, parameters);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    private static async Task<List<T>> QueryAsync<T>(DbConnection c, DbTransaction? tx, string sql, Func<DbDataReader, T> map, CancellationToken ct, params (string, object?)[] parameters)
    {
        await using var cmd = Command(c, tx, sql, parameters);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        var list = new List<T>();
        while (await reader.ReadAsync(ct))
        {
            list.Add(map(reader));
        }

        return list;
    }

    /// <summary>A read in a write transaction's round trip: each row it returns goes to <see cref="Row"/>, then <see cref="Done"/> runs.</summary>
    protected internal sealed record Read(string Sql, (string Name, object? Value)[] Parameters, Action<DbDataReader> Row, Action? Done = null);

    /// <summary>A statement and its named parameters.</summary>
    internal readonly record struct Statement(string Sql, (string Name, object? Value)[] Parameters);

    /// <summary>
    /// One group's transaction on the writer's connection: how statements reach the database, and the ledger head carried
    /// from write to write (read, on PostgreSQL locked, by the group's first write; written back once, before COMMIT).
    /// Where the provider batches (PostgreSQL) a round trip is one batch, statements prepared by Npgsql's auto-prepare;
    /// otherwise (SQLite, in process) each statement runs as a command prepared once on the writer's connection and kept.
    /// </summary>
    internal sealed class WriteGroup(DbConnection connection, DbTransaction transaction, string headQuery, Dictionary<string, DbCommand> prepared)
    {
        public string HeadQuery => headQuery;

        public bool HeadLoaded { get; set; }

        public long Seq { get; set; }

        public string Hash { get; set; } = Ledger.Genesis;

        /// <summary>True once a kept write appended, so the head row must be written before COMMIT.</summary>
        public bool Appended { get; set; }

        public async Task ExecuteAsync(IReadOnlyList<Statement> statements, CancellationToken ct)
        {
            if (statements.Count == 0)
            {
                return;
            }

            if (connection.CanCreateBatch)
            {
                await using var batch = Batch(statements);
                await batch.ExecuteNonQueryAsync(ct);
                return;
            }

            foreach (var statement in statements)
            {
                await Prepared(statement.Sql, statement.Parameters).ExecuteNonQueryAsync(ct);
            }
        }

        /// <summary>Runs <paramref name="before"/> (statements without rows), then <paramref name="reads"/>, in one round trip.</summary>
        public async Task ReadAsync(IReadOnlyList<Statement> before, Read[] reads, CancellationToken ct)
        {
            if (connection.CanCreateBatch)
            {
                // The reader skips the result-less statements ahead of the reads, so result set i is read i.
                await using var batch = Batch([.. before, .. reads.Select(r => new Statement(r.Sql, r.Parameters))]);
                await using var reader = await batch.ExecuteReaderAsync(ct);
                for (var i = 0; i < reads.Length; i++)
                {
                    if (i > 0 && !await reader.NextResultAsync(ct))
                    {
                        throw new InvalidOperationException($"the batch returned {i} result sets for {reads.Length} reads");
                    }

                    while (await reader.ReadAsync(ct))
                    {
                        reads[i].Row(reader);
                    }
                }

                return;
            }

            foreach (var statement in before)
            {
                await Prepared(statement.Sql, statement.Parameters).ExecuteNonQueryAsync(ct);
            }

            foreach (var read in reads)
            {
                await using var reader = await Prepared(read.Sql, read.Parameters).ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    read.Row(reader);
                }
            }
        }

        /// <summary>Writes the head the kept writes left, once for the whole group.</summary>
        public Task FinishAsync() => Appended
            ? ExecuteAsync([new("UPDATE ledger_head SET seq = @s, hash = @h WHERE id = 1", [("s", Seq), ("h", Hash)])], CancellationToken.None)
            : Task.CompletedTask;

        /// <summary>The statement prepared on the writer's connection (once per SQL text, a fixed set), bound to this transaction and these values.</summary>
        private DbCommand Prepared(string sql, (string Name, object? Value)[] parameters)
        {
            if (!prepared.TryGetValue(sql, out var cmd))
            {
                cmd = connection.CreateCommand();
                cmd.CommandText = sql;
                foreach (var (name, _) in parameters)
                {
                    var p = cmd.CreateParameter();
                    p.ParameterName = name;
                    cmd.Parameters.Add(p);
                }

                cmd.Transaction = transaction;
                cmd.Prepare();
                prepared[sql] = cmd;
            }

            cmd.Transaction = transaction;
            foreach (var (name, value) in parameters)
            {
                cmd.Parameters[name].Value = value ?? DBNull.Value;
            }

            return cmd;
        }

        private DbBatch Batch(IEnumerable<Statement> statements)
        {
            var batch = connection.CreateBatch();
            batch.Transaction = transaction;
            foreach (var (sql, parameters) in statements)
            {
                var cmd = batch.CreateBatchCommand();
                cmd.CommandText = sql;
                Bind(cmd.Parameters, cmd.CreateParameter, parameters);
                batch.BatchCommands.Add(cmd);
            }

            return batch;
        }
    }

    /// <summary>
    /// One write in a group: the ledger head it extends, and the moves it makes. Round trips are what the head lock is
    /// held across, so the scope keeps them few where the provider batches (PostgreSQL): its savepoint goes out with its
    /// first reads, every write and the savepoint's release go out together at the end, and the head is read only by
    /// the group's first write. Writes are queued and sent together; a read queued after a write first sends the
    /// writes, in the same round trip, so reads always see them. Balances read up front are kept, and updated by each
    /// write, so the checks on them cost no round trip.
    /// </summary>
    protected sealed class WriteScope
    {
        private const string Savepoint = "SAVEPOINT w";
        private readonly WriteGroup _group;
        private readonly bool _savepoint;
        private readonly List<Statement> _pending = [];
        private readonly Dictionary<(string Address, string Denom), long> _balances = [];
        private bool _savepointSent;
        private long _seq;
        private string _hash = Ledger.Genesis;
        private bool _headLoaded;
        private bool _appended;

        internal WriteScope(WriteGroup group, bool savepoint)
        {
            _group = group;
            _savepoint = savepoint;
            if (group.HeadLoaded)
            {
                (_seq, _hash, _headLoaded) = (group.Seq, group.Hash, true);
            }

            if (savepoint)
            {
                _pending.Add(new(Savepoint, []));
            }
        }

        /// <summary>Seq of the last ledger entry, including those appended in this transaction; valid after the first <see cref="ReadAsync"/>.</summary>
        public long HeadSeq => _headLoaded ? _seq : throw new InvalidOperationException("the ledger head is read with the first ReadAsync of a write transaction");

        /// <summary>
        /// Runs <paramref name="reads"/> in one round trip, after the queued writes; the group's first read also reads
        /// (on PostgreSQL: locks) the ledger head, ahead of the reads, so they see every writer before this one.
        /// </summary>
        public async Task ReadAsync(CancellationToken ct, params Read[] reads)
        {
            var all = reads;
            if (!_headLoaded)
            {
                var rows = 0;
                var head = new Read(
                    _group.HeadQuery,
                    [],
                    r => (_seq, _hash, rows) = (r.GetInt64(0), r.GetString(1), rows + 1),
                    () =>
                    {
                        _headLoaded = rows == 1 ? true : throw new InvalidOperationException($"ledger_head holds {rows} rows; it must hold exactly one");
                        // Nothing appended yet: this is the head the group stands on, kept if this write is undone.
                        (_group.Seq, _group.Hash, _group.HeadLoaded) = (_seq, _hash, true);
                    });
                all = [head, .. reads];
            }

            var before = TakePending();
            await _group.ReadAsync(before, all, ct);
            foreach (var read in all)
            {
                read.Done?.Invoke();
            }
        }

        /// <summary>
        /// A read of balances that covers <paramref name="covered"/>: a pair it returns no row for
        /// holds 0, so later checks on any covered pair need no round trip.
        /// </summary>
        public Read BalanceRead(string sql, (string Address, string Denom)[] covered, params (string Name, object? Value)[] parameters)
        {
            var rows = new List<(string Address, string Denom, long Amount)>();
            return new Read(sql, parameters, r => rows.Add((r.GetString(0), r.GetString(1), r.GetInt64(2))), () => KnowBalances(covered, rows));
        }

        /// <summary>Records balances read in this transaction: <paramref name="rows"/> as read, every other covered pair as 0.</summary>
        public void KnowBalances(IEnumerable<(string Address, string Denom)> covered, IEnumerable<(string Address, string Denom, long Amount)> rows)
        {
            var read = rows.ToDictionary(x => (x.Address, x.Denom), x => x.Amount);
            foreach (var key in covered)
            {
                // A balance this transaction already holds is newer than the read.
                _balances.TryAdd(key, read.GetValueOrDefault(key));
            }
        }

        /// <summary>Queues a statement; it runs before the next read, or at the end.</summary>
        public void Exec(string sql, params (string Name, object? Value)[] parameters) => _pending.Add(new(sql, parameters));

        /// <summary>Sends the queued writes, and the release of the savepoint, in one round trip.</summary>
        internal async Task FlushAsync(CancellationToken ct)
        {
            if (!_headLoaded)
            {
                await ReadAsync(ct);
            }

            if (_savepoint && !_savepointSent && _pending.Count == 1)
            {
                // Nothing was sent and nothing is to be: no savepoint needed.
                _pending.Clear();
            }
            else if (_savepoint)
            {
                Exec("RELEASE SAVEPOINT w");
            }

            await _group.ExecuteAsync(TakePending(), ct);
        }

        /// <summary>Hands the head this write left to the next write of the group (the write is kept).</summary>
        internal void Keep()
        {
            if (_headLoaded)
            {
                (_group.Seq, _group.Hash, _group.HeadLoaded) = (_seq, _hash, true);
            }

            _group.Appended |= _appended;
        }

        /// <summary>Rolls this write back to its savepoint; the group's head stays where the write found it.</summary>
        internal async Task UndoAsync()
        {
            _pending.Clear();
            if (_savepointSent)
            {
                await _group.ExecuteAsync([new("ROLLBACK TO SAVEPOINT w", []), new("RELEASE SAVEPOINT w", [])], CancellationToken.None);
            }
        }

        /// <summary>Queues one chained entry; zero moves are not recorded. Returns its seq (or the head's for a zero move).</summary>
        public long Append(DateTimeOffset at, string kind, string? h, string debit, string credit, string denom, long amount)
        {
            if (amount == 0)
            {
                return HeadSeq;
            }

            var seq = HeadSeq + 1;
            var when = Ledger.FormatTime(at);
            var hash = Ledger.Hash(seq, when, kind, h, debit, credit, denom, amount, _hash);
            Exec(
                "INSERT INTO ledger (seq, at, kind, h, debit, credit, denom, amount, prev_hash, hash) VALUES (@s, @at, @k, @h, @d, @c, @dn, @x, @p, @hash)",
                ("s", seq), ("at", when), ("k", kind), ("h", h), ("d", debit), ("c", credit), ("dn", denom), ("x", amount), ("p", _hash), ("hash", hash));
            (_seq, _hash, _appended) = (seq, hash, true);
            return seq;
        }

        /// <summary>Adds to a free balance, refusing a sum beyond the 64-bit range.</summary>
        public async Task AddBalanceAsync(string address, string denom, long amount, string field, CancellationToken ct)
        {
            var current = await BalanceAsync(address, denom, ct);
            long next;
            try
            {
                next = checked(current + amount);
            }
            catch (OverflowException)
            {
                throw new EscrowRefusedException(EscrowReasons.AmountOverflow, field, $"crediting {amount} {denom} to {address} would exceed the ledger's 64-bit range");
            }

            SetBalance(address, denom, next);
        }

        /// <summary>Subtracts from a free balance, refusing when it is short.</summary>
        public async Task DebitAsync(string address, string denom, long amount, string field, CancellationToken ct)
        {
            if (amount == 0)
            {
                return;
            }

            var current = await BalanceAsync(address, denom, ct);
            if (current < amount)
            {
                throw new EscrowRefusedException(
                    EscrowReasons.InsufficientFunds,
                    field,
                    $"{address} has {current} {denom} free but the pledge needs {amount} {denom} (deposit + rent); deposit more first",
                    409);
            }

            SetBalance(address, denom, current - amount);
        }

        private async Task<long> BalanceAsync(string address, string denom, CancellationToken ct)
        {
            if (!_balances.ContainsKey((address, denom)))
            {
                await ReadAsync(ct, BalanceRead("SELECT address, denom, amount FROM balances WHERE address = @a AND denom = @d", [(address, denom)], ("a", address), ("d", denom)));
            }

            return _balances[(address, denom)];
        }

        private void SetBalance(string address, string denom, long amount)
        {
            _balances[(address, denom)] = amount;
            Exec(
                "INSERT INTO balances (address, denom, amount) VALUES (@a, @d, @x) ON CONFLICT (address, denom) DO UPDATE SET amount = excluded.amount",
                ("a", address), ("d", denom), ("x", amount));
        }

        /// <summary>The queued statements, handed over to be sent; a savepoint among them counts as sent from here on.</summary>
        private List<Statement> TakePending()
        {
            if (_pending.Count == 0)
            {
                return [];
            }

            if (_savepoint && !_savepointSent && _pending[0].Sql == Savepoint)
            {
                // Even if the round trip fails, the savepoint went first: undoing rolls back to it.
                _savepointSent = true;
            }

            var taken = new List<Statement>(_pending);
            _pending.Clear();
            return taken;
        }
    }

    /// <summary>Formats an amount for the wire.</summary>
    public static string Format(decimal amount) => amount.ToString(CultureInfo.InvariantCulture);
}
