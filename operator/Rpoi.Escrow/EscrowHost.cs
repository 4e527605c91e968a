using Rpoi.Escrow.Api;
using Rpoi.Escrow.Storage;
using Rpoi.Protocol.Keys;

namespace Rpoi.Escrow;

/// <summary>What the host needs besides configuration; tests pass their own store, keys and clock.</summary>
public sealed record EscrowHostParts(IEscrowStore Store, PartyKeyPair Keys, TimeProvider Time, IReadOnlyList<PartyIdentity> Leasers, byte[]? AdminToken);

/// <summary>Builds π's web application: from configuration (<see cref="BuildFromConfiguration"/>) or from given parts (tests, the sandbox).</summary>
public static class EscrowHost
{
    /// <summary>Builds the app from given parts, listening on <paramref name="urls"/> (e.g. <c>http://127.0.0.1:0</c>).</summary>
    public static WebApplication Build(EscrowOptions options, EscrowHostParts parts, string urls, Action<WebApplicationBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(parts);
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(urls);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddFilter("Rpoi", LogLevel.Information);
        configure?.Invoke(builder);
        AddServices(builder.Services, options, parts);
        var app = builder.Build();
        EscrowEndpoints.Map(app);
        return app;
    }

    /// <summary>Builds the app from configuration: loads (or, for development, creates) π's key file and opens the database.</summary>
    public static async Task<WebApplication> BuildFromConfiguration(string[] args)
    {
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        var options = new EscrowOptions();
        builder.Configuration.GetSection("Escrow").Bind(options);
        if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_URLS"]))
        {
            builder.WebHost.UseUrls("http://127.0.0.1:5080");
        }

        using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole());
        var log = loggerFactory.CreateLogger("Rpoi.Escrow");
        var time = TimeProvider.System;
        var keys = LoadOrCreateKeys(options, time, log);
        var leasers = LoadLeasers(options);
        var adminToken = LoadAdminToken(options, log);
        var store = EscrowStores.Create(options.StoreSetting, time);
        await store.InitializeAsync();
        log.LogInformation("escrow π {Address} (key {KeyId}) on {Store}; {Leasers} leaser(s) trusted", keys.Identity.Address, keys.Identity.KeyId, store is SqliteEscrowStore s ? "SQLite " + Path.GetFullPath(s.DatabasePath) : "PostgreSQL", leasers.Count);

        AddServices(builder.Services, options, new EscrowHostParts(store, keys, time, leasers, adminToken));
        var app = builder.Build();
        EscrowEndpoints.Map(app);
        return app;
    }

    private static void AddServices(IServiceCollection services, EscrowOptions options, EscrowHostParts parts)
    {
        services.AddSingleton(options);
        services.AddSingleton(parts.Store);
        services.AddSingleton(parts.Time);
        services.AddSingleton(_ =>
        {
            var service = new EscrowService(parts.Store, parts.Keys, options, parts.Time);
            service.TrustLeasers(parts.Leasers);
            return service;
        });
        services.AddSingleton(new CallAuthenticator(parts.AdminToken, parts.Leasers, parts.Time, options.MaxClockSkew));
    }

    private static PartyKeyPair LoadOrCreateKeys(EscrowOptions options, TimeProvider time, ILogger log)
    {
        if (!File.Exists(options.KeyFile))
        {
            if (!options.GenerateKeyFile)
            {
                throw new InvalidOperationException($"π's key file '{options.KeyFile}' does not exist; mount it (Escrow:KeyFile) or set Escrow:GenerateKeyFile=true for development");
            }

            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(options.KeyFile))!);
            var generated = PartyKeyPair.Generate(PartyRole.Escrow);
            KeyFile.Save(options.KeyFile, generated, time.GetUtcNow());
            log.LogWarning("generated a DEVELOPMENT escrow key file at {Path} (address {Address}); production must mount its own key file and set Escrow:GenerateKeyFile=false", Path.GetFullPath(options.KeyFile), generated.Identity.Address);
        }

        var loaded = KeyFile.Load(options.KeyFile);
        if (!loaded.IsOk)
        {
            throw new InvalidOperationException($"cannot load π's key file: {loaded.Message}");
        }

        foreach (var warning in loaded.Value.Warnings)
        {
            log.LogWarning("{Warning}", warning);
        }

        return loaded.Value.Keys;
    }

    private static List<PartyIdentity> LoadLeasers(EscrowOptions options)
    {
        var leasers = new List<PartyIdentity>();
        foreach (var path in options.LeaserIdentityFiles)
        {
            var id = PartyIdentity.FromJson(File.ReadAllText(path));
            if (!id.IsOk)
            {
                throw new InvalidOperationException($"leaser identity file '{path}': {id.Message}");
            }

            leasers.Add(id.Value);
        }

        return leasers;
    }

    private static byte[]? LoadAdminToken(EscrowOptions options, ILogger log)
    {
        var token = options.AdminTokenFile is { Length: > 0 } file ? File.ReadAllText(file).Trim() : options.AdminToken?.Trim();
        if (string.IsNullOrEmpty(token))
        {
            log.LogWarning("no admin token configured (Escrow:AdminTokenFile or Escrow:AdminToken): deposits and adjudication are refused");
            return null;
        }

        return System.Text.Encoding.UTF8.GetBytes(token);
    }
}
