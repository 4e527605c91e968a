using System.Data;
using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Rpoi.Escrow.Storage;

/// <summary>
/// The embedded default: one SQLite file in WAL mode with synchronous=FULL. Writers queue to the
/// store's one writer, which commits them in groups (SQLite allows one writer anyway, and one fsync
/// per group instead of per write is what makes a durable commit affordable); BEGIN IMMEDIATE plus a
/// busy timeout still protect against a second process.
/// </summary>
public sealed class SqliteEscrowStore : SqlEscrowStore
{
    private readonly string _connectionString;

    /// <summary>Opens (and creates) the database at <paramref name="path"/>; <paramref name="time"/> is the writer's clock.</summary>
    public SqliteEscrowStore(string path, TimeProvider? time = null)
        : base(time)
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
        // synchronous=FULL in WAL mode fsyncs the WAL at every commit, so a settlement π has answered survives a
        // power loss or kernel crash too; NORMAL would survive only a crash of π itself and may lose the last
        // acknowledged commits. Group commit (SqlEscrowStore.WriteAsync) pays that fsync once per group.
        await Exec(connection, null, "PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL;", ct);
        return connection;
    }

    /// <inheritdoc />
    protected override ValueTask<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken ct) =>
        ValueTask.FromResult<DbTransaction>(((SqliteConnection)connection).BeginTransaction(IsolationLevel.Serializable, deferred: false));

    /// <inheritdoc />
    protected override ValueTask<DbTransaction> BeginSnapshotAsync(DbConnection connection, CancellationToken ct) =>
        ValueTask.FromResult<DbTransaction>(((SqliteConnection)connection).BeginTransaction(IsolationLevel.Serializable, deferred: true));
}
