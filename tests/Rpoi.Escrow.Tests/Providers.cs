using Microsoft.Data.Sqlite;
using Npgsql;
using Rpoi.Escrow.Storage;

namespace Rpoi.Escrow.Tests;

/// <summary>SQLite in a fresh temporary file per test.</summary>
public sealed class SqliteProvider : IStoreProvider
{
    public Task<IEscrowStore?> CreateAsync()
    {
        var dir = Path.Combine(Path.GetTempPath(), "rpoi-escrow-tests", Guid.NewGuid().ToString("N"));
        return Task.FromResult<IEscrowStore?>(new SqliteEscrowStore(Path.Combine(dir, "escrow.db")));
    }

    public IEscrowStore Reopen(IEscrowStore store) => new SqliteEscrowStore(((SqliteEscrowStore)store).DatabasePath);

    public Task CleanupAsync(IEscrowStore store)
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(Path.GetDirectoryName(((SqliteEscrowStore)store).DatabasePath)!, recursive: true);
        return Task.CompletedTask;
    }

    public async Task ExecuteRawAsync(IEscrowStore store, string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={((SqliteEscrowStore)store).DatabasePath};Pooling=False");
        await connection.OpenAsync();
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = sql;
        await cmd.ExecuteNonQueryAsync();
    }
}

/// <summary>
/// PostgreSQL from <c>RPOI_TEST_POSTGRES</c>, a fresh schema per test. Unset, the tests FAIL with the
/// fix, unless <c>RPOI_SKIP_POSTGRES=1</c> opts out explicitly (then they return early).
/// </summary>
public sealed class PostgresProvider : IStoreProvider
{
    public const string Variable = "RPOI_TEST_POSTGRES";
    public const string SkipVariable = "RPOI_SKIP_POSTGRES";

    private string? _connectionString;

    public Task<IEscrowStore?> CreateAsync()
    {
        var baseConnection = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrWhiteSpace(baseConnection))
        {
            if (Environment.GetEnvironmentVariable(SkipVariable) == "1")
            {
                return Task.FromResult<IEscrowStore?>(null);
            }

            throw new InvalidOperationException(
                $"{Variable} is not set, so the PostgreSQL escrow tests cannot run. Run 'bash .ci/install-tools && source .ci/env' " +
                $"(it starts PostgreSQL on 127.0.0.1:55432 and sets {Variable}), or set {SkipVariable}=1 to skip them on purpose.");
        }

        var schema = "escrow_test_" + Guid.NewGuid().ToString("N");
        // The schema as application_name too: a test can find (and terminate) exactly its own π's server processes.
        var builder = new NpgsqlConnectionStringBuilder(baseConnection) { SearchPath = schema, ApplicationName = schema, Pooling = true, MaxPoolSize = 20 };
        _connectionString = builder.ToString();
        return Task.FromResult<IEscrowStore?>(new PostgresEscrowStore(_connectionString));
    }

    public IEscrowStore Reopen(IEscrowStore store) => new PostgresEscrowStore(_connectionString!);

    public Task CleanupAsync(IEscrowStore store) =>
        ExecuteRawAsync(store, $"DROP SCHEMA IF EXISTS \"{new NpgsqlConnectionStringBuilder(_connectionString).SearchPath}\" CASCADE");

    public async Task ExecuteRawAsync(IEscrowStore store, string sql)
    {
        // Not pooled: every test has its own schema, so a pooled connection here would be a new pool per test, each
        // keeping an idle connection open until the test process ends; a whole run then holds dozens of them and, next
        // to the stores' own pools and any other run on the same server, can hit max_connections ("too many clients").
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_connectionString) { Pooling = false }.ToString());
        await connection.OpenAsync();
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = sql;
        await cmd.ExecuteNonQueryAsync();
    }
}
