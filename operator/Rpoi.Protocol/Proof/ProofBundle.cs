using System.Text.Json;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Messages;

namespace Rpoi.Protocol.Proof;

/// <summary>The three parties' public keys a verifier checks the bundle's signatures against.</summary>
/// <param name="Renter">R's keys (must equal the keys inside E(m)).</param>
/// <param name="Leaser">β's keys (signs m' and m''').</param>
/// <param name="Escrow">π's keys (signs the receipt).</param>
public sealed record ProofKeys(PublicKeys Renter, PublicKeys Leaser, PublicKeys Escrow);

/// <summary>
/// Everything anyone needs to check one lease offline (docs/proof-bundle.md): E(m), H, σ's digest with β's signature
/// over it (in m' and/or m'''), E(m''), π's receipt and the public keys. Nothing secret: σ itself (it holds a token)
/// travels only inside <paramref name="GrantedLease"/>, which the renter may leave out.
/// </summary>
/// <param name="Format">Always <see cref="CurrentFormat"/>.</param>
/// <param name="Request">E(m), R's signed request.</param>
/// <param name="H">Transaction hash of <paramref name="Request"/> (hex).</param>
/// <param name="GrantDigest">Lower-case hex SHA-256 of σ as β issued it.</param>
/// <param name="Keys">Public keys of R, β and π.</param>
/// <param name="GrantedLease">m' as R opened it (β's signature over E(m) + σ); optional because σ carries a token.</param>
/// <param name="RenterRating">E(m''), when R rated.</param>
/// <param name="LeaserFinal">m''' as π opened m_final (β's signature over E(m), H, σ's digest and the ratings); absent on a renter fallback.</param>
/// <param name="Receipt">π's signed settlement receipt.</param>
public sealed record ProofBundle(
    string Format,
    Signed<LeaseRequest> Request,
    string H,
    string GrantDigest,
    ProofKeys Keys,
    Signed<GrantedLease>? GrantedLease = null,
    Signed<RenterRating>? RenterRating = null,
    Signed<LeaserFinal>? LeaserFinal = null,
    Signed<SettlementReceipt>? Receipt = null)
{
    /// <summary>The format version this code writes and reads.</summary>
    public const string CurrentFormat = "rpoi.proof-bundle/v1";

    /// <summary>Indented JSON (people read bundles; signatures cover the canonical payloads inside, not this layout).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, ProtocolJson.Indented);

    /// <summary>Parses a bundle strictly (unknown or missing fields refused); never throws for bad input.</summary>
    public static Check<ProofBundle> Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            return JsonSerializer.Deserialize<ProofBundle>(json, ProtocolJson.Options) is { } bundle
                ? Check.Ok(bundle)
                : Check.Fail<ProofBundle>(ReasonCode.MalformedMessage, "the bundle is JSON null; give the file 'kubectl rpoi proof' wrote");
        }
        catch (JsonException e)
        {
            var where = e.Path is { Length: > 0 } p ? $" at {p}" : string.Empty;
            return Check.Fail<ProofBundle>(ReasonCode.MalformedMessage, $"the bundle is not a valid {CurrentFormat} document{where}: {e.Message}");
        }
    }
}

/// <summary>One named check of a bundle.</summary>
/// <param name="Name">Stable name, e.g. <c>request.signature</c> (docs/proof-bundle.md lists them).</param>
/// <param name="Ok">Whether it passed.</param>
/// <param name="Reason">Empty when ok; otherwise the reason code and a message naming the field and the fix.</param>
public sealed record ProofCheck(string Name, bool Ok, string Reason);
