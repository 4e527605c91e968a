using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Rpoi.Kube.Informers;

namespace Rpoi.Kube.Controllers;

/// <summary>"Write status only when it changed" (Kueue's <c>UpdateStatusIfChanged</c>).</summary>
public static class StatusUpdates
{
    /// <summary>
    /// Compares <paramref name="oldStatus"/> and <paramref name="newStatus"/> as JSON and, when they
    /// differ, merge-patches the status subresource with just the difference (removed fields become
    /// null, so they are removed on the server too). The patch carries the object's resourceVersion,
    /// so a concurrent writer makes it fail with 409 rather than be overwritten. Returns the stored
    /// object, or null when nothing changed (no request was sent).
    /// </summary>
    public static async Task<T?> PatchIfChangedAsync<T, TStatus>(
        IResourceClient<T> client,
        T entity,
        TStatus? oldStatus,
        TStatus newStatus,
        CancellationToken cancellationToken)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(entity);
        var before = oldStatus is null ? null : JsonNode.Parse(KubernetesJson.Serialize(oldStatus));
        var after = JsonNode.Parse(KubernetesJson.Serialize(newStatus!));
        if (JsonNode.DeepEquals(before, after))
        {
            return null;
        }

        var rv = entity.Metadata?.ResourceVersion;
        if (string.IsNullOrEmpty(rv))
        {
            throw new ArgumentException("metadata.resourceVersion is required for a safe status write; pass the object as read from the API.", nameof(entity));
        }

        var body = new JsonObject
        {
            ["metadata"] = new JsonObject { ["resourceVersion"] = rv },
            ["status"] = before is JsonObject b && after is JsonObject a ? MergePatch(b, a) : after,
        };
        return await client.PatchStatusAsync(ObjectKey.Of(entity), new V1Patch(body.ToJsonString(), V1Patch.PatchType.MergePatch), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>An RFC 7386 merge patch that turns <paramref name="before"/> into <paramref name="after"/>.</summary>
    internal static JsonObject MergePatch(JsonObject before, JsonObject after)
    {
        var patch = new JsonObject();
        foreach (var (name, oldValue) in before)
        {
            if (!after.ContainsKey(name))
            {
                patch[name] = null;
            }
            else if (after[name] is JsonObject newObj && oldValue is JsonObject oldObj)
            {
                var nested = MergePatch(oldObj, newObj);
                if (nested.Count > 0)
                {
                    patch[name] = nested;
                }
            }
            else if (!JsonNode.DeepEquals(oldValue, after[name]))
            {
                patch[name] = after[name]?.DeepClone();
            }
        }

        foreach (var (name, newValue) in after)
        {
            if (!before.ContainsKey(name))
            {
                patch[name] = newValue?.DeepClone();
            }
        }

        return patch;
    }
}
