using System.Security.Cryptography;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Escrow.Client;

/// <summary>
/// What an operator signs to call π: the method, the path with query, the time and the SHA-256 of
/// the body. Sent as <c>Authorization: Rpoi-Signed &lt;base64 of the signed envelope&gt;</c>.
/// </summary>
/// <param name="Kind">Always <see cref="CurrentKind"/>, so this signature can never pass for a protocol message.</param>
/// <param name="Method">HTTP method, upper case.</param>
/// <param name="Path">Path and query exactly as sent, e.g. <c>/v1/settlements</c>.</param>
/// <param name="Timestamp">When the call was signed; π accepts a few minutes of skew.</param>
/// <param name="BodySha256">Lower-case hex SHA-256 of the request body (of zero bytes when there is none).</param>
public sealed record EscrowCall(string Kind, string Method, string Path, DateTimeOffset Timestamp, string BodySha256)
{
    /// <summary>The kind tag of a signed escrow call.</summary>
    public const string CurrentKind = "rpoi.escrow-call/v1";

    /// <summary>The Authorization scheme.</summary>
    public const string Scheme = "Rpoi-Signed";

    /// <summary>Builds the Authorization header value for one call, signed with <paramref name="signer"/>'s Ed25519 key.</summary>
    public static string Authorization(PartyKeyPair signer, string method, string pathAndQuery, ReadOnlySpan<byte> body, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(signer);
        var call = new EscrowCall(CurrentKind, method.ToUpperInvariant(), pathAndQuery, now, Convert.ToHexStringLower(SHA256.HashData(body)));
        var signed = Signed<EscrowCall>.Create(call, signer);
        return Scheme + " " + Convert.ToBase64String(signed.ToCanonicalBytes());
    }
}
