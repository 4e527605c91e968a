using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Rpoi.Operator.CrdGeneration;

namespace Rpoi.Operator.Entities;

/// <summary>
/// The renter's signed lease request E(m) = sign_R(m): the payload m, the signer's key id and the
/// Ed25519 signature over the RFC 8785 canonical JSON of the payload.
/// </summary>
public sealed class SignedLeaseRequest
{
    private JsonObject? payload = [];
    private byte[]? compact;

    /// <summary>
    /// The request m, kept byte for byte as signed: unknown fields are preserved, never pruned,
    /// because the signature covers the canonical JSON of the whole object.
    /// </summary>
    // (Not in the summary, which is the CRD's description.) After Compact every read parses a fresh object from the kept
    // JSON, so a change to what a read returned is not kept.
    [JsonPropertyName("payload")]
    [RequiredField]
    [PreserveUnknownFields]
    [SchemaFrom(typeof(LeaseRequestPayload))]
    public JsonObject Payload
    {
        get => payload ?? JsonNode.Parse(compact)!.AsObject();
        set
        {
            payload = value;
            compact = null;
        }
    }

    /// <summary>Key id of the renter's Ed25519 key that signed the payload.</summary>
    [JsonPropertyName("signer")]
    [RequiredField]
    [Length(1, 256)]
    public string Signer { get; set; } = "";

    /// <summary>Base64 Ed25519 signature over the canonical JSON of the payload.</summary>
    [JsonPropertyName("sig")]
    [RequiredField]
    [Length(1, 512)]
    public string Sig { get; set; } = "";

    /// <summary>The payload's compact JSON once <see cref="Compact"/> ran, else null (readers that only scan it need no tree).</summary>
    internal ReadOnlySpan<byte> CompactPayload => compact;

    /// <summary>
    /// Keeps the payload as its UTF-8 JSON instead of a JSON tree, for a request that is only read from now on (the
    /// informer cache): about 600 bytes instead of 1,300 per cached Lease (BENCHMARKS.md "memcache"). The values are
    /// kept exactly, so H and the signature check come out the same.
    /// </summary>
    public void Compact()
    {
        if (payload is null)
        {
            return;
        }

        compact = JsonSerializer.SerializeToUtf8Bytes(payload);
        payload = null;
    }
}

/// <summary>
/// The renter's signed rating E(m'') = sign_R(m''), where m'' = m + digest(σ) + Ra_R: the payload, the
/// signer's key id and the Ed25519 signature over its canonical JSON.
/// </summary>
public sealed class SignedRatingMessage
{
    /// <summary>
    /// The rating message m'' as signed (the request m, the SHA-256 digest of the access grant σ, and
    /// the renter's rating); unknown fields are preserved so the signature stays valid.
    /// </summary>
    [JsonPropertyName("payload")]
    [RequiredField]
    [PreserveUnknownFields]
    [SchemaFrom(typeof(RenterRatingPayload))]
    public JsonObject Payload { get; set; } = [];

    /// <summary>Key id of the renter's Ed25519 key that signed the payload.</summary>
    [JsonPropertyName("signer")]
    [RequiredField]
    [Length(1, 256)]
    public string Signer { get; set; } = "";

    /// <summary>Base64 Ed25519 signature over the canonical JSON of the payload.</summary>
    [JsonPropertyName("sig")]
    [RequiredField]
    [Length(1, 512)]
    public string Sig { get; set; } = "";
}

/// <summary>
/// The documented fields of the lease request m (schema only; the entity keeps the raw JSON). The API
/// server checks the types of these fields; any other field passes through untouched. The names follow
/// Rpoi.Protocol's <c>LeaseRequest</c> record.
/// </summary>
[PreserveUnknownFields]
public sealed class LeaseRequestPayload
{
    /// <summary>Message kind, <c>rpoi.request/v1</c>, so a signature over another kind cannot be replayed as a request.</summary>
    [JsonPropertyName("kind")]
    [Length(0, 64)]
    public string? Kind { get; set; }

    /// <summary>The renter's public keys.</summary>
    [JsonPropertyName("renter")]
    public PartyKeys? Renter { get; set; }

    /// <summary>Address of the leaser β, the platform that owns the TPU node pools.</summary>
    [JsonPropertyName("leaser")]
    [Length(0, 128)]
    public string? Leaser { get; set; }

    /// <summary>Address of the escrow π that holds the pledge.</summary>
    [JsonPropertyName("escrow")]
    [Length(0, 128)]
    public string? Escrow { get; set; }

    /// <summary>TPU accelerator type, for example <c>tpu-v5-lite-podslice</c>.</summary>
    [JsonPropertyName("accelerator")]
    [Length(0, 63)]
    public string? Accelerator { get; set; }

    /// <summary>TPU topology, for example <c>2x4</c>.</summary>
    [JsonPropertyName("topology")]
    [Length(0, 32)]
    public string? Topology { get; set; }

    /// <summary>Number of TPU chips M asked for; at least 1.</summary>
    [JsonPropertyName("chips")]
    [NumberRange(1)]
    public int? Chips { get; set; }

    /// <summary>Lease duration in seconds; at least 1.</summary>
    [JsonPropertyName("durationSeconds")]
    [NumberRange(1)]
    public long? DurationSeconds { get; set; }

    /// <summary>When the renter signed the request, RFC 3339 UTC with a Z (the replay guard checks it).</summary>
    [JsonPropertyName("timestamp")]
    [Length(0, 64)]
    public string? Timestamp { get; set; }

    /// <summary>A random nonce (base64), so two otherwise equal requests have different transaction hashes.</summary>
    [JsonPropertyName("nonce")]
    [Length(0, 128)]
    public string? Nonce { get; set; }

    /// <summary>The deposit ρ, returned to the renter on a good settlement.</summary>
    [JsonPropertyName("deposit")]
    public PayloadMoney? Deposit { get; set; }

    /// <summary>The rent ω, paid to the leaser on a good settlement.</summary>
    [JsonPropertyName("rent")]
    public PayloadMoney? Rent { get; set; }

    /// <summary>The Lease this request is bound to; must be this Lease's namespace and name.</summary>
    [JsonPropertyName("lease")]
    public LeaseBinding? Lease { get; set; }
}

/// <summary>The Kubernetes Lease a signed request is bound to, so it cannot be copied to another namespace.</summary>
[PreserveUnknownFields]
public sealed class LeaseBinding
{
    /// <summary>Namespace of the Lease.</summary>
    [JsonPropertyName("namespace")]
    [Length(0, 63)]
    public string? Namespace { get; set; }

    /// <summary>Name of the Lease.</summary>
    [JsonPropertyName("name")]
    [Length(0, 253)]
    public string? Name { get; set; }
}

/// <summary>A party's public keys, base64.</summary>
[PreserveUnknownFields]
public sealed class PartyKeys
{
    /// <summary>Ed25519 public key (signatures), base64 of 32 bytes.</summary>
    [JsonPropertyName("signingKey")]
    [Length(0, 128)]
    public string? SigningKey { get; set; }

    /// <summary>X25519 public key (HPKE encryption of the access grant), base64 of 32 bytes.</summary>
    [JsonPropertyName("encryptionKey")]
    [Length(0, 128)]
    public string? EncryptionKey { get; set; }
}

/// <summary>An amount of money: an integer string in the smallest unit, and its denomination.</summary>
[PreserveUnknownFields]
public sealed class PayloadMoney
{
    /// <summary>Integer amount in the smallest unit, as a string (no floating point), for example <c>1500000</c>.</summary>
    [JsonPropertyName("amount")]
    [Pattern("^[0-9]+$")]
    [Length(1, 40)]
    public string? Amount { get; set; }

    /// <summary>Denomination, for example <c>uusd</c>.</summary>
    [JsonPropertyName("denom")]
    [Length(0, 64)]
    public string? Denom { get; set; }
}

/// <summary>
/// The documented fields of the renter's rating message m'' (schema only; the entity keeps the raw
/// JSON). Names follow Rpoi.Protocol's <c>RenterRating</c> record.
/// </summary>
[PreserveUnknownFields]
public sealed class RenterRatingPayload
{
    /// <summary>Message kind, <c>rpoi.renter-rating/v1</c>.</summary>
    [JsonPropertyName("kind")]
    [Length(0, 64)]
    public string? Kind { get; set; }

    /// <summary>The transaction hash H of the rated lease, lower-case hex.</summary>
    [JsonPropertyName("h")]
    [Length(0, 64)]
    public string? H { get; set; }

    /// <summary>The renter's signed request E(m) of the rated lease.</summary>
    [JsonPropertyName("request")]
    [PreserveUnknownFields]
    public JsonObject? Request { get; set; }

    /// <summary>Lower-case hex SHA-256 of the canonical JSON of the access grant σ (π never sees σ itself).</summary>
    [JsonPropertyName("grantDigest")]
    [Length(0, 64)]
    public string? GrantDigest { get; set; }

    /// <summary>The renter's rating Ra_R of the leaser.</summary>
    [JsonPropertyName("rating")]
    public RatingScore? Rating { get; set; }
}

/// <summary>A rating Ra as signed: the score, a comment and when it was given.</summary>
[PreserveUnknownFields]
public sealed class RatingScore
{
    /// <summary>Score from 1 (worst) to 5 (best).</summary>
    [JsonPropertyName("score")]
    [NumberRange(1, 5)]
    public int? Score { get; set; }

    /// <summary>Free-text comment (may be empty).</summary>
    [JsonPropertyName("comment")]
    public string? Comment { get; set; }

    /// <summary>When the rating was given, RFC 3339 UTC.</summary>
    [JsonPropertyName("time")]
    [Length(0, 64)]
    public string? Time { get; set; }
}
