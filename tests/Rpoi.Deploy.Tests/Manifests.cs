using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace Rpoi.Deploy.Tests;

/// <summary>A kind KubernetesClient has no model for (Prometheus Operator objects): metadata plus a raw spec.</summary>
public sealed class CustomObject : IKubernetesObject<V1ObjectMeta>
{
    [JsonPropertyName("apiVersion")]
    public string ApiVersion { get; set; } = "";

    [JsonPropertyName("kind")]
    public string Kind { get; set; } = "";

    [JsonPropertyName("metadata")]
    public V1ObjectMeta Metadata { get; set; } = new();

    [JsonPropertyName("spec")]
    public Dictionary<string, object>? Spec { get; set; }
}

/// <summary>Rendered manifests, parsed with KubernetesClient's YAML loader.</summary>
internal sealed class Manifests
{
    private static readonly Dictionary<string, Type> ExtraTypes = new()
    {
        ["monitoring.coreos.com/v1/ServiceMonitor"] = typeof(CustomObject),
        ["monitoring.coreos.com/v1/PrometheusRule"] = typeof(CustomObject),
    };

    private Manifests(IReadOnlyList<IKubernetesObject<V1ObjectMeta>> objects) => Objects = objects;

    public IReadOnlyList<IKubernetesObject<V1ObjectMeta>> Objects { get; }

    public static Manifests Parse(string yaml) =>
        new(KubernetesYaml.LoadAllFromString(yaml, ExtraTypes, strict: true).Cast<IKubernetesObject<V1ObjectMeta>>().ToList());

    public IEnumerable<T> OfType<T>() => Objects.OfType<T>();

    public T Single<T>(string name)
        where T : IKubernetesObject<V1ObjectMeta>
    {
        var matches = Objects.OfType<T>().Where(o => o.Metadata.Name == name).ToList();
        Assert.True(matches.Count == 1,
            $"expected one {typeof(T).Name} named {name}, found {matches.Count}; rendered: {string.Join(", ", Objects.Select(Key))}");
        return matches[0];
    }

    public bool Has(string kind) => Objects.Any(o => o.Kind == kind);

    public static string Key(IKubernetesObject<V1ObjectMeta> o) => $"{o.Kind}/{o.Metadata.NamespaceProperty}/{o.Metadata.Name}";

    /// <summary>The object as JSON without labels (which legitimately differ between Helm and kustomize).</summary>
    public static JsonNode Comparable(IKubernetesObject<V1ObjectMeta> o)
    {
        var node = JsonNode.Parse(KubernetesJson.Serialize(o))!;
        node["metadata"]!.AsObject().Remove("labels");
        // Pod template labels stay: they are selectors, and those must agree.
        return node;
    }
}
