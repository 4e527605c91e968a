using Rpoi.Kube.Informers;
using Rpoi.Operator.Entities;

namespace Rpoi.Operator.PhaseTwo;

/// <summary>The "ratings by lease" cache index, so the reconcilers find a lease's ratings without asking the API server.</summary>
public static class RatingIndexes
{
    /// <summary>Index name: values are <c>namespace/leaseName</c>.</summary>
    public const string ByLease = "rpoi.io/ratings-by-lease";

    /// <summary>The index value of a Lease (and of the ratings that refer to it).</summary>
    public static string LeaseKey(string? @namespace, string name) => $"{@namespace}/{name}";

    /// <summary>The index value of a Rating, or none when it names no lease.</summary>
    public static IEnumerable<string> Of(Rating rating)
    {
        ArgumentNullException.ThrowIfNull(rating);
        var name = rating.Spec?.LeaseRef?.Name;
        return string.IsNullOrEmpty(name) ? [] : [LeaseKey(rating.Metadata.NamespaceProperty, name)];
    }

    /// <summary>Adds the index to <paramref name="store"/> (once per store).</summary>
    public static void AddTo(Store<Rating> store)
    {
        ArgumentNullException.ThrowIfNull(store);
        store.AddIndex(ByLease, Of);
    }

    /// <summary>The cached ratings of <paramref name="lease"/>.</summary>
    public static IReadOnlyList<Rating> RatingsOf(Store<Rating> store, Lease lease)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(lease);
        return store.ByIndex(ByLease, LeaseKey(lease.Metadata.NamespaceProperty, lease.Metadata.Name));
    }

    /// <summary>The cached ratings of the Lease <paramref name="namespace"/>/<paramref name="leaseName"/>.</summary>
    public static IReadOnlyList<Rating> RatingsOf(Store<Rating> store, string? @namespace, string leaseName)
    {
        ArgumentNullException.ThrowIfNull(store);
        return string.IsNullOrEmpty(leaseName) ? [] : store.ByIndex(ByLease, LeaseKey(@namespace, leaseName));
    }

    /// <summary>Creation order (oldest first, then by name), which decides which of two ratings of one side counts.</summary>
    public static int CompareAge(Rating a, Rating b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var byTime = Nullable.Compare(a.Metadata.CreationTimestamp, b.Metadata.CreationTimestamp);
        return byTime != 0 ? byTime : string.CompareOrdinal(a.Metadata.Name, b.Metadata.Name);
    }
}
