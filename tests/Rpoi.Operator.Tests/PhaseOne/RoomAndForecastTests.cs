using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Rpoi.Kube.Informers;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Operator.Tests.Support;

namespace Rpoi.Operator.Tests.PhaseOne;

/// <summary>
/// The queue logic of issue 13 item 2: which requests can never be met (<see cref="RoomCheck"/>), when chips free up
/// (<see cref="QueueForecast"/>), and the room an older lease that cannot use it leaves to younger ones.
/// </summary>
public sealed class RoomAndForecastTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly TpuShape V5e4x4 = new(LeaseBuilder.V5e, "4x4");
    private static readonly TpuShape V5e2x2 = new(LeaseBuilder.V5e, "2x2");

    [Theory]
    [InlineData(16, true)]
    [InlineData(32, true)]
    [InlineData(48, false)]
    [InlineData(64, false)]
    public void A_request_fits_when_it_is_at_most_the_usable_chips_of_its_shape(int chips, bool fits)
    {
        // Two usable 4x4 slices (32 chips), one of them held: held chips count, they come back when the lease ends.
        var room = new TpuCapacity(V5e4x4, 4, 32, 16, 1);
        var message = RoomCheck.Impossible(V5e4x4, chips, room, []);
        Assert.Equal(fits, message is null);
        if (!fits)
        {
            Assert.Equal(
                $"spec.request.payload.chips is {chips}, more than tpu-v5-lite-podslice 4x4 can ever hold here: 32 chips in 2 usable slice(s) in total; "
                + "ask for at most 32 chips of 4x4, or another topology (kubectl rpoi offers); a Failed lease stays Failed: sign a new request and create the Lease again",
                message);
        }
    }

    [Fact]
    public void Slices_that_are_not_usable_now_do_not_count_and_are_named()
    {
        var message = RoomCheck.Impossible(V5e4x4, 32, new TpuCapacity(V5e4x4, 4, 16, 16, 1, UnusableSlices: 1), []);
        Assert.NotNull(message);
        Assert.Contains("16 chips in 1 usable slice(s) in total (1 more slice(s) of 16 chips are not usable now: cordoned, NotReady", message, StringComparison.Ordinal);

        var none = RoomCheck.Impossible(V5e4x4, 16, new TpuCapacity(V5e4x4, 0, 0, 0, 0, UnusableSlices: 2), []);
        Assert.Contains("0 chips in 0 usable slice(s)", none, StringComparison.Ordinal);
        Assert.Contains("wait until the slices are usable again", none, StringComparison.Ordinal);
    }

    [Fact]
    public void A_shape_no_pool_offers_names_the_field_and_what_there_is()
    {
        var offers = new[]
        {
            new TpuCapacity(V5e2x2, 1, 8, 8, 2),
            new TpuCapacity(V5e4x4, 4, 16, 0, 0),
            new TpuCapacity(new TpuShape(LeaseBuilder.V6e, "2x2"), 1, 4, 4, 1),
            new TpuCapacity(new TpuShape(LeaseBuilder.V6e, "2x4"), 1, 0, 0, 0, UnusableSlices: 1),
        };

        var topology = RoomCheck.Impossible(new TpuShape(LeaseBuilder.V5e, "8x8"), 64, null, offers)!;
        Assert.StartsWith("spec.request.payload.topology: no node pool of tpu-v5-lite-podslice has topology 8x8; this cluster offers tpu-v5-lite-podslice 2x2 (up to 8 chips), tpu-v5-lite-podslice 4x4 (up to 16 chips);", topology, StringComparison.Ordinal);
        Assert.DoesNotContain(LeaseBuilder.V6e, topology, StringComparison.Ordinal);

        var accelerator = RoomCheck.Impossible(new TpuShape("tpu-v9", "2x2"), 4, null, offers)!;
        Assert.StartsWith("spec.request.payload.accelerator: no node pool in this cluster is tpu-v9 2x2; this cluster offers", accelerator, StringComparison.Ordinal);
        // A shape with no usable slice is not offered.
        Assert.DoesNotContain("2x4", accelerator, StringComparison.Ordinal);

        var empty = RoomCheck.Impossible(V5e2x2, 4, null, [])!;
        Assert.Contains("this cluster has no usable TPU slices at all", empty, StringComparison.Ordinal);
    }

    [Fact]
    public void Chips_free_up_when_enough_active_leases_have_expired_in_expiry_order()
    {
        var active = new[] { new ActiveHold(8, T0.AddHours(3)), new ActiveHold(4, T0.AddHours(1)), new ActiveHold(4, T0.AddHours(2)) };
        Assert.Equal(T0.AddHours(1), QueueForecast.EarliestFree(needed: 8, freeNow: 4, active));
        Assert.Equal(T0.AddHours(2), QueueForecast.EarliestFree(needed: 12, freeNow: 4, active));
        Assert.Equal(T0.AddHours(3), QueueForecast.EarliestFree(needed: 20, freeNow: 4, active));
        // More than ever frees, or no Active lease to wait for: unknown.
        Assert.Null(QueueForecast.EarliestFree(needed: 24, freeNow: 4, active));
        Assert.Null(QueueForecast.EarliestFree(needed: 8, freeNow: 0, []));
        // Enough is free now (the lease waits for something else): no time to tell.
        Assert.Null(QueueForecast.EarliestFree(needed: 4, freeNow: 4, active));
    }

    [Fact]
    public void Wake_behind_wakes_the_first_parked_lease_behind_and_makes_a_looking_one_look_again()
    {
        var queue = new AllocationQueue();
        var woken = new List<string>();
        queue.Changed += ids => woken.AddRange(ids.Select(i => i.Name));
        QueuedLease Entry(string name, int second) => new(new LeaseIdentity("ns", name, "uid-" + name), V5e2x2, T0.AddSeconds(second), 4);

        var head = queue.Look(Entry("head", 1));
        var parked = queue.Look(Entry("parked", 2));
        var looking = queue.Look(Entry("looking", 3));
        Assert.True(queue.Park(Entry("head", 1).Lease, head));
        Assert.True(queue.Park(Entry("parked", 2).Lease, parked));

        queue.WakeBehind(Entry("head", 1).Lease);
        Assert.Equal(["parked"], woken);
        // "looking" read the queue before: it must look again rather than park through the room that may have appeared.
        Assert.False(queue.Park(Entry("looking", 3).Lease, looking));

        woken.Clear();
        queue.WakeBehind(new LeaseIdentity("ns", "unknown", "uid-unknown"));
        queue.WakeBehind(Entry("looking", 3).Lease);
        Assert.Empty(woken);

        // A lease of the shape became Active: only the first parked lease looks again (to tell when chips free up).
        queue.ExpiryKnown(V5e2x2);
        Assert.Equal(["head"], woken);
        woken.Clear();
        queue.ExpiryKnown(V5e4x4);
        Assert.Empty(woken);
    }

    [Fact]
    public async Task An_older_lease_asking_for_more_than_the_shape_holds_keeps_no_room_from_a_younger_one()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 2);
        var provider = new GkeTpuProvider(new Kubernetes(new KubernetesClientConfiguration { Host = env.Server.Url, AccessToken = env.Server.Options.Token }), env.Time, NullLogger<GkeTpuProvider>.Instance);
        LeaseIdentity Lease(string name) => new(PhaseOneEnvironment.Namespace, name, "uid-" + name);

        // An older lease that fits in 8 chips keeps both slices: the younger one waits (FIFO in the same room).
        var blocked = await provider.ClaimAsync(new TpuClaimRequest(Lease("young"), V5e2x2, 4, [new QueuedDemand("uid-older", 8)]), CancellationToken.None);
        var insufficient = Assert.IsType<TpuClaimOutcome.Insufficient>(blocked);
        Assert.Contains("2 more kept for older leases ahead", insufficient.Message, StringComparison.Ordinal);
        Assert.Equal(8, insufficient.UsableChips);

        // One asking for 12 cannot use the 8 there are: the younger lease claims past it.
        var claimed = await provider.ClaimAsync(new TpuClaimRequest(Lease("young"), V5e2x2, 4, [new QueuedDemand("uid-oversized", 12)]), CancellationToken.None);
        Assert.Single(Assert.IsType<TpuClaimOutcome.Claimed>(claimed).Claim.Nodes);

        // And the oversized lease itself learns how much the shape holds.
        var oversized = await provider.ClaimAsync(new TpuClaimRequest(Lease("oversized"), V5e2x2, 12), CancellationToken.None);
        Assert.Equal(8, Assert.IsType<TpuClaimOutcome.Insufficient>(oversized).UsableChips);

        Assert.Equal(new TpuCapacity(V5e2x2, 1, 8, 4, 1), await provider.GetCapacityAsync(V5e2x2, fresh: false, CancellationToken.None));
        Assert.Equal(new TpuCapacity(V5e2x2, 1, 8, 4, 1), await provider.GetCapacityAsync(V5e2x2, fresh: true, CancellationToken.None));
        Assert.Null(await provider.GetCapacityAsync(V5e4x4, fresh: true, CancellationToken.None));
    }

    [Fact]
    public async Task A_fresh_look_sees_a_pool_the_cache_does_not_show_yet()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        var client = new Kubernetes(new KubernetesClientConfiguration { Host = env.Server.Url, AccessToken = env.Server.Options.Token });
        var informer = new Informer<V1Node>(ResourceClients.Nodes(client));
        using var stop = new CancellationTokenSource();
        var run = informer.RunAsync(stop.Token);
        await informer.WaitForSyncAsync(CancellationToken.None).WaitAsync(Eventually.DefaultTimeout);
        // A frozen cache: the pool created below is one it never sees, as a lagging watch would not yet.
        await stop.CancelAsync();
        await run;
        var provider = new GkeTpuProvider(client, env.Time, NullLogger<GkeTpuProvider>.Instance, informer);
        await TpuNodePools.V5eMultiHost4x4Async(env.Client, "new-pool");

        Assert.Null(await provider.GetCapacityAsync(V5e4x4, fresh: false, CancellationToken.None));
        Assert.Equal(new TpuCapacity(V5e4x4, 4, 16, 16, 1), await provider.GetCapacityAsync(V5e4x4, fresh: true, CancellationToken.None));
    }
}
