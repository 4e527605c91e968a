using Rpoi.Kube.Informers;

namespace Rpoi.Kube.Tests;

/// <summary>The cache transforms' string pool: one instance per distinct string, bounded, thread-safe.</summary>
public sealed class StringPoolTests
{
    [Fact]
    public void Equal_strings_come_back_as_one_instance_and_null_stays_null()
    {
        var pool = new StringPool();
        var a = new string("tpu-v5-lite-podslice".AsSpan());
        var b = new string("tpu-v5-lite-podslice".AsSpan());
        Assert.NotSame(a, b);

        Assert.Same(pool.Intern(a), pool.Intern(b));
        Assert.Same(a, pool.Intern(b));
        Assert.Null(pool.Intern(null));
        Assert.Same(string.Empty, pool.Intern(new string(' ', 0)));
        Assert.Equal(1, pool.Count);
    }

    [Fact]
    public void A_full_pool_passes_new_strings_through_and_keeps_serving_the_ones_it_holds()
    {
        var pool = new StringPool(capacity: 2);
        var first = pool.Intern(new string('a', 3));
        pool.Intern(new string('b', 3));
        var third = new string('c', 3);

        Assert.Same(third, pool.Intern(third));
        Assert.NotSame(pool.Intern(new string('c', 3)), third);
        Assert.Equal(2, pool.Count);
        Assert.Same(first, pool.Intern(new string('a', 3)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new StringPool(0));
    }

    [Fact]
    public void Keep_copies_only_the_accepted_keys_pooled_and_gives_null_when_none_is_kept()
    {
        var pool = new StringPool();
        var labels = new Dictionary<string, string> { ["rpoi.io/lease-name"] = new string('x', 2), ["kubernetes.io/hostname"] = "n-1" };
        var other = new Dictionary<string, string> { ["rpoi.io/lease-name"] = new string('x', 2) };

        var kept = pool.Keep(labels, k => k.StartsWith("rpoi.io/", StringComparison.Ordinal))!;
        var kept2 = pool.Keep(other, k => k.StartsWith("rpoi.io/", StringComparison.Ordinal))!;

        Assert.Equal(["rpoi.io/lease-name"], kept.Keys);
        Assert.Same(kept["rpoi.io/lease-name"], kept2["rpoi.io/lease-name"]);
        Assert.Null(pool.Keep(labels, _ => false));
        Assert.Null(pool.Keep(null, _ => true));
    }

    [Fact]
    public async Task Threads_interning_at_once_all_get_the_same_instance()
    {
        var pool = new StringPool();
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => pool.Intern(new string('z', 5)))));
        Assert.All(results, r => Assert.Same(results[0], r));
    }

    [Fact]
    public void Keep_gives_a_read_only_compact_map_that_reads_and_serializes_like_a_dictionary()
    {
        var pool = new StringPool();
        var labels = new Dictionary<string, string> { ["rpoi.io/a"] = "1", ["other"] = "x", ["rpoi.io/b"] = "2" };

        var kept = pool.Keep(labels, k => k.StartsWith("rpoi.io/", StringComparison.Ordinal))!;

        Assert.IsType<CompactStringMap>(kept);
        Assert.Equal(2, kept.Count);
        Assert.True(kept.TryGetValue("rpoi.io/b", out var b) && b == "2");
        Assert.False(kept.ContainsKey("other"));
        Assert.Throws<KeyNotFoundException>(() => kept["other"]);
        Assert.Equal(
            k8s.KubernetesJson.Serialize(new Dictionary<string, string> { ["rpoi.io/a"] = "1", ["rpoi.io/b"] = "2" }),
            k8s.KubernetesJson.Serialize(kept));
        // The cache's maps are shared by every reader: a write must go to a copy, so writing the cached one fails loudly.
        Assert.True(kept.IsReadOnly);
        Assert.Throws<NotSupportedException>(() => kept["rpoi.io/a"] = "changed");
        Assert.Throws<NotSupportedException>(() => kept.Remove("rpoi.io/a"));
        Assert.Equal("1", kept["rpoi.io/a"]);
        Assert.Throws<ArgumentException>(() => new CompactStringMap([new("k", "1"), new("k", "2")]));
    }
}
