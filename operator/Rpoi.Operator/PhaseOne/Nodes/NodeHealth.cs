using k8s.Models;
using Rpoi.Operator.PhaseOne.Allocation;

namespace Rpoi.Operator.PhaseOne.Nodes;

/// <summary>
/// The node keys GKE sets around host maintenance and termination (docs/phase-one.md, "Lost nodes", cites the GKE pages).
/// </summary>
public static class GkeMaintenance
{
    /// <summary>Taint GKE puts on a node it is about to terminate (graceful node shutdown, preemption, host events).</summary>
    public const string ImpendingTerminationTaint = "cloud.google.com/impending-node-termination";

    /// <summary>Label GKE puts on a TPU/GPU node while host maintenance runs on it (value <c>ONGOING</c>).</summary>
    public const string ActiveMaintenanceLabel = "cloud.google.com/active-node-maintenance";

    /// <summary>
    /// Label GKE puts on a node when host maintenance is scheduled but not started (Unix seconds). Only a notice, possibly
    /// days ahead: the node still works, so it is neither an incident nor a reason to keep the node out of claims.
    /// </summary>
    public const string ScheduledMaintenanceLabel = "cloud.google.com/scheduled-maintenance-time";
}

/// <summary>The Degraded condition and the reasons of node incidents (stable: users, alerts and ratings match on them).</summary>
public static class NodeIncidentReasons
{
    /// <summary>Condition: a node of the Active lease is not fully usable (True), or every incident is over (False).</summary>
    public const string Degraded = "Degraded";

    /// <summary>The node reports Ready=False or Ready=Unknown.</summary>
    public const string NodeNotReady = "NodeNotReady";

    /// <summary>The node is cordoned (<c>spec.unschedulable</c>).</summary>
    public const string NodeCordoned = "NodeCordoned";

    /// <summary>GKE reports host maintenance or an impending termination (taint or label).</summary>
    public const string NodeMaintenance = "NodeMaintenance";

    /// <summary>The node no longer carries this lease's claim marks (removed by hand or by another tool).</summary>
    public const string NodeClaimRemoved = "NodeClaimRemoved";

    /// <summary>The node object was deleted.</summary>
    public const string NodeDeleted = "NodeDeleted";

    /// <summary>Event reason and Degraded=False reason: a node's incident ended while the lease was Active.</summary>
    public const string NodeRecovered = "NodeRecovered";

    /// <summary>Degraded=False reason when the lease was returned with incidents still open.</summary>
    public const string Returned = "Returned";
}

/// <summary>One problem one node has now.</summary>
/// <param name="Node">The node's name.</param>
/// <param name="Reason">One of <see cref="NodeIncidentReasons"/>' node reasons.</param>
/// <param name="Message">What was seen, naming the node and the field.</param>
public sealed record NodeProblem(string Node, string Reason, string Message);

/// <summary>What is wrong with a leased node, as a pure function of the node object (null when it is gone).</summary>
public static class NodeHealth
{
    private const int MaxDetail = 200;

    /// <summary>
    /// The problems node <paramref name="name"/> has now: deleted (<paramref name="node"/> null), claim marks gone
    /// (<paramref name="claimed"/> false), NotReady, cordoned, under GKE maintenance. Several may hold at once; each is its
    /// own incident. Empty when the node is healthy.
    /// </summary>
    public static IReadOnlyList<NodeProblem> ProblemsOf(string name, V1Node? node, bool claimed)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (node is null)
        {
            return [new NodeProblem(name, NodeIncidentReasons.NodeDeleted, $"node {name} was deleted")];
        }

        var problems = new List<NodeProblem>();
        if (!claimed)
        {
            problems.Add(new NodeProblem(name, NodeIncidentReasons.NodeClaimRemoved,
                $"node {name} no longer carries this lease's claim (label {TpuLabels.LeaseNameLabel}, annotation {TpuLabels.LeaseUidAnnotation})"));
        }

        // Nodes without a Ready condition (fresh or simulated) count as ready, as for claims (TpuSlices.IsSchedulable).
        var ready = node.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready");
        if (ready is not null && !string.Equals(ready.Status, "True", StringComparison.OrdinalIgnoreCase))
        {
            var detail = string.Join(": ", new[] { ready.Reason, ready.Message }.Where(s => !string.IsNullOrEmpty(s)));
            problems.Add(new NodeProblem(name, NodeIncidentReasons.NodeNotReady,
                $"node {name} reports Ready={ready.Status}{(detail.Length == 0 ? string.Empty : $" ({Shorten(detail)})")}"));
        }

        if (node.Spec?.Unschedulable == true)
        {
            problems.Add(new NodeProblem(name, NodeIncidentReasons.NodeCordoned, $"node {name} is cordoned (spec.unschedulable is true)"));
        }

        if (MaintenanceOf(node) is { } maintenance)
        {
            problems.Add(new NodeProblem(name, NodeIncidentReasons.NodeMaintenance, $"GKE reports maintenance on node {name}: {maintenance}"));
        }

        return problems;
    }

    /// <summary>True when GKE is terminating the node or running host maintenance on it: such a node must not be claimed.</summary>
    public static bool InMaintenance(V1Node node) => node is not null && MaintenanceOf(node) is not null;

    private static string? MaintenanceOf(V1Node node)
    {
        var seen = new List<string>();
        if (node.Spec?.Taints?.FirstOrDefault(t => t.Key == GkeMaintenance.ImpendingTerminationTaint) is { } taint)
        {
            seen.Add($"taint {taint.Key}{(string.IsNullOrEmpty(taint.Value) ? string.Empty : "=" + taint.Value)}:{taint.Effect} (the node is about to be terminated)");
        }

        if (node.Metadata?.Labels is { } labels && labels.TryGetValue(GkeMaintenance.ActiveMaintenanceLabel, out var value))
        {
            seen.Add($"label {GkeMaintenance.ActiveMaintenanceLabel}={value} (host maintenance is running)");
        }

        return seen.Count == 0 ? null : string.Join("; ", seen);
    }

    private static string Shorten(string text) => text.Length <= MaxDetail ? text : text[..MaxDetail] + "…";
}
