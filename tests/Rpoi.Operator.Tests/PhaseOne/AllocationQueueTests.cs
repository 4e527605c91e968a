using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Operator.Tests.Support;

namespace Rpoi.Operator.Tests.PhaseOne;

/// <summary>The FIFO queue: order by creation time, per shape, with wake-ups for parked leases when the leases ahead move or capacity frees.</summary>
public sealed class AllocationQueueTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly TpuShape Small = new("tpu-v5-lite-podslice", "2x2");
    private static readonly TpuShape Big = new("tpu-v5-lite-podslice", "4x4");

    private static QueuedLease Entry(string name, int second, TpuShape? shape = null, int chips = 4) =>
        new(new LeaseIdentity("ns", name, "uid-" + name), shape ?? Small, T0.AddSeconds(second), chips);

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
    public void An_older_lease_entering_late_wakes_the_parked_leases_it_moves_back()
    {
        var queue = new AllocationQueue();
        var woken = new List<string>();
        queue.Changed += ids => woken.AddRange(ids.Select(i => i.Name));
        var b = queue.Look(Entry("b", 2));
        queue.Enter(Entry("c", 3));
        Assert.True(queue.Park(Entry("b", 2).Lease, b));
        Assert.Empty(woken);

        // c is being reconciled (not parked): it sees its new place itself; b recorded a place that is now wrong.
        Assert.Equal(1, queue.Enter(Entry("a", 1)));
        Assert.Equal(["b"], woken);
        Assert.Equal(2, queue.PositionOf(Entry("b", 2).Lease));

        woken.Clear();
        queue.Enter(Entry("a", 1));
        Assert.Empty(woken);
    }

    [Fact]
    public void Look_tells_the_demands_ahead_so_leases_that_fit_claim_side_by_side()
    {
        var queue = new AllocationQueue();
        queue.Enter(Entry("a", 1, chips: 16));
        queue.Enter(Entry("b", 2));
        var view = queue.Look(Entry("c", 3));
        Assert.Equal(3, view.Position);
        Assert.Equal([new QueuedDemand("uid-a", 16), new QueuedDemand("uid-b", 4)], view.Ahead);
        Assert.Empty(queue.Look(Entry("other-shape", 0, Big)).Ahead);
    }

    [Fact]
    public void Leaving_and_freed_capacity_wake_only_the_first_parked_lease()
    {
        var queue = new AllocationQueue();
        var woken = new List<string>();
        queue.Changed += ids => woken.AddRange(ids.Select(i => i.Name));
        queue.Enter(Entry("a", 1));
        var b = queue.Look(Entry("b", 2));
        var c = queue.Look(Entry("c", 3));
        Assert.True(queue.Park(Entry("c", 3).Lease, c));
        Assert.True(queue.Park(Entry("b", 2).Lease, b));

        queue.Leave(Entry("a", 1).Lease);
        Assert.Equal(["b"], woken);
        Assert.Equal(1, queue.PositionOf(Entry("b", 2).Lease));

        woken.Clear();
        queue.Leave(Entry("a", 1).Lease);
        Assert.Empty(woken);

        queue.CapacityFreed(Small);
        Assert.Equal(["b"], woken);

        // b looks again (no longer parked): the next wake-up goes to c.
        woken.Clear();
        queue.Enter(Entry("b", 2));
        queue.CapacityFreed(Small);
        Assert.Equal(["c"], woken);

        woken.Clear();
        queue.Forget("ns", "b");
        Assert.Equal(["c"], woken);
        queue.CapacityFreed(Big);
        Assert.Equal(["c"], woken);
    }

    [Fact]
    public void A_lease_that_decided_to_wait_on_an_old_view_is_told_to_look_again()
    {
        var queue = new AllocationQueue();
        var woken = new List<string>();
        queue.Changed += ids => woken.AddRange(ids.Select(i => i.Name));
        queue.Enter(Entry("a", 1));
        var seen = queue.Look(Entry("b", 2));
        // a leaves (its room comes back) while b is still deciding: the wake-up finds nobody parked...
        queue.Leave(Entry("a", 1).Lease);
        Assert.Empty(woken);
        // ...so b must not park on what it saw before.
        Assert.False(queue.Park(Entry("b", 2).Lease, seen));
        Assert.True(queue.Park(Entry("b", 2).Lease, queue.Look(Entry("b", 2))));
        Assert.Equal(["b"], queue.FirstParked(Small).Select(l => l.Name));
        // Parking without a view always parks (a lease that looked several times in a row).
        Assert.True(queue.Park(Entry("b", 2).Lease, null));
    }

    [Fact]
    public void A_younger_lease_that_looked_before_an_older_one_entered_ahead_is_told_to_look_again()
    {
        // Seen in CI (RestartTests.Restart_while_queued_keeps_the_fifo_order): the younger lease looked first (place 1),
        // the older one entered ahead of it before the younger parked, and the younger parked with place 1 for good.
        var queue = new AllocationQueue();
        var woken = new List<string>();
        queue.Changed += ids => woken.AddRange(ids.Select(i => i.Name));
        queue.Enter(Entry("holder", 0));
        var younger = queue.Look(Entry("younger", 2));
        Assert.Equal(2, younger.Position);
        Assert.Equal(2, queue.Enter(Entry("older", 1)));
        Assert.Empty(woken); // the younger lease was not parked yet, so nobody is woken...
        Assert.False(queue.Park(Entry("younger", 2).Lease, younger)); // ...and it must not park on its old place
        var again = queue.Look(Entry("younger", 2));
        Assert.Equal(3, again.Position);
        Assert.True(queue.Park(Entry("younger", 2).Lease, again));
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

    [Fact]
    public async Task A_lease_looking_while_the_seed_is_read_waits_for_it_and_queues_behind_the_older_lease()
    {
        var queue = new AllocationQueue();
        var reading = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var release = new ManualResetEventSlim();
        queue.SeedFrom(() =>
        {
            reading.SetResult();
            release.Wait();
            return [Entry("older-from-cache", 1)];
        });
        var first = Task.Run(() => queue.Enter(Entry("restarted-first", 5)));
        await reading.Task;

        // A second worker's lease looks while the first one reads the cache (two workers after a restart). It must not
        // take a place before the older lease from the cache is in: it blocks until the seed is in, or (the race) it is
        // answered at once from a queue without the older lease.
        var secondPosition = 0;
        var second = new Thread(() => secondPosition = queue.Enter(Entry("restarted-second", 6)));
        second.Start();
        await Eventually.HoldsAsync(() => Task.FromResult(!second.IsAlive || second.ThreadState.HasFlag(ThreadState.WaitSleepJoin)), "the second lease was answered or waits");
        release.Set();
        second.Join();

        Assert.Equal(2, await first);
        Assert.Equal(3, secondPosition);
        Assert.Equal(["older-from-cache", "restarted-first", "restarted-second"], queue.Waiting(Small).Select(e => e.Lease.Name));
    }

    [Fact]
    public void Thousands_of_leases_in_random_order_keep_the_order_positions_and_views_of_a_sorted_list()
    {
        // Enough entries for the queue's blocks to split many times, with ties in time (names decide) and removals
        // anywhere; a plain sorted list is the model.
        var random = new Random(14);
        var queue = new AllocationQueue();
        var model = new List<QueuedLease>();
        var order = Comparer<QueuedLease>.Create((a, b) => a.CreatedAt != b.CreatedAt ? a.CreatedAt.CompareTo(b.CreatedAt) : string.CompareOrdinal(a.Lease.Name, b.Lease.Name));
        var views = new List<(QueuedLease Entry, QueueView View, List<QueuedDemand> Expected)>();
        for (var i = 0; i < 3000; i++)
        {
            var entry = Entry($"l{random.Next(1_000_000):D7}-{i}", random.Next(50), chips: 4 * (1 + random.Next(3)));
            var view = queue.Look(entry);
            var at = model.BinarySearch(entry, order);
            model.Insert(~at, entry);
            Assert.Equal(~at + 1, view.Position);
            if (i % 97 == 0)
            {
                views.Add((entry, view, model.Take(~at).Select(e => new QueuedDemand(e.Lease.Uid, e.Chips)).ToList()));
            }

            if (random.Next(4) == 0)
            {
                var gone = model[random.Next(model.Count)];
                model.Remove(gone);
                queue.Leave(gone.Lease);
            }
        }

        Assert.Equal(model, queue.Waiting(Small));
        foreach (var probe in model.Where((_, k) => k % 41 == 0))
        {
            Assert.Equal(model.IndexOf(probe) + 1, queue.PositionOf(probe.Lease));
        }

        // A view keeps what it saw, though the queue changed since; read by index and by enumeration alike.
        foreach (var (entry, view, expected) in views)
        {
            Assert.Equal(expected, view.Ahead);
            Assert.Equal(expected.Count, view.Ahead.Count);
            for (var k = 0; k < expected.Count; k += 7)
            {
                Assert.Equal(expected[k], view.Ahead[k]);
            }
        }

        foreach (var entry in model.ToList())
        {
            queue.Leave(entry.Lease);
        }

        Assert.Empty(queue.Waiting(Small));
        Assert.Equal(1, queue.Enter(Entry("after", 1)));
    }

    [Fact]
    public void A_lease_made_again_under_its_name_in_the_same_second_leaves_apart_from_the_old_one()
    {
        // Both compare equal in the queue's order (time, namespace, name); each is found by itself, not by its key.
        var queue = new AllocationQueue();
        var old = new QueuedLease(new LeaseIdentity("ns", "same", "uid-old"), Small, T0, 4);
        var remade = new QueuedLease(new LeaseIdentity("ns", "same", "uid-new"), Small, T0, 4);
        queue.Enter(Entry("before", -1));
        queue.Enter(old);
        queue.Enter(remade);
        queue.Enter(Entry("after", 1));
        Assert.Equal(4, queue.Waiting(Small).Count);
        queue.Leave(old.Lease);
        Assert.Equal(["uid-before", "uid-new", "uid-after"], queue.Waiting(Small).Select(e => e.Lease.Uid));
        Assert.Equal(2, queue.PositionOf(remade.Lease));
        Assert.Equal(0, queue.PositionOf(old.Lease));
    }
}
