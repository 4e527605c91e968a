using k8s.Models;
using Rpoi.Kube.Informers;
namespace Rpoi.Operator.Entities;

/// <summary>
/// What the shared informer caches keep of a Lease and of a Rating, the entities both phases read from one cache (issue 14, BENCHMARKS.md "Operator memory"). The
/// reconcilers read the spec whole (the signed request is verified byte for byte), the status whole (status writes are
/// merge patches computed against it), and of the metadata only identity, times, generation, finalizers and the rpoi.io
/// annotations; labels, owner references and other tools' annotations are dropped. Strings that many objects share
/// (shape names, the renter's key and address, condition types and reasons, node names) come from
/// <see cref="StringPool.Shared"/>. The signed payload is kept as its UTF-8 JSON (<see cref="SignedLeaseRequest.Compact"/>),
/// half of what a JSON tree over it costs; readers parse it when they need it (verification) or scan it
/// (<see cref="PhaseOne.Leases.LeaseNonces.NonceOf"/>).
/// The operator never writes a cached Lease or Rating back whole (only patches), so nothing dropped is written back.
/// </summary>
public static class EntityCache
{
    /// <summary>Trims <paramref name="lease"/> in place to what phase I and phase II read.</summary>
    public static Lease Trim(Lease lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var pool = StringPool.Shared;
        TrimMetadata(lease.Metadata);
        if (lease.Spec?.Request is { } request)
        {
            request.Signer = pool.Intern(request.Signer)!;
            // Read only from here on: its JSON, not a tree over it.
            request.Compact();
        }

        if (lease.Status is { } s)
        {
            s.Renter = pool.Intern(s.Renter);
            s.Accelerator = pool.Intern(s.Accelerator);
            s.Topology = pool.Intern(s.Topology);
            s.NodePool = pool.Intern(s.NodePool);
            pool.InternAll(s.Nodes);
            InternConditions(s.Conditions);
            // Verified's message is the same sentence for every valid lease (the other conditions' name the lease's H,
            // pool or Secret, so pooling them would only add a pool entry each).
            if (Kube.Controllers.Conditions.Find(s.Conditions, PhaseOne.Leases.LeaseConditions.Verified) is { } verified)
            {
                verified.Message = pool.Intern(verified.Message);
            }
        }

        return lease;
    }

    /// <summary>Trims <paramref name="rating"/> in place to what phase II reads.</summary>
    public static Rating Trim(Rating rating)
    {
        ArgumentNullException.ThrowIfNull(rating);
        var pool = StringPool.Shared;
        TrimMetadata(rating.Metadata);
        if (rating.Spec is { } spec)
        {
            if (spec.SignedRating is { } signed)
            {
                signed.Signer = pool.Intern(signed.Signer)!;
            }
        }

        if (rating.Status is { } s)
        {
            s.Reason = pool.Intern(s.Reason);
            InternConditions(s.Conditions);
        }

        return rating;
    }

    private static void TrimMetadata(V1ObjectMeta? meta)
    {
        if (meta is null)
        {
            return;
        }

        var pool = StringPool.Shared;
        meta.Labels = null;
        meta.OwnerReferences = null;
        meta.Annotations = pool.Keep(meta.Annotations, static k => k.StartsWith("rpoi.io/", StringComparison.Ordinal), poolValues: false);
        meta.GenerateName = null;
    }

    private static void InternConditions(IList<V1Condition>? conditions)
    {
        var pool = StringPool.Shared;
        foreach (var c in conditions ?? [])
        {
            c.Type = pool.Intern(c.Type);
            c.Status = pool.Intern(c.Status);
            c.Reason = pool.Intern(c.Reason);
        }
    }
}
