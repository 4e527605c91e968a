using System.Text.Json;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Encoding;

namespace Rpoi.Protocol.Keys;

/// <summary>A loaded key file and any warnings about how it is stored.</summary>
/// <param name="Keys">The private keys.</param>
/// <param name="Warnings">Human warnings (for example a group- or world-readable file). Empty when all is well.</param>
public sealed record LoadedKeyFile(PartyKeyPair Keys, IReadOnlyList<string> Warnings);

/// <summary>
/// The private key file a person keeps: versioned JSON with base64 keys and the party role, written
/// with mode 0600. Loading reports (does not log) a warning when group or others can read the file;
/// Protocol has no logging dependency, so the caller decides where the warning goes.
/// </summary>
public static class KeyFile
{
    /// <summary>The current key file version.</summary>
    public const int CurrentVersion = 1;

    private const string Kind = "rpoi.keyfile";

    /// <summary>Serialises private keys to key file JSON.</summary>
    public static string ToJson(PartyKeyPair keys, DateTimeOffset createdAt)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var id = keys.Identity;
        var file = new KeyFileJson(
            CurrentVersion,
            Kind,
            keys.Role,
            id.KeyId,
            id.Address,
            id.SigningKeyBase64,
            id.EncryptionKeyBase64,
            Codec.ToBase64(keys.SigningSeed()),
            Codec.ToBase64(keys.EncryptionPrivateKey()),
            createdAt);
        return JsonSerializer.Serialize(file, ProtocolJson.Indented);
    }

    /// <summary>Writes the key file with mode 0600 (owner read/write only). Refuses to overwrite an existing file.</summary>
    public static void Save(string path, PartyKeyPair keys, DateTimeOffset createdAt)
    {
        var json = ToJson(keys, createdAt);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var stream = new FileStream(path, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(json);
        }

        if (!OperatingSystem.IsWindows())
        {
            // The umask can only remove bits, but set it explicitly so the result never depends on it.
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    /// <summary>Loads a key file, with a warning when its permissions let others read it.</summary>
    public static Check<LoadedKeyFile> Load(string path)
    {
        string json;
        try
        {
            json = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return Check.Fail<LoadedKeyFile>(ReasonCode.KeyFileInvalid, $"cannot read key file '{path}': {ex.Message}; check the path and that you own the file");
        }

        var warnings = new List<string>();
        if (!OperatingSystem.IsWindows())
        {
            var mode = File.GetUnixFileMode(path);
            const UnixFileMode others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
            if ((mode & others) != 0)
            {
                warnings.Add($"key file '{path}' is accessible by group or others (mode {Convert.ToString((int)mode, 8)}); run 'chmod 600 {path}'");
            }
        }

        return Parse(json).Then(keys => Check.Ok(new LoadedKeyFile(keys, warnings)));
    }

    /// <summary>Parses key file JSON and checks that the public halves, key id and address match the private keys.</summary>
    public static Check<PartyKeyPair> Parse(string json)
    {
        KeyFileJson? file;
        try
        {
            file = JsonSerializer.Deserialize<KeyFileJson>(json, ProtocolJson.Options);
        }
        catch (JsonException ex)
        {
            return Check.Fail<PartyKeyPair>(ReasonCode.KeyFileInvalid, $"key file JSON is invalid at {ex.Path ?? "$"}: {ex.Message}");
        }

        if (file is null || file.Kind != Kind)
        {
            return Check.Fail<PartyKeyPair>(ReasonCode.KeyFileInvalid, $"not an RPOI key file (kind must be '{Kind}')");
        }

        if (file.Version != CurrentVersion)
        {
            return Check.Fail<PartyKeyPair>(ReasonCode.KeyFileInvalid, $"key file version {file.Version} is not supported (expected {CurrentVersion}); upgrade kubectl-rpoi");
        }

        if (!Codec.TryFromBase64(file.SigningPrivateKey, out var seed) || seed.Length != 32)
        {
            return Check.Fail<PartyKeyPair>(ReasonCode.KeyFileInvalid, "signingPrivateKey must be base64 of a 32-byte Ed25519 seed");
        }

        if (!Codec.TryFromBase64(file.EncryptionPrivateKey, out var xsk) || xsk.Length != 32)
        {
            return Check.Fail<PartyKeyPair>(ReasonCode.KeyFileInvalid, "encryptionPrivateKey must be base64 of a 32-byte X25519 private key");
        }

        var keys = PartyKeyPair.FromPrivateKeys(file.Role, seed, xsk);
        var id = keys.Identity;
        if (id.SigningKeyBase64 != file.SigningKey || id.EncryptionKeyBase64 != file.EncryptionKey || id.KeyId != file.KeyId || id.Address != file.Address)
        {
            return Check.Fail<PartyKeyPair>(ReasonCode.KeyFileInvalid, "key file public keys, keyId or address do not match its private keys; the file is corrupt or was edited, restore it from backup");
        }

        return Check.Ok(keys);
    }

    private sealed record KeyFileJson(
        int Version,
        string Kind,
        PartyRole Role,
        string KeyId,
        string Address,
        string SigningKey,
        string EncryptionKey,
        string SigningPrivateKey,
        string EncryptionPrivateKey,
        DateTimeOffset Created);
}
