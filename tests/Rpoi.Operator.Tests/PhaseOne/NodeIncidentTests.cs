using k8s.Models;
using Rpoi.Kube.Events;
using Rpoi.Kube.Informers;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Operator.PhaseOne.Nodes;
using Rpoi.Operator.PhaseTwo;

namespace Rpoi.Operator.Tests.PhaseOne;

/// <summary>The pure parts of lost-node handling: what counts as a problem, transitions, the watch filter, Ra_β's facts.</summary>
public sealed class NodeIncidentTests
{
    private const string Uid = "uid-1";
    private static readonly DateTimeOffset T0 = new(2026, 12, 3, 8, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Each_kind_of_breakage_is_its_own_problem_and_a_healthy_node_has_none()
    {
        Assert.Empty(NodeHealth.ProblemsOf("n", Node("n"), claimed: true));
        Assert.Equal([NodeIncidentReasons.NodeDeleted], Reasons(NodeHealth.ProblemsOf("n", null, claimed: true)));

        var node = Node("n");
        node.Status.Conditions[0].Status = "Unknown";
        node.Spec.Unschedulable = true;
        node.Spec.Taints.Add(new V1Taint { Key = GkeMaintenance.ImpendingTerminationTaint, Effect = "NoSchedule" });
        var problems = NodeHealth.ProblemsOf("n", node, claimed: false);
        Assert.Equal([NodeIncidentReasons.NodeClaimRemoved, NodeIncidentReasons.NodeNotReady, NodeIncidentReasons.NodeCordoned, NodeIncidentReasons.NodeMaintenance], Reasons(problems));
        Assert.Contains("Ready=Unknown", problems[1].Message, StringComparison.Ordinal);
        Assert.Contains(GkeMaintenance.ImpendingTerminationTaint, problems[3].Message, StringComparison.Ordinal);

        // Scheduled (future) maintenance is a notice, not a problem, and does not keep the node out of claims; active
        // maintenance does both.
        var scheduled = Node("n");
        scheduled.Metadata.Labels[GkeMaintenance.ScheduledMaintenanceLabel] = "1733083200";
        Assert.Empty(NodeHealth.ProblemsOf("n", scheduled, claimed: true));
        Assert.False(NodeHealth.InMaintenance(scheduled));
        scheduled.Metadata.Labels[GkeMaintenance.ActiveMaintenanceLabel] = "ONGOING";
        Assert.True(NodeHealth.InMaintenance(scheduled));
        Assert.False(TpuSlices.IsSchedulable(scheduled));
    }

    [Fact]
    public void Transitions_open_and_end_incidents_once_and_a_repeat_observation_changes_nothing()
    {
        var status = new LeaseStatus { Phase = LeasePhase.Active, Nodes = ["a", "b"] };
        var nodes = new Dictionary<string, V1Node> { ["a"] = Node("a"), ["b"] = Node("b") };
        var claimed = new HashSet<string> { "a", "b" };

        var first = NodeIncidents.Observe(status, n => nodes.GetValueOrDefault(n), claimed, T0);
        Assert.Null(first.Condition);
        Assert.Empty(first.Events);
        Assert.Null(status.NodeIncidents);

        nodes["b"].Spec.Unschedulable = true;
        var broke = NodeIncidents.Observe(status, n => nodes.GetValueOrDefault(n), claimed, T0);
        Assert.Equal((true, NodeIncidentReasons.NodeCordoned), (broke.Condition!.IsDegraded, broke.Condition.Reason));
        Assert.Equal((EventTypes.Warning, NodeIncidentReasons.NodeCordoned), (Assert.Single(broke.Events).Type, broke.Events[0].Reason));

        var again = NodeIncidents.Observe(status, n => nodes.GetValueOrDefault(n), claimed, T0.AddMinutes(1));
        Assert.Empty(again.Events);
        Assert.Equal(broke.Condition, again.Condition);

        nodes.Remove("a");
        nodes["b"].Spec.Unschedulable = null;
        var later = NodeIncidents.Observe(status, n => nodes.GetValueOrDefault(n), claimed, T0.AddMinutes(2));
        Assert.Equal([NodeIncidentReasons.NodeRecovered, NodeIncidentReasons.NodeDeleted], later.Events.Select(e => e.Reason));
        Assert.Equal(NodeIncidentReasons.NodeDeleted, later.Condition!.Reason);
        var cordon = status.NodeIncidents!.Single(i => i.Reason == NodeIncidentReasons.NodeCordoned);
        Assert.Equal((120L, NodeIncidentResolution.Recovered), (cordon.DurationSeconds!.Value, cordon.Resolution!.Value));

        var ended = NodeIncidents.EndAll(status, T0.AddMinutes(5));
        Assert.Equal((false, NodeIncidentReasons.Returned), (ended!.IsDegraded, ended.Reason));
        var deleted = status.NodeIncidents!.Single(i => i.Reason == NodeIncidentReasons.NodeDeleted);
        Assert.Equal((180L, NodeIncidentResolution.Returned), (deleted.DurationSeconds!.Value, deleted.Resolution!.Value));
        Assert.Null(NodeIncidents.EndAll(status, T0.AddMinutes(6)));
        // 08:00–08:02 cordoned, 08:02–08:05 deleted: 300 s degraded.
        Assert.Equal(300, NodeIncidents.DegradedSeconds(status.NodeIncidents!, T0.AddHours(1)));
    }

    [Fact]
    public void Degraded_time_counts_overlaps_once_and_open_incidents_up_to_the_bound()
    {
        NodeIncident Span(int from, int? to) => new() { Node = "n", Reason = "R", StartedAt = T0.AddSeconds(from).UtcDateTime, EndedAt = to is { } t ? T0.AddSeconds(t).UtcDateTime : null };
        Assert.Equal(0, NodeIncidents.DegradedSeconds([], T0));
        Assert.Equal(150, NodeIncidents.DegradedSeconds([Span(0, 100), Span(50, 150)], T0.AddHours(1)));
        Assert.Equal(110, NodeIncidents.DegradedSeconds([Span(0, 100), Span(200, 210)], T0.AddHours(1)));
        Assert.Equal(400, NodeIncidents.DegradedSeconds([Span(0, 100), Span(300, null)], T0.AddSeconds(600)));
    }

    [Fact]
    public void A_flapping_node_keeps_the_record_bounded_and_counts_what_was_dropped()
    {
        var status = new LeaseStatus { Phase = LeasePhase.Active, Nodes = ["a"] };
        var node = Node("a");
        for (var i = 0; i < NodeIncidents.MaxRecorded + 10; i++)
        {
            node.Spec.Unschedulable = true;
            NodeIncidents.Observe(status, _ => node, new HashSet<string> { "a" }, T0.AddMinutes(2 * i));
            node.Spec.Unschedulable = null;
            NodeIncidents.Observe(status, _ => node, new HashSet<string> { "a" }, T0.AddMinutes((2 * i) + 1));
        }

        Assert.Equal(NodeIncidents.MaxRecorded, status.NodeIncidents!.Count);
        Assert.Equal(10, status.NodeIncidentsDropped);
        Assert.Equal(T0.AddMinutes(20).UtcDateTime, status.NodeIncidents[0].StartedAt);
    }

    [Fact]
    public void The_watch_wakes_the_lease_only_when_the_node_differs_from_what_the_lease_records()
    {
        var lease = new Lease
        {
            Metadata = new V1ObjectMeta { Name = "job", NamespaceProperty = "team-a", Uid = Uid },
            Status = new LeaseStatus { Phase = LeasePhase.Active, Nodes = ["a"] },
        };
        var key = new ObjectKey("team-a", "job");
        var node = Claimed(Node("a"));
        V1Node? current = node;
        IReadOnlyList<ObjectKey> Affected(V1Node? before, V1Node after) => LeaseNodeWatch.Affected(k => k == key ? lease : null, _ => current, before, after);

        // A status update of a healthy node (a kubelet heartbeat) wakes nothing.
        Assert.Empty(Affected(node, node));
        var cordoned = Claimed(Node("a"));
        cordoned.Spec.Unschedulable = true;
        current = cordoned;
        Assert.Equal([key], Affected(node, cordoned));

        // Once the lease records the incident, the same state wakes nothing; recovery wakes it again.
        lease.Status.NodeIncidents = [new NodeIncident { Node = "a", Reason = NodeIncidentReasons.NodeCordoned, StartedAt = T0.UtcDateTime }];
        Assert.Empty(Affected(cordoned, cordoned));
        current = node;
        Assert.Equal([key], Affected(cordoned, node));

        // Deleted: the last known object still names the lease; marks removed: the old version does.
        lease.Status.NodeIncidents = null;
        current = null;
        Assert.Equal([key], Affected(node, node));
        var unmarked = Node("a");
        current = unmarked;
        Assert.Equal([key], Affected(node, unmarked));

        // Not Active, or not one of the lease's nodes: nothing.
        current = cordoned;
        lease.Status.Phase = LeasePhase.AwaitingRatings;
        Assert.Empty(Affected(node, cordoned));
        lease.Status.Phase = LeasePhase.Active;
        lease.Status.Nodes = ["b"];
        Assert.Empty(Affected(node, cordoned));
    }

    [Fact]
    public void Leaser_rating_facts_list_each_incident_and_leave_a_clean_lease_alone()
    {
        Assert.Equal("fine", LeaserRatingFacts.CommentOf("fine", new LeaseStatus()));
        var status = new LeaseStatus
        {
            ReturnedAt = T0.AddHours(1).UtcDateTime,
            NodeIncidents =
            [
                new NodeIncident { Node = "a", Reason = NodeIncidentReasons.NodeNotReady, StartedAt = T0.UtcDateTime, EndedAt = T0.AddMinutes(5).UtcDateTime, DurationSeconds = 300, Resolution = NodeIncidentResolution.Recovered },
            ],
        };
        Assert.Equal(
            "fine\n\nrpoi.io/node-incidents: 1 on the leased nodes, degraded for 300 s in all\n- NodeNotReady node a from 2026-12-03T08:00:00Z to 2026-12-03T08:05:00Z (300 s, Recovered)",
            LeaserRatingFacts.CommentOf("fine", status));
        Assert.StartsWith(LeaserRatingFacts.Header, LeaserRatingFacts.CommentOf(null, status), StringComparison.Ordinal);
    }

    private static List<string> Reasons(IEnumerable<NodeProblem> problems) => [.. problems.Select(p => p.Reason)];

    private static V1Node Claimed(V1Node node)
    {
        node.Metadata.Labels[TpuLabels.LeaseNamespaceLabel] = "team-a";
        node.Metadata.Labels[TpuLabels.LeaseNameLabel] = "job";
        node.Metadata.Annotations = new Dictionary<string, string> { [TpuLabels.LeaseUidAnnotation] = Uid };
        return node;
    }

    private static V1Node Node(string name) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Labels = new Dictionary<string, string>() },
        Spec = new V1NodeSpec { Taints = [new V1Taint { Key = TpuLabels.GkeTpuTaintKey, Value = TpuLabels.GkeTpuTaintValue, Effect = TpuLabels.NoSchedule }] },
        Status = new V1NodeStatus
        {
            Conditions = [new V1NodeCondition { Type = "Ready", Status = "True" }],
            Allocatable = new Dictionary<string, ResourceQuantity> { [TpuLabels.TpuResource] = new("4") },
        },
    };
}
