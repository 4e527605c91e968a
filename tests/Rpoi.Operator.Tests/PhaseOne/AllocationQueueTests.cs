using Rpoi.Operator.PhaseOne.Allocation;

namespace Rpoi.Operator.Tests.PhaseOne;

/// <summary>The FIFO queue: order by creation time, per shape, with wake-ups when the head leaves or capacity frees.</summary>
public sealed class AllocationQueueTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly TpuShape Small = new("tpu-v5-lite-podslice", "2x2");
    private static readonly TpuShape Big = new("tpu-v5-lite-podslice", "4x4");

    private static QueuedLease Entry(string name, int second, TpuShape? shape = null) =>
        new(new LeaseIdentity("ns", name, "uid-" + name), shape ?? Small, T0.AddSeconds(second));

    [Fact]
    public void Positions_follow_creation_time_not_arrival_then_namespace_and_name()
    {
        var queue = new AllocationQueue();
        Assert.Equal(1, queue.Enter(Entry("young", 30)));
        Assert.Equal(1, queue.Enter(Entry("old", 10)));
        Assert.Equal(2, queue.PositionOf(Entry("young", 30).Lease));
        Assert.Equal(2, queue.Enter(Entry("b-tie", 20)));
        Assert.Equal(2, queue.Enter(Entry("a-tie", 20)));
        Assert.Equal(["old", "a-tie", "b-tie", "young"], queue.Waiting(Small).Select(e => e.Lease.Name));
        // Entering again keeps the original place.
        Assert.Equal(4, queue.Enter(Entry("young", 30)));
    }

    [Fact]
    public void Shapes_have_independent_queues()
    {
        var queue = new AllocationQueue();
        queue.Enter(Entry("small", 10));
        Assert.Equal(1, queue.Enter(Entry("big", 20, Big)));
        Assert.Equal(0, queue.PositionOf(Entry("gone", 5).Lease));
    }

    [Fact]
    public void An_older_lease_entering_late_wakes_the_leases_it_moves_back()
    {
        var queue = new AllocationQueue();
        var woken = new List<string>();
        queue.Changed += ids => woken.AddRange(ids.Select(i => i.Name));
        queue.Enter(Entry("b", 2));
        queue.Enter(Entry("c", 3));
        Assert.Empty(woken);

        Assert.Equal(1, queue.Enter(Entry("a", 1)));
        Assert.Equal(["b", "c"], woken);
        Assert.Equal(2, queue.PositionOf(Entry("b", 2).Lease));

        woken.Clear();
        queue.Enter(Entry("a", 1));
        Assert.Empty(woken);
    }

    [Fact]
    public void Leaving_and_freed_capacity_wake_only_the_new_head()
    {
        var queue = new AllocationQueue();
        var woken = new List<string>();
        queue.Changed += ids => woken.AddRange(ids.Select(i => i.Name));
        queue.Enter(Entry("a", 1));
        queue.Enter(Entry("b", 2));
        queue.Enter(Entry("c", 3));

        queue.Leave(Entry("a", 1).Lease);
        Assert.Equal(["b"], woken);
        Assert.Equal(1, queue.PositionOf(Entry("b", 2).Lease));

        woken.Clear();
        queue.Leave(Entry("a", 1).Lease);
        Assert.Empty(woken);

        queue.CapacityFreed(Small);
        Assert.Equal(["b"], woken);

        woken.Clear();
        queue.Forget("ns", "b");
        Assert.Equal(["c"], woken);
        queue.CapacityFreed(Big);
        Assert.Equal(["c"], woken);
    }

    [Fact]
    public void The_seed_from_the_cache_is_read_once_before_the_first_entry()
    {
        var queue = new AllocationQueue();
        var reads = 0;
        queue.SeedFrom(() =>
        {
            reads++;
            return [Entry("older-from-cache", 1)];
        });
        Assert.Equal(2, queue.Enter(Entry("restarted-first", 5)));
        Assert.Equal(2, queue.Enter(Entry("restarted-first", 5)));
        Assert.Equal(1, reads);
    }
}
