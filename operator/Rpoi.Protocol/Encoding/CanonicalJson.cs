using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Rpoi.Protocol.Encoding;

/// <summary>
/// RFC 8785 JSON Canonicalization Scheme (JCS). Every signed or hashed RPOI message goes through
/// here so that two parties who format the same JSON differently still sign and hash the same bytes.
/// </summary>
public static class CanonicalJson
{
    /// <summary>Canonicalizes UTF-8 JSON text. Throws <see cref="JsonException"/> on malformed input,
    /// duplicate keys, lone surrogates or numbers outside the IEEE 754 double range.</summary>
    public static byte[] Canonicalize(ReadOnlySpan<byte> utf8Json)
    {
        if (!System.Text.Unicode.Utf8.IsValid(utf8Json))
        {
            throw new JsonException("input is not valid UTF-8");
        }

        var reader = new Utf8JsonReader(utf8Json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 64 });
        using var doc = JsonDocument.ParseValue(ref reader);
        if (reader.Read())
        {
            throw new JsonException("trailing data after the JSON value");
        }

        return Canonicalize(doc.RootElement);
    }

    // Deeper documents are left to the full canonicaliser (which enforces the reader's own depth limit).
    private const int FastPathMaxDepth = 32;

    /// <summary>
    /// True when <paramref name="utf8Json"/> is already in RFC 8785 form, so <see cref="Canonicalize(ReadOnlySpan{byte})"/>
    /// would return the same bytes. One pass, no allocation. Conservative: false for anything it does not recognise as
    /// canonical (non-ASCII or escaped object keys, numbers other than plain integers below 10^15, deep nesting), so the
    /// caller falls back to the full canonicaliser; never true for input that canonicalises differently or is invalid.
    /// </summary>
    internal static bool IsCanonical(ReadOnlySpan<byte> utf8Json)
    {
        if (!System.Text.Unicode.Utf8.IsValid(utf8Json))
        {
            return false;
        }

        var pos = 0;
        return ScanValue(utf8Json, ref pos, 0) && pos == utf8Json.Length;
    }

    /// <summary>
    /// Exactly whether <paramref name="utf8Json"/> is its own RFC 8785 form: the fast <see cref="IsCanonical"/> scan, and
    /// where that is unsure, a full canonicalisation compared byte for byte. False for invalid JSON or duplicate keys.
    /// </summary>
    public static bool IsCanonicalExactly(ReadOnlySpan<byte> utf8Json)
    {
        if (IsCanonical(utf8Json))
        {
            return true;
        }

        try
        {
            return Canonicalize(utf8Json).AsSpan().SequenceEqual(utf8Json);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>Length of <c>{"payload":</c>, where a canonical envelope's payload starts.</summary>
    internal const int EnvelopePayloadOffset = 11;

    /// <summary>
    /// Splits a canonical signed envelope <c>{"payload":{…},"sig":"…","signer":"…"}</c> in one pass over the bytes (no
    /// JSON reader, no document). True only when <see cref="IsCanonical"/> would accept the envelope, it has exactly that
    /// shape, and sig and signer are plain ASCII (base64 and hex always are); any other input gives false and the caller
    /// takes the general path with its error messages. <paramref name="payload"/> is relative to the envelope's first byte.
    /// </summary>
    internal static bool TrySplitEnvelope(ReadOnlySpan<byte> envelope, out Range payload, out string sig, out string signer)
    {
        payload = default;
        sig = signer = string.Empty;
        if (!envelope.StartsWith("{\"payload\":{"u8) || !System.Text.Unicode.Utf8.IsValid(envelope))
        {
            return false;
        }

        // Depth 1: the payload is a member of the envelope object, as when IsCanonical scans the whole envelope.
        var pos = EnvelopePayloadOffset;
        if (!ScanValue(envelope, ref pos, 1))
        {
            return false;
        }

        payload = EnvelopePayloadOffset..pos;
        return TryPlainMember(envelope, ref pos, ",\"sig\":"u8, out sig)
            && TryPlainMember(envelope, ref pos, ",\"signer\":"u8, out signer)
            && pos == envelope.Length - 1 && envelope[pos] == (byte)'}';
    }

    /// <summary>
    /// At <paramref name="pos"/>, reads <paramref name="prefix"/> (e.g. <c>,"sig":</c>) and then a string of printable
    /// ASCII without escapes, which is then exactly its JCS form; false (pos unspecified) for anything else.
    /// </summary>
    internal static bool TryPlainMember(ReadOnlySpan<byte> s, ref int pos, ReadOnlySpan<byte> prefix, out string value)
    {
        value = string.Empty;
        if (!s[pos..].StartsWith(prefix) || pos + prefix.Length >= s.Length || s[pos + prefix.Length] != (byte)'"')
        {
            return false;
        }

        pos += prefix.Length;
        var start = pos + 1;
        if (!ScanString(s, ref pos, out var plain) || !plain)
        {
            return false;
        }

        value = System.Text.Encoding.ASCII.GetString(s[start..(pos - 1)]);
        return true;
    }

    private static bool ScanValue(ReadOnlySpan<byte> s, ref int pos, int depth)
    {
        if (pos >= s.Length)
        {
            return false;
        }

        switch (s[pos])
        {
            case (byte)'{':
                return depth < FastPathMaxDepth && ScanObject(s, ref pos, depth + 1);
            case (byte)'[':
                return depth < FastPathMaxDepth && ScanArray(s, ref pos, depth + 1);
            case (byte)'"':
                return ScanString(s, ref pos, out _);
            case (byte)'t':
                return ScanLiteral(s, ref pos, "true"u8);
            case (byte)'f':
                return ScanLiteral(s, ref pos, "false"u8);
            case (byte)'n':
                return ScanLiteral(s, ref pos, "null"u8);
            default:
                return ScanInteger(s, ref pos);
        }
    }

    private static bool ScanObject(ReadOnlySpan<byte> s, ref int pos, int depth)
    {
        pos++; // '{'
        if (pos < s.Length && s[pos] == (byte)'}')
        {
            pos++;
            return true;
        }

        var previousKey = ReadOnlySpan<byte>.Empty;
        var first = true;
        while (true)
        {
            var keyStart = pos + 1;
            if (pos >= s.Length || s[pos] != (byte)'"' || !ScanString(s, ref pos, out var plain) || !plain)
            {
                return false;
            }

            // Plain ASCII keys: byte order is UTF-16 code unit order, and strictly increasing also rules out duplicates.
            var key = s[keyStart..(pos - 1)];
            if (!first && previousKey.SequenceCompareTo(key) >= 0)
            {
                return false;
            }

            first = false;
            previousKey = key;
            if (pos >= s.Length || s[pos] != (byte)':')
            {
                return false;
            }

            pos++;
            if (!ScanValue(s, ref pos, depth) || pos >= s.Length)
            {
                return false;
            }

            var next = s[pos++];
            if (next == (byte)'}')
            {
                return true;
            }

            if (next != (byte)',')
            {
                return false;
            }
        }
    }

    private static bool ScanArray(ReadOnlySpan<byte> s, ref int pos, int depth)
    {
        pos++; // '['
        if (pos < s.Length && s[pos] == (byte)']')
        {
            pos++;
            return true;
        }

        while (true)
        {
            if (!ScanValue(s, ref pos, depth) || pos >= s.Length)
            {
                return false;
            }

            var next = s[pos++];
            if (next == (byte)']')
            {
                return true;
            }

            if (next != (byte)',')
            {
                return false;
            }
        }
    }

    // Bytes a string token can hold unchanged in JCS and that need no attention: printable ASCII and DEL, but not
    // '"' or '\\'. Everything else (the closing quote, escapes, control bytes, UTF-8 lead/continuation bytes) stops
    // the vectorised skip below.
    private static readonly SearchValues<byte> PlainStringBytes = SearchValues.Create(PlainAscii<byte>());

    private static readonly SearchValues<char> PlainStringChars = SearchValues.Create(PlainAscii<char>());

    private static T[] PlainAscii<T>()
        where T : struct, System.Numerics.INumberBase<T>
    {
        var values = new List<T>(94);
        for (var c = 0x20; c <= 0x7F; c++)
        {
            if (c is not '"' and not '\\')
            {
                values.Add(T.CreateChecked(c));
            }
        }

        return [.. values];
    }

    /// <summary>True when <paramref name="value"/> is printable ASCII without '"' or '\\': JCS writes it as it is.</summary>
    internal static bool IsPlain(string? value) => value is not null && !value.AsSpan().ContainsAnyExcept(PlainStringChars);

    /// <summary>Scans a string token; <paramref name="plain"/> is true when it is ASCII without escapes.</summary>
    private static bool ScanString(ReadOnlySpan<byte> s, ref int pos, out bool plain)
    {
        plain = true;
        pos++; // opening quote
        while (pos < s.Length)
        {
            // Long runs of plain ASCII (base64, kubeconfig tokens) are skipped many bytes at a time.
            var run = s[pos..].IndexOfAnyExcept(PlainStringBytes);
            if (run < 0)
            {
                return false;
            }

            pos += run;

            var b = s[pos];
            if (b == (byte)'"')
            {
                pos++;
                return true;
            }

            if (b < 0x20)
            {
                return false;
            }

            if (b >= 0x80)
            {
                plain = false; // valid UTF-8 (checked up front) is written unescaped by JCS
                pos++;
                continue;
            }

            // b is '\\'
            plain = false;
            if (pos + 1 >= s.Length)
            {
                return false;
            }

            switch (s[pos + 1])
            {
                case (byte)'"' or (byte)'\\' or (byte)'b' or (byte)'f' or (byte)'n' or (byte)'r' or (byte)'t':
                    pos += 2;
                    break;
                case (byte)'u':
                    // JCS uses \u00xx (lower-case hex) only for control characters without a short escape.
                    if (pos + 5 >= s.Length || s[pos + 2] != (byte)'0' || s[pos + 3] != (byte)'0' || s[pos + 4] is not ((byte)'0' or (byte)'1'))
                    {
                        return false;
                    }

                    var low = s[pos + 5];
                    var nibble = low is >= (byte)'0' and <= (byte)'9' ? low - '0' : low is >= (byte)'a' and <= (byte)'f' ? low - 'a' + 10 : -1;
                    var c = nibble < 0 ? -1 : ((s[pos + 4] - '0') << 4) | nibble;
                    if (c < 0 || c is '\b' or '\f' or '\n' or '\r' or '\t')
                    {
                        return false;
                    }

                    pos += 6;
                    break;
                default:
                    return false;
            }
        }

        return false;
    }

    private static bool ScanLiteral(ReadOnlySpan<byte> s, ref int pos, ReadOnlySpan<byte> literal)
    {
        if (!s[pos..].StartsWith(literal))
        {
            return false;
        }

        pos += literal.Length;
        return true;
    }

    /// <summary>The integers <see cref="IsSafeIntegerText"/> passes through unchanged: no fraction, exponent or leading zero.</summary>
    private static bool ScanInteger(ReadOnlySpan<byte> s, ref int pos)
    {
        var negative = s[pos] == (byte)'-';
        var start = negative ? pos + 1 : pos;
        var end = start;
        while (end < s.Length && s[end] is >= (byte)'0' and <= (byte)'9')
        {
            end++;
        }

        var digits = end - start;
        if (digits is < 1 or > 15 || (s[start] == (byte)'0' && (digits > 1 || negative)))
        {
            return false;
        }

        pos = end;
        return true;
    }

    /// <summary>Canonicalizes a parsed JSON value.</summary>
    public static byte[] Canonicalize(JsonElement element)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        try
        {
            Write(element, buffer);
        }
        catch (InvalidOperationException ex)
        {
            // System.Text.Json reports invalid UTF-16 (a lone surrogate escape) this way.
            throw new JsonException($"string is not valid Unicode: {ex.Message}", ex);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Canonicalizes a parsed JSON value into <paramref name="output"/>.</summary>
    public static void Write(JsonElement element, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                WriteObject(element, output);
                break;
            case JsonValueKind.Array:
                Put(output, (byte)'[');
                var first = true;
                foreach (var item in element.EnumerateArray())
                {
                    if (!first)
                    {
                        Put(output, (byte)',');
                    }

                    first = false;
                    Write(item, output);
                }

                Put(output, (byte)']');
                break;
            case JsonValueKind.String:
                WriteString(element.GetString()!, output);
                break;
            case JsonValueKind.Number:
                var raw = element.GetRawText();
                // Fast path: a plain integer below 2^53 is already in ES6 form (the protocol's only numbers).
                WriteAscii(IsSafeIntegerText(raw) ? raw : FormatNumber(ParseNumber(raw)), output);
                break;
            case JsonValueKind.True:
                WriteAscii("true", output);
                break;
            case JsonValueKind.False:
                WriteAscii("false", output);
                break;
            case JsonValueKind.Null:
                WriteAscii("null", output);
                break;
            default:
                throw new JsonException($"unsupported JSON value kind {element.ValueKind}");
        }
    }

    private static void WriteObject(JsonElement element, IBufferWriter<byte> output)
    {
        var props = new List<JsonProperty>(16);
        foreach (var p in element.EnumerateObject())
        {
            props.Add(p);
        }

        // RFC 8785 3.2.3: sort by the UTF-16 code units of the names (ordinal string comparison does exactly that).
        props.Sort(static (a, b) => string.CompareOrdinal(a.Name, b.Name));
        Put(output, (byte)'{');
        for (var i = 0; i < props.Count; i++)
        {
            if (i > 0)
            {
                if (string.Equals(props[i - 1].Name, props[i].Name, StringComparison.Ordinal))
                {
                    throw new JsonException($"duplicate property '{props[i].Name}' (RFC 8785 requires I-JSON: unique names)");
                }

                Put(output, (byte)',');
            }

            WriteString(props[i].Name, output);
            Put(output, (byte)':');
            Write(props[i].Value, output);
        }

        Put(output, (byte)'}');
    }

    /// <summary>Writes a string with JCS escaping: only '"', '\\' and control characters are escaped.</summary>
    public static void WriteString(string value, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(output);
        if (!value.AsSpan().ContainsAnyExcept(PlainStringChars))
        {
            // The usual case (base64, hex, ids): nothing to escape, so ask for the exact size, not six bytes a char.
            var exact = output.GetSpan(value.Length + 2);
            exact[0] = (byte)'"';
            System.Text.Encoding.ASCII.GetBytes(value, exact[1..]);
            exact[value.Length + 1] = (byte)'"';
            output.Advance(value.Length + 2);
            return;
        }

        var max = (value.Length * 6) + 2;
        var span = output.GetSpan(max);
        var n = 0;
        span[n++] = (byte)'"';
        for (var i = 0; i < value.Length; i++)
        {
            // Runs of plain ASCII (base64, hex, kubeconfig text) are copied in one vectorised narrowing step.
            var plainRun = value.AsSpan(i).IndexOfAnyExcept(PlainStringChars);
            var plainLength = plainRun < 0 ? value.Length - i : plainRun;
            if (plainLength > 0)
            {
                n += System.Text.Encoding.ASCII.GetBytes(value.AsSpan(i, plainLength), span[n..]);
                i += plainLength;
                if (i == value.Length)
                {
                    break;
                }
            }

            var c = value[i];
            switch (c)
            {
                case '"': span[n++] = (byte)'\\'; span[n++] = (byte)'"'; break;
                case '\\': span[n++] = (byte)'\\'; span[n++] = (byte)'\\'; break;
                case '\b': span[n++] = (byte)'\\'; span[n++] = (byte)'b'; break;
                case '\f': span[n++] = (byte)'\\'; span[n++] = (byte)'f'; break;
                case '\n': span[n++] = (byte)'\\'; span[n++] = (byte)'n'; break;
                case '\r': span[n++] = (byte)'\\'; span[n++] = (byte)'r'; break;
                case '\t': span[n++] = (byte)'\\'; span[n++] = (byte)'t'; break;
                default:
                    if (c < 0x20)
                    {
                        span[n++] = (byte)'\\';
                        span[n++] = (byte)'u';
                        span[n++] = (byte)'0';
                        span[n++] = (byte)'0';
                        span[n++] = Hex[c >> 4];
                        span[n++] = Hex[c & 0xF];
                    }
                    else if (c < 0x80)
                    {
                        span[n++] = (byte)c;
                    }
                    else
                    {
                        // Find the run of non-ASCII chars and encode it in one go; lone surrogates are rejected.
                        var start = i;
                        while (i + 1 < value.Length && value[i + 1] >= 0x80)
                        {
                            i++;
                        }

                        var run = value.AsSpan(start, i - start + 1);
                        if (!IsWellFormed(run))
                        {
                            throw new JsonException("string contains a lone UTF-16 surrogate");
                        }

                        n += System.Text.Encoding.UTF8.GetBytes(run, span[n..]);
                    }

                    break;
            }
        }

        span[n++] = (byte)'"';
        output.Advance(n);
    }

    private static bool IsWellFormed(ReadOnlySpan<char> run)
    {
        for (var i = 0; i < run.Length; i++)
        {
            if (char.IsHighSurrogate(run[i]))
            {
                if (i + 1 >= run.Length || !char.IsLowSurrogate(run[i + 1]))
                {
                    return false;
                }

                i++;
            }
            else if (char.IsLowSurrogate(run[i]))
            {
                return false;
            }
        }

        return true;
    }

    private static ReadOnlySpan<byte> Hex => "0123456789abcdef"u8;

    private static bool IsSafeIntegerText(string raw)
    {
        var start = raw.Length > 0 && raw[0] == '-' ? 1 : 0;
        var digits = raw.Length - start;
        if (digits is < 1 or > 15 || (raw[start] == '0' && digits > 1) || (start == 1 && raw == "-0"))
        {
            return false;
        }

        for (var i = start; i < raw.Length; i++)
        {
            if (!char.IsAsciiDigit(raw[i]))
            {
                return false;
            }
        }

        return true;
    }

    private static double ParseNumber(string raw)
    {
        var d = double.Parse(raw, NumberStyles.Float, CultureInfo.InvariantCulture);
        if (double.IsInfinity(d) || double.IsNaN(d))
        {
            throw new JsonException($"number {raw} is outside the IEEE 754 double range");
        }

        return d;
    }

    /// <summary>
    /// ECMAScript Number.prototype.toString (ES2015 7.1.12.1) for finite doubles, as RFC 8785 3.2.2.3
    /// requires. .NET's shortest round-trip formatting gives the digits; the layout follows ES rules.
    /// </summary>
    public static string FormatNumber(double value)
    {
        if (double.IsNaN(value) || double.IsInfinity(value))
        {
            throw new ArgumentOutOfRangeException(nameof(value), "NaN and Infinity have no JSON form");
        }

        if (value == 0)
        {
            return "0"; // also -0
        }

        var negative = value < 0;
        var r = Math.Abs(value).ToString("R", CultureInfo.InvariantCulture);
        // Split into digits and a decimal exponent: value = 0.d1d2...dk * 10^n in ES terms (n = position of the point).
        var ePos = r.IndexOfAny(['E', 'e']);
        var mantissa = ePos >= 0 ? r[..ePos] : r;
        var exp = ePos >= 0 ? int.Parse(r[(ePos + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) : 0;
        var dot = mantissa.IndexOf('.', StringComparison.Ordinal);
        string digits;
        int pointPos;
        if (dot >= 0)
        {
            digits = string.Concat(mantissa.AsSpan(0, dot), mantissa.AsSpan(dot + 1));
            pointPos = dot;
        }
        else
        {
            digits = mantissa;
            pointPos = mantissa.Length;
        }

        var lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0')
        {
            lead++;
        }

        digits = digits[lead..];
        pointPos -= lead;
        digits = digits.TrimEnd('0');
        if (digits.Length == 0)
        {
            return "0";
        }

        var k = digits.Length;
        var n = pointPos + exp;
        var sb = new StringBuilder(32);
        if (negative)
        {
            sb.Append('-');
        }

        if (k <= n && n <= 21)
        {
            sb.Append(digits).Append('0', n - k);
        }
        else if (0 < n && n <= 21)
        {
            sb.Append(digits, 0, n).Append('.').Append(digits, n, k - n);
        }
        else if (-6 < n && n <= 0)
        {
            sb.Append("0.").Append('0', -n).Append(digits);
        }
        else
        {
            var e = n - 1;
            sb.Append(digits[0]);
            if (k > 1)
            {
                sb.Append('.').Append(digits, 1, k - 1);
            }

            sb.Append('e').Append(e >= 0 ? '+' : '-').Append(Math.Abs(e).ToString(CultureInfo.InvariantCulture));
        }

        return sb.ToString();
    }

    private static void WriteAscii(string s, IBufferWriter<byte> output)
    {
        var span = output.GetSpan(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            span[i] = (byte)s[i];
        }

        output.Advance(s.Length);
    }

    private static void Put(IBufferWriter<byte> output, byte b)
    {
        output.GetSpan(1)[0] = b;
        output.Advance(1);
    }
}
