using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Protocol.Encoding;

namespace Rpoi.Operator.PhaseTwo;

/// <summary>
/// Where the digest of σ comes from in phase II: the Lease's <c>rpoi.io/grant-digest</c> annotation, which phase I
/// writes on the Lease right after it writes the access Secret (so it survives the Secret's deletion at the return).
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
        /// <summary>The annotation written with the access Secret (its digest, kept after the Secret is deleted).</summary>
        Annotation,

        /// <summary>The lease never became Active, so there is no σ: <see cref="NoGrant"/>.</summary>
        NoGrantIssued,

        /// <summary>The lease had a grant but the annotation is missing or malformed: the digest cannot be checked.</summary>
        Unknown,
    }

    /// <summary>The digest of σ for <paramref name="lease"/> and where it came from; null digest when <see cref="Source.Unknown"/>.</summary>
    public static (string? Digest, Source From) Of(Lease lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        if (lease.Metadata.Annotations?.TryGetValue(LeaseReconciler.GrantDigestAnnotation, out var value) == true && Codec.TryFromHex(value, 32, out _))
        {
            return (value, Source.Annotation);
        }

        return lease.Status?.ActiveSince is null && lease.Status?.AccessSecretName is null
            ? (NoGrant, Source.NoGrantIssued)
            : (null, Source.Unknown);
    }
}
