using Rpoi.Operator.Hosting;
using Rpoi.Protocol.Keys;

namespace Rpoi.Operator.Tests.PhaseOne;

/// <summary>Parsing of the operator's duration and URL flags.</summary>
public sealed class OperatorSettingsTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("rpoi-operator-settings-").FullName;
    private readonly string keyFile;

    public OperatorSettingsTests()
    {
        keyFile = Path.Combine(dir, "leaser.key.json");
        KeyFile.Save(keyFile, PartyKeyPair.Generate(PartyRole.Leaser), DateTimeOffset.UtcNow);
    }

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Theory]
    [InlineData("72h", 72 * 3600)]
    [InlineData("90m", 90 * 60)]
    [InlineData("3600s", 3600)]
    [InlineData("1h30m", 5400)]
    [InlineData("1h30m15s", 5415)]
    [InlineData("1.5h", 5400)]
    [InlineData("259200", 259200)]
    [InlineData("0", 0)]
    [InlineData("3.00:00:00", 259200)]
    [InlineData("12:00:00", 43200)]
    public void Rating_window_accepts_go_durations_seconds_and_days_hh_mm_ss(string text, long seconds)
    {
        var (settings, errors) = Load($"--rating-window={text}");
        Assert.Empty(errors);
        Assert.Equal(TimeSpan.FromSeconds(seconds), settings!.RatingWindow);
    }

    [Theory]
    [InlineData("72:00:00")] // TimeSpan.TryParse reads this as 72 days
    [InlineData("3d")]
    [InlineData("-1h")]
    [InlineData("-5")]
    [InlineData("h")]
    [InlineData("72 h")]
    [InlineData("1h 30m")]
    [InlineData("soon")]
    [InlineData("99999999999999999999")]
    public void Rating_window_rejects_anything_else_naming_the_flag_and_an_example(string text)
    {
        var (settings, errors) = Load($"--rating-window={text}");
        Assert.Null(settings);
        var error = Assert.Single(errors);
        Assert.StartsWith($"--rating-window: '{text}' is not a duration", error, StringComparison.Ordinal);
        Assert.Contains("72h", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Rating_window_defaults_to_72_hours()
    {
        var (settings, errors) = Load();
        Assert.Empty(errors);
        Assert.Equal(TimeSpan.FromHours(72), settings!.RatingWindow);
    }

    [Theory]
    [InlineData(null, 15)]
    [InlineData("4s", 4)]
    [InlineData("1m", 60)]
    [InlineData("3", 3)]
    public void Leader_election_lease_duration_defaults_to_15_seconds_and_takes_whole_seconds(string? text, long seconds)
    {
        var (settings, errors) = text is null ? Load() : Load($"--leader-election-lease-duration={text}");
        Assert.Empty(errors);
        Assert.Equal(TimeSpan.FromSeconds(seconds), settings!.LeaderElectionLeaseDuration);
    }

    [Theory]
    [InlineData("2s")]
    [InlineData("1500ms")]
    [InlineData("11m")]
    [InlineData("soon")]
    public void Leader_election_lease_duration_refuses_what_the_leader_lease_cannot_hold(string text)
    {
        var (settings, errors) = Load($"--leader-election-lease-duration={text}");
        Assert.Null(settings);
        Assert.StartsWith($"--leader-election-lease-duration: '{text}' is not a whole number of seconds from 3s to 10m", Assert.Single(errors), StringComparison.Ordinal);
    }

    private (OperatorSettings? Settings, IReadOnlyList<string> Errors) Load(params string[] extra) =>
        OperatorSettings.Load(
            ["--leaser-key-file", keyFile, "--escrow-url", "http://127.0.0.1:5080", "--cluster-server", "https://10.0.0.1", .. extra], dir);
}
