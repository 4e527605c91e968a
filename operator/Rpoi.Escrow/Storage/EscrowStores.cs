namespace Rpoi.Escrow.Storage;

/// <summary>Chooses the store from one setting, so deployment picks the database by configuration alone.</summary>
public static class EscrowStores
{
    /// <summary>
    /// A PostgreSQL connection string (it contains <c>Host=</c>) gives PostgreSQL; anything else is
    /// taken as a SQLite file path, with an optional <c>sqlite:</c> or <c>Data Source=</c> prefix.
    /// </summary>
    /// <param name="setting">The connection string or file path.</param>
    /// <param name="time">The writer's clock (it paces reconnects after a database restart); the system clock if null.</param>
    public static IEscrowStore Create(string setting, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(setting);
        if (setting.Contains("Host=", StringComparison.OrdinalIgnoreCase) || setting.Contains("Server=", StringComparison.OrdinalIgnoreCase))
        {
            return new PostgresEscrowStore(setting, time);
        }

        var path = setting;
        foreach (var prefix in new[] { "sqlite:", "Data Source=" })
        {
            if (path.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            {
                path = path[prefix.Length..].TrimEnd(';');
            }
        }

        return new SqliteEscrowStore(path, time);
    }
}
