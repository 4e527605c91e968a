using System.Data;
using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Rpoi.Escrow.Storage;

/// <summary>
/// The embedded default: one SQLite file in WAL mode. Writers queue on an in-process lock (SQLite
/// allows one writer anyway, and queueing is far cheaper than every writer retrying on the file
/// lock); BEGIN IMMEDIATE plus a busy timeout still protect against a second process.
/// </summary>
public sealed class SqliteEscrowStore : SqlEscrowStore
{
    private readonly string _connectionString;
    private readonly SemaphoreSlim _writer = new(1, 1);

    /// <summary>Opens (and creates) the database at <paramref name="path"/>.</summary>
    public SqliteEscrowStore(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = 30,
            ForeignKeys = true,
        }.ToString();
        DatabasePath = path;
    }

    /// <summary>The database file.</summary>
    public string DatabasePath { get; }

    /// <inheritdoc />
    protected override string DialectSchema => """
        CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger
        BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
        CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger
        BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
        """;

    /// <inheritdoc />
    protected override async Task MigrateAsync(DbConnection connection, DbTransaction tx, CancellationToken ct)
    {
        await using var probe = Command(connection, tx, "SELECT COUNT(*) FROM pragma_table_info('settlements') WHERE name = 'leaser_final'");
        if (Convert.ToInt64(await probe.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture) == 0)
        {
            await Exec(connection, tx, "ALTER TABLE settlements ADD COLUMN leaser_final TEXT NULL", ct);
        }
    }

    /// <inheritdoc />
    public override async Task InitializeAsync(CancellationToken ct = default)
    {
        await using (var connection = await OpenAsync(ct))
        {
            // WAL is a property of the file: set once, kept by every later connection.
            await Exec(connection, null, "PRAGMA journal_mode = WAL;", ct);
        }

        await base.InitializeAsync(ct);
    }

    /// <inheritdoc />
    protected override async ValueTask<DbConnection> OpenAsync(CancellationToken ct)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(ct);
        // synchronous=NORMAL in WAL mode is durable against process crashes and keeps the database
        // consistent on power loss (the last commits may roll back, never half-apply).
        await Exec(connection, null, "PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;", ct);
        return connection;
    }

    /// <inheritdoc />
    protected override ValueTask<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken ct) =>
        ValueTask.FromResult<DbTransaction>(((SqliteConnection)connection).BeginTransaction(IsolationLevel.Serializable, deferred: false));

    /// <inheritdoc />
    protected override ValueTask<DbTransaction> BeginSnapshotAsync(DbConnection connection, CancellationToken ct) =>
        ValueTask.FromResult<DbTransaction>(((SqliteConnection)connection).BeginTransaction(IsolationLevel.Serializable, deferred: true));

    /// <inheritdoc />
    protected override async Task<T> WriteAsync<T>(Func<WriteScope, Task<T>> body, CancellationToken ct)
    {
        await _writer.WaitAsync(ct);
        try
        {
            return await base.WriteAsync(body, ct);
        }
        finally
        {
            _writer.Release();
        }
    }

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        _writer.Dispose();
        await base.DisposeAsync();
    }
}
