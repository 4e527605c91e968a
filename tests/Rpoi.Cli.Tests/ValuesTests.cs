using Rpoi.Cli.Support;

namespace Rpoi.Cli.Tests;

public sealed class ValuesTests
{
    [Theory]
    [InlineData("3600", 3600)]
    [InlineData("90s", 90)]
    [InlineData("30m", 1800)]
    [InlineData("4h", 14400)]
    [InlineData("1d", 86400)]
    [InlineData("1h30m", 5400)]
    public void Durations_parse(string text, long seconds)
    {
        Assert.True(Values.TryParseDuration(text, out var parsed));
        Assert.Equal(seconds, parsed);
    }

    [Theory]
    [InlineData("")]
    [InlineData("0")]
    [InlineData("h")]
    [InlineData("4x")]
    [InlineData("1.5h")]
    [InlineData("-3s")]
    [InlineData("4h foo")]
    [InlineData("99999999999999999999d")]
    public void Non_durations_are_refused(string text) => Assert.False(Values.TryParseDuration(text, out _));

    [Theory]
    [InlineData(5400, "1h30m")]
    [InlineData(45, "45s")]
    [InlineData(90061, "1d1h1m1s")]
    public void Durations_format(long seconds, string text) => Assert.Equal(text, Values.FormatDuration(seconds));

    [Theory]
    [InlineData("1500000uusd", "1500000", "uusd")]
    [InlineData("1500000 uusd", "1500000", "uusd")]
    [InlineData("000uusd", "0", "uusd")]
    public void Amounts_parse(string text, string amount, string denom)
    {
        Assert.True(Values.TryParseMoney(text, out var money));
        Assert.Equal(amount, money.Amount);
        Assert.Equal(denom, money.Denom);
    }

    [Theory]
    [InlineData("1.5uusd")]
    [InlineData("uusd")]
    [InlineData("100")]
    [InlineData("-5uusd")]
    [InlineData("5USD")]
    public void Non_amounts_are_refused(string text) => Assert.False(Values.TryParseMoney(text, out _));

    [Theory]
    [InlineData("train-1", true)]
    [InlineData("a.b-c", true)]
    [InlineData("Train", false)]
    [InlineData("-x", false)]
    [InlineData("x_y", false)]
    public void Object_names_follow_dns_1123(string name, bool valid) => Assert.Equal(valid, Values.IsObjectName(name));
}
