using k8s;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Rpoi.Kube.Controllers;
using Rpoi.Kube.Events;
using Rpoi.Kube.Informers;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Leases;

namespace Rpoi.Operator.PhaseTwo;

/// <summary>The collaborators of <see cref="RatingReconciler"/>.</summary>
/// <param name="Ratings">API access to Ratings (status patches).</param>
/// <param name="Leases">API access to Leases: a decision is checked against the Lease as the API server has it, and an acceptance is recorded in its status.</param>
/// <param name="RatingCache">The Rating informer's cache, with the <see cref="RatingIndexes.ByLease"/> index.</param>
/// <param name="LeaseCache">The Lease informer's cache.</param>
/// <param name="Events">Kubernetes events.</param>
/// <param name="Metrics">Phase II metrics.</param>
/// <param name="Options">Phase II settings.</param>
/// <param name="Time">The clock.</param>
/// <param name="Logger">Logger; silent when null.</param>
public sealed record RatingReconcilerDependencies(
    IResourceClient<Rating> Ratings,
    IResourceClient<Lease> Leases,
    Store<Rating> RatingCache,
    Store<Lease> LeaseCache,
    IEventRecorder Events,
    PhaseTwoMetrics Metrics,
    PhaseTwoOptions Options,
    TimeProvider Time,
    ILogger? Logger = null);

/// <summary>
/// Decides each Rating once (PROTOCOL.md phase II steps 1 and 2): accepted into the lease's settlement, or rejected
/// with a reason and a message that says what to do. A decided Rating is never looked at again, so an accepted
/// rating stays accepted; a Rating that cannot be decided yet (its Lease not returned or not there) waits, and is
/// queued again when its Lease or an older Rating of the same side changes.
/// </summary>
public sealed class RatingReconciler : IReconciler<Rating>
{
    private readonly RatingReconcilerDependencies d;
    private readonly ILogger log;

    /// <summary>Creates the reconciler.</summary>
    public RatingReconciler(RatingReconcilerDependencies dependencies)
    {
        ArgumentNullException.ThrowIfNull(dependencies);
        d = dependencies;
        log = d.Logger ?? NullLogger.Instance;
    }

    /// <inheritdoc/>
    public async Task<ReconcileResult> ReconcileAsync(Rating entity, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entity);
        if (entity.Status?.Accepted is not null)
        {
            // Decided ratings are immutable: the spec cannot change (CEL) and the decision stands.
            return ReconcileResult.Done;
        }

        var leaseName = entity.Spec?.LeaseRef?.Name ?? string.Empty;
        var leaseKey = new ObjectKey(entity.Metadata.NamespaceProperty, leaseName);
        var lease = leaseName.Length == 0 ? null : d.LeaseCache.Get(leaseKey);
        var siblings = RatingIndexes.RatingsOf(d.RatingCache, entity.Metadata.NamespaceProperty, leaseName);
        var verdict = RatingVerification.Decide(entity, lease, siblings, d.Time.GetUtcNow(), d.Options.DefaultRatingWindow);
        if (verdict.Kind != RatingVerdictKind.Pending && lease is not null)
        {
            // A decision is final, so it is made against the Lease as the API server has it now: the cache may lag a
            // Settling written a moment ago (then the rating is late) or an acceptance recorded before a crash.
            lease = await d.Leases.GetAsync(leaseKey, cancellationToken).ConfigureAwait(false);
            verdict = RatingVerification.Decide(entity, lease, siblings, d.Time.GetUtcNow(), d.Options.DefaultRatingWindow);
        }

        if (verdict.Kind == RatingVerdictKind.Accepted && lease!.Status?.AcceptedRatings?.Of(entity.Spec!.Rater) is null)
        {
            // The Lease is where acceptance and settlement meet: the record is written with the resourceVersion just
            // read, so it fails (409, decided again) if the settlement wrote Settling meanwhile, and the settlement's own
            // Settling write fails if this record came first. m_final then carries exactly the recorded ratings.
            var leaseStatus = LeaseStatusWriter.Clone(lease.Status);
            leaseStatus.AcceptedRatings ??= new LeaseAcceptedRatings();
            if (entity.Spec!.Rater == Rater.Renter)
            {
                leaseStatus.AcceptedRatings.Renter = entity.Metadata.Name;
            }
            else
            {
                leaseStatus.AcceptedRatings.Leaser = entity.Metadata.Name;
            }

            try
            {
                await new LeaseStatusWriter(d.Leases).WriteAsync(lease, leaseStatus, cancellationToken).ConfigureAwait(false);
            }
            catch (k8s.Autorest.HttpOperationException e) when (Conflicts.IsConflict(e))
            {
                return ReconcileResult.Requeue;
            }
        }

        var status = entity.Status is null ? new RatingStatus() : KubernetesJson.Deserialize<RatingStatus>(KubernetesJson.Serialize(entity.Status));
        status.Accepted = verdict.Kind switch
        {
            RatingVerdictKind.Accepted => true,
            RatingVerdictKind.Rejected => false,
            _ => null,
        };
        status.Reason = verdict.Reason;
        status.Message = verdict.Message;
        status.ObservedGeneration = entity.Metadata.Generation;
        StatusConditions.Set(status.Conditions ??= [], PhaseTwoReasons.AcceptedCondition, status.Accepted, verdict.Reason, verdict.Message, entity.Metadata.Generation, d.Time);
        var written = await StatusUpdates.PatchIfChangedAsync(d.Ratings, entity, entity.Status, status, cancellationToken).ConfigureAwait(false);
        if (written is null || verdict.Kind == RatingVerdictKind.Pending)
        {
            return ReconcileResult.Done;
        }

        var rater = entity.Spec!.Rater.ToString();
        var accepted = verdict.Kind == RatingVerdictKind.Accepted;
        d.Metrics.RatingDecided(rater, accepted, verdict.Reason);
        log.LogInformation("Rating {Rating} of Lease {Lease} by the {Rater}: {Result} ({Reason})", ObjectKey.Of(entity), leaseName, rater, accepted ? "accepted" : "rejected", verdict.Reason);
        await d.Events.RecordAsync(written, accepted ? EventTypes.Normal : EventTypes.Warning, accepted ? "RatingAccepted" : "RatingRejected", "Verify",
            $"{rater} rating of Lease {leaseName} {(accepted ? "accepted" : "rejected")} ({verdict.Reason}): {verdict.Message}", cancellationToken).ConfigureAwait(false);
        return ReconcileResult.Done;
    }
}
