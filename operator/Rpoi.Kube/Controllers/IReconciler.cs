using Rpoi.Kube.Informers;

namespace Rpoi.Kube.Controllers;

/// <summary>
/// Brings one object's world to its desired state (KubeOps' <c>IEntityController</c>). Called with the
/// cached object; must be idempotent, because it runs again after every change and every retry.
/// </summary>
/// <typeparam name="T">The object type.</typeparam>
public interface IReconciler<in T>
{
    /// <summary>Reconciles <paramref name="entity"/>. Throwing counts as <see cref="ReconcileResult.Error(Exception)"/>.</summary>
    Task<ReconcileResult> ReconcileAsync(T entity, CancellationToken cancellationToken);

    /// <summary>Called when the queued object is no longer in the cache (it was deleted). Does nothing by default.</summary>
    Task DeletedAsync(ObjectKey key, CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>
/// Cleans up before an object may be deleted (KubeOps' <c>IEntityFinalizer</c>). The controller adds
/// the finalizer name to live objects and removes it once <see cref="FinalizeAsync"/> returns
/// <see cref="ReconcileResult.Done"/>.
/// </summary>
/// <typeparam name="T">The object type.</typeparam>
public interface IFinalizer<in T>
{
    /// <summary>Releases what <paramref name="entity"/> holds. Any result other than Done keeps the finalizer and retries.</summary>
    Task<ReconcileResult> FinalizeAsync(T entity, CancellationToken cancellationToken);
}
