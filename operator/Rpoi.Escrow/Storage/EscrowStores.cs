namespace Rpoi.Escrow.Storage;

/// <summary>Chooses the store from one setting, so deployment picks the database by configuration alone.</summary>
public static class EscrowStores
{
    /// <summary>
    /// A PostgreSQL connection string (it contains <c>Host=</c>) gives PostgreSQL; anything else is
    /// taken as a SQLite file path, with an optional <c>sqlite:</c> or <c>Data Source=</c> prefix.
    /// </summary>
    public static IEscrowStore Create(string setting)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(setting);
        if (setting.Contains("Host=", StringComparison.OrdinalIgnoreCase) || setting.Contains("Server=", StringComparison.OrdinalIgnoreCase))
        {
            return new PostgresEscrowStore(setting);
        }

        var path = setting;
        foreach (var prefix in new[] { "sqlite:", "Data Source=" })
        {
            if (path.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            {
                path = path[prefix.Length..].TrimEnd(';');
            }
        }

        return new SqliteEscrowStore(path);
    }
}
