using System.Text.RegularExpressions;
using Npgsql;
using Xunit.Abstractions;

namespace Rpoi.Chaos;

/// <summary>
/// A PostgreSQL chaos run leaves no schema behind when it passes, and keeps (and names) it with <c>--keep</c> or when
/// it fails, so the ledger of a failure can be looked into.
/// </summary>
public sealed partial class PostgresSchemaTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_passing_run_drops_its_schema_keep_or_a_failed_run_keeps_it_and_names_it()
    {
        var passed = await RunAsync(keep: false, fail: false);
        Assert.Matches(@"\[chaos\] dropped π's PostgreSQL schema chaos_", passed.Log);
        Assert.False(await SchemaExistsAsync(passed.Schema), $"schema {passed.Schema} is still there after a passing run");

        var kept = await RunAsync(keep: true, fail: false);
        try
        {
            Assert.Contains($"[chaos] kept π's PostgreSQL schema {kept.Schema}", kept.Log, StringComparison.Ordinal);
            Assert.True(await SchemaExistsAsync(kept.Schema), $"--keep: schema {kept.Schema} is gone");
        }
        finally
        {
            await ChaosRun.DropOrKeepSchemaAsync(kept.Schema, keep: false, TextWriter.Null);
        }

        var failed = await RunAsync(keep: false, fail: true);
        try
        {
            Assert.Contains($"[chaos] kept π's PostgreSQL schema {failed.Schema}", failed.Log, StringComparison.Ordinal);
            Assert.True(await SchemaExistsAsync(failed.Schema), $"failed run: schema {failed.Schema} is gone");
        }
        finally
        {
            await ChaosRun.DropOrKeepSchemaAsync(failed.Schema, keep: false, TextWriter.Null);
        }
    }

    private async Task<(string Log, string Schema)> RunAsync(bool keep, bool fail)
    {
        var log = new StringWriter();
        var report = await ChaosRun.RunAsync(new ChaosOptions
        {
            Seed = 31,
            Leases = 3,
            Kills = 0,
            Nodes = 2,
            ApiFaults = false,
            LeaderLeaseSeconds = 4,
            Store = ChaosStore.Postgres,
            Keep = keep,
            Log = TextWriter.Synchronized(log),
            // Money paid outside the decision table: the end checks fail the run.
            Sabotage = fail ? (_, admin, renter) => admin.DepositAsync(new Rpoi.Escrow.Client.DepositRequest("sabotage", renter, new Rpoi.Escrow.Client.EscrowAmount("1", "uusd"))) : null,
        });
        output.WriteLine(log.ToString());
        output.WriteLine(report.Summary());
        Assert.Equal(fail, report.Problems.Count > 0);
        var text = log.ToString();
        var schema = SchemaName().Match(text);
        Assert.True(schema.Success, $"no schema named in the log:\n{text}");
        return (text, schema.Value);
    }

    private static async Task<bool> SchemaExistsAsync(string schema)
    {
        await using var connection = new NpgsqlConnection(Environment.GetEnvironmentVariable("RPOI_TEST_POSTGRES"));
        await connection.OpenAsync();
        await using var query = new NpgsqlCommand("SELECT count(*) FROM pg_namespace WHERE nspname = @name", connection);
        query.Parameters.AddWithValue("name", schema);
        return (long)(await query.ExecuteScalarAsync())! == 1;
    }

    [GeneratedRegex("chaos_31_[0-9a-f]{32}")]
    private static partial Regex SchemaName();
}
