using Rpoi.Cli.Tests.Support;
using Rpoi.Protocol.Keys;

namespace Rpoi.Cli.Tests;

public sealed class KeygenTests
{
    [Fact]
    public async Task Keygen_writes_a_0600_key_file_and_prints_its_address()
    {
        using var home = new TempHome();

        // Through the real kubectl: the plugin writes the file in the user's HOME.
        var result = await home.KubectlRpoiAsync("keygen");

        Assert.True(result.ExitCode == 0, result.ToString());
        var path = Path.Combine(home.Path, ".rpoi", "renter.key");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        var loaded = KeyFile.Load(path);
        Assert.True(loaded.IsOk, loaded.Message);
        Assert.Empty(loaded.Value.Warnings);
        Assert.Equal(PartyRole.Renter, loaded.Value.Keys.Role);
        Assert.Contains($"address: {loaded.Value.Keys.Identity.Address}", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Keygen_never_overwrites_a_key_file_unless_forced()
    {
        using var home = new TempHome();
        Assert.Equal(0, (await home.RunAsync("keygen", "--out", "r.key", "--identity-out", "r.identity.json")).ExitCode);
        var first = KeyFile.Load(home.File("r.key")).Value.Keys.Identity;
        var identity = PartyIdentity.FromJson(File.ReadAllText(home.File("r.identity.json")));
        Assert.Equal(first, identity.Value);

        var again = await home.RunAsync("keygen", "--out", "r.key");
        Assert.Equal(ExitCodes.Conflict, again.ExitCode);
        Assert.Contains("already exists", again.Err, StringComparison.Ordinal);
        Assert.Contains("--force", again.Err, StringComparison.Ordinal);
        Assert.Equal(first, KeyFile.Load(home.File("r.key")).Value.Keys.Identity);

        Assert.Equal(0, (await home.RunAsync("keygen", "--out", "r.key", "--force")).ExitCode);
        Assert.NotEqual(first, KeyFile.Load(home.File("r.key")).Value.Keys.Identity);
    }

    [Fact]
    public async Task Keys_new_is_keygen_under_the_name_key_file_errors_use()
    {
        using var home = new TempHome();

        var result = await home.RunAsync("keys", "new", "--out", "k.key");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains($"address: {KeyFile.Load(home.File("k.key")).Value.Keys.Identity.Address}", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_key_file_says_how_to_make_one()
    {
        using var home = new TempHome();

        var result = await home.RunAsync("request", "--name", "t", "-n", "team-a", "--chips", "8", "--accelerator", "a", "--topology", "2x4", "--duration", "1h",
            "--deposit", "1uusd", "--rent", "1uusd", "--leaser", "rpoi1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "--escrow", "rpoi1bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");

        Assert.Equal(ExitCodes.NotFound, result.ExitCode);
        Assert.Contains("kubectl rpoi keygen", result.Err, StringComparison.Ordinal);
    }
}
