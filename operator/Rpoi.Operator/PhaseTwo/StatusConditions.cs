using k8s.Models;
using Rpoi.Kube.Controllers;

namespace Rpoi.Operator.PhaseTwo;

/// <summary>Sets a condition the way every RPOI status does: metav1.Time has whole seconds on the wire, so times are truncated here too and "did the status change?" stays stable.</summary>
internal static class StatusConditions
{
    public static void Set(IList<V1Condition> conditions, string type, bool? value, string reason, string message, long? generation, TimeProvider time)
    {
        var text = value switch { true => Conditions.True, false => Conditions.False, null => Conditions.Unknown };
        Conditions.Set(conditions, type, text, reason, message, generation, time);
        foreach (var c in conditions)
        {
            var utc = DateTime.SpecifyKind(c.LastTransitionTime, DateTimeKind.Utc);
            c.LastTransitionTime = new DateTime(utc.Ticks - (utc.Ticks % TimeSpan.TicksPerSecond), DateTimeKind.Utc);
        }
    }

    public static string Format(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
}
