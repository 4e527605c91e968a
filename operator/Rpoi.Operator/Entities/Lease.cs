using System.Text.Json.Serialization;
using k8s;
using k8s.Models;
using Rpoi.Operator.CrdGeneration;

namespace Rpoi.Operator.Entities;

/// <summary>
/// A renter's lease of TPU chips under RPOI. The spec carries the renter's signed request E(m); the
/// operator verifies it, has the escrow hold the pledge under the transaction hash H, claims nodes and
/// writes the sealed access grant; on return it collects the ratings and settles with the escrow.
/// </summary>
[KubernetesEntity(Group = Group, ApiVersion = Version, Kind = KindName, PluralName = Plural)]
[ShortName("tpulease")]
[Category("rpoi")]
[PrinterColumn(0, "Phase", "string", ".status.phase", Description = "Where the lease is in its life cycle.")]
[PrinterColumn(1, "Chips", "integer", ".status.chips", Description = "Number of TPU chips leased.")]
[PrinterColumn(2, "Accelerator", "string", ".status.accelerator", Description = "TPU accelerator type.")]
[PrinterColumn(3, "Renter", "string", ".status.renter", Description = "Address of the renter.")]
[PrinterColumn(4, "Queue", "integer", ".status.queuePosition", Description = "Place in the queue of its accelerator and topology while waiting for chips (1 is next).")]
[PrinterColumn(5, "Free At", "string", ".status.earliestFreeAt", Description = "While waiting: the earliest time enough chips free up, from Active leases' expiry.", Priority = 1)]
[PrinterColumn(6, "Age", "date", ".metadata.creationTimestamp")]
public sealed class Lease : IKubernetesObject<V1ObjectMeta>, ISpec<LeaseSpec>, IStatus<LeaseStatus>
{
    /// <summary>The API group of the RPOI kinds.</summary>
    public const string Group = "rpoi.io";

    /// <summary>The API version of the RPOI kinds.</summary>
    public const string Version = "v1alpha1";

    /// <summary>The kind.</summary>
    public const string KindName = "Lease";

    /// <summary>The resource (plural) name.</summary>
    public const string Plural = "leases";

    /// <summary>APIVersion of this representation: <c>rpoi.io/v1alpha1</c>.</summary>
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = $"{Group}/{Version}";

    /// <summary>Kind of this object: <c>Lease</c>.</summary>
    [JsonPropertyName("kind")]
    public string Kind { get; set; } = KindName;

    /// <summary>Standard object metadata.</summary>
    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    /// <summary>The renter's signed request and the lease policy.</summary>
    [JsonPropertyName("spec")]
    [RequiredField]
    public LeaseSpec Spec { get; set; } = new();

    /// <summary>What the operator observed and did; written only by the operator.</summary>
    [JsonPropertyName("status")]
    public LeaseStatus? Status { get; set; }

    // The runtime's IStatus<T> wants a non-null status; the JSON keeps "no status yet" as absent.
    LeaseStatus IStatus<LeaseStatus>.Status
    {
        get => Status ??= new();
        set => Status = value;
    }
}

/// <summary>The desired state of a Lease: the signed request E(m) and the lease policy.</summary>
[CelRule("!has(oldSelf.returnRequested) || !oldSelf.returnRequested || (has(self.returnRequested) && self.returnRequested)",
    "spec.returnRequested cannot be withdrawn once set to true")]
public sealed class LeaseSpec
{
    /// <summary>
    /// The renter's signed lease request E(m) = sign_R(m), exactly as the renter's tool produced it.
    /// Immutable: the transaction hash H is computed over it.
    /// </summary>
    [JsonPropertyName("request")]
    [RequiredField]
    [Immutable(Message = "spec.request is immutable: the signed request E(m) cannot change; create a new Lease instead")]
    public SignedLeaseRequest Request { get; set; } = new();

    /// <summary>
    /// How long, in seconds after the return, the lease waits for the renter's and the leaser's ratings
    /// before it settles with whatever ratings it has (default 259200 = 72 h).
    /// </summary>
    [JsonPropertyName("ratingWindowSeconds")]
    [DefaultValue(259200L)]
    [NumberRange(0, 31_536_000)]
    [Immutable(Message = "spec.ratingWindowSeconds is immutable")]
    public long? RatingWindowSeconds { get; set; }

    /// <summary>
    /// Set to true to end the lease early: the operator releases the nodes and starts the rating window.
    /// Once true it stays true.
    /// </summary>
    [JsonPropertyName("returnRequested")]
    [DefaultValue(false)]
    public bool? ReturnRequested { get; set; }
}
