using System.Globalization;
using k8s.Models;
using Rpoi.Kube.Events;
using Rpoi.Operator.Entities;

namespace Rpoi.Operator.PhaseOne.Nodes;

/// <summary>An event to record for one incident transition (opened or ended).</summary>
/// <param name="Type">Warning when an incident opens, Normal when it ends.</param>
/// <param name="Reason">The incident's reason, or <see cref="NodeIncidentReasons.NodeRecovered"/>.</param>
/// <param name="Note">The event's note, naming the node.</param>
public sealed record NodeIncidentEvent(string Type, string Reason, string Note);

/// <summary>The Degraded condition a lease should carry.</summary>
/// <param name="IsDegraded">True while an incident is open.</param>
/// <param name="Reason">The condition's reason.</param>
/// <param name="Message">The condition's message, naming the nodes and reasons.</param>
public sealed record DegradedCondition(bool IsDegraded, string Reason, string Message);

/// <summary>What an observation changed: the condition to set (null: none, the lease never had an incident) and the events.</summary>
/// <param name="Condition">The Degraded condition, or null when the lease never had an incident.</param>
/// <param name="Events">One event per incident opened or ended by this observation; empty when nothing changed.</param>
public sealed record NodeObservation(DegradedCondition? Condition, IReadOnlyList<NodeIncidentEvent> Events);

/// <summary>
/// Keeps a lease's <c>status.nodeIncidents</c> in step with what its nodes look like now. Pure: the caller passes the
/// nodes it sees and the time, and writes the status and records the events. Because transitions are found by comparing
/// with the incidents already in the status, a resync that sees the same nodes changes nothing and records no event.
/// </summary>
public static class NodeIncidents
{
    /// <summary>The most incidents kept in the status; older closed ones are dropped and counted.</summary>
    public const int MaxRecorded = 64;

    /// <summary>
    /// Opens an incident for each problem the lease's nodes (<c>status.nodes</c>) have now and no open incident records,
    /// and ends each open incident whose problem is gone, at <paramref name="now"/>.
    /// </summary>
    /// <param name="status">The lease's status (changed in place).</param>
    /// <param name="node">The node object by name, or null when it is gone (the Node informer's cache).</param>
    /// <param name="claimed">The nodes that still carry this lease's claim.</param>
    /// <param name="now">The time of the observation (whole seconds).</param>
    public static NodeObservation Observe(LeaseStatus status, Func<string, V1Node?> node, IReadOnlySet<string> claimed, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(status);
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(claimed);
        var current = (status.Nodes ?? []).SelectMany(n => NodeHealth.ProblemsOf(n, node(n), claimed.Contains(n))).ToList();
        var incidents = status.NodeIncidents?.ToList() ?? [];
        var events = new List<NodeIncidentEvent>();
        foreach (var open in incidents.Where(i => i.EndedAt is null))
        {
            if (!current.Any(p => p.Node == open.Node && p.Reason == open.Reason))
            {
                End(open, now, NodeIncidentResolution.Recovered);
                events.Add(new NodeIncidentEvent(EventTypes.Normal, NodeIncidentReasons.NodeRecovered,
                    $"node {open.Node} recovered from {open.Reason} after {open.DurationSeconds} s (since {Format(open.StartedAt)})"));
            }
        }

        foreach (var problem in current)
        {
            if (!incidents.Any(i => i.EndedAt is null && i.Node == problem.Node && i.Reason == problem.Reason))
            {
                incidents.Add(new NodeIncident { Node = problem.Node, Reason = problem.Reason, Message = problem.Message, StartedAt = now.UtcDateTime });
                events.Add(new NodeIncidentEvent(EventTypes.Warning, problem.Reason,
                    $"{problem.Message}; the lease stays Active on the nodes its grant names, and the incident is recorded in status.nodeIncidents for the ratings"));
            }
        }

        Store(status, incidents);
        return new NodeObservation(ConditionOf(incidents), events);
    }

    /// <summary>
    /// At the return: ends every open incident at <paramref name="returnedAt"/> (resolution Returned). Returns the
    /// Degraded=False condition to set when an incident was still open, else null (the condition stays as it is).
    /// </summary>
    public static DegradedCondition? EndAll(LeaseStatus status, DateTimeOffset returnedAt)
    {
        ArgumentNullException.ThrowIfNull(status);
        var open = status.NodeIncidents?.Where(i => i.EndedAt is null).ToList() ?? [];
        foreach (var incident in open)
        {
            End(incident, returnedAt, NodeIncidentResolution.Returned);
        }

        return open.Count == 0
            ? null
            : new DegradedCondition(false, NodeIncidentReasons.Returned,
                $"the lease was returned with {open.Count} node incident(s) open, ended at the return; {Summary(status.NodeIncidents!)}");
    }

    /// <summary>
    /// Seconds during which at least one incident was open (overlapping incidents counted once); an open incident counts
    /// up to <paramref name="until"/>.
    /// </summary>
    public static long DegradedSeconds(IEnumerable<NodeIncident> incidents, DateTimeOffset until)
    {
        ArgumentNullException.ThrowIfNull(incidents);
        var spans = incidents
            .Where(i => i.StartedAt is not null)
            .Select(i => (Start: Utc(i.StartedAt!.Value), End: i.EndedAt is { } e ? Utc(e) : until))
            .Where(s => s.End > s.Start)
            .OrderBy(s => s.Start)
            .ToList();
        long total = 0;
        DateTimeOffset? start = null, end = null;
        foreach (var span in spans)
        {
            if (end is { } e && span.Start <= e)
            {
                end = span.End > e ? span.End : e;
                continue;
            }

            if (start is { } s0 && end is { } e0)
            {
                total += (long)(e0 - s0).TotalSeconds;
            }

            (start, end) = (span.Start, span.End);
        }

        if (start is { } s1 && end is { } e1)
        {
            total += (long)(e1 - s1).TotalSeconds;
        }

        return total;
    }

    private static DegradedCondition? ConditionOf(List<NodeIncident> incidents)
    {
        var open = incidents.Where(i => i.EndedAt is null).OrderBy(i => i.Node, StringComparer.Ordinal).ThenBy(i => i.Reason, StringComparer.Ordinal).ToList();
        if (open.Count > 0)
        {
            var what = string.Join("; ", open.Select(i => $"{i.Reason} on node {i.Node} since {Format(i.StartedAt)}: {i.Message}"));
            return new DegradedCondition(true, open[0].Reason!, what);
        }

        return incidents.Count == 0 ? null : new DegradedCondition(false, NodeIncidentReasons.NodeRecovered, $"every node is healthy again; {Summary(incidents)}");
    }

    private static string Summary(IList<NodeIncident> incidents) =>
        $"{incidents.Count} incident(s), degraded for {DegradedSeconds(incidents, DateTimeOffset.MaxValue)} s in all, listed in status.nodeIncidents";

    private static void Store(LeaseStatus status, List<NodeIncident> incidents)
    {
        // Bounded: a flapping node must not grow the Lease without limit. Closed incidents go first, oldest first; open
        // ones are kept, as they decide the Degraded condition.
        while (incidents.Count > MaxRecorded && incidents.FindIndex(i => i.EndedAt is not null) is var index and >= 0)
        {
            incidents.RemoveAt(index);
            status.NodeIncidentsDropped = (status.NodeIncidentsDropped ?? 0) + 1;
        }

        status.NodeIncidents = incidents.Count == 0 ? null : incidents;
    }

    private static void End(NodeIncident incident, DateTimeOffset at, NodeIncidentResolution resolution)
    {
        var start = incident.StartedAt is { } s ? Utc(s) : at;
        var end = at < start ? start : at;
        incident.EndedAt = end.UtcDateTime;
        incident.DurationSeconds = (long)(end - start).TotalSeconds;
        incident.Resolution = resolution;
    }

    private static string Format(DateTime? t) =>
        t is { } v ? Utc(v).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture) : "an unknown time";

    private static DateTimeOffset Utc(DateTime t) => new(DateTime.SpecifyKind(t, DateTimeKind.Utc));
}
