using System.Collections.Concurrent;
using k8s;
using k8s.Models;
using Rpoi.Kube.Informers;

namespace Rpoi.Kube.Controllers;

/// <summary>
/// The versions a reconciler wrote itself, so the controller can skip the watch event that merely echoes such a write.
/// The reconcile that wrote an object already acted on everything it holds; reconciling the echo again only repeats that
/// work (and, while the cache still lags, reads an older copy). Events for any other version, by anyone, still enqueue.
/// Record only writes whose reconcile needs no follow-up from its own echo; see <see cref="Controller{T}.SkipEchoesOf"/>.
/// </summary>
/// <typeparam name="T">The resource type.</typeparam>
public sealed class OwnWrites<T>
    where T : class, IKubernetesObject<V1ObjectMeta>
{
    private readonly ConcurrentDictionary<ObjectKey, string> versions = new();

    /// <summary>Number of writes whose echo has not been seen yet.</summary>
    public int Pending => versions.Count;

    private Func<ObjectKey, string?>? cachedVersion;

    /// <summary>Remembers the version <paramref name="written"/> as returned by the API server.</summary>
    public void Record(T written)
    {
        ArgumentNullException.ThrowIfNull(written);
        var key = ObjectKey.Of(written);
        if (written.Metadata?.ResourceVersion is not { Length: > 0 } version)
        {
            return;
        }

        var cache = Volatile.Read(ref cachedVersion);
        var before = cache?.Invoke(key);
        if (before == version)
        {
            return;
        }

        versions[key] = version;

        // The informer stores a version before it hands the event to the controller. If the cache moved while this
        // write was being recorded, its echo may have been checked before the entry existed and would never come
        // again: drop the entry. At worst the echo is then reconciled once more, which is safe; a lingering entry is not.
        if (cache is not null && cache(key) != before)
        {
            versions.TryRemove(new KeyValuePair<ObjectKey, string>(key, version));
        }
    }

    /// <summary>
    /// Where the controller's cache says each object stands: a write whose echo reached the cache before the write's own
    /// answer came back (a busy machine) is not recorded, since that echo has already been handled.
    /// </summary>
    internal void ObserveCache(Func<ObjectKey, string?> versionInCache) => Volatile.Write(ref cachedVersion, versionInCache);

    /// <summary>True (once) when <paramref name="observed"/> is exactly the version last recorded for its key.</summary>
    public bool IsEcho(T observed)
    {
        ArgumentNullException.ThrowIfNull(observed);
        var key = ObjectKey.Of(observed);
        return observed.Metadata?.ResourceVersion is { Length: > 0 } version
            && versions.TryGetValue(key, out var recorded)
            && recorded == version
            && versions.TryRemove(new KeyValuePair<ObjectKey, string>(key, recorded));
    }

    /// <summary>Forgets the key (the object is gone).</summary>
    public void Forget(ObjectKey key) => versions.TryRemove(key, out _);

    /// <summary>A client whose patches are recorded here; reads and watches pass through.</summary>
    public IResourceClient<T> Wrap(IResourceClient<T> inner)
    {
        ArgumentNullException.ThrowIfNull(inner);
        return new RecordingClient(inner, this);
    }

    private sealed class RecordingClient(IResourceClient<T> inner, OwnWrites<T> writes) : IResourceClient<T>
    {
        public string Resource => inner.Resource;

        public Task<ResourceList<T>> ListAsync(CancellationToken cancellationToken) => inner.ListAsync(cancellationToken);

        public IAsyncEnumerable<(WatchEventType Type, T Object)> WatchAsync(string resourceVersion, int timeoutSeconds, Action<Exception> onError, CancellationToken cancellationToken) =>
            inner.WatchAsync(resourceVersion, timeoutSeconds, onError, cancellationToken);

        public Task<T?> GetAsync(ObjectKey key, CancellationToken cancellationToken) => inner.GetAsync(key, cancellationToken);

        public async Task<T> PatchAsync(ObjectKey key, V1Patch patch, CancellationToken cancellationToken)
        {
            var written = await inner.PatchAsync(key, patch, cancellationToken).ConfigureAwait(false);
            writes.Record(written);
            return written;
        }

        public async Task<T> PatchStatusAsync(ObjectKey key, V1Patch patch, CancellationToken cancellationToken)
        {
            var written = await inner.PatchStatusAsync(key, patch, cancellationToken).ConfigureAwait(false);
            writes.Record(written);
            return written;
        }
    }
}
