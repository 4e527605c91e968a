using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace Rpoi.Kube.Informers;

/// <summary>
/// A small read-only string map for cached objects' labels and annotations: the pairs in one array, found by a linear
/// scan. A cached object keeps a handful of labels, where a <see cref="Dictionary{TKey, TValue}"/> costs about 220 bytes
/// (the dictionary, its buckets and entries) and this about 110 (BENCHMARKS.md "memcache"). Read-only because the
/// informer's cache is shared: a change must go to a copy (and to the API server as a patch), never to the cached map;
/// writing one throws <see cref="NotSupportedException"/>.
/// </summary>
public sealed class CompactStringMap : IDictionary<string, string>, IReadOnlyDictionary<string, string>
{
    // Key i at 2i, its value at 2i + 1; keys distinct (ordinal).
    private readonly string[] pairs;

    /// <summary>Copies <paramref name="entries"/> (keys must be distinct).</summary>
    /// <exception cref="ArgumentException">A key appears twice.</exception>
    public CompactStringMap(IEnumerable<KeyValuePair<string, string>> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var list = new List<string>();
        foreach (var (key, value) in entries)
        {
            ArgumentNullException.ThrowIfNull(key, nameof(entries));
            for (var i = 0; i < list.Count; i += 2)
            {
                if (string.Equals(list[i], key, StringComparison.Ordinal))
                {
                    throw new ArgumentException($"Key '{key}' appears twice; a map holds each key once.", nameof(entries));
                }
            }

            list.Add(key);
            list.Add(value);
        }

        pairs = [.. list];
    }

    /// <inheritdoc cref="IDictionary{TKey, TValue}.this"/>
    public string this[string key]
    {
        get => TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"The key '{key}' is not in the map.");
        set => throw ReadOnly();
    }

    /// <inheritdoc/>
    public int Count => pairs.Length / 2;

    /// <inheritdoc/>
    public bool IsReadOnly => true;

    /// <inheritdoc/>
    public ICollection<string> Keys => [.. Every(0)];

    /// <inheritdoc/>
    public ICollection<string> Values => [.. Every(1)];

    IEnumerable<string> IReadOnlyDictionary<string, string>.Keys => Every(0);

    IEnumerable<string> IReadOnlyDictionary<string, string>.Values => Every(1);

    /// <inheritdoc/>
    public bool ContainsKey(string key) => IndexOf(key) >= 0;

    /// <inheritdoc/>
    public bool TryGetValue(string key, [MaybeNullWhen(false)] out string value)
    {
        var i = IndexOf(key);
        value = i >= 0 ? pairs[i + 1] : null;
        return i >= 0;
    }

    /// <inheritdoc/>
    public bool Contains(KeyValuePair<string, string> item) => TryGetValue(item.Key, out var value) && string.Equals(value, item.Value, StringComparison.Ordinal);

    /// <inheritdoc/>
    public void CopyTo(KeyValuePair<string, string>[] array, int arrayIndex)
    {
        ArgumentNullException.ThrowIfNull(array);
        foreach (var pair in this)
        {
            array[arrayIndex++] = pair;
        }
    }

    /// <inheritdoc/>
    public IEnumerator<KeyValuePair<string, string>> GetEnumerator()
    {
        for (var i = 0; i < pairs.Length; i += 2)
        {
            yield return new KeyValuePair<string, string>(pairs[i], pairs[i + 1]);
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <inheritdoc/>
    public void Add(string key, string value) => throw ReadOnly();

    /// <inheritdoc/>
    public void Add(KeyValuePair<string, string> item) => throw ReadOnly();

    /// <inheritdoc/>
    public bool Remove(string key) => throw ReadOnly();

    /// <inheritdoc/>
    public bool Remove(KeyValuePair<string, string> item) => throw ReadOnly();

    /// <inheritdoc/>
    public void Clear() => throw ReadOnly();

    private int IndexOf(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        for (var i = 0; i < pairs.Length; i += 2)
        {
            if (string.Equals(pairs[i], key, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    private IEnumerable<string> Every(int offset)
    {
        for (var i = offset; i < pairs.Length; i += 2)
        {
            yield return pairs[i];
        }
    }

    private static NotSupportedException ReadOnly() =>
        new("This map belongs to an informer's cache and is read-only: change a copy of the object (and patch the API server), never the cached one.");
}
