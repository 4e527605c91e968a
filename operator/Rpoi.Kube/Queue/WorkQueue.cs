using Prometheus;
using Rpoi.Kube.Observability;

namespace Rpoi.Kube.Queue;

/// <summary>What <see cref="WorkQueue{TKey}.GetAsync"/> hands out: a key, or word that the queue is shut down.</summary>
/// <typeparam name="TKey">The queue's key type.</typeparam>
/// <param name="Key">The key to process (default when <paramref name="Shutdown"/> is true).</param>
/// <param name="Shutdown">True when the queue is shut down and empty: the worker should exit.</param>
public readonly record struct QueueItem<TKey>(TKey Key, bool Shutdown);

/// <summary>Options of a <see cref="WorkQueue{TKey}"/>.</summary>
/// <typeparam name="TKey">The queue's key type.</typeparam>
public sealed record WorkQueueOptions<TKey>
    where TKey : notnull
{
    /// <summary>Clock for delayed adds and the token bucket. Defaults to the system clock.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Retry delays for <see cref="WorkQueue{TKey}.AddRateLimited"/>; defaults to <see cref="RateLimiters.DefaultController{TKey}"/>.</summary>
    public IRateLimiter<TKey>? RateLimiter { get; init; }

    /// <summary>Where to report workqueue_* metrics (label <c>name</c>); none when null.</summary>
    public KubeMetrics? Metrics { get; init; }
}

/// <summary>
/// A rate-limited, delaying, de-duplicating work queue with client-go's semantics: a key is queued at
/// most once however many times it is added ("dirty" set), and a key being processed is never handed
/// to a second worker ("processing" set) — an add during processing re-queues it once
/// <see cref="Done"/> is called.
/// </summary>
/// <typeparam name="TKey">The key type (usually an object's namespace/name).</typeparam>
public sealed class WorkQueue<TKey> : IDisposable
    where TKey : notnull
{
    private readonly Lock _gate = new();
    private readonly Queue<TKey> _queue = new();
    private readonly HashSet<TKey> _dirty = [];
    private readonly HashSet<TKey> _processing = [];
    private readonly Dictionary<TKey, long> _queuedAt = [];
    private readonly Dictionary<TKey, long> _startedAt = [];
    // Delayed adds: each key's earliest due time, and the same in due order (entries a sooner add overtook are skipped when
    // they come up), behind one timer armed for the earliest. One timer per queue, not per key: a key waiting a day (an
    // Active lease's expiry) costs a map entry and a heap entry, not a runtime timer (~230 bytes; BENCHMARKS.md "memcache").
    private readonly Dictionary<TKey, long> _delayed = [];
    private readonly PriorityQueue<TKey, long> _dueOrder = new();
    private System.Threading.ITimer? _timer;
    private long _armedFor = long.MaxValue;
    private readonly LinkedList<TaskCompletionSource<QueueItem<TKey>>> _waiters = new();
    private readonly TimeProvider _time;
    private readonly IRateLimiter<TKey> _limiter;
    private readonly Gauge.Child? _depth;
    private readonly Counter.Child? _adds;
    private readonly Counter.Child? _retries;
    private readonly Histogram.Child? _queueDuration;
    private readonly Histogram.Child? _workDuration;
    private TaskCompletionSource? _drained;
    private bool _shuttingDown;

    /// <summary>Creates an empty queue.</summary>
    /// <param name="name">Name used as the metrics' <c>name</c> label.</param>
    /// <param name="options">Clock, rate limiter and metrics; defaults when null.</param>
    public WorkQueue(string name, WorkQueueOptions<TKey>? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        options ??= new WorkQueueOptions<TKey>();
        Name = name;
        _time = options.Time;
        _limiter = options.RateLimiter ?? RateLimiters.DefaultController<TKey>(_time);
        if (options.Metrics is { } m)
        {
            _depth = m.WorkQueueDepth.WithLabels(name);
            _adds = m.WorkQueueAdds.WithLabels(name);
            _retries = m.WorkQueueRetries.WithLabels(name);
            _queueDuration = m.WorkQueueQueueDuration.WithLabels(name);
            _workDuration = m.WorkQueueWorkDuration.WithLabels(name);
        }
    }

    /// <summary>The queue's name (metrics label).</summary>
    public string Name { get; }

    /// <summary>Number of keys waiting to be handed out (not counting delayed or in-flight keys).</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _queue.Count;
            }
        }
    }

    /// <summary>Number of keys waiting on a delay (<see cref="AddAfter"/>, <see cref="AddRateLimited"/>).</summary>
    public int Delayed
    {
        get
        {
            lock (_gate)
            {
                return _delayed.Count;
            }
        }
    }

    /// <summary>Number of keys handed out and not yet <see cref="Done"/>.</summary>
    public int InFlight
    {
        get
        {
            lock (_gate)
            {
                return _processing.Count;
            }
        }
    }

    /// <summary>True once <see cref="ShutDown"/> was called; further adds are ignored.</summary>
    public bool IsShuttingDown
    {
        get
        {
            lock (_gate)
            {
                return _shuttingDown;
            }
        }
    }

    /// <summary>Queues <paramref name="key"/> unless it is already queued.</summary>
    public void Add(TKey key)
    {
        lock (_gate)
        {
            if (_shuttingDown)
            {
                return;
            }

            _adds?.Inc();
            if (!_dirty.Add(key))
            {
                return;
            }

            _queuedAt[key] = _time.GetTimestamp();

            // A key in flight goes back to the queue when its worker calls Done, never to a second worker.
            if (_processing.Contains(key))
            {
                return;
            }

            _queue.Enqueue(key);
            DispatchLocked();
        }
    }

    /// <summary>Queues <paramref name="key"/> after <paramref name="delay"/>; of several pending delays the earliest wins.</summary>
    public void AddAfter(TKey key, TimeSpan delay)
    {
        if (delay <= TimeSpan.Zero)
        {
            Add(key);
            return;
        }

        lock (_gate)
        {
            if (_shuttingDown)
            {
                return;
            }

            var due = _time.GetTimestamp() + (long)(delay.TotalSeconds * _time.TimestampFrequency);
            if (_delayed.TryGetValue(key, out var existing) && existing <= due)
            {
                return;
            }

            _delayed[key] = due;
            _dueOrder.Enqueue(key, due);
            if (due < _armedFor)
            {
                ArmLocked(due, delay);
            }
        }
    }

    /// <summary>Queues <paramref name="key"/> after the rate limiter's delay (a retry).</summary>
    public void AddRateLimited(TKey key)
    {
        _retries?.Inc();
        AddAfter(key, _limiter.When(key));
    }

    /// <summary>Clears <paramref name="key"/>'s retry history (after a success).</summary>
    public void Forget(TKey key) => _limiter.Forget(key);

    /// <summary>How many rate-limited retries <paramref name="key"/> has had since it was last forgotten.</summary>
    public int NumRequeues(TKey key) => _limiter.NumRequeues(key);

    /// <summary>
    /// Waits for a key. The caller owns the key until it calls <see cref="Done"/>. After shutdown,
    /// keys already queued are still handed out; then the result says <see cref="QueueItem{TKey}.Shutdown"/>.
    /// </summary>
    public Task<QueueItem<TKey>> GetAsync(CancellationToken cancellationToken = default)
    {
        TaskCompletionSource<QueueItem<TKey>> waiter;
        LinkedListNode<TaskCompletionSource<QueueItem<TKey>>> node;
        lock (_gate)
        {
            if (_queue.Count > 0)
            {
                return Task.FromResult(new QueueItem<TKey>(TakeLocked(), false));
            }

            if (_shuttingDown)
            {
                return Task.FromResult(new QueueItem<TKey>(default!, true));
            }

            cancellationToken.ThrowIfCancellationRequested();
            waiter = new TaskCompletionSource<QueueItem<TKey>>(TaskCreationOptions.RunContinuationsAsynchronously);
            node = _waiters.AddLast(waiter);
        }

        if (cancellationToken.CanBeCanceled)
        {
            var registration = cancellationToken.Register(() =>
            {
                lock (_gate)
                {
                    // Only a waiter still in the list has not been handed a key; removing it under the lock
                    // means a key is never lost to a cancelled waiter.
                    if (node.List is not null)
                    {
                        _waiters.Remove(node);
                        waiter.TrySetCanceled(cancellationToken);
                    }
                }
            });
            _ = waiter.Task.ContinueWith(_ => registration.Dispose(), TaskScheduler.Default);
        }

        return waiter.Task;
    }

    /// <summary>Marks <paramref name="key"/> finished; if it was added meanwhile it is queued again.</summary>
    public void Done(TKey key)
    {
        lock (_gate)
        {
            if (!_processing.Remove(key))
            {
                return;
            }

            if (_startedAt.Remove(key, out var started))
            {
                _workDuration?.Observe(_time.GetElapsedTime(started).TotalSeconds);
            }

            if (_dirty.Contains(key))
            {
                _queue.Enqueue(key);
                DispatchLocked();
            }
            else if (_processing.Count == 0)
            {
                _drained?.TrySetResult();
            }
        }
    }

    /// <summary>Stops accepting adds, drops pending delayed adds and wakes idle workers once the queue is empty.</summary>
    public void ShutDown()
    {
        lock (_gate)
        {
            if (_shuttingDown)
            {
                return;
            }

            _shuttingDown = true;
            _timer?.Dispose();
            _timer = null;
            _armedFor = long.MaxValue;
            _delayed.Clear();
            _dueOrder.Clear();
            DispatchLocked();
            if (_queue.Count == 0)
            {
                while (_waiters.First is { } first)
                {
                    _waiters.RemoveFirst();
                    first.Value.TrySetResult(new QueueItem<TKey>(default!, true));
                }
            }
        }
    }

    /// <summary>Shuts down and waits until every key handed out has been marked <see cref="Done"/>.</summary>
    public Task ShutDownWithDrainAsync(CancellationToken cancellationToken = default)
    {
        Task wait;
        lock (_gate)
        {
            ShutDown();
            if (_processing.Count == 0)
            {
                return Task.CompletedTask;
            }

            _drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            wait = _drained.Task;
        }

        return wait.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Runs <paramref name="workers"/> loops that take a key, run <paramref name="process"/> and mark it
    /// done. Cancelling <paramref name="stoppingToken"/> stops taking new keys; keys in flight finish.
    /// A <paramref name="process"/> that throws gets its key requeued with rate limiting.
    /// </summary>
    public Task RunWorkersAsync(int workers, Func<TKey, Task> process, CancellationToken stoppingToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        ArgumentNullException.ThrowIfNull(process);
        var loops = new Task[workers];
        for (var i = 0; i < workers; i++)
        {
            loops[i] = Task.Run(
                async () =>
                {
                    while (true)
                    {
                        QueueItem<TKey> item;
                        try
                        {
                            item = await GetAsync(stoppingToken).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException)
                        {
                            return;
                        }

                        if (item.Shutdown)
                        {
                            return;
                        }

                        try
                        {
                            await process(item.Key).ConfigureAwait(false);
                        }
#pragma warning disable CA1031 // A worker must survive any failure of one item; the item is retried.
                        catch (Exception)
#pragma warning restore CA1031
                        {
                            AddRateLimited(item.Key);
                        }
                        finally
                        {
                            Done(item.Key);
                        }

                        if (stoppingToken.IsCancellationRequested)
                        {
                            return;
                        }
                    }
                },
                CancellationToken.None);
        }

        return Task.WhenAll(loops);
    }

    /// <inheritdoc/>
    public void Dispose() => ShutDown();

    private void ArmLocked(long due, TimeSpan delay)
    {
        _armedFor = due;
        if (_timer is null)
        {
            _timer = _time.CreateTimer(_ => Fire(), null, delay, Timeout.InfiniteTimeSpan);
        }
        else
        {
            _timer.Change(delay, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>The timer: queues every key that is due and arms the timer for the next one.</summary>
    private void Fire()
    {
        List<TKey>? due = null;
        lock (_gate)
        {
            if (_shuttingDown)
            {
                return;
            }

            var now = _time.GetTimestamp();
            _armedFor = long.MaxValue;
            while (_dueOrder.TryPeek(out var key, out var at))
            {
                var current = _delayed.TryGetValue(key, out var d) && d == at;
                if (current && at > now)
                {
                    // Rounded up, so the timer never fires before the key is due (a fake clock advanced exactly to it fires it).
                    var ticks = (long)Math.Ceiling((at - now) * (double)TimeSpan.TicksPerSecond / _time.TimestampFrequency);
                    ArmLocked(at, TimeSpan.FromTicks(Math.Max(1, ticks)));
                    break;
                }

                _dueOrder.Dequeue();
                if (current)
                {
                    _delayed.Remove(key);
                    (due ??= []).Add(key);
                }
            }
        }

        foreach (var key in due ?? [])
        {
            Add(key);
        }
    }

    private void DispatchLocked()
    {
        while (_waiters.First is { } first && _queue.Count > 0)
        {
            _waiters.RemoveFirst();
            first.Value.TrySetResult(new QueueItem<TKey>(TakeLocked(), false));
        }

        _depth?.Set(_queue.Count);
    }

    private TKey TakeLocked()
    {
        var key = _queue.Dequeue();
        _dirty.Remove(key);
        _processing.Add(key);
        var now = _time.GetTimestamp();
        if (_queuedAt.Remove(key, out var queued))
        {
            _queueDuration?.Observe(_time.GetElapsedTime(queued, now).TotalSeconds);
        }

        _startedAt[key] = now;
        _depth?.Set(_queue.Count);
        return key;
    }
}
