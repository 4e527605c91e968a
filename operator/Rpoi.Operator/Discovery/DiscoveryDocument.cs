using System.Text.Json;
using System.Text.Json.Serialization;
using k8s.Models;
using Rpoi.Protocol.Keys;

namespace Rpoi.Operator.Discovery;

/// <summary>
/// What a renter needs to build a request without pasting keys: who β and π are, where π is reached, and what can
/// be rented now. Published by the operator as the ConfigMap <see cref="ConfigMapName"/> in its own namespace,
/// data key <see cref="DataKey"/>; read by <c>kubectl rpoi request</c> and <c>kubectl rpoi offers</c>.
/// </summary>
/// <param name="Version">Document version (<see cref="CurrentVersion"/>); readers refuse a newer one.</param>
/// <param name="Leaser">β's public identity.</param>
/// <param name="Escrow">π's public identity and URL.</param>
/// <param name="Offers">Accelerators and topologies on offer with their free capacity.</param>
/// <param name="UpdatedAt">When the operator last refreshed the document.</param>
public sealed record DiscoveryDocument(
    [property: JsonPropertyName("version")] int Version,
    [property: JsonPropertyName("leaser")] DiscoveryParty Leaser,
    [property: JsonPropertyName("escrow")] DiscoveryEscrow Escrow,
    [property: JsonPropertyName("offers")] IReadOnlyList<DiscoveryOffer> Offers,
    [property: JsonPropertyName("updatedAt")] DateTimeOffset UpdatedAt)
{
    /// <summary>The ConfigMap's name.</summary>
    public const string ConfigMapName = "rpoi-discovery";

    /// <summary>The data key holding this document as JSON.</summary>
    public const string DataKey = "discovery.json";

    /// <summary>The namespace the operator runs in when nothing else is said.</summary>
    public const string DefaultNamespace = "rpoi-system";

    /// <summary>The version this code writes and reads.</summary>
    public const int CurrentVersion = 1;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>The document as indented JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>
    /// Reads a discovery ConfigMap and checks that the addresses and key ids belong to the published keys, so a
    /// hand-edited or corrupt ConfigMap is caught before anyone signs a request to the wrong party.
    /// </summary>
    /// <returns>The document, or an error message naming what is wrong and what to do.</returns>
    public static (DiscoveryDocument? Document, string? Error) FromConfigMap(V1ConfigMap configMap)
    {
        ArgumentNullException.ThrowIfNull(configMap);
        var where = $"configmap {configMap.Metadata?.NamespaceProperty}/{configMap.Metadata?.Name}";
        if (configMap.Data is null || !configMap.Data.TryGetValue(DataKey, out var json) || string.IsNullOrWhiteSpace(json))
        {
            return (null, $"{where} has no data key '{DataKey}'; the operator writes it at start-up: check that the operator runs (kubectl -n {configMap.Metadata?.NamespaceProperty} get pods)");
        }

        return Parse(json, where);
    }

    /// <summary>Parses and checks the JSON document (see <see cref="FromConfigMap"/>).</summary>
    public static (DiscoveryDocument? Document, string? Error) Parse(string json, string where = "discovery document")
    {
        DiscoveryDocument? doc;
        try
        {
            doc = JsonSerializer.Deserialize<DiscoveryDocument>(json, Json);
        }
        catch (JsonException e)
        {
            return (null, $"{where}: '{DataKey}' is not valid JSON ({e.Message}); restart the operator to rewrite it");
        }

        if (doc is null || doc.Leaser is null || doc.Escrow is null)
        {
            return (null, $"{where}: '{DataKey}' lacks 'leaser' or 'escrow'; restart the operator to rewrite it");
        }

        if (doc.Version > CurrentVersion)
        {
            return (null, $"{where}: document version {doc.Version} is newer than this tool understands ({CurrentVersion}); upgrade kubectl-rpoi");
        }

        var leaser = doc.Leaser.ToIdentity(PartyRole.Leaser, "leaser");
        if (leaser.Error is not null)
        {
            return (null, $"{where}: {leaser.Error}");
        }

        var escrow = doc.Escrow.ToIdentity();
        if (escrow.Error is not null)
        {
            return (null, $"{where}: {escrow.Error}");
        }

        if (!Uri.TryCreate(doc.Escrow.Url, UriKind.Absolute, out _))
        {
            return (null, $"{where}: escrow.url '{doc.Escrow.Url}' is not an absolute URL; set the operator's escrow URL");
        }

        return (doc with { Offers = doc.Offers ?? [] }, null);
    }
}

/// <summary>A party's published public identity.</summary>
/// <param name="Address">The <c>rpoi1…</c> address derived from the signing key.</param>
/// <param name="KeyId">Key id of the signing key.</param>
/// <param name="SigningKey">Ed25519 public key, base64.</param>
/// <param name="EncryptionKey">X25519 public key, base64.</param>
public sealed record DiscoveryParty(
    [property: JsonPropertyName("address")] string Address,
    [property: JsonPropertyName("keyId")] string KeyId,
    [property: JsonPropertyName("signingKey")] string SigningKey,
    [property: JsonPropertyName("encryptionKey")] string EncryptionKey)
{
    /// <summary>Publishes an identity.</summary>
    public static DiscoveryParty From(PartyIdentity identity)
    {
        ArgumentNullException.ThrowIfNull(identity);
        return new(identity.Address, identity.KeyId, identity.SigningKeyBase64, identity.EncryptionKeyBase64);
    }

    /// <summary>The identity, checked: the address and key id must be the ones the keys give.</summary>
    public (PartyIdentity? Identity, string? Error) ToIdentity(PartyRole role, string field) =>
        Check(SigningKey, EncryptionKey, Address, KeyId, role, field);

    internal static (PartyIdentity? Identity, string? Error) Check(string signingKey, string encryptionKey, string address, string keyId, PartyRole role, string field)
    {
        var id = PartyIdentity.FromBase64(signingKey, encryptionKey, role, field + ".");
        if (!id.IsOk)
        {
            return (null, id.Message);
        }

        if (!string.Equals(id.Value.Address, address, StringComparison.Ordinal) || !string.Equals(id.Value.KeyId, keyId, StringComparison.Ordinal))
        {
            return (null, $"{field}.address/keyId ({address}/{keyId}) do not match {field}.signingKey (which gives {id.Value.Address}/{id.Value.KeyId}); the document was edited: restart the operator to rewrite it");
        }

        return (id.Value, null);
    }
}

/// <summary>π's published identity and the URL renters reach it at.</summary>
/// <param name="Address">π's address.</param>
/// <param name="KeyId">Key id of π's signing key.</param>
/// <param name="SigningKey">Ed25519 public key, base64 (verifies receipts).</param>
/// <param name="EncryptionKey">X25519 public key, base64.</param>
/// <param name="Url">π's base URL as a renter reaches it (balance, receipts).</param>
public sealed record DiscoveryEscrow(
    [property: JsonPropertyName("address")] string Address,
    [property: JsonPropertyName("keyId")] string KeyId,
    [property: JsonPropertyName("signingKey")] string SigningKey,
    [property: JsonPropertyName("encryptionKey")] string EncryptionKey,
    [property: JsonPropertyName("url")] string Url)
{
    /// <summary>Publishes π's identity and URL.</summary>
    public static DiscoveryEscrow From(PartyIdentity identity, Uri url)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(url);
        return new(identity.Address, identity.KeyId, identity.SigningKeyBase64, identity.EncryptionKeyBase64, url.ToString());
    }

    /// <summary>π's identity, checked like <see cref="DiscoveryParty.ToIdentity"/>.</summary>
    public (PartyIdentity? Identity, string? Error) ToIdentity() =>
        DiscoveryParty.Check(SigningKey, EncryptionKey, Address, KeyId, PartyRole.Escrow, "escrow");
}

/// <summary>One accelerator and topology on offer.</summary>
/// <param name="Accelerator">GKE accelerator type, e.g. <c>tpu-v5-lite-podslice</c>.</param>
/// <param name="Topology">Slice topology, e.g. <c>2x4</c>.</param>
/// <param name="ChipsPerSlice">Chips in one slice: a request's chips must be a multiple of it.</param>
/// <param name="HostsPerSlice">Hosts (nodes) in one slice.</param>
/// <param name="TotalChips">Chips in complete slices.</param>
/// <param name="FreeChips">Chips no lease holds now.</param>
/// <param name="FreeSlices">Slices no lease holds now.</param>
public sealed record DiscoveryOffer(
    [property: JsonPropertyName("accelerator")] string Accelerator,
    [property: JsonPropertyName("topology")] string Topology,
    [property: JsonPropertyName("chipsPerSlice")] int ChipsPerSlice,
    [property: JsonPropertyName("hostsPerSlice")] int HostsPerSlice,
    [property: JsonPropertyName("totalChips")] int TotalChips,
    [property: JsonPropertyName("freeChips")] int FreeChips,
    [property: JsonPropertyName("freeSlices")] int FreeSlices);
