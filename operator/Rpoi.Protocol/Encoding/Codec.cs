using System.Buffers;
using System.Buffers.Text;

namespace Rpoi.Protocol.Encoding;

/// <summary>
/// Strict text encodings for keys, signatures and hashes. Strict means one byte string has exactly one
/// accepted text form, so a flipped padding bit cannot produce a second valid spelling of a signature.
/// </summary>
public static class Codec
{
    /// <summary>Standard base64 with padding.</summary>
    public static string ToBase64(ReadOnlySpan<byte> bytes) => Convert.ToBase64String(bytes);

    // The alphabet plus padding: Convert also accepts white space, which a canonical spelling never has.
    private static readonly SearchValues<char> Base64Alphabet =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=");

    /// <summary>Decodes canonical base64 (standard alphabet, padded, zero unused bits, no white space).</summary>
    public static bool TryFromBase64(string? text, out byte[] bytes)
    {
        bytes = [];
        var length = CanonicalBase64Length(text);
        if (length < 0)
        {
            return false;
        }

        var buffer = new byte[length];
        if (!TryDecode(text!, buffer))
        {
            return false;
        }

        // As before the fast path: a decodable but non-canonical spelling still hands out its bytes with false.
        bytes = buffer;
        return HasCanonicalTail(text!, buffer);
    }

    /// <summary>
    /// The number of bytes <paramref name="text"/> decodes to, or -1 when it cannot be canonical base64 (empty, length
    /// not a multiple of 4, or a character outside the alphabet). Vectorised; no allocation.
    /// </summary>
    internal static int CanonicalBase64Length(string? text)
    {
        if (string.IsNullOrEmpty(text) || text.Length % 4 != 0 || text.AsSpan().ContainsAnyExcept(Base64Alphabet))
        {
            return -1;
        }

        var padding = text[^1] != '=' ? 0 : text[^2] != '=' ? 1 : 2;
        return (text.Length / 4 * 3) - padding;
    }

    /// <summary>
    /// Decodes <paramref name="text"/> into <paramref name="destination"/>, exactly <see cref="CanonicalBase64Length"/>
    /// bytes long; false unless the text is canonical base64.
    /// </summary>
    internal static bool TryFromBase64(string text, Span<byte> destination) =>
        CanonicalBase64Length(text) == destination.Length && TryDecode(text, destination) && HasCanonicalTail(text, destination);

    /// <summary>Decodes text already known to have the alphabet and length of <paramref name="destination"/>.</summary>
    private static bool TryDecode(string text, Span<byte> destination)
    {
        // Convert's decoder for chars is scalar; narrowing the (already checked) ASCII text to bytes and the UTF-8
        // decoder are both vectorised, about ten times faster on a sealed message's ciphertext.
        byte[]? rented = null;
        var ascii = text.Length <= 256 ? stackalloc byte[256] : (rented = ArrayPool<byte>.Shared.Rent(text.Length));
        try
        {
            var n = System.Text.Encoding.ASCII.GetBytes(text, ascii);
            if (Base64.DecodeFromUtf8(ascii[..n], destination, out var consumed, out var written) == OperationStatus.Done
                && consumed == n && written == destination.Length)
            {
                return true;
            }
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }

        // The UTF-8 decoder also refuses set padding bits, which Convert decodes (and the caller then refuses): let
        // Convert decide, so a non-canonical text hands out the same bytes as before.
        return Convert.TryFromBase64String(text, destination, out var decoded) && decoded == destination.Length;
    }

    private static bool HasCanonicalTail(string text, ReadOnlySpan<byte> destination)
    {
        // Only the last quantum can carry unused (padding) bits: re-encoding it must give back the same four
        // characters, which rejects a second spelling of the same bytes without re-encoding the whole text.
        var padding = (text.Length / 4 * 3) - destination.Length;
        if (padding == 0)
        {
            return true;
        }

        Span<char> last = stackalloc char[4];
        return Convert.TryToBase64Chars(destination[^(3 - padding)..], last, out var n) && n == 4 && last.SequenceEqual(text.AsSpan(text.Length - 4));
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
