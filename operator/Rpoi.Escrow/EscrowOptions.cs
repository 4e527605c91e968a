namespace Rpoi.Escrow;

/// <summary>π's settings (configuration section <c>Escrow</c>, or environment <c>Escrow__*</c>).</summary>
public sealed class EscrowOptions
{
    /// <summary>A SQLite file path, or a PostgreSQL connection string (<c>Host=…</c>).</summary>
    public string Database { get; set; } = Path.Combine(".rpoi", "escrow", "escrow.db");

    /// <summary>Same as <see cref="Database"/> (the name the Helm chart and the image use); wins when set.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>The store setting in effect.</summary>
    public string StoreSetting => string.IsNullOrWhiteSpace(ConnectionString) ? Database : ConnectionString;

    /// <summary>π's key file (Protocol key file format), e.g. a mounted Secret. Generated for development when missing and <see cref="GenerateKeyFile"/> is on.</summary>
    public string KeyFile { get; set; } = Path.Combine(".rpoi", "escrow", "escrow.key.json");

    /// <summary>Create <see cref="KeyFile"/> when it is missing (development); production mounts it and turns this off.</summary>
    public bool GenerateKeyFile { get; set; } = true;

    /// <summary>File holding the admin bearer token (e.g. a mounted Secret).</summary>
    public string? AdminTokenFile { get; set; }

    /// <summary>The admin bearer token itself (used when <see cref="AdminTokenFile"/> is not set).</summary>
    public string? AdminToken { get; set; }

    /// <summary>Identity files (Protocol identity JSON) of the leasers β whose signed calls π accepts.</summary>
    public IList<string> LeaserIdentityFiles { get; } = [];

    /// <summary>Oldest request π pledges (PROTOCOL.md: 24 h).</summary>
    public TimeSpan MaxRequestAge { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How far in the future a request or signed call may be (clock skew; PROTOCOL.md: 5 min).</summary>
    public TimeSpan MaxClockSkew { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The rating window after the lease ends (PROTOCOL.md default: 72 h).</summary>
    public TimeSpan RatingWindow { get; set; } = TimeSpan.FromHours(72);

    /// <summary>Grace after the rating window before the renter may claim on its own.</summary>
    public TimeSpan ClaimGrace { get; set; } = TimeSpan.FromHours(24);
}
