using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Encoding;

namespace Rpoi.Protocol.Messages;

/// <summary>The transaction hash H = SHA-256(canonical bytes of E(m)), shown as lower-case hex.</summary>
public sealed record TransactionHash
{
    private readonly byte[] _bytes;

    private TransactionHash(byte[] bytes, string? hex = null)
    {
        _bytes = bytes;
        Hex = hex ?? Codec.ToHex(bytes);
    }

    /// <summary>64 lower-case hex characters.</summary>
    public string Hex { get; }

    /// <summary>The 32 raw bytes (used as HPKE associated data).</summary>
    public ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>Wraps a 32-byte digest.</summary>
    public static TransactionHash FromBytes(ReadOnlySpan<byte> digest) =>
        digest.Length == 32 ? new TransactionHash(digest.ToArray()) : throw new ArgumentException("H is a 32-byte SHA-256 digest", nameof(digest));

    /// <summary>Parses H from hex; <see cref="ReasonCode.InvalidEncoding"/> when it is not 64 lower-case hex characters.</summary>
    public static Check<TransactionHash> Parse(string? hex, string field = "h") =>
        Codec.TryFromHex(hex, 32, out var bytes)
            ? Check.Ok(new TransactionHash(bytes, hex)) // already lower-case hex of exactly these bytes
            : Check.Fail<TransactionHash>(ReasonCode.InvalidEncoding, $"{field} must be 64 lower-case hex characters (SHA-256 of the signed request); got '{Truncate(hex)}'");

    /// <summary>Constant-time-free equality is fine: H is public.</summary>
    public bool Equals(TransactionHash? other) => other is not null && _bytes.AsSpan().SequenceEqual(other._bytes);

    /// <inheritdoc/>
    public override int GetHashCode() => BitConverter.ToInt32(_bytes, 0);

    /// <inheritdoc/>
    public override string ToString() => Hex;

    private static string Truncate(string? s) => s is null ? "null" : s.Length > 80 ? s[..80] + "…" : s;
}
