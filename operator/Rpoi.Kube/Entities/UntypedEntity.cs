using System.Text.Json;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace Rpoi.Kube.Entities;

/// <summary>
/// Any object, kept as JSON apart from its metadata: lets informers and controllers run over a custom
/// resource that has no C# type (tools, generic garbage collection, tests).
/// </summary>
public sealed class UntypedEntity : IKubernetesObject<V1ObjectMeta>
{
    /// <summary><c>group/version</c>.</summary>
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = string.Empty;

    /// <summary>The kind.</summary>
    [JsonPropertyName("kind")]
    public string Kind { get; set; } = string.Empty;

    /// <summary>Standard object metadata.</summary>
    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    /// <summary>Every other top-level field (<c>spec</c>, <c>status</c>, <c>data</c>, …) as JSON.</summary>
    [JsonExtensionData]
    public IDictionary<string, JsonElement> Fields { get; set; } = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
}
