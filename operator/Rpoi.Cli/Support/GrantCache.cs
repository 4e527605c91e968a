using System.Text.Json;

namespace Rpoi.Cli.Support;

/// <summary>
/// What <c>access</c> learned that <c>rate</c> and <c>proof</c> need after the return, when the access Secret is gone: H,
/// the digest of σ the renter verified itself, and β's signed m' (<c>Granted</c>, canonical JSON), the only β signature
/// over σ's digest a renter-fallback proof bundle can carry. Kept under <c>~/.rpoi/grants/&lt;namespace&gt;/&lt;lease&gt;.json</c>,
/// mode 0600 like the kubeconfig, because m' holds σ and so the lease's token. Older files have no <c>Granted</c>.
/// </summary>
internal sealed record GrantCache(string H, string GrantDigest, string Leaser, string? Granted = null)
{
    public static string PathFor(CliEnvironment env, string ns, string lease) => Path.Combine(env.RpoiHome, "grants", ns, lease + ".json");

    public void Save(CliEnvironment env, string ns, string lease)
    {
        Commands.AccessCommand.WritePrivate(PathFor(env, ns, lease), JsonSerializer.Serialize(this));
    }

    public static GrantCache? Load(CliEnvironment env, string ns, string lease)
    {
        var path = PathFor(env, ns, lease);
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize<GrantCache>(File.ReadAllText(path));
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
