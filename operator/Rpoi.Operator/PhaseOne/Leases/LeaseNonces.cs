using System.Buffers;
using System.Text.Json;
using Rpoi.Kube.Controllers;
using Rpoi.Kube.Informers;
using Rpoi.Operator.Entities;
using Rpoi.Protocol;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Messages;

namespace Rpoi.Operator.PhaseOne.Leases;

/// <summary>The Lease that holds a nonce, and the H of its request.</summary>
/// <param name="Lease">The holding Lease (from the cache).</param>
/// <param name="H">Hex H of its request.</param>
public sealed record NonceHolder(Lease Lease, string H);

/// <summary>
/// β's nonce store: which Lease holds a renter's request nonce, read from the Lease informer cache. The Leases carry
/// their signed requests, so nothing else is stored and a restart (or a new leader) has the whole store as soon as its
/// informer has listed the Leases. A nonce is held by a Lease whose request is signed by that renter with a valid
/// signature, is still inside the age window (T + max age, as at π), and was not refused at verification. When two
/// Leases of one renter carry the same nonce under different H, the one already verified keeps it, else the older one
/// (creation time, then namespace and name), so every reconcile and every replica decide the same way.
/// </summary>
public sealed class LeaseNonces : INonceStore
{
    /// <summary>Name of the informer index from request nonce to Leases.</summary>
    public const string IndexName = "rpoi.io/request-nonce";

    private static readonly Comparer<Lease> Precedence = Comparer<Lease>.Create((a, b) =>
    {
        var byVerified = IsVerified(b).CompareTo(IsVerified(a));
        if (byVerified != 0)
        {
            return byVerified;
        }

        var byTime = (a.Metadata.CreationTimestamp ?? DateTime.MaxValue).CompareTo(b.Metadata.CreationTimestamp ?? DateTime.MaxValue);
        if (byTime != 0)
        {
            return byTime;
        }

        var byNamespace = string.CompareOrdinal(a.Metadata.NamespaceProperty, b.Metadata.NamespaceProperty);
        return byNamespace != 0 ? byNamespace : string.CompareOrdinal(a.Metadata.Name, b.Metadata.Name);
    });

    private readonly Func<string, IReadOnlyList<Lease>> leasesWithNonce;
    private readonly TimeProvider time;
    private readonly RequestPolicy policy;

    /// <summary>Creates the store over <paramref name="leasesWithNonce"/> (the informer's <see cref="IndexName"/> index).</summary>
    public LeaseNonces(Func<string, IReadOnlyList<Lease>> leasesWithNonce, TimeProvider time, RequestPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(leasesWithNonce);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(policy);
        this.leasesWithNonce = leasesWithNonce;
        this.time = time;
        this.policy = policy;
    }

    /// <summary>
    /// The index function: a Lease's request nonce as written in its spec (nothing for a Lease without one). It reads the
    /// payload's JSON with a reader instead of indexing the JsonObject, which would expand the compact JSON of every cached
    /// Lease into a tree of nodes (several KB each; BENCHMARKS.md "Operator memory").
    /// </summary>
    public static IEnumerable<string> NonceOf(Lease lease)
    {
        if (lease?.Spec?.Request is not { } request)
        {
            return [];
        }

        // A cached Lease's request is compact JSON already (EntityCache.Trim); any other is written out once.
        var bytes = request.CompactPayload;
        if (bytes.IsEmpty)
        {
            var json = new ArrayBufferWriter<byte>(1024);
            using (var writer = new Utf8JsonWriter(json))
            {
                request.Payload.WriteTo(writer);
            }

            bytes = json.WrittenSpan;
        }

        var reader = new Utf8JsonReader(bytes);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return [];
        }

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isNonce = reader.ValueTextEquals("nonce"u8);
            reader.Read();
            if (isNonce)
            {
                return reader.TokenType == JsonTokenType.String ? [reader.GetString()!] : [];
            }

            reader.Skip();
        }

        return [];
    }

    /// <summary>Adds <see cref="IndexName"/> to the Lease informer's cache.</summary>
    public static void AddIndex(Store<Lease> leases)
    {
        ArgumentNullException.ThrowIfNull(leases);
        leases.AddIndex(IndexName, NonceOf);
    }

    /// <inheritdoc/>
    /// <remarks>Nothing is written: the Lease carrying <paramref name="h"/> records the nonce by existing in the cache.</remarks>
    public ValueTask<bool> TryRecordAsync(string renterKeyId, string nonce, string h, DateTimeOffset expiresAt, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(HolderOf(renterKeyId, nonce, h) is null);

    /// <summary>
    /// The other Lease that holds <paramref name="nonce"/> of <paramref name="renterKeyId"/> under another H than
    /// <paramref name="h"/>, ahead of the Lease carrying <paramref name="h"/>; null when the nonce is free for it.
    /// </summary>
    public NonceHolder? HolderOf(string renterKeyId, string nonce, string h)
    {
        var now = time.GetUtcNow();
        var holders = new List<(Lease Lease, string H)>();
        foreach (var lease in leasesWithNonce(nonce))
        {
            if (Holds(lease, renterKeyId, nonce, h, now, policy) is { } leaseH)
            {
                holders.Add((lease, leaseH));
            }
        }

        var self = holders.Where(x => x.H == h).OrderBy(x => x.Lease, Precedence).FirstOrDefault();
        var other = holders.Where(x => x.H != h).OrderBy(x => x.Lease, Precedence).FirstOrDefault();
        return other.Lease is not null && (self.Lease is null || Precedence.Compare(other.Lease, self.Lease) < 0) ? new NonceHolder(other.Lease, other.H) : null;
    }

    /// <summary>The H under which <paramref name="lease"/> holds the nonce, or null when it holds none.</summary>
    private static string? Holds(Lease lease, string renterKeyId, string nonce, string h, DateTimeOffset now, RequestPolicy policy)
    {
        // A Lease refused at verification (a replay among them) holds nothing; one not yet looked at may.
        var verified = Conditions.Find(lease.Status?.Conditions, LeaseConditions.Verified);
        if (verified?.Status == Conditions.False)
        {
            return null;
        }

        if (!LeaseVerification.Parse(lease.Spec?.Request).TryGetValue(out var signed)
            || signed.Payload.Nonce != nonce
            || signed.Payload.Timestamp + policy.MaxAge < now)
        {
            return null;
        }

        // The same bytes as the request being checked (its own Lease, or a copy) need no second signature check.
        var leaseH = RpoiEquations.TransactionHashOf(signed).Hex;
        if (leaseH == h)
        {
            return leaseH;
        }

        // Only R's own signature makes a nonce R's: a forged Lease naming R's key cannot take R's nonce.
        var request = RpoiEquations.VerifyRequest(signed);
        return request.TryGetValue(out var v) && v.Renter.KeyId == renterKeyId ? v.H.Hex : null;
    }

    private static bool IsVerified(Lease lease) => Conditions.IsTrue(lease.Status?.Conditions, LeaseConditions.Verified);
}
