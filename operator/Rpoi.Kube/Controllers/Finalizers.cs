using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Rpoi.Kube.Informers;

namespace Rpoi.Kube.Controllers;

/// <summary>
/// Adds and removes finalizers with a JSON patch that first tests <c>metadata.resourceVersion</c>, so a
/// change made by someone else in between fails the patch (the API answers 422 for a failed test)
/// instead of being overwritten; the controller then retries with fresh state from the cache.
/// </summary>
public static class Finalizers
{
    /// <summary>True when <paramref name="entity"/> lists <paramref name="finalizer"/>.</summary>
    public static bool Has(IKubernetesObject<V1ObjectMeta> entity, string finalizer) =>
        entity?.Metadata?.Finalizers?.Contains(finalizer) == true;

    /// <summary>Adds <paramref name="finalizer"/> unless present; returns the object as the server stored it.</summary>
    public static async Task<T> AddAsync<T>(IResourceClient<T> client, T entity, string finalizer, CancellationToken cancellationToken)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(entity);
        ValidateName(finalizer);
        if (Has(entity, finalizer))
        {
            return entity;
        }

        var ops = new JsonArray { TestResourceVersion(entity) };
        ops.Add(entity.Metadata.Finalizers is null
            ? new JsonObject { ["op"] = "add", ["path"] = "/metadata/finalizers", ["value"] = new JsonArray(finalizer) }
            : new JsonObject { ["op"] = "add", ["path"] = "/metadata/finalizers/-", ["value"] = finalizer });
        return await client.PatchAsync(ObjectKey.Of(entity), JsonPatch(ops), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Removes <paramref name="finalizer"/> if present; returns the object as the server stored it.</summary>
    public static Task<T> RemoveAsync<T>(IResourceClient<T> client, T entity, string finalizer, CancellationToken cancellationToken)
        where T : class, IKubernetesObject<V1ObjectMeta> =>
        RemoveAsync(client, entity, finalizer, null, cancellationToken);

    /// <summary>
    /// Removes <paramref name="finalizer"/> if present; returns the object as the server stored it. The patch is guarded by
    /// <paramref name="resourceVersion"/> when given (what a write made since <paramref name="entity"/> was read
    /// returned), else by the entity's own.
    /// </summary>
    public static async Task<T> RemoveAsync<T>(IResourceClient<T> client, T entity, string finalizer, string? resourceVersion, CancellationToken cancellationToken)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(entity);
        ValidateName(finalizer);
        var index = entity.Metadata?.Finalizers?.ToList().IndexOf(finalizer) ?? -1;
        if (index < 0)
        {
            return entity;
        }

        var ops = new JsonArray
        {
            resourceVersion is { Length: > 0 } rv ? TestResourceVersion(rv) : TestResourceVersion(entity),
            new JsonObject { ["op"] = "test", ["path"] = $"/metadata/finalizers/{index}", ["value"] = finalizer },
            new JsonObject { ["op"] = "remove", ["path"] = $"/metadata/finalizers/{index}" },
        };
        return await client.PatchAsync(ObjectKey.Of(entity), JsonPatch(ops), cancellationToken).ConfigureAwait(false);
    }

    internal static V1Patch JsonPatch(JsonArray ops) => new(ops.ToJsonString(), V1Patch.PatchType.JsonPatch);

    private static JsonObject TestResourceVersion(IKubernetesObject<V1ObjectMeta> entity)
    {
        var rv = entity.Metadata?.ResourceVersion;
        if (string.IsNullOrEmpty(rv))
        {
            throw new ArgumentException("metadata.resourceVersion is required for a safe finalizer patch; pass the object as read from the API.", nameof(entity));
        }

        return TestResourceVersion(rv);
    }

    private static JsonObject TestResourceVersion(string rv) => new() { ["op"] = "test", ["path"] = "/metadata/resourceVersion", ["value"] = rv };

    private static void ValidateName(string finalizer)
    {
        // Kubernetes requires a domain-qualified name ("example.test/cleanup") for custom finalizers.
        if (string.IsNullOrWhiteSpace(finalizer) || !finalizer.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"Finalizer '{finalizer}' must be domain-qualified, e.g. 'example.test/cleanup'.", nameof(finalizer));
        }
    }
}
