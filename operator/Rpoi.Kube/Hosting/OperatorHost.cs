using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Prometheus;
using Rpoi.Kube.Controllers;
using Rpoi.Kube.Election;
using Rpoi.Kube.Events;
using Rpoi.Kube.Informers;
using Rpoi.Kube.Observability;

namespace Rpoi.Kube.Hosting;

/// <summary>
/// Builds an <see cref="OperatorHost"/>: informers shared per resource, controllers, optional leader
/// election. Keeps the pieces the runtime offers in one place for the operator's Program.cs.
/// </summary>
public sealed class OperatorHostBuilder
{
    private readonly Dictionary<Type, IInformer> _informers = [];
    private readonly Dictionary<Type, Delegate> _transforms = [];
    private readonly List<IController> _controllers = [];
    private readonly List<KubeEventRecorder> _recorders = [];
    private LeaderElectionOptions? _election;

    /// <summary>Starts a builder for <paramref name="client"/>.</summary>
    public OperatorHostBuilder(IKubernetes client, CollectorRegistry? registry = null, TimeProvider? time = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        Client = client;
        Metrics = new KubeMetrics(registry ?? Prometheus.Metrics.NewCustomRegistry());
        Time = time ?? TimeProvider.System;
        LoggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
    }

    /// <summary>The Kubernetes client.</summary>
    public IKubernetes Client { get; }

    /// <summary>Metrics shared by all controllers.</summary>
    public KubeMetrics Metrics { get; }

    /// <summary>Clock for all parts.</summary>
    public TimeProvider Time { get; }

    /// <summary>Logger factory for all parts.</summary>
    public ILoggerFactory LoggerFactory { get; }

    /// <summary>Objects per list page of every informer the builder creates (<see cref="InformerOptions.ListPageSize"/>; default 500).</summary>
    public int ListPageSize { get; set; } = 500;

    /// <summary>The informer for <typeparamref name="T"/>, created on first use and shared by every controller.</summary>
    public Informer<T> Informer<T>(IResourceClient<T> client)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        ArgumentNullException.ThrowIfNull(client);
        if (_informers.TryGetValue(typeof(T), out var existing))
        {
            return (Informer<T>)existing;
        }

        var informer = new Informer<T>(client, new InformerOptions { Time = Time, Logger = LoggerFactory.CreateLogger($"Informer.{client.Resource}"), ListPageSize = ListPageSize },
            _transforms.TryGetValue(typeof(T), out var transform) ? (Func<T, T>)transform : null);
        _informers[typeof(T)] = informer;
        return informer;
    }

    /// <summary>
    /// Sets what the shared cache of <typeparamref name="T"/> keeps of each object (see <see cref="Informer{T}"/>'s
    /// transform). Call it before anything asks for that informer: a cache filled without it would hold whole objects.
    /// Setting the same transform again is allowed at any time (each controller that shares the cache may ask for it).
    /// </summary>
    /// <exception cref="InvalidOperationException">The informer for <typeparamref name="T"/> exists already.</exception>
    public OperatorHostBuilder TransformCached<T>(Func<T, T> transform)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        ArgumentNullException.ThrowIfNull(transform);
        if (_transforms.TryGetValue(typeof(T), out var set) && set.Equals(transform))
        {
            // The same transform again (two controllers sharing the cache each ask for it): nothing changes.
            return this;
        }

        if (_informers.ContainsKey(typeof(T)))
        {
            throw new InvalidOperationException($"The {typeof(T).Name} informer was created before its transform was set; call TransformCached<{typeof(T).Name}> first.");
        }

        _transforms[typeof(T)] = transform;
        return this;
    }

    /// <summary>Registers a controller for <typeparamref name="T"/>; configure finalizers and secondary watches on the result.</summary>
    public Controller<T> AddController<T>(string name, IResourceClient<T> client, IReconciler<T> reconciler, int workers = 1)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        var controller = new Controller<T>(name, Informer(client), client, reconciler, new ControllerOptions
        {
            Workers = workers,
            Time = Time,
            Metrics = Metrics,
            Logger = LoggerFactory.CreateLogger($"Controller.{name}"),
        });
        _controllers.Add(controller);
        return controller;
    }

    /// <summary>
    /// The event recorder for <paramref name="reportingController"/> on <paramref name="reportingInstance"/>, created on
    /// first use (with the builder's clock, metrics and loggers) and shared, so all controllers send through one queue.
    /// The host sends what is still queued when it stops.
    /// </summary>
    public KubeEventRecorder EventRecorder(string reportingController, string reportingInstance)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(reportingController);
        ArgumentException.ThrowIfNullOrWhiteSpace(reportingInstance);
        var existing = _recorders.Find(r => r.ReportingController == reportingController && r.ReportingInstance == reportingInstance);
        return existing ?? AddEventRecorder(new KubeEventRecorder(Client, reportingController, reportingInstance, Time, LoggerFactory.CreateLogger<KubeEventRecorder>())
        {
            Metrics = Metrics,
        });
    }

    /// <summary>Hands a recorder built elsewhere (e.g. with another capacity) to the host, which drains and disposes it when it stops.</summary>
    public KubeEventRecorder AddEventRecorder(KubeEventRecorder recorder)
    {
        ArgumentNullException.ThrowIfNull(recorder);
        if (!_recorders.Contains(recorder))
        {
            _recorders.Add(recorder);
        }

        return recorder;
    }

    /// <summary>Runs controllers only while this replica holds the leader Lease.</summary>
    public OperatorHostBuilder WithLeaderElection(LeaderElectionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _election = options;
        return this;
    }

    /// <summary>Builds the host.</summary>
    public OperatorHost Build()
    {
        var informers = _informers.Values.Concat(_controllers.SelectMany(c => c.Informers)).Distinct().ToList();
        var election = _election is null ? null : new LeaderElectionRunner(Client, _election, LoggerFactory.CreateLogger("LeaderElection"));
        return new OperatorHost(informers, [.. _controllers], election, Metrics, [.. _recorders]);
    }
}

/// <summary>
/// Runs informers (always, so a standby's cache is warm) and controllers (only while leading, when
/// leader election is on). Stopping finishes in-flight reconciles and releases the leader Lease.
/// </summary>
public sealed class OperatorHost
{
    private readonly IReadOnlyList<IInformer> _informers;
    private readonly IReadOnlyList<IController> _controllers;
    private readonly LeaderElectionRunner? _election;
    private readonly IReadOnlyList<KubeEventRecorder> _recorders;

    internal OperatorHost(IReadOnlyList<IInformer> informers, IReadOnlyList<IController> controllers, LeaderElectionRunner? election, KubeMetrics metrics, IReadOnlyList<KubeEventRecorder> recorders)
    {
        _informers = informers;
        _controllers = controllers;
        _election = election;
        Metrics = metrics;
        _recorders = recorders;
    }

    /// <summary>The host's metrics (serve <see cref="KubeMetrics.Registry"/> on /metrics).</summary>
    public KubeMetrics Metrics { get; }

    /// <summary>The controllers.</summary>
    public IReadOnlyList<IController> Controllers => _controllers;

    /// <summary>Ready once every informer has synced (the /readyz answer).</summary>
    public bool IsReady => _informers.All(i => i.HasSynced);

    /// <summary>True when this replica runs the controllers (always true without leader election).</summary>
    public bool IsLeader => _election?.IsLeader ?? true;

    /// <summary>
    /// Runs until <paramref name="cancellationToken"/> is cancelled, then stops gracefully: in-flight reconciles finish,
    /// the events they recorded are sent (each recorder's DrainTimeout bounds that) and the recorders are disposed.
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var informersStop = new CancellationTokenSource();
        var informerRuns = _informers.Select(i => Task.Run(() => i.RunAsync(informersStop.Token), CancellationToken.None)).ToArray();
        try
        {
            if (_election is null)
            {
                await RunControllersAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await _election.RunAsync(RunControllersAsync, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            // Informers stop last so controllers draining their in-flight work still read a live cache. The controllers
            // are done here, so the recorders hold every event they will get: send those while the informers stop.
            var eventDrains = _recorders.Select(r => r.DisposeAsync().AsTask()).ToArray();
            await informersStop.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(informerRuns.Concat(eventDrains)).ConfigureAwait(false);
        }
    }

    private Task RunControllersAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(_controllers.Select(c => c.RunAsync(stoppingToken)));
}
