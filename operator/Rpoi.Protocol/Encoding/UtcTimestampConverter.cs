using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Rpoi.Protocol;

/// <summary>RFC 3339 UTC timestamps with a <c>Z</c>: the one time format on the wire. Offsets other
/// than Z are refused so two spellings of one instant cannot give two hashes.</summary>
public sealed class UtcTimestampConverter : JsonConverter<DateTimeOffset>
{
    private const int WholeSecondsLength = 20; // yyyy-MM-ddTHH:mm:ssZ

    /// <summary>Formats an instant the way the protocol writes it (fraction only when non-zero).</summary>
    public static string Format(DateTimeOffset value)
    {
        var utc = value.ToUniversalTime();
        if (utc.Ticks % TimeSpan.TicksPerSecond == 0)
        {
            return string.Create(WholeSecondsLength, utc, static (chars, t) => FormatWholeSeconds(t, chars));
        }

        return utc.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);
    }

    /// <summary>Parses an RFC 3339 UTC timestamp ending in Z.</summary>
    public static bool TryParse(string? text, out DateTimeOffset value)
    {
        value = default;
        if (text is null)
        {
            return false;
        }

        return TryParseWholeSeconds(text, out value) || TryParseExact(text, out value);
    }

    /// <inheritdoc/>
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        // The usual spelling is read straight from the UTF-8 bytes, without a string in between.
        if (reader.TokenType == JsonTokenType.String && !reader.HasValueSequence && !reader.ValueIsEscaped
            && reader.ValueSpan.Length == WholeSecondsLength)
        {
            Span<char> chars = stackalloc char[WholeSecondsLength];
            for (var i = 0; i < chars.Length; i++)
            {
                chars[i] = (char)reader.ValueSpan[i];
            }

            if (TryParseWholeSeconds(chars, out var fast))
            {
                return fast;
            }
        }

        if (reader.TokenType != JsonTokenType.String || !TryParse(reader.GetString(), out var value))
        {
            throw new JsonException("a timestamp must be an RFC 3339 UTC string ending in Z, e.g. \"2026-01-31T12:00:00Z\"");
        }

        return value;
    }

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var utc = value.ToUniversalTime();
        if (utc.Ticks % TimeSpan.TicksPerSecond == 0)
        {
            Span<char> chars = stackalloc char[WholeSecondsLength];
            FormatWholeSeconds(utc, chars);
            writer.WriteStringValue(chars);
            return;
        }

        writer.WriteStringValue(Format(value));
    }

    private static bool TryParseExact(string text, out DateTimeOffset value)
    {
        value = default;
        return text.Length >= 20 && text[^1] == 'Z' && text[10] == 'T' &&
            DateTimeOffset.TryParseExact(text, ["yyyy-MM-dd'T'HH:mm:ss'Z'", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'"], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out value);
    }

    /// <summary>
    /// <c>yyyy-MM-ddTHH:mm:ssZ</c> with every field in range, parsed by hand (the general parser costs more than the
    /// rest of a small message). False means "not this exact shape": the caller then asks <see cref="TryParseExact"/>,
    /// which stays the one judge of what is accepted.
    /// </summary>
    private static bool TryParseWholeSeconds(ReadOnlySpan<char> s, out DateTimeOffset value)
    {
        value = default;
        if (s.Length != WholeSecondsLength || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z')
        {
            return false;
        }

        var year = Digits(s, 0, 4);
        var month = Digits(s, 5, 2);
        var day = Digits(s, 8, 2);
        var hour = Digits(s, 11, 2);
        var minute = Digits(s, 14, 2);
        var second = Digits(s, 17, 2);
        if (year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour is < 0 or > 23 || minute is < 0 or > 59 || second is < 0 or > 59)
        {
            return false;
        }

        value = new DateTimeOffset(year, month, day, hour, minute, second, TimeSpan.Zero);
        return true;
    }

    /// <summary>The decimal value of <paramref name="count"/> ASCII digits, or -1 when any is not a digit.</summary>
    private static int Digits(ReadOnlySpan<char> s, int start, int count)
    {
        var n = 0;
        foreach (var c in s.Slice(start, count))
        {
            if (!char.IsAsciiDigit(c))
            {
                return -1;
            }

            n = (n * 10) + (c - '0');
        }

        return n;
    }

    private static void FormatWholeSeconds(DateTimeOffset utc, Span<char> chars)
    {
        Put(chars, 0, utc.Year, 4);
        chars[4] = '-';
        Put(chars, 5, utc.Month, 2);
        chars[7] = '-';
        Put(chars, 8, utc.Day, 2);
        chars[10] = 'T';
        Put(chars, 11, utc.Hour, 2);
        chars[13] = ':';
        Put(chars, 14, utc.Minute, 2);
        chars[16] = ':';
        Put(chars, 17, utc.Second, 2);
        chars[19] = 'Z';
    }

    private static void Put(Span<char> chars, int start, int value, int width)
    {
        for (var i = start + width - 1; i >= start; i--)
        {
            chars[i] = (char)('0' + (value % 10));
            value /= 10;
        }
    }
}
