using k8s;
using k8s.Models;

namespace Rpoi.Kube.Informers;

/// <summary>An object's identity in the cache and the work queue: <c>namespace/name</c>, or <c>name</c> when cluster-scoped.</summary>
/// <param name="Namespace">The namespace; null for cluster-scoped objects.</param>
/// <param name="Name">The object's name.</param>
public readonly record struct ObjectKey(string? Namespace, string Name)
{
    /// <summary>The key of <paramref name="obj"/>.</summary>
    /// <exception cref="ArgumentException">The object has no <c>metadata.name</c>.</exception>
    public static ObjectKey Of(IKubernetesObject<V1ObjectMeta> obj)
    {
        ArgumentNullException.ThrowIfNull(obj);
        var name = obj.Metadata?.Name;
        if (string.IsNullOrEmpty(name))
        {
            throw new ArgumentException("metadata.name is required to key an object; set metadata.name.", nameof(obj));
        }

        return new ObjectKey(string.IsNullOrEmpty(obj.Metadata!.NamespaceProperty) ? null : obj.Metadata.NamespaceProperty, name);
    }

    /// <summary>Parses <c>namespace/name</c> or <c>name</c>.</summary>
    public static ObjectKey Parse(string key)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(key);
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? new ObjectKey(null, key) : new ObjectKey(key[..slash], key[(slash + 1)..]);
    }

    /// <inheritdoc/>
    public override string ToString() => Namespace is null ? Name : $"{Namespace}/{Name}";
}
