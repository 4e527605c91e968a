using k8s.Models;
using Rpoi.Kube.Informers;

namespace Rpoi.Kube.Tests;

public sealed class StoreTests
{
    private static V1ConfigMap Map(string name, string? owner, string rv = "1") => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "ns", ResourceVersion = rv, Labels = owner is null ? null : new Dictionary<string, string> { ["owner"] = owner } },
    };

    private static IEnumerable<string> ByOwner(V1ConfigMap m) =>
        m.Metadata.Labels is { } l && l.TryGetValue("owner", out var o) ? [o] : [];

    [Fact]
    public void Index_follows_updates_and_removals()
    {
        var store = new Store<V1ConfigMap>();
        store.AddIndex("by-owner", ByOwner);
        store.Upsert(Map("a", "lease-1"));
        store.Upsert(Map("b", "lease-1"));
        store.Upsert(Map("c", "lease-2"));
        Assert.Equal(["a", "b"], store.ByIndex("by-owner", "lease-1").Select(m => m.Metadata.Name).Order());

        store.Upsert(Map("b", "lease-2", "2"));
        Assert.Equal(["a"], store.ByIndex("by-owner", "lease-1").Select(m => m.Metadata.Name));
        Assert.Equal(["b", "c"], store.ByIndex("by-owner", "lease-2").Select(m => m.Metadata.Name).Order());

        store.Remove(new ObjectKey("ns", "a"));
        Assert.Empty(store.ByIndex("by-owner", "lease-1"));
        Assert.Null(store.Get(new ObjectKey("ns", "a")));
        Assert.Equal(2, store.Count);
    }

    [Fact]
    public void Index_added_late_covers_cached_objects()
    {
        var store = new Store<V1ConfigMap>();
        store.Upsert(Map("a", "x"));
        store.AddIndex("by-owner", ByOwner);
        Assert.Single(store.ByIndex("by-owner", "x"));
    }

    [Fact]
    public void Unknown_or_duplicate_index_names_are_rejected()
    {
        var store = new Store<V1ConfigMap>();
        store.AddIndex("by-owner", ByOwner);
        Assert.Contains("AddIndex", Assert.Throws<ArgumentException>(() => store.ByIndex("nope", "x")).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => store.AddIndex("by-owner", ByOwner));
    }

    [Fact]
    public void Keys_print_and_parse_as_namespace_slash_name()
    {
        Assert.Equal("ns/a", new ObjectKey("ns", "a").ToString());
        Assert.Equal("node-1", new ObjectKey(null, "node-1").ToString());
        Assert.Equal(new ObjectKey("ns", "a"), ObjectKey.Parse("ns/a"));
        Assert.Equal(new ObjectKey(null, "n"), ObjectKey.Parse("n"));
    }
}
