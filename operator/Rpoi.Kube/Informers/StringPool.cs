using System.Collections.Concurrent;

namespace Rpoi.Kube.Informers;

/// <summary>
/// One shared instance per distinct string for cache transforms. Every object read from the API brings its own copy of
/// strings that thousands of cached objects share (label keys and values such as a TPU shape, namespaces, condition
/// types and reasons, node names held by both a Node and its Lease); pooling them keeps one copy. Thread-safe, and
/// bounded: once <see cref="Capacity"/> distinct strings are held, new ones pass through unpooled, so strings that never
/// repeat (UIDs, resource versions) must simply not be pooled, and a pool cannot grow without limit if they are.
/// </summary>
public sealed class StringPool
{
    private readonly ConcurrentDictionary<string, string> _strings = new(StringComparer.Ordinal);

    /// <summary>Creates a pool that holds at most <paramref name="capacity"/> distinct strings.</summary>
    public StringPool(int capacity = 100_000)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
    }

    /// <summary>The pool shared by the operator's cache transforms.</summary>
    public static StringPool Shared { get; } = new();

    /// <summary>Most distinct strings held.</summary>
    public int Capacity { get; }

    /// <summary>Distinct strings held now.</summary>
    public int Count => _strings.Count;

    /// <summary>The pooled instance equal to <paramref name="value"/> (added when new and there is room); null stays null.</summary>
    public string? Intern(string? value)
    {
        if (value is null)
        {
            return null;
        }

        if (value.Length == 0)
        {
            return string.Empty;
        }

        if (_strings.TryGetValue(value, out var pooled))
        {
            return pooled;
        }

        // Count is a full lock of the dictionary; it is read only on a miss, which is rare once the pool is warm.
        return _strings.Count < Capacity ? _strings.GetOrAdd(value, value) : value;
    }

    /// <summary>
    /// A read-only copy of <paramref name="map"/> (<see cref="CompactStringMap"/>) with only the keys <paramref name="keep"/>
    /// accepts, keys pooled and values too unless <paramref name="poolValues"/> is false (values that never repeat, such as
    /// UIDs and times); null when nothing is kept.
    /// </summary>
    public IDictionary<string, string>? Keep(IDictionary<string, string>? map, Func<string, bool> keep, bool poolValues = true)
    {
        ArgumentNullException.ThrowIfNull(keep);
        if (map is null)
        {
            return null;
        }

        List<KeyValuePair<string, string>>? kept = null;
        foreach (var (key, value) in map)
        {
            if (keep(key))
            {
                (kept ??= []).Add(new(Intern(key)!, poolValues ? Intern(value)! : value));
            }
        }

        return kept is null ? null : new CompactStringMap(kept);
    }

    /// <summary>Pools every element of <paramref name="list"/> in place.</summary>
    public IList<string>? InternAll(IList<string>? list)
    {
        if (list is null)
        {
            return null;
        }

        for (var i = 0; i < list.Count; i++)
        {
            list[i] = Intern(list[i])!;
        }

        return list;
    }
}
