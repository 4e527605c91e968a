using System.Text.Json.Serialization;
using k8s;
using k8s.Models;
using Rpoi.Operator.CrdGeneration;

namespace Rpoi.Operator.Entities;

/// <summary>
/// A rating of a Lease by one side, in the Lease's namespace. The renter's carries the signed E(m'');
/// the leaser's is signed by the operator with β's key when it builds m_final for the escrow.
/// </summary>
[KubernetesEntity(Group = Lease.Group, ApiVersion = Lease.Version, Kind = KindName, PluralName = Plural)]
[ShortName("tpurating")]
[Category("rpoi")]
[PrinterColumn(0, "Lease", "string", ".spec.leaseRef.name", Description = "The rated Lease.")]
[PrinterColumn(1, "Rater", "string", ".spec.rater", Description = "Who rates: Renter or Leaser.")]
[PrinterColumn(2, "Score", "integer", ".spec.score", Description = "Score from 1 to 5.")]
[PrinterColumn(3, "Accepted", "boolean", ".status.accepted", Description = "Whether the operator accepted the rating.")]
[PrinterColumn(4, "Age", "date", ".metadata.creationTimestamp")]
public sealed class Rating : IKubernetesObject<V1ObjectMeta>, ISpec<RatingSpec>, IStatus<RatingStatus>
{
    /// <summary>The kind.</summary>
    public const string KindName = "Rating";

    /// <summary>The resource (plural) name.</summary>
    public const string Plural = "ratings";

    /// <summary>APIVersion of this representation: <c>rpoi.io/v1alpha1</c>.</summary>
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = $"{Lease.Group}/{Lease.Version}";

    /// <summary>Kind of this object: <c>Rating</c>.</summary>
    [JsonPropertyName("kind")]
    public string Kind { get; set; } = KindName;

    /// <summary>Standard object metadata.</summary>
    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    /// <summary>The rating; immutable once created.</summary>
    [JsonPropertyName("spec")]
    [RequiredField]
    public RatingSpec Spec { get; set; } = new();

    /// <summary>Whether the operator accepted the rating, and why not.</summary>
    [JsonPropertyName("status")]
    public RatingStatus? Status { get; set; }

    // The runtime's IStatus<T> wants a non-null status; the JSON keeps "no status yet" as absent.
    RatingStatus IStatus<RatingStatus>.Status
    {
        get => Status ??= new();
        set => Status = value;
    }
}

/// <summary>Who gives a rating.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<Rater>))]
public enum Rater
{
    /// <summary>The renter R rates the leaser β (Ra_R); needs the signed E(m'').</summary>
    Renter,

    /// <summary>The leaser β rates the renter R (Ra_β); the operator signs it with β's key.</summary>
    Leaser,
}

/// <summary>A rating of a Lease.</summary>
[CelRule("self == oldSelf", "spec is immutable: delete and recreate the Rating to change it")]
[CelRule("self.rater != 'Renter' || has(self.signedRating)",
    "spec.signedRating is required when rater is Renter: sign it with `kubectl rpoi rate`")]
public sealed class RatingSpec
{
    /// <summary>The rated Lease, in the same namespace.</summary>
    [JsonPropertyName("leaseRef")]
    [RequiredField]
    public LeaseReference LeaseRef { get; set; } = new();

    /// <summary>Who rates: Renter or Leaser.</summary>
    [JsonPropertyName("rater")]
    [RequiredField]
    public Rater Rater { get; set; }

    /// <summary>Score from 1 (worst) to 5 (best).</summary>
    [JsonPropertyName("score")]
    [RequiredField]
    [NumberRange(1, 5)]
    [CelRule("self >= 1 && self <= 5", "score must be between 1 and 5")]
    public long Score { get; set; }

    /// <summary>Free-text comment, at most 1024 characters.</summary>
    [JsonPropertyName("comment")]
    [Length(0, 1024)]
    public string? Comment { get; set; }

    /// <summary>The renter's signed rating E(m''); required when rater is Renter, its score must equal spec.score.</summary>
    [JsonPropertyName("signedRating")]
    public SignedRatingMessage? SignedRating { get; set; }
}

/// <summary>A reference to a Lease in the same namespace.</summary>
public sealed class LeaseReference
{
    /// <summary>Name of the Lease.</summary>
    [JsonPropertyName("name")]
    [RequiredField]
    [Length(1, 253)]
    public string Name { get; set; } = "";
}

/// <summary>What the operator decided about a Rating.</summary>
public sealed class RatingStatus
{
    /// <summary>Whether the rating was accepted into the lease's settlement.</summary>
    [JsonPropertyName("accepted")]
    public bool? Accepted { get; set; }

    /// <summary>Machine-readable reason, for example BadSignature, WrongLease, WindowClosed, Duplicate.</summary>
    [JsonPropertyName("reason")]
    public string? Reason { get; set; }

    /// <summary>Human-readable explanation of the decision.</summary>
    [JsonPropertyName("message")]
    public string? Message { get; set; }

    /// <summary>Standard conditions (Accepted), one per type.</summary>
    [JsonPropertyName("conditions")]
    [ListMap("type")]
    public IList<V1Condition>? Conditions { get; set; }

    /// <summary>The metadata.generation this status was computed from.</summary>
    [JsonPropertyName("observedGeneration")]
    public long? ObservedGeneration { get; set; }
}
