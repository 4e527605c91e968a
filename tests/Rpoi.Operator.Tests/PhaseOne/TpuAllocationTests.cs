using System.Runtime.CompilerServices;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Rpoi.Kube.Informers;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Operator.Tests.Support;

namespace Rpoi.Operator.Tests.PhaseOne;

/// <summary>The GKE TPU provider against the API test server: exclusive, all-or-nothing claims and exact releases.</summary>
public sealed class TpuAllocationTests : IAsyncLifetime
{
    private static readonly TpuShape V5e2x2 = new(LeaseBuilder.V5e, "2x2");
    private static readonly TpuShape V5e4x4 = new(LeaseBuilder.V5e, "4x4");
    private PhaseOneEnvironment env = null!;

    public async Task InitializeAsync() => env = await PhaseOneEnvironment.StartAsync();

    public async Task DisposeAsync() => await env.DisposeAsync();

    private GkeTpuProvider NewProvider() =>
        new(new Kubernetes(new KubernetesClientConfiguration { Host = env.Server.Url, AccessToken = env.Server.Options.Token }), env.Time, NullLogger<GkeTpuProvider>.Instance);

    private static LeaseIdentity Lease(string name) => new(PhaseOneEnvironment.Namespace, name, $"uid-{name}");

    [Fact]
    public async Task Release_removes_exactly_what_the_claim_added()
    {
        await TpuNodePools.V5eSingleHostAsync(env.Client, "pool-a", hosts: 1);
        var before = Assert.Single(await env.NodesAsync());
        var provider = NewProvider();

        var outcome = await provider.ClaimAsync(new TpuClaimRequest(Lease("a"), V5e2x2, 4), CancellationToken.None);
        var claim = Assert.IsType<TpuClaimOutcome.Claimed>(outcome).Claim;
        Assert.Equal(["gke-pool-a-0"], claim.Nodes);
        Assert.Equal(4, claim.Chips);
        Assert.False(TpuNodePools.IsClean(Assert.Single(await env.NodesAsync())));
        var found = await provider.FindClaimAsync(Lease("a"), CancellationToken.None);
        Assert.NotNull(found);
        Assert.Equal((claim.Shape, claim.Chips), (found.Shape, found.Chips));
        Assert.Equal(claim.Nodes, found.Nodes);
        Assert.Equal(claim.NodePools, found.NodePools);

        Assert.Equal(["gke-pool-a-0"], await provider.ReleaseAsync(Lease("a"), CancellationToken.None));
        var after = Assert.Single(await env.NodesAsync());
        Assert.True(TpuNodePools.IsClean(after));
        Assert.Equal(before.Metadata.Labels, after.Metadata.Labels);
        Assert.Equal(KubernetesJson.Serialize(before.Spec.Taints), KubernetesJson.Serialize(after.Spec.Taints));
        Assert.Null(await provider.FindClaimAsync(Lease("a"), CancellationToken.None));
    }

    [Fact]
    public async Task Claims_and_lookups_read_the_node_cache_plus_own_writes_and_a_stale_cache_never_double_claims()
    {
        await TpuNodePools.V5eSingleHostAsync(env.Client, "pool-a", hosts: 3);
        var counter = new NodeListCounter();
        var client = new Kubernetes(new KubernetesClientConfiguration { Host = env.Server.Url, AccessToken = env.Server.Options.Token }, counter);
        var informer = new Informer<V1Node>(ResourceClients.Nodes(client));
        using var stop = new CancellationTokenSource();
        var run = informer.RunAsync(stop.Token);
        await informer.WaitForSyncAsync(CancellationToken.None).WaitAsync(Eventually.DefaultTimeout);
        // Stopping the informer freezes its cache: every write below is one the cache never sees.
        await stop.CancelAsync();
        await run;
        var provider = new GkeTpuProvider(client, env.Time, NullLogger<GkeTpuProvider>.Instance, informer);

        var lists = counter.Count;
        Assert.Null(await provider.FindClaimAsync(Lease("queued"), CancellationToken.None));
        Assert.Equal(12, Assert.Single(await provider.GetCapacityAsync(CancellationToken.None)).FreeChips);

        // Another replica (no cache) takes the first node behind the frozen cache's back.
        var other = Assert.IsType<TpuClaimOutcome.Claimed>(await NewProvider().ClaimAsync(new TpuClaimRequest(Lease("elsewhere"), V5e2x2, 4), CancellationToken.None)).Claim;

        // Picks come from the stale cache; the resourceVersion precondition turns the stale pick into a 409, a re-read
        // and another node, never a second owner.
        var a = Assert.IsType<TpuClaimOutcome.Claimed>(await provider.ClaimAsync(new TpuClaimRequest(Lease("a"), V5e2x2, 4), CancellationToken.None)).Claim;
        Assert.Empty(a.Nodes.Intersect(other.Nodes));
        // This process's own marks are seen at once, though the cache never received them.
        Assert.Equal(a.Nodes, (await provider.FindClaimAsync(Lease("a"), CancellationToken.None))?.Nodes);
        var b = await provider.ClaimAsync(new TpuClaimRequest(Lease("b"), V5e2x2, 4), CancellationToken.None);
        var bClaim = Assert.IsType<TpuClaimOutcome.Claimed>(b).Claim;
        Assert.Empty(bClaim.Nodes.Intersect(a.Nodes.Concat(other.Nodes)));
        Assert.Equal(lists, counter.Count);
        Assert.IsType<TpuClaimOutcome.Insufficient>(await provider.ClaimAsync(new TpuClaimRequest(Lease("c"), V5e2x2, 4), CancellationToken.None));

        // The release lists from the API server (an unsynced cache must never leave a claim behind); after it the
        // freed node is visible to this process without a list.
        await provider.ReleaseAsync(Lease("a"), CancellationToken.None);
        Assert.Equal(lists + 1, counter.Count);
        Assert.Null(await provider.FindClaimAsync(Lease("a"), CancellationToken.None));
        Assert.Equal(a.Nodes, Assert.IsType<TpuClaimOutcome.Claimed>(await provider.ClaimAsync(new TpuClaimRequest(Lease("c"), V5e2x2, 4), CancellationToken.None)).Claim.Nodes);
        Assert.Equal(lists + 1, counter.Count);

        var owners = (await env.Client.CoreV1.ListNodeAsync()).Items.Select(n => n.Metadata.Annotations?[TpuLabels.LeaseUidAnnotation]).Order().ToList();
        Assert.Equal(["uid-b", "uid-c", "uid-elsewhere"], owners);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Concurrent_claims_of_one_shape_pick_different_nodes_and_keep_room_for_older_leases(bool withCache)
    {
        await TpuNodePools.V5eSingleHostAsync(env.Client, "pool-a", hosts: 4);
        using var stop = new CancellationTokenSource();
        Informer<V1Node>? informer = null;
        Task? run = null;
        if (withCache)
        {
            // A live cache: claims read only free nodes from it, so who already holds nodes comes from its owner index.
            informer = new Informer<V1Node>(ResourceClients.Nodes(env.Client));
            run = informer.RunAsync(stop.Token);
            await informer.WaitForSyncAsync(CancellationToken.None).WaitAsync(Eventually.DefaultTimeout);
        }

        var provider = new GkeTpuProvider(env.Client, env.Time, NullLogger<GkeTpuProvider>.Instance, informer);
        var claims = await Task.WhenAll(Enumerable.Range(0, 3).Select(i =>
            provider.ClaimAsync(new TpuClaimRequest(Lease($"l{i}"), V5e2x2, 4), CancellationToken.None)));
        var nodes = claims.Select(c => Assert.IsType<TpuClaimOutcome.Claimed>(c).Claim.Nodes.Single()).ToList();
        Assert.Equal(3, nodes.Distinct().Count());

        // One node is left. An older lease queued ahead that holds nothing yet keeps it: the younger one must wait.
        var ahead = new[] { new QueuedDemand("uid-older", 4) };
        var younger = Assert.IsType<TpuClaimOutcome.Insufficient>(await provider.ClaimAsync(new TpuClaimRequest(Lease("younger"), V5e2x2, 4, ahead), CancellationToken.None));
        Assert.Contains("kept for older leases", younger.Message, StringComparison.Ordinal);
        // Leases ahead that already hold their nodes keep nothing more.
        var served = nodes.Select((_, i) => new QueuedDemand($"uid-l{i}", 4)).ToArray();
        Assert.IsType<TpuClaimOutcome.Claimed>(await provider.ClaimAsync(new TpuClaimRequest(Lease("younger"), V5e2x2, 4, served), CancellationToken.None));
        await stop.CancelAsync();
        if (run is not null)
        {
            await run;
        }
    }

    [Fact]
    public async Task A_lease_ahead_is_seen_holding_its_node_while_the_cache_catches_up_with_the_claim()
    {
        await TpuNodePools.V5eSingleHostAsync(env.Client, "pool-a", hosts: 2);
        var nodes = new HeldWatch(ResourceClients.Nodes(env.Client));
        var informer = new Informer<V1Node>(nodes);
        var provider = new GkeTpuProvider(env.Client, env.Time, NullLogger<GkeTpuProvider>.Instance, informer);
        // Added after the provider's own handler, so it runs once the provider has seen the cache catch up.
        using var caughtUp = new ManualResetEventSlim();
        informer.AddEventHandler(new ResourceEventHandler<V1Node>((_, _) => { }, (_, n) => Set(n), Set));
        void Set(V1Node n)
        {
            if (TpuSlices.OwnerOf(n) == "uid-older")
            {
                caughtUp.Set();
            }
        }

        using var stop = new CancellationTokenSource();
        var run = informer.RunAsync(stop.Token);
        await informer.WaitForSyncAsync(CancellationToken.None).WaitAsync(Eventually.DefaultTimeout);

        // The older lease claims; the cache has not seen its mark yet (the watch is held), only the provider's own write.
        nodes.Hold();
        Assert.IsType<TpuClaimOutcome.Claimed>(await provider.ClaimAsync(new TpuClaimRequest(Lease("older"), V5e2x2, 4), CancellationToken.None));

        // The younger lease, queued behind it, looks up whether the older one is served; the cache catches up right in
        // the middle of that look-up (and the provider drops its own copy of the write).
        provider.BetweenOverlayAndCacheReads = () =>
        {
            provider.BetweenOverlayAndCacheReads = null;
            nodes.Release();
            Assert.True(caughtUp.Wait(Eventually.DefaultTimeout), "the node cache caught up with the older lease's claim");
        };
        var younger = await provider.ClaimAsync(new TpuClaimRequest(Lease("younger"), V5e2x2, 4, [new QueuedDemand("uid-older", 4)]), CancellationToken.None);

        Assert.True(caughtUp.IsSet, "the look-up ran while the cache caught up");
        var claimed = Assert.IsType<TpuClaimOutcome.Claimed>(younger);
        Assert.Equal(["uid-older", "uid-younger"], (await env.NodesAsync()).Select(TpuSlices.OwnerOf).Order().ToList());
        Assert.Single(claimed.Claim.Nodes);
        await stop.CancelAsync();
        await run;
    }

    /// <summary>The node API with a watch the test can hold: events wait from <see cref="Hold"/> until <see cref="Release"/>.</summary>
    private sealed class HeldWatch(IResourceClient<V1Node> inner) : IResourceClient<V1Node>
    {
        private volatile TaskCompletionSource open = Opened();

        public string Resource => inner.Resource;

        public void Hold() => open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => open.TrySetResult();

        public Task<ResourceList<V1Node>> ListAsync(CancellationToken cancellationToken) => inner.ListAsync(cancellationToken);

        public async IAsyncEnumerable<(WatchEventType Type, V1Node Object)> WatchAsync(string resourceVersion, int timeoutSeconds, Action<Exception> onError, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await foreach (var e in inner.WatchAsync(resourceVersion, timeoutSeconds, onError, cancellationToken).ConfigureAwait(false))
            {
                await open.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
                yield return e;
            }
        }

        public Task<V1Node?> GetAsync(ObjectKey key, CancellationToken cancellationToken) => inner.GetAsync(key, cancellationToken);

        public Task<V1Node> PatchAsync(ObjectKey key, V1Patch patch, CancellationToken cancellationToken) => inner.PatchAsync(key, patch, cancellationToken);

        public Task<V1Node> PatchStatusAsync(ObjectKey key, V1Patch patch, CancellationToken cancellationToken) => inner.PatchStatusAsync(key, patch, cancellationToken);

        private static TaskCompletionSource Opened()
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            done.SetResult();
            return done;
        }
    }

    /// <summary>Counts node list requests as the client sends them (the server's log is written after it answers).</summary>
    private sealed class NodeListCounter : DelegatingHandler
    {
        private int count;

        public int Count => Volatile.Read(ref count);

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var uri = request.RequestUri;
            if (request.Method == HttpMethod.Get && uri is not null && uri.AbsolutePath.EndsWith("/nodes", StringComparison.Ordinal)
                && !uri.Query.Contains("watch=true", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref count);
            }

            return base.SendAsync(request, cancellationToken);
        }
    }

    [Fact]
    public async Task Claim_is_idempotent_and_never_takes_a_second_node_for_the_same_lease()
    {
        await TpuNodePools.V5eSingleHostAsync(env.Client, "pool-a", hosts: 3);
        var provider = NewProvider();
        var first = Assert.IsType<TpuClaimOutcome.Claimed>(await provider.ClaimAsync(new TpuClaimRequest(Lease("a"), V5e2x2, 4), CancellationToken.None));
        // A second replica (or a restart) asking again adopts the same node.
        var again = Assert.IsType<TpuClaimOutcome.Claimed>(await NewProvider().ClaimAsync(new TpuClaimRequest(Lease("a"), V5e2x2, 4), CancellationToken.None));
        Assert.Equal(first.Claim.Nodes, again.Claim.Nodes);
        Assert.Equal(2, (await env.NodesAsync()).Count(TpuNodePools.IsClean));
    }

    [Fact]
    public async Task Short_capacity_reports_what_is_missing_and_holds_nothing()
    {
        await TpuNodePools.V5eSingleHostAsync(env.Client, "pool-a", hosts: 1);
        var outcome = await NewProvider().ClaimAsync(new TpuClaimRequest(Lease("a"), V5e2x2, 8), CancellationToken.None);
        var insufficient = Assert.IsType<TpuClaimOutcome.Insufficient>(outcome);
        Assert.Equal(4, insufficient.FreeChips);
        Assert.Contains("8 chips of tpu-v5-lite-podslice 2x2", insufficient.Message, StringComparison.Ordinal);
        Assert.All(await env.NodesAsync(), n => Assert.True(TpuNodePools.IsClean(n)));

        var unknown = await NewProvider().ClaimAsync(new TpuClaimRequest(Lease("b"), new TpuShape(LeaseBuilder.V6e, "2x4"), 8), CancellationToken.None);
        Assert.Contains("no node in this cluster has", Assert.IsType<TpuClaimOutcome.Insufficient>(unknown).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Chips_that_are_not_whole_slices_are_impossible()
    {
        var outcome = await NewProvider().ClaimAsync(new TpuClaimRequest(Lease("a"), V5e2x2, 6), CancellationToken.None);
        Assert.Contains("multiple of 4", Assert.IsType<TpuClaimOutcome.Impossible>(outcome).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Multi_host_slice_is_claimed_whole()
    {
        var hosts = await TpuNodePools.V5eMultiHost4x4Async(env.Client, "slice-4x4");
        var claim = Assert.IsType<TpuClaimOutcome.Claimed>(await NewProvider().ClaimAsync(new TpuClaimRequest(Lease("a"), V5e4x4, 16), CancellationToken.None)).Claim;
        Assert.Equal(hosts, claim.Nodes);
        Assert.Equal(["slice-4x4"], claim.NodePools);
        Assert.Equal(16, claim.Chips);
        Assert.All(await env.NodesAsync(), n => Assert.Equal("uid-a", n.Metadata.Annotations[TpuLabels.LeaseUidAnnotation]));
    }

    [Fact]
    public async Task Multi_host_slice_with_a_missing_or_cordoned_host_is_not_claimed_at_all()
    {
        // Three of four hosts: the slice is incomplete.
        await TpuNodePools.CreatePoolAsync(env.Client, "broken", LeaseBuilder.V5e, "4x4", hosts: 3, chipsPerHost: 4);
        var outcome = await NewProvider().ClaimAsync(new TpuClaimRequest(Lease("a"), V5e4x4, 16), CancellationToken.None);
        Assert.IsType<TpuClaimOutcome.Insufficient>(outcome);

        // Four hosts, one cordoned: not usable either.
        await TpuNodePools.V5eMultiHost4x4Async(env.Client, "cordoned");
        var node = await env.Client.CoreV1.ReadNodeAsync("gke-cordoned-2");
        node.Spec.Unschedulable = true;
        await env.Client.CoreV1.ReplaceNodeAsync(node, node.Metadata.Name);
        outcome = await NewProvider().ClaimAsync(new TpuClaimRequest(Lease("a"), V5e4x4, 16), CancellationToken.None);
        Assert.IsType<TpuClaimOutcome.Insufficient>(outcome);
        Assert.All(await env.NodesAsync(), n => Assert.True(TpuNodePools.IsClean(n)));
    }

    [Fact]
    public async Task Partial_multi_host_claim_left_by_a_crash_is_completed_or_rolled_back()
    {
        await TpuNodePools.V5eMultiHost4x4Async(env.Client, "s1");
        await TpuNodePools.V5eMultiHost4x4Async(env.Client, "s2");
        // A crash left lease a holding two of four hosts of s1: the next claim completes that slice.
        await MarkAsync("gke-s1-0", Lease("a"));
        await MarkAsync("gke-s1-1", Lease("a"));
        var completed = Assert.IsType<TpuClaimOutcome.Claimed>(await NewProvider().ClaimAsync(new TpuClaimRequest(Lease("a"), V5e4x4, 16), CancellationToken.None));
        Assert.Equal(["gke-s1-0", "gke-s1-1", "gke-s1-2", "gke-s1-3"], completed.Claim.Nodes);

        // Lease b holds two hosts of s2, but lease c raced it to a third: b's partial claim is rolled back entirely.
        await MarkAsync("gke-s2-0", Lease("b"));
        await MarkAsync("gke-s2-1", Lease("b"));
        await MarkAsync("gke-s2-2", Lease("c"));
        var lost = await NewProvider().ClaimAsync(new TpuClaimRequest(Lease("b"), V5e4x4, 16), CancellationToken.None);
        Assert.IsType<TpuClaimOutcome.Insufficient>(lost);
        var s2 = (await env.NodesAsync()).Where(n => n.Metadata.Name.StartsWith("gke-s2-", StringComparison.Ordinal)).ToList();
        Assert.DoesNotContain(s2, n => TpuSlices.OwnerOf(n) == "uid-b");
        Assert.Single(s2, n => TpuSlices.OwnerOf(n) == "uid-c");
    }

    [Fact]
    public async Task Two_leases_racing_for_one_node_exactly_one_wins()
    {
        await TpuNodePools.V5eSingleHostAsync(env.Client, "one", hosts: 1);
        for (var round = 0; round < 5; round++)
        {
            var a = NewProvider();
            var b = NewProvider();
            var outcomes = await Task.WhenAll(
                a.ClaimAsync(new TpuClaimRequest(Lease($"a{round}"), V5e2x2, 4), CancellationToken.None),
                b.ClaimAsync(new TpuClaimRequest(Lease($"b{round}"), V5e2x2, 4), CancellationToken.None));
            Assert.Single(outcomes, o => o is TpuClaimOutcome.Claimed);
            Assert.Single(outcomes, o => o is TpuClaimOutcome.Insufficient);
            var node = Assert.Single(await env.NodesAsync());
            var winner = outcomes[0] is TpuClaimOutcome.Claimed ? $"uid-a{round}" : $"uid-b{round}";
            Assert.Equal(winner, TpuSlices.OwnerOf(node));
            Assert.Single(node.Spec.Taints, t => t.Key == TpuLabels.LeaseTaintKey);
            await a.ReleaseAsync(Lease($"a{round}"), CancellationToken.None);
            await b.ReleaseAsync(Lease($"b{round}"), CancellationToken.None);
        }
    }

    [Fact]
    public async Task Injected_conflicts_are_retried_without_double_claims()
    {
        await TpuNodePools.V5eSingleHostAsync(env.Client, "one", hosts: 2);
        // Every node write first meets a 409, as if another writer touched the node in between.
        env.Server.Faults.FailNext(3, 409, verb: "patch", resource: "nodes");
        var outcomes = await Task.WhenAll(
            NewProvider().ClaimAsync(new TpuClaimRequest(Lease("a"), V5e2x2, 4), CancellationToken.None),
            NewProvider().ClaimAsync(new TpuClaimRequest(Lease("b"), V5e2x2, 4), CancellationToken.None),
            NewProvider().ClaimAsync(new TpuClaimRequest(Lease("c"), V5e2x2, 4), CancellationToken.None));
        Assert.Equal(2, outcomes.Count(o => o is TpuClaimOutcome.Claimed));
        Assert.True(env.Server.Requests.Count(r => r.Method == "PATCH" && r.StatusCode == 409) >= 3, "the injected conflicts were met");
        var owners = (await env.NodesAsync()).Select(TpuSlices.OwnerOf).ToList();
        Assert.Equal(2, owners.Distinct().Count());
        Assert.DoesNotContain(null, owners);
    }

    [Fact]
    public async Task Two_leases_racing_for_one_multi_host_slice_one_gets_all_hosts_the_other_none()
    {
        await TpuNodePools.V5eMultiHost4x4Async(env.Client, "slice");
        for (var round = 0; round < 3; round++)
        {
            var outcomes = await Task.WhenAll(
                NewProvider().ClaimAsync(new TpuClaimRequest(Lease($"a{round}"), V5e4x4, 16), CancellationToken.None),
                NewProvider().ClaimAsync(new TpuClaimRequest(Lease($"b{round}"), V5e4x4, 16), CancellationToken.None));
            var winner = Assert.IsType<TpuClaimOutcome.Claimed>(Assert.Single(outcomes, o => o is TpuClaimOutcome.Claimed));
            Assert.Equal(4, winner.Claim.Nodes.Count);
            Assert.Single((await env.NodesAsync()).Select(TpuSlices.OwnerOf).Distinct());
            await NewProvider().ReleaseAsync(Lease($"a{round}"), CancellationToken.None);
            await NewProvider().ReleaseAsync(Lease($"b{round}"), CancellationToken.None);
            Assert.All(await env.NodesAsync(), n => Assert.True(TpuNodePools.IsClean(n)));
        }
    }

    [Fact]
    public async Task Capacity_summary_counts_free_chips_per_shape()
    {
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 3);
        await TpuNodePools.V5eMultiHost4x4Async(env.Client, "big");
        await TpuNodePools.V6eSingleHostAsync(env.Client, "v6e", hosts: 2);
        var provider = NewProvider();
        await provider.ClaimAsync(new TpuClaimRequest(Lease("a"), V5e2x2, 4), CancellationToken.None);

        var capacity = await provider.GetCapacityAsync(CancellationToken.None);
        Assert.Equal(
            [
                new TpuCapacity(V5e2x2, 1, 12, 8, 2),
                new TpuCapacity(V5e4x4, 4, 16, 16, 1),
                new TpuCapacity(new TpuShape(LeaseBuilder.V6e, "2x2"), 1, 8, 8, 2),
            ],
            capacity);
    }

    private async Task MarkAsync(string nodeName, LeaseIdentity lease)
    {
        var node = await env.Client.CoreV1.ReadNodeAsync(nodeName);
        GkeTpuProvider.AddMarks(node, lease, env.Time.GetUtcNow());
        await env.Client.CoreV1.ReplaceNodeAsync(node, nodeName);
    }
}
