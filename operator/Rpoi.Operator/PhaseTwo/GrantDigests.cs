using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Protocol.Encoding;

namespace Rpoi.Operator.PhaseTwo;

/// <summary>
/// Where the digest of σ comes from in phase II: the Lease's <c>status.grantDigest</c>, which phase I writes in the
/// same status write that makes the Lease Active (so it survives the Secret's deletion at the return). Leases made
/// Active by older operator versions have it only in the legacy annotation <c>rpoi.io/grant-digest</c>, read as a fallback.
/// </summary>
public static class GrantDigests
{
    /// <summary>
    /// The digest m_final carries when no grant was ever issued (the lease returned before it was Active): 64 zeros.
    /// Decision: π only checks that the digest is hex and that R's rating names the same one, so a lease without σ
    /// still settles by the failure table; the renter rates against this value.
    /// </summary>
    public const string NoGrant = "0000000000000000000000000000000000000000000000000000000000000000";

    /// <summary>How sure the operator is of the digest it found.</summary>
    public enum Source
    {
        /// <summary><c>status.grantDigest</c>, written with phase Active and kept after the Secret is deleted.</summary>
        Status,

        /// <summary>The legacy annotation <c>rpoi.io/grant-digest</c> of a Lease made Active by an older operator version.</summary>
        LegacyAnnotation,

        /// <summary>The lease never became Active, so there is no σ: <see cref="NoGrant"/>.</summary>
        NoGrantIssued,

        /// <summary>The lease had a grant but neither status.grantDigest nor the legacy annotation holds a well-formed one: the digest cannot be checked.</summary>
        Unknown,
    }

    /// <summary>The digest of σ for <paramref name="lease"/> and where it came from; null digest when <see cref="Source.Unknown"/>.</summary>
    public static (string? Digest, Source From) Of(Lease lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        if (lease.Status?.GrantDigest is { } digest && IsDigest(digest))
        {
            return (digest, Source.Status);
        }

        if (lease.Metadata?.Annotations?.TryGetValue(LeaseReconciler.GrantDigestAnnotation, out var legacy) == true && IsDigest(legacy))
        {
            return (legacy, Source.LegacyAnnotation);
        }

        return lease.Status?.ActiveSince is null && lease.Status?.AccessSecretName is null
            ? (NoGrant, Source.NoGrantIssued)
            : (null, Source.Unknown);
    }

    private static bool IsDigest(string value) => Codec.TryFromHex(value, 32, out _);
}
