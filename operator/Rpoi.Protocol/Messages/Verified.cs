using Rpoi.Protocol.Keys;

namespace Rpoi.Protocol.Messages;

/// <summary>A request whose renter signature verified (equation 3, first half).</summary>
/// <param name="Request">E(m).</param>
/// <param name="Renter">R's identity, from the keys in the request.</param>
/// <param name="H">Its transaction hash.</param>
public sealed record VerifiedRequest(Signed<LeaseRequest> Request, PartyIdentity Renter, TransactionHash H);

/// <summary>An access grant R opened and verified (equation 4).</summary>
/// <param name="Granted">sign_β(m').</param>
/// <param name="Grant">σ.</param>
/// <param name="H">Transaction hash.</param>
/// <param name="GrantDigest">Hex SHA-256 of σ's canonical bytes (what R later rates against).</param>
public sealed record OpenedGrant(Signed<GrantedLease> Granted, AccessGrant Grant, TransactionHash H, string GrantDigest);

/// <summary>What π verified in a settlement submission (m_final or the renter's fallback claim), with the decision row to apply.</summary>
/// <param name="H">Transaction hash.</param>
/// <param name="Request">E(m).</param>
/// <param name="Renter">R's identity.</param>
/// <param name="RenterRating">E(m'') when present.</param>
/// <param name="LeaserRating">Ra_β when present.</param>
/// <param name="Final">sign_β(m''') when β submitted; null for the renter's fallback.</param>
/// <param name="Source">Who submitted.</param>
/// <param name="Decision">The failure-table row (equations 20 and 21).</param>
public sealed record VerifiedSettlement(
    TransactionHash H,
    Signed<LeaseRequest> Request,
    PartyIdentity Renter,
    Signed<RenterRating>? RenterRating,
    Rating? LeaserRating,
    Signed<LeaserFinal>? Final,
    SettlementSource Source,
    SettlementDecision Decision);
