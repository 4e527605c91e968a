using Rpoi.Kube.Controllers;
using Rpoi.Operator.Entities;

namespace Rpoi.Operator.PhaseTwo;

/// <summary>
/// The Lease controller of phase II: it acts only on Leases in <c>AwaitingRatings</c> or <c>Settling</c> (phase I
/// leaves them there after the return) and hands them to <see cref="SettlementStep"/>. Every other Lease costs a cache
/// read and nothing else. Deleted Leases are settled through the phase I finalizer, which asks
/// <see cref="SettlementStep.CanReleaseFinalizerAsync"/>.
/// </summary>
public sealed class SettlementReconciler : IReconciler<Lease>
{
    private readonly SettlementStep step;

    /// <summary>Creates the reconciler.</summary>
    public SettlementReconciler(SettlementStep step)
    {
        ArgumentNullException.ThrowIfNull(step);
        this.step = step;
    }

    /// <inheritdoc/>
    public Task<ReconcileResult> ReconcileAsync(Lease entity, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entity);
        return SettlementStep.Owns(entity) ? step.ReconcileAsync(entity, cancellationToken) : Task.FromResult(ReconcileResult.Done);
    }
}
