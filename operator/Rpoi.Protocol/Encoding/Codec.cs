namespace Rpoi.Protocol.Encoding;

/// <summary>
/// Strict text encodings for keys, signatures and hashes. Strict means one byte string has exactly one
/// accepted text form, so a flipped padding bit cannot produce a second valid spelling of a signature.
/// </summary>
public static class Codec
{
    /// <summary>Standard base64 with padding.</summary>
    public static string ToBase64(ReadOnlySpan<byte> bytes) => Convert.ToBase64String(bytes);

    /// <summary>Decodes canonical base64 (standard alphabet, padded, zero unused bits, no white space).</summary>
    public static bool TryFromBase64(string? text, out byte[] bytes)
    {
        bytes = [];
        if (string.IsNullOrEmpty(text) || text.Length % 4 != 0)
        {
            return false;
        }

        foreach (var c in text)
        {
            if (!(c is >= 'A' and <= 'Z' or >= 'a' and <= 'z' or >= '0' and <= '9' or '+' or '/' or '='))
            {
                return false;
            }
        }

        var buffer = new byte[text.Length / 4 * 3];
        if (!Convert.TryFromBase64String(text, buffer, out var written))
        {
            return false;
        }

        bytes = buffer.AsSpan(0, written).ToArray();
        // Re-encoding must give back the same text: rejects non-zero padding bits.
        return string.Equals(Convert.ToBase64String(bytes), text, StringComparison.Ordinal);
    }

    /// <summary>Lower-case hex.</summary>
    public static string ToHex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(bytes);

    /// <summary>Decodes lower-case hex of exactly <paramref name="expectedLength"/> bytes.</summary>
    public static bool TryFromHex(string? text, int expectedLength, out byte[] bytes)
    {
        bytes = [];
        if (text is null || text.Length != expectedLength * 2)
        {
            return false;
        }

        foreach (var c in text)
        {
            if (!(c is >= '0' and <= '9' or >= 'a' and <= 'f'))
            {
                return false;
            }
        }

        bytes = Convert.FromHexString(text);
        return true;
    }

    private const string Base32Alphabet = "abcdefghijklmnopqrstuvwxyz234567";

    /// <summary>RFC 4648 base32, lower case, no padding.</summary>
    public static string ToBase32(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[((bytes.Length * 8) + 4) / 5];
        int buffer = 0, bits = 0, n = 0;
        foreach (var b in bytes)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                chars[n++] = Base32Alphabet[(buffer >> (bits - 5)) & 31];
                bits -= 5;
            }
        }

        if (bits > 0)
        {
            chars[n++] = Base32Alphabet[(buffer << (5 - bits)) & 31];
        }

        return new string(chars, 0, n);
    }
}
