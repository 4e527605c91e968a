using k8s;
using k8s.Models;

namespace Rpoi.Kube.Informers;

/// <summary>One page-free list of objects and the resourceVersion to watch from.</summary>
/// <typeparam name="T">The object type.</typeparam>
/// <param name="Items">The objects.</param>
/// <param name="ResourceVersion">The list's <c>metadata.resourceVersion</c>.</param>
public sealed record ResourceList<T>(IReadOnlyList<T> Items, string ResourceVersion);

/// <summary>
/// The few API calls the runtime needs for one resource type, so informers, finalizers and status
/// helpers work the same for custom resources and built-in kinds (Node, Secret).
/// </summary>
/// <typeparam name="T">The object type.</typeparam>
public interface IResourceClient<T>
    where T : class, IKubernetesObject<V1ObjectMeta>
{
    /// <summary>A human-readable name of the resource (for logs and queue names), e.g. <c>widgets.example.test</c>.</summary>
    string Resource { get; }

    /// <summary>Lists all objects (a consistent read).</summary>
    Task<ResourceList<T>> ListAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Lists all objects in pages of at most <paramref name="limit"/> (<c>limit</c> and <c>continue</c>, as client-go's
    /// reflector does with 500), so a big list never sits in memory whole: a reader can shrink each page before the next
    /// arrives. Every page carries the resourceVersion of the same snapshot. When the server has dropped the snapshot
    /// (410 Expired between pages) the error reaches the caller, which lists again. Clients that cannot page give one page.
    /// </summary>
    async IAsyncEnumerable<ResourceList<T>> ListPagesAsync(int limit, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        yield return await ListAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Watches from <paramref name="resourceVersion"/> with bookmarks (<c>allowWatchBookmarks=true</c>), asking the
    /// server to end the stream after <paramref name="timeoutSeconds"/> (<c>timeoutSeconds</c>; the stream then just
    /// ends, as every real API server ends every watch sooner or later). Server ERROR events (e.g. 410 Gone) and
    /// lines that cannot be read are reported to <paramref name="onError"/> (the former as <see cref="KubernetesException"/>).
    /// </summary>
    IAsyncEnumerable<(WatchEventType Type, T Object)> WatchAsync(string resourceVersion, int timeoutSeconds, Action<Exception> onError, CancellationToken cancellationToken);

    /// <summary>Reads one object; null when it does not exist.</summary>
    Task<T?> GetAsync(ObjectKey key, CancellationToken cancellationToken);

    /// <summary>Patches the object (JSON, merge or apply patch, per <see cref="V1Patch.Type"/>).</summary>
    Task<T> PatchAsync(ObjectKey key, V1Patch patch, CancellationToken cancellationToken);

    /// <summary>Patches the object's <c>status</c> subresource.</summary>
    Task<T> PatchStatusAsync(ObjectKey key, V1Patch patch, CancellationToken cancellationToken);
}
