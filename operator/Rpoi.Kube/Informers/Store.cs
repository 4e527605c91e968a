using k8s;
using k8s.Models;

namespace Rpoi.Kube.Informers;

/// <summary>
/// The informer's thread-safe local cache (client-go's <c>ThreadSafeStore</c> + <c>Indexer</c>):
/// objects by key, plus named indexes such as "by lease" so a reconciler finds related objects
/// without asking the API server.
/// </summary>
/// <typeparam name="T">The object type.</typeparam>
public sealed class Store<T>
    where T : class, IKubernetesObject<V1ObjectMeta>
{
    private readonly Lock _gate = new();
    private readonly Dictionary<ObjectKey, T> _items = [];
    private readonly Dictionary<string, Func<T, IEnumerable<string>>> _indexers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Dictionary<string, HashSet<ObjectKey>>> _indices = new(StringComparer.Ordinal);

    /// <summary>Number of cached objects.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _items.Count;
            }
        }
    }

    /// <summary>
    /// Adds a named index. <paramref name="indexFunc"/> returns the index values of an object (none to
    /// leave it out). Objects already cached are indexed at once.
    /// </summary>
    /// <exception cref="ArgumentException">An index named <paramref name="name"/> already exists.</exception>
    public void AddIndex(string name, Func<T, IEnumerable<string>> indexFunc)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(indexFunc);
        lock (_gate)
        {
            if (!_indexers.TryAdd(name, indexFunc))
            {
                throw new ArgumentException($"Index '{name}' already exists; give each index a distinct name.", nameof(name));
            }

            _indices[name] = new Dictionary<string, HashSet<ObjectKey>>(StringComparer.Ordinal);
            foreach (var (key, obj) in _items)
            {
                IndexLocked(name, key, obj);
            }
        }
    }

    /// <summary>The cached object with <paramref name="key"/>, or null.</summary>
    public T? Get(ObjectKey key)
    {
        lock (_gate)
        {
            return _items.GetValueOrDefault(key);
        }
    }

    /// <summary>A snapshot of all cached objects.</summary>
    public IReadOnlyList<T> List()
    {
        lock (_gate)
        {
            return [.. _items.Values];
        }
    }

    /// <summary>A snapshot of all cached keys.</summary>
    public IReadOnlyList<ObjectKey> Keys()
    {
        lock (_gate)
        {
            return [.. _items.Keys];
        }
    }

    /// <summary>The cached objects whose index <paramref name="indexName"/> contains <paramref name="value"/>.</summary>
    /// <exception cref="ArgumentException">No index is named <paramref name="indexName"/>.</exception>
    public IReadOnlyList<T> ByIndex(string indexName, string value)
    {
        lock (_gate)
        {
            if (!_indices.TryGetValue(indexName, out var index))
            {
                throw new ArgumentException($"No index named '{indexName}'; add it with AddIndex before the informer starts.", nameof(indexName));
            }

            return index.TryGetValue(value, out var keys) ? [.. keys.Select(k => _items[k])] : [];
        }
    }

    /// <summary>Inserts or replaces an object; returns the previous one.</summary>
    internal T? Upsert(T obj)
    {
        var key = ObjectKey.Of(obj);
        lock (_gate)
        {
            var old = _items.GetValueOrDefault(key);
            if (old is not null)
            {
                UnindexLocked(key, old);
            }

            _items[key] = obj;
            foreach (var name in _indexers.Keys)
            {
                IndexLocked(name, key, obj);
            }

            return old;
        }
    }

    /// <summary>Removes an object; returns it, or null when it was not cached.</summary>
    internal T? Remove(ObjectKey key)
    {
        lock (_gate)
        {
            if (!_items.Remove(key, out var old))
            {
                return null;
            }

            UnindexLocked(key, old);
            return old;
        }
    }

    private void IndexLocked(string name, ObjectKey key, T obj)
    {
        var index = _indices[name];
        foreach (var value in _indexers[name](obj))
        {
            if (!index.TryGetValue(value, out var keys))
            {
                index[value] = keys = [];
            }

            keys.Add(key);
        }
    }

    private void UnindexLocked(ObjectKey key, T obj)
    {
        foreach (var (name, fn) in _indexers)
        {
            var index = _indices[name];
            foreach (var value in fn(obj))
            {
                if (index.TryGetValue(value, out var keys) && keys.Remove(key) && keys.Count == 0)
                {
                    index.Remove(value);
                }
            }
        }
    }
}
