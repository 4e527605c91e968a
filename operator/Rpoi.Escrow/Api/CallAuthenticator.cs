using System.Security.Cryptography;
using System.Text;
using Rpoi.Escrow.Client;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Escrow.Api;

/// <summary>Who made a write call.</summary>
public enum Caller
{
    /// <summary>The admin credential (on-ramp, adjudication).</summary>
    Admin,

    /// <summary>A configured leaser β, by its Ed25519-signed call.</summary>
    Leaser,
}

/// <summary>
/// Authenticates write calls. Admin: a bearer token compared in constant time. Operator (β): an
/// <see cref="EscrowCall"/> signed with β's Ed25519 key over method, path, time and body hash, so π
/// holds no shared secret for β and a stolen log line cannot be replayed against another body.
/// Replays of the same call within the skew window are harmless: every write is idempotent.
/// </summary>
public sealed class CallAuthenticator(byte[]? adminToken, IReadOnlyList<PartyIdentity> leasers, TimeProvider time, TimeSpan maxSkew)
{
    /// <summary>The configured leasers by key id.</summary>
    public IReadOnlyDictionary<string, PartyIdentity> Leasers { get; } = leasers.ToDictionary(l => l.KeyId, StringComparer.Ordinal);

    /// <summary>Requires the admin bearer token.</summary>
    public void RequireAdmin(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.Ordinal))
        {
            throw new EscrowRefusedException(EscrowReasons.Unauthenticated, "Authorization", "this call needs the admin credential: send 'Authorization: Bearer <admin token>'", 401);
        }

        var presented = Encoding.UTF8.GetBytes(header["Bearer ".Length..].Trim());
        if (adminToken is null || !CryptographicOperations.FixedTimeEquals(presented, adminToken))
        {
            throw new EscrowRefusedException(EscrowReasons.Forbidden, "Authorization", "the admin token is not valid for this escrow", 403);
        }
    }

    /// <summary>Requires a signed call by a configured leaser, or the admin token. Returns β's identity (null for admin).</summary>
    public PartyIdentity? RequireLeaserOrAdmin(HttpRequest request, ReadOnlySpan<byte> body)
    {
        var header = request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.Ordinal))
        {
            RequireAdmin(request);
            return null;
        }

        if (!header.StartsWith(EscrowCall.Scheme + " ", StringComparison.Ordinal))
        {
            throw new EscrowRefusedException(EscrowReasons.Unauthenticated, "Authorization", $"this call must be signed by a leaser: send 'Authorization: {EscrowCall.Scheme} <signed call>' (Rpoi.Escrow.Client does this)", 401);
        }

        byte[] envelope;
        try
        {
            envelope = Convert.FromBase64String(header[(EscrowCall.Scheme.Length + 1)..].Trim());
        }
        catch (FormatException)
        {
            throw new EscrowRefusedException(EscrowReasons.Unauthenticated, "Authorization", "the signed call is not base64", 401);
        }

        var parsed = Signed<EscrowCall>.Parse(envelope);
        if (!parsed.TryGetValue(out var signed))
        {
            throw new EscrowRefusedException(parsed.Reason!.Value.ToString(), "Authorization", parsed.Message, 401);
        }

        if (!Leasers.TryGetValue(signed.Signer, out var leaser))
        {
            throw new EscrowRefusedException(EscrowReasons.Forbidden, "Authorization", $"key {signed.Signer} is not a leaser this escrow serves; add its identity file to Escrow:LeaserIdentityFiles", 403);
        }

        var verified = signed.VerifySignature(leaser);
        if (!verified.IsOk)
        {
            throw new EscrowRefusedException(verified.Reason.Value.ToString(), "Authorization", verified.Message, 401);
        }

        var call = signed.Payload;
        var pathAndQuery = request.Path.ToString() + request.QueryString.ToString();
        var bodyHash = Convert.ToHexStringLower(SHA256.HashData(body));
        var skew = (time.GetUtcNow() - call.Timestamp).Duration();
        if (call.Kind != EscrowCall.CurrentKind || call.Method != request.Method || call.Path != pathAndQuery || call.BodySha256 != bodyHash)
        {
            throw new EscrowRefusedException(EscrowReasons.Unauthenticated, "Authorization", "the signed call does not match this request (kind, method, path or body hash differ); sign exactly what you send", 401);
        }

        if (skew > maxSkew)
        {
            throw new EscrowRefusedException(EscrowReasons.Unauthenticated, "Authorization", $"the signed call is {skew.TotalSeconds:F0} s away from the escrow's clock (at most {maxSkew.TotalSeconds:F0} s); check the clocks", 401);
        }

        return leaser;
    }
}
