using k8s.Models;
using Microsoft.Extensions.Logging;
using Rpoi.Escrow.Client;
using Rpoi.Kube.Controllers;
using Rpoi.Kube.Events;
using Rpoi.Kube.Hosting;
using Rpoi.Kube.Informers;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Operator.PhaseOne.Grant;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Operator.PhaseOne.Nodes;

namespace Rpoi.Operator.Hosting;

/// <summary>
/// Wires RPOI phase I onto the Rpoi.Kube host: the Lease controller with its finalizer, a Node watch that wakes
/// leases waiting for the changed node's shape, and the FIFO queue's wake-ups. The operator and the tests use
/// exactly this wiring.
/// </summary>
public sealed class PhaseOneController
{
    /// <summary>The controller's name (metrics label, logs).</summary>
    public const string Name = "lease-phase-one";

    /// <summary>The Lease resource.</summary>
    public static CustomResource LeaseResource { get; } = new(Lease.Group, Lease.Version, Lease.Plural);

    private PhaseOneController(Controller<Lease> controller, AllocationQueue queue, ITpuProvider tpus, LeaseReconciler reconciler)
    {
        Controller = controller;
        Queue = queue;
        Tpus = tpus;
        Reconciler = reconciler;
    }

    /// <summary>The Lease controller.</summary>
    public Controller<Lease> Controller { get; }

    /// <summary>The FIFO queue of leases waiting for chips.</summary>
    public AllocationQueue Queue { get; }

    /// <summary>The TPU provider.</summary>
    public ITpuProvider Tpus { get; }

    /// <summary>The reconciler.</summary>
    public LeaseReconciler Reconciler { get; }

    /// <summary>Registers phase I on <paramref name="builder"/>.</summary>
    /// <param name="builder">The Rpoi.Kube host builder (its client, clock, metrics and loggers are used).</param>
    /// <param name="options">β's identity and settings.</param>
    /// <param name="escrow">π's client.</param>
    /// <param name="events">Where events go; by default the builder's shared <see cref="KubeEventRecorder"/>, which the host drains when it stops.</param>
    /// <param name="workers">Parallel reconciles.</param>
    /// <param name="tpus">The TPU provider; the GKE provider by default.</param>
    public static PhaseOneController Register(
        OperatorHostBuilder builder,
        PhaseOneOptions options,
        IEscrowClient escrow,
        IEventRecorder? events = null,
        int workers = 2,
        ITpuProvider? tpus = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(escrow);
        var client = builder.Client;
        var leases = ResourceClients.Custom<Lease>(client, LeaseResource);
        // The Lease cache (shared with phase II) keeps what the reconcilers read, with shared strings pooled.
        builder.TransformCached<Lease>(EntityCache.Trim);
        // Every phase-I write finishes its step in the same reconcile (waits are woken by the queue, expiry by a timer), so
        // the watch echo of such a write is skipped instead of reconciling the lease again (BENCHMARKS.md, phase I).
        var ownWrites = new OwnWrites<Lease>();
        // The Node informer feeds both the wake-ups below and the provider's lookups (no node list per reconcile); it
        // keeps only the fields those read (NodeCache.Trim), as GKE nodes are mostly image lists and node info.
        builder.TransformCached<V1Node>(NodeCache.Trim);
        var nodes = builder.Informer(ResourceClients.Nodes(client));
        V1Node? NodeNamed(string name) => nodes.Store.Get(new ObjectKey(null, name));
        var provider = tpus ?? new GkeTpuProvider(client, builder.Time, builder.LoggerFactory.CreateLogger<GkeTpuProvider>(), nodes);
        var queue = new AllocationQueue();
        var access = new LeaseAccess(client, builder.Time, options.LeaseUserClusterRole);
        var recorder = events ?? builder.EventRecorder("rpoi.io/operator", Environment.MachineName);
        // The Lease cache, set once the controller's informer exists: β's nonce store reads it through an index added
        // below, and a waiting lease reads it for Active leases' expiry (until then it is told no free-up time).
        Store<Lease>? cache = null;
        var nonces = new LeaseNonces(nonce => cache?.ByIndex(LeaseNonces.IndexName, nonce) ?? [], builder.Time, options.RequestPolicy);
        var reconciler = new LeaseReconciler(
            new LeaseReconcilerDependencies(ownWrites.Wrap(leases), provider, queue, new GrantIssuer(client, access), access, escrow, recorder,
                new PhaseOneMetrics(builder.Metrics.Registry), options, builder.Time,
                // Node health is read from Node objects: only the node-backed GKE provider's claims have them.
                tpus is null ? NodeNamed : null,
                nonces,
                () => cache?.List() ?? []),
            builder.LoggerFactory.CreateLogger<LeaseReconciler>());
        var controller = builder.AddController(Name, leases, reconciler, workers).AddFinalizer(LeaseConditions.Finalizer, reconciler).SkipEchoesOf(ownWrites);
        cache = controller.Informer.Store;
        LeaseNonces.AddIndex(cache);
        // A lease that becomes Active makes its expiry known: the first parked lease of its shape (woken by that claim,
        // before the expiry was written) looks again to tell its earliest free-up time. On the informer, not in the
        // reconciler, so the cache that lease reads already holds the Active status.
        controller.Informer.AddEventHandler(new ResourceEventHandler<Lease>(onUpdate: (old, lease) =>
        {
            if (old.Status?.Phase != LeasePhase.Active && lease.Status is { Phase: LeasePhase.Active, Accelerator: { } accelerator, Topology: { } topology })
            {
                queue.ExpiryKnown(new TpuShape(accelerator, topology));
            }
        }));

        // A node that changes (freed, added, uncordoned) may let the head of its shape's queue claim.
        controller.Watch(nodes, node => WaitingFor(queue, node).Concat(OrphanedBy(controller.Informer.Store, node)));
        // A claimed node that becomes NotReady, cordoned, under GKE maintenance, unclaimed or deleted reaches its Active
        // lease at once, by the claim label of the node's old or new version (LeaseNodeWatch); other node updates wake nothing.
        void Affect(IReadOnlyList<ObjectKey> keys)
        {
            foreach (var key in keys)
            {
                controller.Queue?.Add(key);
            }
        }

        nodes.AddEventHandler(new ResourceEventHandler<V1Node>(
            (node, _) => Affect(LeaseNodeWatch.Affected(controller.Informer.Store.Get, NodeNamed, null, node)),
            (old, node) => Affect(LeaseNodeWatch.Affected(controller.Informer.Store.Get, NodeNamed, old, node)),
            node => Affect(LeaseNodeWatch.Affected(controller.Informer.Store.Get, NodeNamed, node, node))));
        queue.Changed += waiting =>
        {
            foreach (var lease in waiting)
            {
                controller.Queue?.Add(new ObjectKey(lease.Namespace, lease.Name));
            }
        };
        queue.SeedFrom(() => controller.Informer.Store.List().Select(Waiting).OfType<QueuedLease>());
        return new PhaseOneController(controller, queue, provider, reconciler);
    }

    private static IEnumerable<ObjectKey> WaitingFor(AllocationQueue queue, V1Node node)
    {
        var labels = node.Metadata?.Labels;
        if (labels is null
            || !labels.TryGetValue(TpuLabels.Accelerator, out var accelerator)
            || !labels.TryGetValue(TpuLabels.Topology, out var topology))
        {
            return [];
        }

        // Only the first parked lease is woken; when it claims, its leaving wakes the next (see AllocationQueue.Leave).
        return queue.FirstParked(new TpuShape(accelerator, topology)).Select(e => new ObjectKey(e.Namespace, e.Name));
    }

    /// <summary>
    /// The Lease a node is still claimed for when the cache holds no Lease of that name and UID: reconciling that key finds
    /// it gone and releases the claim (<see cref="LeaseReconciler.DeletedAsync"/>). This is how claims left by a Lease that
    /// vanished while the operator was down are found on start, from the Node informer's first list.
    /// </summary>
    private static IEnumerable<ObjectKey> OrphanedBy(Store<Lease> leases, V1Node node)
    {
        var labels = node.Metadata?.Labels;
        var uid = node.Metadata?.Annotations is { } annotations && annotations.TryGetValue(TpuLabels.LeaseUidAnnotation, out var value) ? value : null;
        if (labels is null || uid is null
            || !labels.TryGetValue(TpuLabels.LeaseNamespaceLabel, out var ns) || !labels.TryGetValue(TpuLabels.LeaseNameLabel, out var name))
        {
            return [];
        }

        var key = new ObjectKey(ns, name);
        return leases.Get(key)?.Metadata.Uid == uid ? [] : [key];
    }

    /// <summary>A lease the cache shows waiting in the queue (status Pending with a queue position).</summary>
    private static QueuedLease? Waiting(Lease lease)
    {
        var s = lease.Status;
        if (s?.Phase != LeasePhase.Pending || s.QueuePosition is null || s.Accelerator is null || s.Topology is null
            || lease.Metadata.DeletionTimestamp is not null || lease.Metadata.CreationTimestamp is not { } created)
        {
            return null;
        }

        return new QueuedLease(LeaseReconciler.IdentityOf(lease), new TpuShape(s.Accelerator, s.Topology), new DateTimeOffset(DateTime.SpecifyKind(created, DateTimeKind.Utc)), (int)(s.Chips ?? 0));
    }
}
