using System.Diagnostics;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Rpoi.Kube.Informers;
using Rpoi.Kube.Observability;
using Rpoi.Kube.Queue;

namespace Rpoi.Kube.Controllers;

/// <summary>The type-free face of a controller, for hosts.</summary>
public interface IController
{
    /// <summary>The controller's name (metrics label and queue name).</summary>
    string Name { get; }

    /// <summary>Informers this controller reads; the host runs them.</summary>
    IReadOnlyList<IInformer> Informers { get; }

    /// <summary>Waits for the informers to sync, then reconciles until <paramref name="stoppingToken"/> is cancelled; in-flight reconciles finish.</summary>
    Task RunAsync(CancellationToken stoppingToken);
}

/// <summary>Options of a <see cref="Controller{T}"/>.</summary>
public sealed record ControllerOptions
{
    /// <summary>Concurrent reconciles (controller-runtime's MaxConcurrentReconciles, default 1). One key is never reconciled twice at once.</summary>
    public int Workers { get; init; } = 1;

    /// <summary>Clock for requeues and backoff.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Retry delays; defaults to client-go's controller limiter (5 ms..1000 s per key, 10 QPS burst 100 overall).</summary>
    public IRateLimiter<ObjectKey>? RateLimiter { get; init; }

    /// <summary>Where to report metrics; none when null.</summary>
    public KubeMetrics? Metrics { get; init; }

    /// <summary>Logger; silent when null.</summary>
    public ILogger? Logger { get; init; }

    /// <summary>After stop, how long in-flight reconciles may run before their token is cancelled.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// Wires informer → work queue → workers → reconciler (controller-runtime's controller): every
/// add/update/delete of an object queues its key; a worker fetches the object from the cache and
/// reconciles it, or calls <see cref="IReconciler{T}.DeletedAsync"/> when it is gone. Registered
/// finalizers are added to live objects and run (then removed) when an object is being deleted.
/// </summary>
/// <typeparam name="T">The object type.</typeparam>
public sealed class Controller<T> : IController
    where T : class, IKubernetesObject<V1ObjectMeta>
{
    private readonly Informer<T> _informer;
    private readonly IResourceClient<T> _client;
    private readonly IReconciler<T> _reconciler;
    private readonly ControllerOptions _options;
    private readonly ILogger _log;
    private readonly List<(string Name, IFinalizer<T> Finalizer)> _finalizers = [];
    private readonly List<IInformer> _informers;
    private WorkQueue<ObjectKey>? _queue;
    private long _reconciles;
    private long _skippedEchoes;

    /// <summary>Creates the controller and subscribes it to <paramref name="informer"/>.</summary>
    public Controller(string name, Informer<T> informer, IResourceClient<T> client, IReconciler<T> reconciler, ControllerOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(informer);
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(reconciler);
        Name = name;
        _informer = informer;
        _client = client;
        _reconciler = reconciler;
        _options = options ?? new ControllerOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.Workers, 1, "options.Workers");
        _log = _options.Logger ?? NullLogger.Instance;
        _informers = [informer];
        informer.AddEventHandler(new ResourceEventHandler<T>(
            (obj, _) => Enqueue(ObjectKey.Of(obj)),
            (_, obj) =>
            {
                if (Volatile.Read(ref _echoes) is not { } echoes || !echoes.IsEcho(obj))
                {
                    Enqueue(ObjectKey.Of(obj));
                }
                else
                {
                    Interlocked.Increment(ref _skippedEchoes);
                }
            },
            obj =>
            {
                Volatile.Read(ref _echoes)?.Forget(ObjectKey.Of(obj));
                Enqueue(ObjectKey.Of(obj));
            }));
    }

    private OwnWrites<T>? _echoes;

    /// <summary>
    /// Skips update events that only echo a write recorded in <paramref name="writes"/> (typically the reconciler's own
    /// status writes, through <see cref="OwnWrites{T}.Wrap"/>), and records the finalizers this controller adds there too.
    /// Use it when the reconciler never relies on its own echo for a next step.
    /// </summary>
    public Controller<T> SkipEchoesOf(OwnWrites<T> writes)
    {
        ArgumentNullException.ThrowIfNull(writes);
        writes.ObserveCache(key => _informer.Store.Get(key)?.Metadata.ResourceVersion);
        Volatile.Write(ref _echoes, writes);
        return this;
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public IReadOnlyList<IInformer> Informers => _informers;

    /// <summary>The primary informer (its store is the controller's cache).</summary>
    public Informer<T> Informer => _informer;

    /// <summary>Reconciles run so far (including finalizer runs and deleted hooks).</summary>
    public long ReconcileCount => Interlocked.Read(ref _reconciles);

    /// <summary>Update events skipped because they only echoed a write recorded through <see cref="SkipEchoesOf"/>.</summary>
    public long SkippedEchoCount => Interlocked.Read(ref _skippedEchoes);

    /// <summary>The queue of the current run; null when not running.</summary>
    public WorkQueue<ObjectKey>? Queue => Volatile.Read(ref _queue);

    /// <summary>Registers a finalizer (KubeOps' <c>AddFinalizer</c>). <paramref name="name"/> must be domain-qualified.</summary>
    public Controller<T> AddFinalizer(string name, IFinalizer<T> finalizer)
    {
        ArgumentNullException.ThrowIfNull(finalizer);
        if (string.IsNullOrWhiteSpace(name) || !name.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"Finalizer '{name}' must be domain-qualified, e.g. 'example.test/cleanup'.", nameof(name));
        }

        _finalizers.Add((name, finalizer));
        return this;
    }

    /// <summary>
    /// Also reconciles when related objects change: <paramref name="map"/> turns a changed
    /// <typeparamref name="TOther"/> into the keys of the primary objects to queue (controller-runtime's
    /// <c>Watches(..., EnqueueRequestsFromMapFunc)</c>).
    /// </summary>
    public Controller<T> Watch<TOther>(Informer<TOther> informer, Func<TOther, IEnumerable<ObjectKey>> map)
        where TOther : class, IKubernetesObject<V1ObjectMeta>
    {
        ArgumentNullException.ThrowIfNull(informer);
        ArgumentNullException.ThrowIfNull(map);
        _informers.Add(informer);
        void EnqueueAll(TOther o)
        {
            foreach (var key in map(o))
            {
                Enqueue(key);
            }
        }

        informer.AddEventHandler(new ResourceEventHandler<TOther>((o, _) => EnqueueAll(o), (_, o) => EnqueueAll(o), EnqueueAll));
        return this;
    }

    /// <inheritdoc/>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        var queue = new WorkQueue<ObjectKey>(Name, new WorkQueueOptions<ObjectKey>
        {
            Time = _options.Time,
            RateLimiter = _options.RateLimiter,
            Metrics = _options.Metrics,
        });
        if (Interlocked.CompareExchange(ref _queue, queue, null) is not null)
        {
            queue.Dispose();
            throw new InvalidOperationException($"Controller '{Name}' is already running.");
        }

        try
        {
            foreach (var informer in _informers)
            {
                await informer.WaitForSyncAsync(stoppingToken).ConfigureAwait(false);
            }

            // Events that arrived while no run was active were dropped: start from the whole cache.
            foreach (var key in _informer.Store.Keys())
            {
                queue.Add(key);
            }

            _log.LogInformation("Controller {Controller} started with {Workers} workers", Name, _options.Workers);
            using var abort = new CancellationTokenSource();
            using var onStop = stoppingToken.Register(() => abort.CancelAfter(_options.DrainTimeout));
            await queue.RunWorkersAsync(_options.Workers, key => ProcessAsync(queue, key, abort.Token), stoppingToken).ConfigureAwait(false);
            await queue.ShutDownWithDrainAsync(CancellationToken.None).ConfigureAwait(false);
            _log.LogInformation("Controller {Controller} stopped", Name);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            queue.Dispose();
            Interlocked.Exchange(ref _queue, null);
        }
    }

    private void Enqueue(ObjectKey key) => Volatile.Read(ref _queue)?.Add(key);

    private async Task ProcessAsync(WorkQueue<ObjectKey> queue, ObjectKey key, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        ReconcileResult result;
        try
        {
            result = await ReconcileKeyAsync(key, ct).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // A reconciler's exception is an error result, retried with backoff.
        catch (Exception e)
#pragma warning restore CA1031
        {
            result = ReconcileResult.Error(e);
        }

        Interlocked.Increment(ref _reconciles);
        _options.Metrics?.ReconcileTime.WithLabels(Name).Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
        string label;
        switch (result)
        {
            case ReconcileResult.Delayed d:
                queue.Forget(key);
                queue.AddAfter(key, d.After);
                label = "requeue_after";
                break;
            case ReconcileResult.Retry:
                queue.AddRateLimited(key);
                label = "requeue";
                break;
            case ReconcileResult.Failure f:
                queue.AddRateLimited(key);
                label = "error";
                _options.Metrics?.ReconcileErrors.WithLabels(Name).Inc();
                _log.LogWarning(f.Exception, "Reconcile of {Key} by {Controller} failed: {Message}; retry {Retry}", key, Name, f.Message, queue.NumRequeues(key));
                break;
            default:
                queue.Forget(key);
                label = "success";
                break;
        }

        _options.Metrics?.ReconcileTotal.WithLabels(Name, label).Inc();
    }

    private async Task<ReconcileResult> ReconcileKeyAsync(ObjectKey key, CancellationToken ct)
    {
        var entity = _informer.Store.Get(key);
        if (entity is null)
        {
            await _reconciler.DeletedAsync(key, ct).ConfigureAwait(false);
            return ReconcileResult.Done;
        }

        if (entity.Metadata.DeletionTimestamp is not null)
        {
            return await FinalizeAsync(entity, ct).ConfigureAwait(false);
        }

        foreach (var (name, _) in _finalizers)
        {
            var before = entity.Metadata.ResourceVersion;
            entity = await Finalizers.AddAsync(_client, entity, name, ct).ConfigureAwait(false);
            if (entity.Metadata.ResourceVersion != before)
            {
                // The reconcile below runs on the patched object, so the patch's echo brings nothing new.
                Volatile.Read(ref _echoes)?.Record(entity);
            }
        }

        return await _reconciler.ReconcileAsync(entity, ct).ConfigureAwait(false);
    }

    private async Task<ReconcileResult> FinalizeAsync(T entity, CancellationToken ct)
    {
        foreach (var (name, finalizer) in _finalizers)
        {
            if (!Finalizers.Has(entity, name))
            {
                continue;
            }

            var result = await finalizer.FinalizeAsync(entity, ct).ConfigureAwait(false);
            if (result is not ReconcileResult.Success done)
            {
                return result;
            }

            try
            {
                // A finalizer that wrote the object (its status) hands the new version back; the cached entity is never edited.
                entity = await Finalizers.RemoveAsync(_client, entity, name, done.ResourceVersion, ct).ConfigureAwait(false);
            }
            catch (k8s.Autorest.HttpOperationException e) when (e.Response?.StatusCode == System.Net.HttpStatusCode.NotFound)
            {
                // The object is already gone: a late event for it (one the cache still held) ran this finalizer again
                // after an earlier pass removed the last finalizer. Nothing is left to hold, so this is not an error.
                return ReconcileResult.Done;
            }
        }

        return ReconcileResult.Done;
    }
}
