namespace Rpoi.Escrow.Tests;

/// <summary>The escrow suite on SQLite (a fresh file per test).</summary>
public sealed class SqliteEscrowTests : EscrowSuite
{
    protected override IStoreProvider Provider { get; } = new SqliteProvider();
}

/// <summary>The escrow suite on PostgreSQL (a fresh schema per test); needs RPOI_TEST_POSTGRES.</summary>
public sealed class PostgresEscrowTests : EscrowSuite
{
    protected override IStoreProvider Provider { get; } = new PostgresProvider();
}
