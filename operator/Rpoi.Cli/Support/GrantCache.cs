using System.Text.Json;

namespace Rpoi.Cli.Support;

/// <summary>
/// What <c>access</c> learned that <c>rate</c> needs after the return, when the access Secret may be gone: H and the
/// digest of σ the renter verified itself. Kept under <c>~/.rpoi/grants/&lt;namespace&gt;/&lt;lease&gt;.json</c>.
/// </summary>
internal sealed record GrantCache(string H, string GrantDigest, string Leaser)
{
    public static string PathFor(CliEnvironment env, string ns, string lease) => Path.Combine(env.RpoiHome, "grants", ns, lease + ".json");

    public void Save(CliEnvironment env, string ns, string lease)
    {
        var path = PathFor(env, ns, lease);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, JsonSerializer.Serialize(this));
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
