using System.Reflection;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;
using Rpoi.Kube.Informers;

namespace Rpoi.Kube.Entities;

/// <summary>
/// Base class of a custom resource with a spec and a status (KubeOps' <c>CustomKubernetesEntity&lt;TSpec, TStatus&gt;</c>).
/// Mark the derived class with <see cref="KubernetesEntityAttribute"/> so <see cref="CustomResources.For{T}"/> can locate it.
/// </summary>
/// <typeparam name="TSpec">The desired state.</typeparam>
/// <typeparam name="TStatus">The observed state, written through the status subresource.</typeparam>
public abstract class CustomEntity<TSpec, TStatus> : IKubernetesObject<V1ObjectMeta>
    where TSpec : new()
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

    /// <summary>The desired state.</summary>
    [JsonPropertyName("spec")]
    public TSpec Spec { get; set; } = new();

    /// <summary>The observed state; null until a controller first writes it.</summary>
    [JsonPropertyName("status")]
    public TStatus? Status { get; set; }
}

/// <summary>Reads a type's <see cref="KubernetesEntityAttribute"/> into a <see cref="CustomResource"/>.</summary>
public static class CustomResources
{
    /// <summary>Where <typeparamref name="T"/> lives in the API, from its <see cref="KubernetesEntityAttribute"/>.</summary>
    /// <exception cref="InvalidOperationException">The attribute or one of its fields is missing.</exception>
    public static CustomResource For<T>(bool namespaced = true)
    {
        var a = typeof(T).GetCustomAttribute<KubernetesEntityAttribute>()
            ?? throw new InvalidOperationException($"{typeof(T).Name} has no [KubernetesEntity(Group = ..., ApiVersion = ..., Kind = ..., PluralName = ...)] attribute; add one.");
        if (string.IsNullOrEmpty(a.Group) || string.IsNullOrEmpty(a.ApiVersion) || string.IsNullOrEmpty(a.PluralName))
        {
            throw new InvalidOperationException($"[KubernetesEntity] on {typeof(T).Name} must set Group, ApiVersion and PluralName.");
        }

        return new CustomResource(a.Group, a.ApiVersion, a.PluralName, namespaced);
    }
}
