using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Keys;
using static Rpoi.Protocol.Tests.Fixture;

namespace Rpoi.Protocol.Tests;

// Key files rely on POSIX permissions; the operator, CLI and escrow run on Linux.
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class KeyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rpoi-keys-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Identity_AddressAndKeyId_AreShortAndDerivedFromSigningKey()
    {
        var id = Renter.Identity;
        Assert.Matches("^rpoi1[a-z2-7]{32}$", id.Address);
        Assert.Matches("^[0-9a-f]{16}$", id.KeyId);
        var digest = System.Security.Cryptography.SHA256.HashData(id.SigningKeyBytes);
        Assert.Equal(Convert.ToHexStringLower(digest.AsSpan(0, 8)), id.KeyId);
        Assert.Equal(id.Address, PartyIdentity.AddressFor(id.SigningKeyBytes));
        Assert.NotEqual(id.Address, Leaser.Identity.Address);
    }

    [Fact]
    public void Base32_MatchesRfc4648Vectors()
    {
        Assert.Equal("my", Encoding.Codec.ToBase32("f"u8));
        Assert.Equal("mzxw6ytboi", Encoding.Codec.ToBase32("foobar"u8));
    }

    [Fact]
    public void IdentityJson_RoundTrips_AndDetectsEdits()
    {
        var json = Leaser.Identity.ToJson();
        var back = PartyIdentity.FromJson(json);
        Assert.True(back.IsOk, back.Message);
        Assert.Equal(Leaser.Identity, back.Value);
        Assert.Equal(PartyRole.Leaser, back.Value.Role);
        Assert.DoesNotContain("rivate", json, StringComparison.Ordinal);
        var edited = PartyIdentity.FromJson(json.Replace(Leaser.Identity.Address, Escrow.Identity.Address, StringComparison.Ordinal));
        Assert.Equal(ReasonCode.InvalidField, edited.Reason);
        Assert.Equal(ReasonCode.MalformedMessage, PartyIdentity.FromJson("{").Reason);
    }

    [Fact]
    public void KeyFile_IsWritten0600_AndLoadsWithoutWarnings()
    {
        var path = Path.Combine(_dir, "renter.key");
        KeyFile.Save(path, Renter, Now);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        var loaded = KeyFile.Load(path);
        Assert.True(loaded.IsOk, loaded.Message);
        Assert.Empty(loaded.Value.Warnings);
        Assert.Equal(Renter.Identity, loaded.Value.Keys.Identity);
        Assert.Equal(PartyRole.Renter, loaded.Value.Keys.Role);
        // The loaded keys sign exactly like the originals (Ed25519 is deterministic).
        Assert.Equal(Renter.Sign("x"u8), loaded.Value.Keys.Sign("x"u8));
        Assert.Throws<IOException>(() => KeyFile.Save(path, Leaser, Now));
    }

    [Fact]
    public void KeyFile_WorldReadable_LoadsWithWarning()
    {
        var path = Path.Combine(_dir, "leaser.key");
        KeyFile.Save(path, Leaser, Now);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var loaded = KeyFile.Load(path);
        Assert.True(loaded.IsOk, loaded.Message);
        var warning = Assert.Single(loaded.Value.Warnings);
        Assert.Contains("chmod 600", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void KeyFile_Corrupt_IsKeyFileInvalid()
    {
        var json = KeyFile.ToJson(Escrow, Now);
        var other = KeyFile.ToJson(Leaser, Now);
        Assert.True(KeyFile.Parse(json).IsOk);
        var swapped = json.Replace(Escrow.Identity.SigningKeyBase64, Leaser.Identity.SigningKeyBase64, StringComparison.Ordinal);
        Assert.Equal(ReasonCode.KeyFileInvalid, KeyFile.Parse(swapped).Reason);
        Assert.Equal(ReasonCode.KeyFileInvalid, KeyFile.Parse(other.Replace("\"version\": 1", "\"version\": 2", StringComparison.Ordinal)).Reason);
        Assert.Equal(ReasonCode.KeyFileInvalid, KeyFile.Load(Path.Combine(_dir, "missing.key")).Reason);
    }
}
