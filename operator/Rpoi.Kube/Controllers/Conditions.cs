using k8s.Models;

namespace Rpoi.Kube.Controllers;

/// <summary>Standard <c>metav1.Condition</c> handling (apimachinery's <c>meta.SetStatusCondition</c>).</summary>
public static class Conditions
{
    /// <summary>The condition status "True".</summary>
    public const string True = "True";

    /// <summary>The condition status "False".</summary>
    public const string False = "False";

    /// <summary>The condition status "Unknown".</summary>
    public const string Unknown = "Unknown";

    /// <summary>
    /// Sets or merges the condition of <paramref name="type"/> in <paramref name="conditions"/>.
    /// <c>lastTransitionTime</c> changes only when the status flips, so readers can tell how long a
    /// state has held. Returns true when anything changed.
    /// </summary>
    /// <exception cref="ArgumentException">A field is missing or the status is not True/False/Unknown.</exception>
    public static bool Set(
        IList<V1Condition> conditions,
        string type,
        string status,
        string reason,
        string? message,
        long? observedGeneration,
        TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(conditions);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentException.ThrowIfNullOrWhiteSpace(type);
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        if (status is not (True or False or Unknown))
        {
            throw new ArgumentException($"Condition status '{status}' is invalid; use \"True\", \"False\" or \"Unknown\".", nameof(status));
        }

        message ??= string.Empty;
        var existing = Find(conditions, type);
        if (existing is null)
        {
            conditions.Add(new V1Condition
            {
                Type = type,
                Status = status,
                Reason = reason,
                Message = message,
                ObservedGeneration = observedGeneration,
                LastTransitionTime = time.GetUtcNow().UtcDateTime,
            });
            return true;
        }

        var changed = false;
        if (existing.Status != status)
        {
            existing.Status = status;
            existing.LastTransitionTime = time.GetUtcNow().UtcDateTime;
            changed = true;
        }

        if (existing.Reason != reason)
        {
            existing.Reason = reason;
            changed = true;
        }

        if ((existing.Message ?? string.Empty) != message)
        {
            existing.Message = message;
            changed = true;
        }

        if (existing.ObservedGeneration != observedGeneration)
        {
            existing.ObservedGeneration = observedGeneration;
            changed = true;
        }

        return changed;
    }

    /// <summary>The condition of <paramref name="type"/>, or null.</summary>
    public static V1Condition? Find(IEnumerable<V1Condition>? conditions, string type) =>
        conditions?.FirstOrDefault(c => string.Equals(c.Type, type, StringComparison.Ordinal));

    /// <summary>True when the condition of <paramref name="type"/> has status True.</summary>
    public static bool IsTrue(IEnumerable<V1Condition>? conditions, string type) => Find(conditions, type)?.Status == True;

    /// <summary>Removes the condition of <paramref name="type"/>; true when one was removed.</summary>
    public static bool Remove(IList<V1Condition> conditions, string type)
    {
        ArgumentNullException.ThrowIfNull(conditions);
        var existing = Find(conditions, type);
        return existing is not null && conditions.Remove(existing);
    }
}
