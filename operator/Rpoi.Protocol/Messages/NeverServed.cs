namespace Rpoi.Protocol.Messages;

/// <summary>
/// β's notice to π that the lease under H was cancelled before it was ever served: no access grant σ was delivered,
/// so there is no σ digest and nothing to rate. Signed by β. π answers it with the row <c>NeverServed</c>: ρ and ω go
/// back to R in full. Only β gives something up by signing it (its rent), so no renter signature is needed.
/// </summary>
/// <param name="Kind">Always <see cref="MessageKinds.NeverServed"/>.</param>
/// <param name="H">Transaction hash of <paramref name="Request"/>.</param>
/// <param name="Request">E(m), the renter's signed request the pledge holds.</param>
/// <param name="Reason">Why the lease ended unserved, for the record (e.g. "the Lease was deleted while queued").</param>
/// <param name="Time">When β signed the notice.</param>
public sealed record NeverServedNotice(string Kind, string H, Signed<LeaseRequest> Request, string Reason, DateTimeOffset Time);
