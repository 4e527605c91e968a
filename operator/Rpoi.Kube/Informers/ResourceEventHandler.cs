namespace Rpoi.Kube.Informers;

/// <summary>Receives an informer's notifications (client-go's <c>ResourceEventHandler</c>). Keep handlers quick: they run on the informer's loop.</summary>
/// <typeparam name="T">The object type.</typeparam>
public interface IResourceEventHandler<in T>
{
    /// <summary>An object appeared (from the initial list, a re-list or a watch ADDED event).</summary>
    void OnAdd(T obj, bool isInInitialList);

    /// <summary>An object changed (its resourceVersion differs).</summary>
    void OnUpdate(T oldObj, T newObj);

    /// <summary>An object went away; <paramref name="lastKnown"/> is its last cached state.</summary>
    void OnDelete(T lastKnown);
}

/// <summary>An <see cref="IResourceEventHandler{T}"/> made of delegates; missing ones do nothing.</summary>
/// <typeparam name="T">The object type.</typeparam>
public sealed class ResourceEventHandler<T>(
    Action<T, bool>? onAdd = null,
    Action<T, T>? onUpdate = null,
    Action<T>? onDelete = null) : IResourceEventHandler<T>
{
    /// <inheritdoc/>
    public void OnAdd(T obj, bool isInInitialList) => onAdd?.Invoke(obj, isInInitialList);

    /// <inheritdoc/>
    public void OnUpdate(T oldObj, T newObj) => onUpdate?.Invoke(oldObj, newObj);

    /// <inheritdoc/>
    public void OnDelete(T lastKnown) => onDelete?.Invoke(lastKnown);
}
