using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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
    private readonly Dictionary<string, Dictionary<string, IndexKeys>> _indices = new(StringComparer.Ordinal);

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

            _indices[name] = new Dictionary<string, IndexKeys>(StringComparer.Ordinal);
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

            return index.TryGetValue(value, out var keys) ? [.. keys.All.Select(k => _items[k])] : [];
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
            // In place: the keys are a struct held in the index's own entry.
            ref var keys = ref CollectionsMarshal.GetValueRefOrAddDefault(index, value, out _);
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
                ref var keys = ref CollectionsMarshal.GetValueRefOrNullRef(index, value);
                if (!Unsafe.IsNullRef(ref keys) && keys.Remove(key) && keys.Count == 0)
                {
                    index.Remove(value);
                }
            }
        }
    }

    /// <summary>
    /// The keys of one index value. Most values name one object (a nonce, a UID, a lease's nodes), so one key is held
    /// inline and a set is made only for a second: with 10,000 cached objects per index that is a HashSet (about 200
    /// bytes) fewer per object (BENCHMARKS.md "Operator memory"). A struct inside the index's entry, not an object of its
    /// own (about 32 bytes fewer per index value; BENCHMARKS.md "memcache"); an ObjectKey always has a name, so a null
    /// name means "no key held".
    /// </summary>
    private struct IndexKeys
    {
        private ObjectKey _one;
        private HashSet<ObjectKey>? _many;

        private readonly bool HasOne => _one.Name is not null;

        public readonly int Count => _many?.Count ?? (HasOne ? 1 : 0);

        public readonly IEnumerable<ObjectKey> All => _many ?? (HasOne ? [_one] : []);

        public void Add(ObjectKey key)
        {
            if (_many is not null)
            {
                _many.Add(key);
            }
            else if (!HasOne)
            {
                _one = key;
            }
            else if (_one != key)
            {
                _many = [_one, key];
                _one = default;
            }
        }

        public bool Remove(ObjectKey key)
        {
            if (_many is not null)
            {
                return _many.Remove(key);
            }

            if (HasOne && _one == key)
            {
                _one = default;
                return true;
            }

            return false;
        }
    }
}
