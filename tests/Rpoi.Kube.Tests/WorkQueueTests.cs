using Microsoft.Extensions.Time.Testing;
using Prometheus;
using Rpoi.Kube.Observability;
using Rpoi.Kube.Queue;

namespace Rpoi.Kube.Tests;

public sealed class WorkQueueTests
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task Many_adds_of_one_key_queue_it_once()
    {
        using var q = new WorkQueue<string>("dedup");
        for (var i = 0; i < 1000; i++)
        {
            q.Add("a");
        }

        q.Add("b");
        Assert.Equal(2, q.Count);
        var first = await q.GetAsync();
        var second = await q.GetAsync();
        Assert.Equal(["a", "b"], new[] { first.Key, second.Key });
        Assert.Equal(0, q.Count);
    }

    [Fact]
    public async Task A_key_added_while_in_flight_is_not_handed_to_a_second_worker_until_done()
    {
        using var q = new WorkQueue<string>("processing");
        q.Add("a");
        var item = await q.GetAsync();
        q.Add("a");
        Assert.Equal(0, q.Count);

        var second = q.GetAsync();
        Assert.False(second.IsCompleted);

        q.Done(item.Key);
        var again = await second.WaitAsync(Short);
        Assert.Equal("a", again.Key);
    }

    [Fact]
    public async Task Concurrent_workers_never_process_the_same_key_at_once()
    {
        using var q = new WorkQueue<string>("concurrency");
        var active = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        var overlaps = 0;
        var processed = 0;
        using var stop = new CancellationTokenSource();
        var run = q.RunWorkersAsync(
            8,
            async key =>
            {
                if (active.AddOrUpdate(key, 1, (_, n) => n + 1) > 1)
                {
                    Interlocked.Increment(ref overlaps);
                }

                await Task.Yield();
                active.AddOrUpdate(key, 0, (_, n) => n - 1);
                Interlocked.Increment(ref processed);
            },
            stop.Token);

        for (var i = 0; i < 5000; i++)
        {
            q.Add($"k{i % 4}");
            if (i % 50 == 0)
            {
                await Task.Yield();
            }
        }

        await Eventually.HoldsAsync(() => q.Count == 0 && q.InFlight == 0);
        await stop.CancelAsync();
        q.ShutDown();
        await run.WaitAsync(Short);
        Assert.Equal(0, overlaps);
        Assert.InRange(processed, 4, 5000);
    }

    [Fact]
    public void Exponential_backoff_doubles_from_5ms_and_caps_at_1000s()
    {
        var limiter = new ExponentialFailureRateLimiter<string>(TimeSpan.FromMilliseconds(5), TimeSpan.FromSeconds(1000));
        var delays = Enumerable.Range(0, 5).Select(_ => limiter.When("k").TotalMilliseconds).ToArray();
        Assert.Equal([5, 10, 20, 40, 80], delays);
        Assert.Equal(5, limiter.NumRequeues("k"));

        for (var i = 0; i < 100; i++)
        {
            limiter.When("k");
        }

        Assert.Equal(TimeSpan.FromSeconds(1000), limiter.When("k"));
        Assert.Equal(TimeSpan.FromMilliseconds(5), limiter.When("other"));

        limiter.Forget("k");
        Assert.Equal(0, limiter.NumRequeues("k"));
        Assert.Equal(TimeSpan.FromMilliseconds(5), limiter.When("k"));
    }

    [Fact]
    public void Token_bucket_allows_a_burst_of_100_then_10_per_second()
    {
        var time = new FakeTimeProvider();
        var bucket = new TokenBucketRateLimiter<string>(10, 100, time);
        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(TimeSpan.Zero, bucket.When($"k{i}"));
        }

        Assert.Equal(TimeSpan.FromMilliseconds(100), bucket.When("x"));
        Assert.Equal(TimeSpan.FromMilliseconds(200), bucket.When("y"));

        // After one second the 10 tokens earned pay back the two reservations and leave 8.
        time.Advance(TimeSpan.FromSeconds(1));
        for (var i = 0; i < 8; i++)
        {
            Assert.Equal(TimeSpan.Zero, bucket.When($"z{i}"));
        }

        Assert.Equal(TimeSpan.FromMilliseconds(100), bucket.When("w"));
    }

    [Fact]
    public void Default_limiter_takes_the_longer_of_backoff_and_bucket()
    {
        var time = new FakeTimeProvider();
        var limiter = RateLimiters.DefaultController<string>(time);
        Assert.Equal(TimeSpan.FromMilliseconds(5), limiter.When("a"));
        for (var i = 0; i < 98; i++)
        {
            limiter.When($"b{i}");
        }

        // Bucket exhausted: the 101st retry waits for the bucket (100 ms), longer than a's 10 ms backoff.
        Assert.Equal(TimeSpan.FromMilliseconds(10), limiter.When("a"));
        Assert.Equal(TimeSpan.FromMilliseconds(100), limiter.When("a"));
    }

    /// <summary>A fake clock that counts the timers made on it.</summary>
    private sealed class CountingTime : FakeTimeProvider
    {
        public int Timers { get; private set; }

        public override System.Threading.ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            Timers++;
            return base.CreateTimer(callback, state, dueTime, period);
        }
    }

    [Fact]
    public void Many_delayed_keys_share_one_timer_and_each_is_queued_exactly_when_due()
    {
        // 1,000 keys waiting (Active leases until their expiry) must not hold 1,000 runtime timers (~230 bytes each).
        var time = new CountingTime();
        using var q = new WorkQueue<int>("delayed-many", new WorkQueueOptions<int> { Time = time });
        for (var i = 999; i >= 0; i--)
        {
            q.AddAfter(i, TimeSpan.FromSeconds(1 + (i % 100)));
        }

        Assert.Equal(1, time.Timers);
        Assert.Equal(1000, q.Delayed);
        for (var s = 1; s <= 100; s++)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            // Keys due at s seconds: i % 100 == s - 1, ten of them, queued at that moment and not before.
            Assert.Equal(10 * s, q.Count);
            Assert.Equal(1000 - (10 * s), q.Delayed);
        }

        // A sooner add after the timer was armed for later re-arms it; a later one for a waiting key changes nothing.
        q.AddAfter(5000, TimeSpan.FromSeconds(50));
        q.AddAfter(5001, TimeSpan.FromSeconds(5));
        q.AddAfter(5001, TimeSpan.FromSeconds(40));
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(1001, q.Count);
        time.Advance(TimeSpan.FromSeconds(45));
        Assert.Equal(1002, q.Count);
        Assert.Equal(0, q.Delayed);
        Assert.Equal(1, time.Timers);
    }

    [Fact]
    public async Task AddAfter_waits_for_the_clock_and_keeps_the_earliest_deadline()
    {
        var time = new FakeTimeProvider();
        using var q = new WorkQueue<string>("delayed", new WorkQueueOptions<string> { Time = time });
        q.AddAfter("a", TimeSpan.FromSeconds(10));
        q.AddAfter("a", TimeSpan.FromSeconds(3));
        q.AddAfter("a", TimeSpan.FromSeconds(20));
        Assert.Equal(0, q.Count);
        Assert.Equal(1, q.Delayed);

        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(0, q.Count);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, q.Count);
        Assert.Equal(0, q.Delayed);
        var item = await q.GetAsync();
        Assert.Equal("a", item.Key);
        q.Done("a");

        time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(0, q.Count);
    }

    [Fact]
    public async Task AddRateLimited_backs_off_per_key_and_counts_retries()
    {
        var time = new FakeTimeProvider();
        var registry = Metrics.NewCustomRegistry();
        var metrics = new KubeMetrics(registry);
        using var q = new WorkQueue<string>(
            "retry",
            new WorkQueueOptions<string>
            {
                Time = time,
                Metrics = metrics,
                RateLimiter = new ExponentialFailureRateLimiter<string>(TimeSpan.FromMilliseconds(5), TimeSpan.FromSeconds(1000)),
            });

        q.AddRateLimited("a");
        time.Advance(TimeSpan.FromMilliseconds(4));
        Assert.Equal(0, q.Count);
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, q.Count);
        q.Done((await q.GetAsync()).Key);

        q.AddRateLimited("a");
        time.Advance(TimeSpan.FromMilliseconds(9));
        Assert.Equal(0, q.Count);
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, q.Count);
        Assert.Equal(2, q.NumRequeues("a"));
        q.Forget("a");
        Assert.Equal(0, q.NumRequeues("a"));
        Assert.Equal(2, metrics.WorkQueueRetries.WithLabels("retry").Value);
        Assert.Equal(2, metrics.WorkQueueAdds.WithLabels("retry").Value);
        Assert.Equal(1, metrics.WorkQueueDepth.WithLabels("retry").Value);
    }

    [Fact]
    public async Task Shutdown_with_drain_waits_for_in_flight_items_and_rejects_new_adds()
    {
        using var q = new WorkQueue<string>("drain");
        q.Add("a");
        var item = await q.GetAsync();

        var drain = q.ShutDownWithDrainAsync();
        Assert.False(drain.IsCompleted);
        q.Add("b");
        Assert.Equal(0, q.Count);

        q.Done(item.Key);
        await drain.WaitAsync(Short);
        Assert.True((await q.GetAsync()).Shutdown);
    }

    [Fact]
    public async Task Workers_finish_the_item_in_flight_when_stopped()
    {
        using var q = new WorkQueue<string>("stop");
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var finished = 0;
        using var stop = new CancellationTokenSource();
        var run = q.RunWorkersAsync(
            2,
            async _ =>
            {
                started.TrySetResult();
                await release.Task;
                Interlocked.Increment(ref finished);
            },
            stop.Token);
        q.Add("a");
        await started.Task.WaitAsync(Short);

        await stop.CancelAsync();
        var drain = q.ShutDownWithDrainAsync();
        Assert.False(drain.IsCompleted);
        release.SetResult();
        await drain.WaitAsync(Short);
        await run.WaitAsync(Short);
        Assert.Equal(1, finished);
    }

    [Fact]
    public async Task A_cancelled_get_does_not_swallow_a_later_key()
    {
        using var q = new WorkQueue<string>("cancel");
        using var cts = new CancellationTokenSource();
        var get = q.GetAsync(cts.Token);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => get);
        q.Add("a");
        Assert.Equal("a", (await q.GetAsync().WaitAsync(Short)).Key);
    }
}
