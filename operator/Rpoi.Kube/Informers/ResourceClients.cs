using System.Net;
using System.Runtime.CompilerServices;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace Rpoi.Kube.Informers;

/// <summary>Where a custom resource lives in the API: <c>/apis/{Group}/{Version}/[namespaces/{ns}/]{Plural}</c>.</summary>
/// <param name="Group">API group, e.g. <c>example.test</c>.</param>
/// <param name="Version">API version, e.g. <c>v1</c>.</param>
/// <param name="Plural">Plural resource name, e.g. <c>widgets</c>.</param>
/// <param name="Namespaced">True for namespaced resources.</param>
public sealed record CustomResource(string Group, string Version, string Plural, bool Namespaced = true);

/// <summary>Factories for <see cref="IResourceClient{T}"/> over the KubernetesClient API.</summary>
public static class ResourceClients
{
    /// <summary>
    /// A typed custom resource. Items arrive as JSON and are read into <typeparamref name="T"/> with
    /// <see cref="KubernetesJson"/>.
    /// </summary>
    /// <param name="client">The Kubernetes client.</param>
    /// <param name="resource">Group, version and plural.</param>
    /// <param name="namespace">Watch one namespace; all namespaces (or cluster scope) when null.</param>
    public static IResourceClient<T> Custom<T>(IKubernetes client, CustomResource resource, string? @namespace = null)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(resource);
        return new CustomResourceClient<T>(client, resource, @namespace);
    }

    /// <summary>Nodes (cluster-scoped).</summary>
    public static IResourceClient<V1Node> Nodes(IKubernetes client)
    {
        ArgumentNullException.ThrowIfNull(client);
        return new DelegateResourceClient<V1Node>(
            "nodes",
            async ct =>
            {
                var list = await client.CoreV1.ListNodeAsync(cancellationToken: ct).ConfigureAwait(false);
                return new ResourceList<V1Node>([.. list.Items], list.Metadata?.ResourceVersion ?? string.Empty);
            },
            async (limit, next, ct) =>
            {
                var list = await client.CoreV1.ListNodeAsync(continueParameter: next, limit: limit, cancellationToken: ct).ConfigureAwait(false);
                return (new ResourceList<V1Node>([.. list.Items], list.Metadata?.ResourceVersion ?? string.Empty), list.Metadata?.ContinueProperty);
            },
            (rv, timeout, onError, ct) => client.CoreV1.WatchListNodeAsync(allowWatchBookmarks: true, resourceVersion: rv, timeoutSeconds: timeout, onError: onError, cancellationToken: ct),
            (key, ct) => client.CoreV1.ReadNodeAsync(key.Name, cancellationToken: ct),
            (key, patch, ct) => client.CoreV1.PatchNodeAsync(patch, key.Name, cancellationToken: ct),
            (key, patch, ct) => client.CoreV1.PatchNodeStatusAsync(patch, key.Name, cancellationToken: ct));
    }

    /// <summary>Secrets of one namespace, or of all namespaces when <paramref name="namespace"/> is null. Secrets have no status.</summary>
    public static IResourceClient<V1Secret> Secrets(IKubernetes client, string? @namespace = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        return new DelegateResourceClient<V1Secret>(
            "secrets",
            async ct =>
            {
                var list = @namespace is null
                    ? await client.CoreV1.ListSecretForAllNamespacesAsync(cancellationToken: ct).ConfigureAwait(false)
                    : await client.CoreV1.ListNamespacedSecretAsync(@namespace, cancellationToken: ct).ConfigureAwait(false);
                return new ResourceList<V1Secret>([.. list.Items], list.Metadata?.ResourceVersion ?? string.Empty);
            },
            async (limit, next, ct) =>
            {
                var list = @namespace is null
                    ? await client.CoreV1.ListSecretForAllNamespacesAsync(continueParameter: next, limit: limit, cancellationToken: ct).ConfigureAwait(false)
                    : await client.CoreV1.ListNamespacedSecretAsync(@namespace, continueParameter: next, limit: limit, cancellationToken: ct).ConfigureAwait(false);
                return (new ResourceList<V1Secret>([.. list.Items], list.Metadata?.ResourceVersion ?? string.Empty), list.Metadata?.ContinueProperty);
            },
            (rv, timeout, onError, ct) => @namespace is null
                ? client.CoreV1.WatchListSecretForAllNamespacesAsync(allowWatchBookmarks: true, resourceVersion: rv, timeoutSeconds: timeout, onError: onError, cancellationToken: ct)
                : client.CoreV1.WatchListNamespacedSecretAsync(@namespace, allowWatchBookmarks: true, resourceVersion: rv, timeoutSeconds: timeout, onError: onError, cancellationToken: ct),
            (key, ct) => client.CoreV1.ReadNamespacedSecretAsync(key.Name, RequireNamespace(key), cancellationToken: ct),
            (key, patch, ct) => client.CoreV1.PatchNamespacedSecretAsync(patch, key.Name, RequireNamespace(key), cancellationToken: ct),
            null);
    }

    /// <summary>Pages of a list until the server gives no <c>continue</c> token.</summary>
    private static async IAsyncEnumerable<ResourceList<T>> Pages<T>(int limit, Func<int, string?, CancellationToken, Task<(ResourceList<T> Page, string? Continue)>> page, [EnumeratorCancellation] CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        string? next = null;
        do
        {
            var (items, more) = await page(limit, next, ct).ConfigureAwait(false);
            yield return items;
            next = more;
        }
        while (!string.IsNullOrEmpty(next));
    }

    internal static string RequireNamespace(ObjectKey key) =>
        key.Namespace ?? throw new ArgumentException($"Object key '{key}' has no namespace but the resource is namespaced; use namespace/name.", nameof(key));

    internal static bool IsNotFound(Exception e) => e is HttpOperationException { Response.StatusCode: HttpStatusCode.NotFound };

    private sealed class DelegateResourceClient<T>(
        string resource,
        Func<CancellationToken, Task<ResourceList<T>>> list,
        Func<int, string?, CancellationToken, Task<(ResourceList<T> Page, string? Continue)>> listPage,
        Func<string, int, Action<Exception>, CancellationToken, IAsyncEnumerable<(WatchEventType, T)>> watch,
        Func<ObjectKey, CancellationToken, Task<T>> get,
        Func<ObjectKey, V1Patch, CancellationToken, Task<T>> patch,
        Func<ObjectKey, V1Patch, CancellationToken, Task<T>>? patchStatus) : IResourceClient<T>
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        public string Resource => resource;

        public Task<ResourceList<T>> ListAsync(CancellationToken cancellationToken) => list(cancellationToken);

        public IAsyncEnumerable<ResourceList<T>> ListPagesAsync(int limit, CancellationToken cancellationToken) => Pages(limit, listPage, cancellationToken);

        public IAsyncEnumerable<(WatchEventType Type, T Object)> WatchAsync(string resourceVersion, int timeoutSeconds, Action<Exception> onError, CancellationToken cancellationToken) =>
            watch(resourceVersion, timeoutSeconds, onError, cancellationToken);

        public async Task<T?> GetAsync(ObjectKey key, CancellationToken cancellationToken)
        {
            try
            {
                return await get(key, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpOperationException e) when (IsNotFound(e))
            {
                return null;
            }
        }

        public Task<T> PatchAsync(ObjectKey key, V1Patch patch1, CancellationToken cancellationToken) => patch(key, patch1, cancellationToken);

        public Task<T> PatchStatusAsync(ObjectKey key, V1Patch patch1, CancellationToken cancellationToken) =>
            patchStatus is null
                ? throw new NotSupportedException($"{resource} have no status subresource; patch the object itself.")
                : patchStatus(key, patch1, cancellationToken);
    }

    private sealed class CustomResourceClient<T>(IKubernetes client, CustomResource r, string? ns) : IResourceClient<T>
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        public string Resource => $"{r.Plural}.{r.Group}";

        public async Task<ResourceList<T>> ListAsync(CancellationToken cancellationToken) => (await ListPageAsync(null, null, cancellationToken).ConfigureAwait(false)).Page;

        public IAsyncEnumerable<ResourceList<T>> ListPagesAsync(int limit, CancellationToken cancellationToken) => Pages(limit, (l, n, ct) => ListPageAsync(l, n, ct), cancellationToken);

        private async Task<(ResourceList<T> Page, string? Continue)> ListPageAsync(int? limit, string? next, CancellationToken cancellationToken)
        {
            object raw = !r.Namespaced
                ? await client.CustomObjects.ListClusterCustomObjectAsync(r.Group, r.Version, r.Plural, continueParameter: next, limit: limit, cancellationToken: cancellationToken).ConfigureAwait(false)
                : ns is null
                    ? await client.CustomObjects.ListCustomObjectForAllNamespacesAsync(r.Group, r.Version, r.Plural, continueParameter: next, limit: limit, cancellationToken: cancellationToken).ConfigureAwait(false)
                    : await client.CustomObjects.ListNamespacedCustomObjectAsync(r.Group, r.Version, ns, r.Plural, continueParameter: next, limit: limit, cancellationToken: cancellationToken).ConfigureAwait(false);
            var json = ToJson(raw);
            var rv = json.TryGetProperty("metadata", out var meta) && meta.TryGetProperty("resourceVersion", out var v) ? v.GetString() ?? string.Empty : string.Empty;
            var more = meta.ValueKind == JsonValueKind.Object && meta.TryGetProperty("continue", out var c) && c.GetString() is { Length: > 0 } token ? token : null;
            var items = new List<T>();
            if (json.TryGetProperty("items", out var array) && array.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in array.EnumerateArray())
                {
                    items.Add(KubernetesJson.Deserialize<T>(item));
                }
            }

            return (new ResourceList<T>(items, rv), more);
        }

        public async IAsyncEnumerable<(WatchEventType Type, T Object)> WatchAsync(
            string resourceVersion,
            int timeoutSeconds,
            Action<Exception> onError,
            [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            var stream = !r.Namespaced
                ? client.CustomObjects.WatchListClusterCustomObjectAsync(r.Group, r.Version, r.Plural, allowWatchBookmarks: true, resourceVersion: resourceVersion, timeoutSeconds: timeoutSeconds, onError: onError, cancellationToken: cancellationToken)
                : ns is null
                    ? client.CustomObjects.WatchListCustomObjectForAllNamespacesAsync(r.Group, r.Version, r.Plural, allowWatchBookmarks: true, resourceVersion: resourceVersion, timeoutSeconds: timeoutSeconds, onError: onError, cancellationToken: cancellationToken)
                    : client.CustomObjects.WatchListNamespacedCustomObjectAsync(r.Group, r.Version, ns, r.Plural, allowWatchBookmarks: true, resourceVersion: resourceVersion, timeoutSeconds: timeoutSeconds, onError: onError, cancellationToken: cancellationToken);
            await foreach (var (type, raw) in stream.ConfigureAwait(false))
            {
                yield return (type, KubernetesJson.Deserialize<T>(ToJson(raw)));
            }
        }

        public async Task<T?> GetAsync(ObjectKey key, CancellationToken cancellationToken)
        {
            try
            {
                var raw = r.Namespaced
                    ? await client.CustomObjects.GetNamespacedCustomObjectAsync(r.Group, r.Version, RequireNamespace(key), r.Plural, key.Name, cancellationToken).ConfigureAwait(false)
                    : await client.CustomObjects.GetClusterCustomObjectAsync(r.Group, r.Version, r.Plural, key.Name, cancellationToken).ConfigureAwait(false);
                return KubernetesJson.Deserialize<T>(ToJson(raw));
            }
            catch (HttpOperationException e) when (IsNotFound(e))
            {
                return null;
            }
        }

        public async Task<T> PatchAsync(ObjectKey key, V1Patch patch, CancellationToken cancellationToken)
        {
            var raw = r.Namespaced
                ? await client.CustomObjects.PatchNamespacedCustomObjectAsync(patch, r.Group, r.Version, RequireNamespace(key), r.Plural, key.Name, cancellationToken: cancellationToken).ConfigureAwait(false)
                : await client.CustomObjects.PatchClusterCustomObjectAsync(patch, r.Group, r.Version, r.Plural, key.Name, cancellationToken: cancellationToken).ConfigureAwait(false);
            return KubernetesJson.Deserialize<T>(ToJson(raw));
        }

        public async Task<T> PatchStatusAsync(ObjectKey key, V1Patch patch, CancellationToken cancellationToken)
        {
            var raw = r.Namespaced
                ? await client.CustomObjects.PatchNamespacedCustomObjectStatusAsync(patch, r.Group, r.Version, RequireNamespace(key), r.Plural, key.Name, cancellationToken: cancellationToken).ConfigureAwait(false)
                : await client.CustomObjects.PatchClusterCustomObjectStatusAsync(patch, r.Group, r.Version, r.Plural, key.Name, cancellationToken: cancellationToken).ConfigureAwait(false);
            return KubernetesJson.Deserialize<T>(ToJson(raw));
        }

        private static JsonElement ToJson(object raw) =>
            raw is JsonElement e ? e : JsonDocument.Parse(KubernetesJson.Serialize(raw)).RootElement;
    }
}
