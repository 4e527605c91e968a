using System.Globalization;
using System.Text.RegularExpressions;
using Rpoi.Protocol.Messages;

namespace Rpoi.Cli.Support;

/// <summary>Parses the human forms of flag values (durations like <c>4h</c>, amounts like <c>1500000uusd</c>) and checks names.</summary>
public static partial class Values
{
    /// <summary><c>90</c> (seconds), <c>90s</c>, <c>30m</c>, <c>4h</c>, <c>2d</c>, or combinations like <c>1h30m</c>.</summary>
    public static bool TryParseDuration(string? text, out long seconds)
    {
        seconds = 0;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out seconds))
        {
            return seconds > 0;
        }

        var matches = DurationPart().Matches(text);
        if (matches.Count == 0 || string.Concat(matches.Select(m => m.Value)) != text)
        {
            return false;
        }

        try
        {
            foreach (Match m in matches)
            {
                var n = long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                var unit = m.Groups[2].Value switch { "s" => 1L, "m" => 60L, "h" => 3600L, _ => 86400L };
                seconds = checked(seconds + checked(n * unit));
            }
        }
        catch (OverflowException)
        {
            return false;
        }

        return seconds > 0;
    }

    /// <summary>Formats seconds as <c>4h</c>, <c>1h30m</c>, <c>45s</c>.</summary>
    public static string FormatDuration(long seconds)
    {
        var t = TimeSpan.FromSeconds(seconds);
        var parts = new List<string>();
        if (t.Days > 0)
        {
            parts.Add($"{t.Days}d");
        }

        if (t.Hours > 0)
        {
            parts.Add($"{t.Hours}h");
        }

        if (t.Minutes > 0)
        {
            parts.Add($"{t.Minutes}m");
        }

        if (t.Seconds > 0 || parts.Count == 0)
        {
            parts.Add($"{t.Seconds}s");
        }

        return string.Concat(parts);
    }

    /// <summary><c>1500000uusd</c> or <c>1500000 uusd</c>: an integer amount in the smallest unit and a denomination.</summary>
    public static bool TryParseMoney(string? text, out Money money)
    {
        money = new Money("0", "");
        var m = MoneyPattern().Match(text ?? "");
        if (!m.Success)
        {
            return false;
        }

        var amount = m.Groups[1].Value.TrimStart('0');
        money = new Money(amount.Length == 0 ? "0" : amount, m.Groups[2].Value);
        return true;
    }

    /// <summary>Whether <paramref name="name"/> is a valid Kubernetes object name (DNS-1123 subdomain).</summary>
    public static bool IsObjectName(string? name) => name is { Length: > 0 and <= 253 } && ObjectName().IsMatch(name);

    /// <summary>Whether <paramref name="name"/> is a valid namespace name (DNS-1123 label).</summary>
    public static bool IsNamespaceName(string? name) => name is { Length: > 0 and <= 63 } && Label().IsMatch(name);

    [GeneratedRegex(@"([0-9]+)([smhd])")]
    private static partial Regex DurationPart();

    [GeneratedRegex(@"^([0-9]{1,38}) ?([a-z][a-z0-9]{1,15})$")]
    private static partial Regex MoneyPattern();

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex ObjectName();

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    private static partial Regex Label();
}

/// <summary>Flag parsers whose errors name the flag and the expected form, never a .NET type.</summary>
internal static class Flags
{
    /// <summary>A whole number in [min, max]; the error reads "--flag: 'x' is not a whole number from min to max".</summary>
    public static System.CommandLine.Option<int> WholeNumber(string name, int min, int max, string range)
    {
        var option = new System.CommandLine.Option<int>(name);
        option.CustomParser = r =>
        {
            var text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
            if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max)
            {
                return n;
            }

            r.AddError($"{name}: '{text}' is not a whole number {range}");
            return 0;
        };
        return option;
    }

    /// <summary>A duration in seconds (90, 90s, 2m, 1h30m); the error names the flag and the forms.</summary>
    public static System.CommandLine.Option<int> DurationSeconds(string name, int defaultSeconds)
    {
        var option = new System.CommandLine.Option<int>(name) { DefaultValueFactory = _ => defaultSeconds };
        option.CustomParser = r =>
        {
            var text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
            if (Values.TryParseDuration(text, out var s) && s <= int.MaxValue)
            {
                return (int)s;
            }

            r.AddError($"{name}: '{text}' is not a duration: give seconds (90) or 90s, 2m, 1h30m");
            return 0;
        };
        return option;
    }
}
