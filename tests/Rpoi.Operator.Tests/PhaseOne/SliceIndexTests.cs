using System.Globalization;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Rpoi.Kube.Informers;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Operator.PhaseOne.Nodes;
using Rpoi.Operator.Tests.Support;

namespace Rpoi.Operator.Tests.PhaseOne;

/// <summary>
/// The free-slice index claims read (<see cref="TpuSliceIndex"/>) against a full scan of the same nodes: after seeded
/// random sequences of node adds, label changes, claims, releases, cordons, taints, NotReady, chip changes and deletes,
/// and after a rebuild from the cache.
/// </summary>
public sealed class SliceIndexTests : IAsyncLifetime
{
    private const string V5e = LeaseBuilder.V5e;
    private const string V6e = LeaseBuilder.V6e;
    private static readonly string[] Topologies = ["2x2", "2x4", "4x4"];
    private PhaseOneEnvironment env = null!;

    public async Task InitializeAsync() => env = await PhaseOneEnvironment.StartAsync();

    public async Task DisposeAsync() => await env.DisposeAsync();

    /// <summary>What the claim path grouped before the index: every free node of a shape, grouped, usable and free slices by key.</summary>
    private static Dictionary<string, List<string>> FullScan(IEnumerable<V1Node> nodes)
    {
        var result = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var byShape = nodes
            .Where(n => TpuSlices.LabelOf(n, TpuLabels.Accelerator) is not null && TpuSlices.LabelOf(n, TpuLabels.Topology) is not null)
            .GroupBy(n => new TpuShape(n.Metadata.Labels[TpuLabels.Accelerator], n.Metadata.Labels[TpuLabels.Topology]));
        foreach (var group in byShape.Where(g => g.Key.ChipsPerSlice > 0))
        {
            var free = TpuSlices.Group(group.Key, group.Where(n => TpuSlices.OwnerOf(n) is null)).Where(s => s.Usable && s.IsFree).Select(s => s.Key).ToList();
            if (free.Count > 0)
            {
                result[$"{group.Key.Accelerator}/{group.Key.Topology}"] = free;
            }
        }

        return result;
    }

    private static void AssertAgrees(IEnumerable<V1Node> nodes, TpuSliceIndex index, string when)
    {
        // The room check's sums: every slice of each shape grouped from all its hosts, as the capacity summary does.
        foreach (var group in nodes.Select(n => (Node: n, At: TpuSliceIndex.Locate(n))).Where(x => x.At is not null).GroupBy(x => x.At!.Value.ShapeKey))
        {
            var shape = group.First().At!.Value.Shape;
            var all = TpuSlices.Group(shape, group.Select(x => x.Node));
            var usable = all.Where(s => s.Usable).ToList();
            var expectedRoom = new TpuRoom(all.Count, usable.Count, usable.Sum(s => s.Chips), usable.Count(s => s.IsFree), usable.Where(s => s.IsFree).Sum(s => s.Chips));
            var actualRoom = index.RoomOf(group.Key, new Dictionary<TpuSliceId, TpuSlice?>());
            Assert.True(actualRoom is { } r && r.Room == expectedRoom && r.HostsPerSlice == (usable.FirstOrDefault()?.Nodes.Count ?? 0), $"{when}: room {actualRoom} but a full scan gives {expectedRoom}");
        }

        var expected = FullScan(nodes);
        var actual = index.Snapshot();
        Assert.True(
            expected.Count == actual.Count && expected.All(e => actual.TryGetValue(e.Key, out var keys) && keys.SequenceEqual(e.Value)),
            $"{when}: index {Describe(actual)} but a full scan gives {Describe(expected)}");
    }

    private static string Describe<T>(IEnumerable<KeyValuePair<string, T>> shapes)
        where T : IEnumerable<string> =>
        string.Join("; ", shapes.OrderBy(s => s.Key, StringComparer.Ordinal).Select(s => $"{s.Key}: {string.Join(",", s.Value)}"));

    private static V1Node Copy(V1Node node) => KubernetesJson.Deserialize<V1Node>(KubernetesJson.Serialize(node));

    private static V1Node NewNode(Random random, int serial)
    {
        var pool = $"pool-{random.Next(6)}";
        var name = $"gke-{pool}-{serial}";
        // Chips per host mostly whole slices of 2x2 (4) or hosts of a multi-host 4x4 (4 of 16); 8 makes a 2x4 single host.
        var chips = random.Next(10) switch { < 6 => 4, < 8 => 8, 8 => 1, _ => 0 };
        var node = new V1Node
        {
            Metadata = new V1ObjectMeta
            {
                Name = name,
                ResourceVersion = "1",
                Labels = new Dictionary<string, string>
                {
                    [TpuLabels.Accelerator] = random.Next(4) == 0 ? V6e : V5e,
                    [TpuLabels.Topology] = Topologies[random.Next(Topologies.Length)],
                    [TpuLabels.NodePool] = pool,
                },
            },
            Spec = new V1NodeSpec { Taints = [new V1Taint { Key = TpuLabels.GkeTpuTaintKey, Value = TpuLabels.GkeTpuTaintValue, Effect = TpuLabels.NoSchedule }] },
            Status = new V1NodeStatus { Conditions = [new V1NodeCondition { Type = "Ready", Status = "True" }] },
        };
        SetChips(node, chips);
        return node;
    }

    private static void SetChips(V1Node node, int chips)
    {
        var quantity = new ResourceQuantity(chips.ToString(CultureInfo.InvariantCulture));
        node.Status.Allocatable = new Dictionary<string, ResourceQuantity> { [TpuLabels.TpuResource] = quantity };
        node.Status.Capacity = new Dictionary<string, ResourceQuantity> { [TpuLabels.TpuResource] = quantity };
    }

    /// <summary>One random change to a copy of <paramref name="node"/> (the cache replaces objects, never mutates them).</summary>
    private static (V1Node Node, string What) Mutate(Random random, V1Node node, DateTimeOffset now)
    {
        var next = Copy(node);
        next.Metadata.ResourceVersion = (long.Parse(node.Metadata.ResourceVersion, CultureInfo.InvariantCulture) + 1).ToString(CultureInfo.InvariantCulture);
        string what;
        switch (random.Next(9))
        {
            case 0 or 1:
                GkeTpuProvider.AddMarks(next, new LeaseIdentity("team-a", $"lease-{random.Next(5)}", $"uid-{random.Next(5)}"), now);
                what = "claim";
                break;
            case 2 or 3:
                GkeTpuProvider.RemoveMarks(next);
                what = "release";
                break;
            case 4:
                next.Spec.Unschedulable = !(next.Spec.Unschedulable ?? false);
                what = "cordon/uncordon";
                break;
            case 5:
                // A lease taint without the UID (someone else's tool), or GKE's maintenance taint, or neither.
                var taints = next.Spec.Taints.Where(t => t.Key != TpuLabels.LeaseTaintKey && t.Key != GkeMaintenance.ImpendingTerminationTaint).ToList();
                switch (random.Next(3))
                {
                    case 0:
                        taints.Add(new V1Taint { Key = TpuLabels.LeaseTaintKey, Value = "other", Effect = TpuLabels.NoSchedule });
                        break;
                    case 1:
                        taints.Add(new V1Taint { Key = GkeMaintenance.ImpendingTerminationTaint, Effect = TpuLabels.NoSchedule });
                        break;
                }

                next.Spec.Taints = taints;
                what = "taints";
                break;
            case 6:
                next.Status.Conditions = [new V1NodeCondition { Type = "Ready", Status = random.Next(2) == 0 ? "True" : "False" }];
                what = "ready";
                break;
            case 7:
                // Labels that move the node to another shape or pool, or off TPU shapes altogether.
                switch (random.Next(4))
                {
                    case 0:
                        next.Metadata.Labels[TpuLabels.Topology] = Topologies[random.Next(Topologies.Length)];
                        break;
                    case 1:
                        next.Metadata.Labels[TpuLabels.NodePool] = $"pool-{random.Next(6)}";
                        break;
                    case 2:
                        next.Metadata.Labels.Remove(TpuLabels.NodePool);
                        break;
                    default:
                        next.Metadata.Labels[TpuLabels.Topology] = random.Next(2) == 0 ? "bogus" : Topologies[random.Next(Topologies.Length)];
                        break;
                }

                what = "labels";
                break;
            default:
                SetChips(next, random.Next(3) switch { 0 => 4, 1 => 8, _ => 0 });
                what = "chips";
                break;
        }

        return (next, what);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(1234)]
    [InlineData(98765)]
    public void Index_agrees_with_a_full_scan_after_random_node_changes_and_after_a_rebuild(int seed)
    {
        var random = new Random(seed);
        var cache = new Dictionary<string, V1Node>(StringComparer.Ordinal);
        var index = new TpuSliceIndex();
        var now = DateTimeOffset.Parse("2026-12-03T12:00:00Z", CultureInfo.InvariantCulture);
        var serial = 0;
        var changes = new Dictionary<string, int>(StringComparer.Ordinal);
        var shapesWithFree = 0;
        for (var step = 0; step < 3000; step++)
        {
            string what;
            var roll = random.Next(10);
            if (cache.Count < 8 || roll == 0)
            {
                var node = NewNode(random, serial++);
                cache[node.Metadata.Name] = node;
                index.Upsert(node);
                what = "add";
            }
            else if (roll == 1 && cache.Count > 20)
            {
                var name = cache.Keys.ElementAt(random.Next(cache.Count));
                cache.Remove(name);
                index.Remove(name);
                what = "delete";
            }
            else
            {
                var name = cache.Keys.ElementAt(random.Next(cache.Count));
                (var node, what) = Mutate(random, cache[name], now);
                cache[name] = node;
                index.Upsert(node);
            }

            changes[what] = changes.GetValueOrDefault(what) + 1;
            AssertAgrees(cache.Values, index, $"seed {seed}, step {step} ({what})");
            shapesWithFree = Math.Max(shapesWithFree, index.Snapshot().Count);
            if (step % 250 == 0)
            {
                // A restarted operator or a new leader builds the index from its cache alone.
                var rebuilt = new TpuSliceIndex();
                rebuilt.Rebuild(() => cache.Values);
                AssertAgrees(cache.Values, rebuilt, $"seed {seed}, rebuilt at step {step}");
            }
        }

        // The sequence really exercised every kind of change, and the index held free slices of several shapes at once.
        Assert.All(new[] { "add", "delete", "claim", "release", "cordon/uncordon", "taints", "ready", "labels", "chips" }, kind => Assert.True(changes.GetValueOrDefault(kind) > 20, kind));
        Assert.True(shapesWithFree >= 3, $"at most {shapesWithFree} shapes had free slices at once");
    }

    [Fact]
    public void Free_slices_are_taken_in_key_order_past_excluded_and_refused_ones_with_extra_ones_merged_in()
    {
        var index = new TpuSliceIndex();
        var shape = new TpuShape(V5e, "2x2");
        var nodes = Enumerable.Range(0, 6).Select(i =>
        {
            var random = new Random(i);
            var node = NewNode(random, i);
            node.Metadata.Name = $"n-{i}";
            node.Metadata.Labels[TpuLabels.Accelerator] = V5e;
            node.Metadata.Labels[TpuLabels.Topology] = "2x2";
            SetChips(node, 4);
            return node;
        }).ToList();
        foreach (var node in nodes.AsEnumerable().Reverse())
        {
            index.Upsert(node);
        }

        var extraNode = Copy(nodes[0]);
        extraNode.Metadata.Name = "n-2a";
        var extra = TpuSliceIndex.FreeSliceOf(shape, [extraNode])!;
        var taken = index.TakeFree("tpu-v5-lite-podslice/2x2", new HashSet<TpuSliceId> { new("n-1", false) }, [(new TpuSliceId("n-2a", false), extra)], s => s.Key != "n-3", skip: 1, take: 3);
        // n-0 skipped (kept for an older lease), n-1 excluded, n-2, then n-2a merged in, n-3 refused, n-4.
        Assert.Equal(["n-2", "n-2a", "n-4"], taken.Select(s => s.Key));
        Assert.Equal(["n-0", "n-1", "n-2", "n-3", "n-4", "n-5"], index.Snapshot()["tpu-v5-lite-podslice/2x2"]);
    }

    [Theory]
    [InlineData(11)]
    [InlineData(42)]
    public async Task Claims_through_the_index_take_what_a_full_scan_of_the_api_server_gives_after_random_changes_and_a_restart(int seed)
    {
        var random = new Random(seed);
        await TpuNodePools.V5eSingleHostAsync(env.Client, "single", hosts: 8);
        await TpuNodePools.V5eMultiHost4x4Async(env.Client, "multi-a");
        await TpuNodePools.V5eMultiHost4x4Async(env.Client, "multi-b");
        await TpuNodePools.V6eSingleHostAsync(env.Client, "v6", hosts: 3);
        var informer = new Informer<V1Node>(ResourceClients.Nodes(env.Client));
        var provider = new GkeTpuProvider(env.Client, env.Time, NullLogger<GkeTpuProvider>.Instance, informer);
        using var stop = new CancellationTokenSource();
        var run = informer.RunAsync(stop.Token);
        await informer.WaitForSyncAsync(CancellationToken.None).WaitAsync(Eventually.DefaultTimeout);
        var shapes = new[] { new TpuShape(V5e, "2x2"), new TpuShape(V5e, "4x4"), new TpuShape(V6e, "2x2") };
        var holding = new List<LeaseIdentity>();
        var serial = 0;
        var claims = 0;

        async Task CaughtUpAsync()
        {
            // The index hears of a node just after the cache stores it (the informer's handlers run after the store), so
            // both are waited for; an index that never agrees with the scan fails here with both views.
            var truth = (await env.Client.CoreV1.ListNodeAsync()).Items;
            bool Agrees()
            {
                var expected = FullScan(truth);
                var actual = provider.SliceIndex!.Snapshot();
                return expected.Count == actual.Count && expected.All(e => actual.TryGetValue(e.Key, out var keys) && keys.SequenceEqual(e.Value));
            }

            await Eventually.HoldsAsync(
                () => Task.FromResult(truth.All(n => informer.Store.Get(ObjectKey.Of(n))?.Metadata.ResourceVersion == n.Metadata.ResourceVersion) && informer.Store.Count == truth.Count && Agrees()),
                $"seed {seed}: the node cache catches up with the API server and the index with a full scan; index {Describe(provider.SliceIndex!.Snapshot())}, scan {Describe(FullScan(truth))}");
        }

        for (var step = 0; step < 40; step++)
        {
            // Changes by others (GKE, an admin, another replica), straight to the API server.
            for (var k = random.Next(1, 4); k > 0; k--)
            {
                var all = (await env.Client.CoreV1.ListNodeAsync()).Items;
                var target = all[random.Next(all.Count)];
                switch (random.Next(6))
                {
                    case 0:
                        await TpuNodePools.V5eSingleHostAsync(env.Client, $"added{serial++}", hosts: 1);
                        break;
                    case 1 when all.Count > 10:
                        await env.Client.CoreV1.DeleteNodeAsync(target.Metadata.Name);
                        break;
                    case 2:
                        await env.Client.CoreV1.PatchNodeAsync(new V1Patch(KubernetesJson.Serialize(new { spec = new { unschedulable = target.Spec?.Unschedulable != true } }), V1Patch.PatchType.MergePatch), target.Metadata.Name);
                        break;
                    case 3:
                        await env.Client.CoreV1.PatchNodeAsync(new V1Patch(KubernetesJson.Serialize(new { metadata = new { labels = new Dictionary<string, string> { [TpuLabels.Topology] = random.Next(2) == 0 ? "2x2" : "4x4" } } }), V1Patch.PatchType.MergePatch), target.Metadata.Name);
                        break;
                    case 4:
                        // Someone else's lease taint (no UID): not free to anybody.
                        var taints = (target.Spec?.Taints ?? []).Where(t => t.Key != TpuLabels.LeaseTaintKey).ToList();
                        if (random.Next(2) == 0)
                        {
                            taints.Add(new V1Taint { Key = TpuLabels.LeaseTaintKey, Value = "elsewhere", Effect = TpuLabels.NoSchedule });
                        }

                        await env.Client.CoreV1.PatchNodeAsync(new V1Patch(KubernetesJson.Serialize(new { spec = new { taints } }), V1Patch.PatchType.MergePatch), target.Metadata.Name);
                        break;
                    default:
                        if (holding.Count > 0)
                        {
                            // Released by another replica: the marks go away behind this provider's back.
                            var other = holding[random.Next(holding.Count)];
                            holding.Remove(other);
                            await NewScanningProvider().ReleaseAsync(other, CancellationToken.None);
                        }

                        break;
                }
            }

            await CaughtUpAsync();

            // Then this provider's own claims and releases back to back, each judged by its cache plus its own writes
            // (the cache has not caught up with them) and checked against a full scan of the API server's nodes.
            for (var k = random.Next(1, 4); k > 0; k--)
            {
                if (holding.Count > 0 && random.Next(3) == 0)
                {
                    var lease = holding[random.Next(holding.Count)];
                    holding.Remove(lease);
                    await provider.ReleaseAsync(lease, CancellationToken.None);
                    continue;
                }

                var shape = shapes[random.Next(shapes.Length)];
                var chips = shape.ChipsPerSlice * random.Next(1, 3);
                var id = new LeaseIdentity(PhaseOneEnvironment.Namespace, $"l-{step}-{k}", $"uid-{seed}-{step}-{k}");
                // The index's judgement and the scan's over the same view (cache plus own copies, not caught up) agree. Polled
                // briefly: the informer may deliver an echo of our own write between the two reads.
                await Eventually.HoldsAsync(
                    () =>
                    {
                        var (indexed, scanned) = provider.CompareSources(shape, id.Uid);
                        return Task.FromResult(indexed.Free.SequenceEqual(scanned.Free) && indexed.Touched.SequenceEqual(scanned.Touched));
                    },
                    $"seed {seed}, step {step}: index and scan agree for {shape}; index {string.Join(",", provider.CompareSources(shape, id.Uid).Indexed.Free)}, scan {string.Join(",", provider.CompareSources(shape, id.Uid).Scanned.Free)}",
                    timeout: TimeSpan.FromSeconds(5));
                var (indexedRoom, scannedRoom) = await provider.CompareCapacityAsync(shape);
                Assert.Equal((step, scannedRoom), (step, indexedRoom));
                var outcome = await provider.ClaimAsync(new TpuClaimRequest(id, shape, chips), CancellationToken.None);
                var truth = (await env.Client.CoreV1.ListNodeAsync()).Items;
                if (outcome is TpuClaimOutcome.Claimed { Claim: var claim })
                {
                    // Whole slices the view showed free, now marked for this lease alone on the API server.
                    Assert.Equal(chips, claim.Chips);
                    Assert.All(claim.Nodes, name => Assert.Equal(id.Uid, TpuSlices.OwnerOf(truth.Single(n => n.Metadata.Name == name))));
                    holding.Add(id);
                    claims++;
                }
                else
                {
                    var insufficient = Assert.IsType<TpuClaimOutcome.Insufficient>(outcome);
                    Assert.DoesNotContain(truth, n => TpuSlices.OwnerOf(n) == id.Uid);
                    Assert.True(insufficient.Message.Contains("free now", StringComparison.Ordinal) || insufficient.Message.StartsWith("no node in this cluster", StringComparison.Ordinal), insufficient.Message);
                }
            }
        }

        await CaughtUpAsync();
        Assert.True(claims >= 10, $"only {claims} claims succeeded; the sequence should claim often");

        // A restart (or a new leader): a fresh informer's cache, and a provider made on an informer that already synced.
        await stop.CancelAsync();
        await run;
        var restarted = new Informer<V1Node>(ResourceClients.Nodes(env.Client));
        using var stop2 = new CancellationTokenSource();
        var run2 = restarted.RunAsync(stop2.Token);
        await restarted.WaitForSyncAsync(CancellationToken.None).WaitAsync(Eventually.DefaultTimeout);
        var late = new GkeTpuProvider(env.Client, env.Time, NullLogger<GkeTpuProvider>.Instance, restarted);
        var nodes = (await env.Client.CoreV1.ListNodeAsync()).Items;
        AssertAgrees(nodes, late.SliceIndex!, $"seed {seed}, provider made after a restarted informer synced");
        await stop2.CancelAsync();
        await run2;
    }

    private GkeTpuProvider NewScanningProvider() =>
        new(new Kubernetes(new KubernetesClientConfiguration { Host = env.Server.Url, AccessToken = env.Server.Options.Token }), env.Time, NullLogger<GkeTpuProvider>.Instance);
}
