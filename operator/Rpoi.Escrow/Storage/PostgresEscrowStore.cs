using System.Data;
using System.Data.Common;
using Npgsql;

namespace Rpoi.Escrow.Storage;

/// <summary>
/// The production store: PostgreSQL through Npgsql. Every write transaction first locks the single
/// ledger-head row (SELECT … FOR UPDATE), so writers run one after another across every replica of
/// π and two settlements of one H can never both see it unsettled.
/// </summary>
public sealed class PostgresEscrowStore : SqlEscrowStore
{
    /// <summary>Statements Npgsql prepares per connection when the connection string does not say (the store has fewer).</summary>
    public const int AutoPrepared = 64;

    private readonly NpgsqlDataSource _dataSource;
    private readonly string? _schema;

    /// <summary>
    /// Connects with <paramref name="connectionString"/>; its <c>Search Path</c>, if any, is created as a schema.
    /// <paramref name="time"/> paces the writer's reconnect attempts after a database restart.
    /// </summary>
    public PostgresEscrowStore(string connectionString, TimeProvider? time = null)
        : base(time)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        _schema = string.IsNullOrWhiteSpace(builder.SearchPath) ? null : builder.SearchPath.Split(',')[0].Trim();
        if (builder.MaxAutoPrepare == 0)
        {
            // The writer sends the same few statements over and over: prepared once per connection, the server parses
            // and plans them once instead of per write. A connection string with a non-zero value of its own keeps it.
            builder.MaxAutoPrepare = AutoPrepared;
        }

        _dataSource = NpgsqlDataSource.Create(builder);
    }

    /// <summary>The schema of the connection string's <c>Search Path</c>, if it names one.</summary>
    public string? Schema => _schema;

    /// <inheritdoc />
    protected override string DialectSchema => """
        CREATE OR REPLACE FUNCTION rpoi_ledger_append_only() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION 'the ledger is append-only'; END; $$ LANGUAGE plpgsql;
        CREATE OR REPLACE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger
        FOR EACH ROW EXECUTE FUNCTION rpoi_ledger_append_only();
        """;

    /// <inheritdoc />
    protected override Task MigrateAsync(DbConnection connection, DbTransaction tx, CancellationToken ct) =>
        Exec(connection, tx, "ALTER TABLE settlements ADD COLUMN IF NOT EXISTS leaser_final TEXT NULL", ct);

    /// <inheritdoc />
    /// <remarks>
    /// Replicas of π that start together would otherwise run CREATE SCHEMA / TABLE IF NOT EXISTS and CREATE OR REPLACE
    /// FUNCTION at the same time, and PostgreSQL refuses the loser ("duplicate key value violates unique constraint
    /// pg_namespace…", "tuple concurrently updated"): a transaction-scoped advisory lock on the schema's name makes them
    /// take turns, and the second finds everything in place.
    /// </remarks>
    protected override async Task BeforeSchemaAsync(DbConnection connection, DbTransaction tx, CancellationToken ct)
    {
        await Exec(connection, tx, "SELECT pg_advisory_xact_lock(hashtext(@s))", ct, ("s", "rpoi-escrow-schema:" + (_schema ?? "public")));
        if (_schema is not null)
        {
            await Exec(connection, tx, $"CREATE SCHEMA IF NOT EXISTS \"{_schema.Replace("\"", "\"\"", StringComparison.Ordinal)}\"", ct);
        }
    }

    /// <inheritdoc />
    protected override async ValueTask<DbConnection> OpenAsync(CancellationToken ct) => await _dataSource.OpenConnectionAsync(ct);

    /// <inheritdoc />
    protected override ValueTask<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken ct) =>
        connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, ct);

    /// <inheritdoc />
    /// <remarks>The first statement of every write transaction: the row lock that serialises writers.</remarks>
    protected override string HeadQuery => "SELECT seq, hash FROM ledger_head WHERE id = 1 FOR UPDATE";

    /// <inheritdoc />
    protected override async ValueTask<DbTransaction> BeginSnapshotAsync(DbConnection connection, CancellationToken ct) =>
        await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, ct);

    /// <inheritdoc />
    /// <remarks>
    /// Besides a connection that is no longer open: any Npgsql error that is not the server's answer to a statement
    /// (socket, stream, timeout: the transport broke), and the server's own connection errors, class 08, and 57P01–57P03
    /// (terminated by an administrator or a shutdown, crash recovery, still starting up).
    /// </remarks>
    protected override bool IsConnectionLost(Exception failure, DbConnection? connection) =>
        base.IsConnectionLost(failure, connection) || failure switch
        {
            PostgresException pg => pg.SqlState.StartsWith("08", StringComparison.Ordinal) || pg.SqlState is "57P01" or "57P02" or "57P03",
            NpgsqlException => true,
            _ => false,
        };

    /// <inheritdoc />
    /// <remarks>After a restart every idle pooled connection is dead too: drop them, so reads do not trip over them.</remarks>
    protected override void OnConnectionLost() => _dataSource.Clear();

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        // The writer finishes its queue first: it still needs connections.
        await base.DisposeAsync();
        await _dataSource.DisposeAsync();
    }
}
