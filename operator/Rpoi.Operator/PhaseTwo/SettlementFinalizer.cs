using Rpoi.Kube.Controllers;
using Rpoi.Operator.Entities;

namespace Rpoi.Operator.PhaseTwo;

/// <summary>
/// The deletion rule of phase II as an <see cref="IFinalizer{T}"/>: a Lease deleted before settlement keeps its
/// finalizer until it is settled, or until the rating window closes and the partial m_final is submitted. The phase I
/// finalizer delegates to it for Leases in <c>AwaitingRatings</c> or <c>Settling</c>; it can also stand alone.
/// </summary>
public sealed class SettlementFinalizer : IFinalizer<Lease>
{
    private readonly SettlementStep step;

    /// <summary>Creates the finalizer.</summary>
    public SettlementFinalizer(SettlementStep step)
    {
        ArgumentNullException.ThrowIfNull(step);
        this.step = step;
    }

    /// <inheritdoc/>
    public async Task<ReconcileResult> FinalizeAsync(Lease entity, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entity);
        return await step.FinalizeAsync(entity, cancellationToken).ConfigureAwait(false);
    }
}
