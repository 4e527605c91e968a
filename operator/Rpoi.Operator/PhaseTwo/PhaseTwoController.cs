using Microsoft.Extensions.Logging;
using Rpoi.Escrow.Client;
using Rpoi.Kube.Controllers;
using Rpoi.Kube.Events;
using Rpoi.Kube.Hosting;
using Rpoi.Kube.Informers;
using Rpoi.Operator.Entities;

namespace Rpoi.Operator.PhaseTwo;

/// <summary>
/// Wires RPOI phase II onto the Rpoi.Kube host: the Rating controller (with the "ratings by lease" index, woken by
/// its Lease and by older ratings of the same side) and the settlement controller on Leases (woken by their
/// ratings and by a timer at the rating deadline). It shares the Lease informer with phase I. The operator and the
/// tests use exactly this wiring.
/// </summary>
public sealed class PhaseTwoController
{
    /// <summary>Name of the Rating controller.</summary>
    public const string RatingControllerName = "rating";

    /// <summary>Name of the settlement controller on Leases.</summary>
    public const string SettlementControllerName = "lease-phase-two";

    /// <summary>The Lease resource.</summary>
    public static CustomResource LeaseResource { get; } = new(Lease.Group, Lease.Version, Lease.Plural);

    /// <summary>The Rating resource.</summary>
    public static CustomResource RatingResource { get; } = new(Lease.Group, Lease.Version, Rating.Plural);

    private PhaseTwoController(Controller<Rating> ratings, Controller<Lease> settlements, SettlementStep step, PhaseTwoMetrics metrics)
    {
        RatingController = ratings;
        SettlementController = settlements;
        Step = step;
        Metrics = metrics;
    }

    /// <summary>The Rating controller.</summary>
    public Controller<Rating> RatingController { get; }

    /// <summary>The settlement controller on Leases.</summary>
    public Controller<Lease> SettlementController { get; }

    /// <summary>The settlement step (the phase I finalizer asks it whether a deleted Lease may go).</summary>
    public SettlementStep Step { get; }

    /// <summary>Phase II metrics.</summary>
    public PhaseTwoMetrics Metrics { get; }

    /// <summary>Registers phase II on <paramref name="builder"/>.</summary>
    /// <param name="builder">The Rpoi.Kube host builder (its client, clock, metrics registry and loggers are used).</param>
    /// <param name="options">β's identity and phase II settings.</param>
    /// <param name="escrow">π's client, authenticated as β.</param>
    /// <param name="events">Where events go; by default the builder's shared <see cref="KubeEventRecorder"/>, which the host drains when it stops.</param>
    /// <param name="settlementWorkers">Parallel settlements (one Lease is never settled twice at once).</param>
    /// <param name="finalizingController">
    /// The Lease controller whose finalizer asks <see cref="SettlementStep.CanReleaseFinalizerAsync"/> (phase I's). It is
    /// woken by rating changes too, so a deleted Lease settles as soon as both ratings are in, not only at the deadline.
    /// </param>
    public static PhaseTwoController Register(
        OperatorHostBuilder builder,
        PhaseTwoOptions options,
        IEscrowClient escrow,
        IEventRecorder? events = null,
        int settlementWorkers = 2,
        Controller<Lease>? finalizingController = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(escrow);
        var client = builder.Client;
        var leases = ResourceClients.Custom<Lease>(client, LeaseResource);
        var ratings = ResourceClients.Custom<Rating>(client, RatingResource);
        // The same trims as phase I's (a no-op when phase I set them already): the caches keep what the reconcilers read.
        builder.TransformCached<Lease>(EntityCache.Trim);
        builder.TransformCached<Rating>(EntityCache.Trim);
        var leaseInformer = builder.Informer(leases);
        var ratingInformer = builder.Informer(ratings);
        RatingIndexes.AddTo(ratingInformer.Store);
        var recorder = events ?? builder.EventRecorder("rpoi.io/operator", Environment.MachineName);
        var metrics = new PhaseTwoMetrics(builder.Metrics.Registry);

        var step = new SettlementStep(new SettlementDependencies(leases, ratings, ratingInformer.Store, escrow, recorder, metrics, options, builder.Time,
            builder.LoggerFactory.CreateLogger<SettlementStep>()));
        var settlements = builder.AddController(SettlementControllerName, leases, new SettlementReconciler(step), settlementWorkers)
            .Watch(ratingInformer, rating => LeaseOf(rating));
        finalizingController?.Watch(ratingInformer, rating => LeaseOf(rating));

        // One worker: of two ratings of one side decided at once, only the older may be accepted (RatingVerification).
        var reconciler = new RatingReconciler(new RatingReconcilerDependencies(ratings, leases, ratingInformer.Store, leaseInformer.Store, recorder, metrics, options, builder.Time,
            builder.LoggerFactory.CreateLogger<RatingReconciler>()));
        var ratingController = builder.AddController(RatingControllerName, ratings, reconciler, workers: 1)
            .Watch(leaseInformer, lease => RatingIndexes.RatingsOf(ratingInformer.Store, lease).Select(ObjectKey.Of))
            .Watch(ratingInformer, rating => SameSide(ratingInformer.Store, rating));
        return new PhaseTwoController(ratingController, settlements, step, metrics);
    }

    private static IEnumerable<ObjectKey> LeaseOf(Rating rating) =>
        rating.Spec?.LeaseRef?.Name is { Length: > 0 } name ? [new ObjectKey(rating.Metadata.NamespaceProperty, name)] : [];

    /// <summary>The other ratings of the same side of the same lease: a decision on one may unblock or reject another.</summary>
    private static IEnumerable<ObjectKey> SameSide(Store<Rating> store, Rating rating) =>
        RatingIndexes.RatingsOf(store, rating.Metadata.NamespaceProperty, rating.Spec?.LeaseRef?.Name ?? string.Empty)
            .Where(r => r.Spec?.Rater == rating.Spec?.Rater && r.Metadata.Name != rating.Metadata.Name)
            .Select(ObjectKey.Of);
}
