using k8s;
using k8s.Models;
using Rpoi.Kube.Events;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Operator.PhaseOne.Nodes;
using Rpoi.Operator.Tests.Support;

namespace Rpoi.Operator.Tests.PhaseOne;

/// <summary>
/// A claimed node that goes wrong while its Lease is Active (NotReady, cordoned, GKE maintenance taint or label,
/// deleted): Degraded condition naming node and reason, one Warning event, an incident in status with its start; when
/// the node recovers, Degraded=False and the incident's end and duration; at the return, open incidents end there.
/// All times come from the shared fake clock.
/// </summary>
public sealed class LostNodeTests
{
    public enum Breakage
    {
        NotReady,
        Cordoned,
        MaintenanceTaint,
        MaintenanceLabel,
    }

    private const string Node = "gke-v5e-0";

    [Theory]
    [InlineData(Breakage.NotReady, NodeIncidentReasons.NodeNotReady)]
    [InlineData(Breakage.Cordoned, NodeIncidentReasons.NodeCordoned)]
    [InlineData(Breakage.MaintenanceTaint, NodeIncidentReasons.NodeMaintenance)]
    [InlineData(Breakage.MaintenanceLabel, NodeIncidentReasons.NodeMaintenance)]
    public async Task A_broken_node_degrades_the_lease_once_and_its_recovery_records_the_duration(Breakage breakage, string reason)
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        await env.StartOperatorAsync();
        await env.ApplyAsync(env.Lease("job").Build());
        var active = await env.WaitForPhaseAsync("job", LeasePhase.Active);
        Assert.Equal([Node], active.Status!.Nodes);
        Assert.Null(DegradedOf(active));

        var broke = Second(env.Time.GetUtcNow());
        await BreakAsync(env, breakage, true);
        var degraded = await WaitForDegradedAsync(env, "True");
        var condition = DegradedOf(degraded)!;
        Assert.Equal(reason, condition.Reason);
        Assert.Contains(Node, condition.Message, StringComparison.Ordinal);
        Assert.Equal(LeasePhase.Active, degraded.Status!.Phase);
        var incident = Assert.Single(degraded.Status.NodeIncidents!);
        Assert.Equal((Node, reason), (incident.Node, incident.Reason));
        Assert.Equal(broke.UtcDateTime, incident.StartedAt);
        Assert.Null(incident.EndedAt);
        Assert.Null(incident.DurationSeconds);
        var warning = await WaitForEventAsync(env, reason);
        Assert.Equal(EventTypes.Warning, warning.Type);
        Assert.Contains(Node, warning.Note, StringComparison.Ordinal);

        // A resync of the lease (any change to it) finds the same node state: no second event, nothing rewritten.
        await env.Client.CustomObjects.PatchNamespacedCustomObjectAsync(
            new V1Patch("{\"metadata\":{\"annotations\":{\"example.com/touched\":\"1\"}}}", V1Patch.PatchType.MergePatch),
            Lease.Group, Lease.Version, PhaseOneEnvironment.Namespace, Lease.Plural, "job");

        env.Time.Advance(TimeSpan.FromMinutes(5));
        await BreakAsync(env, breakage, false);
        var recovered = await WaitForDegradedAsync(env, "False");
        condition = DegradedOf(recovered)!;
        Assert.Equal(NodeIncidentReasons.NodeRecovered, condition.Reason);
        Assert.Equal((broke + TimeSpan.FromMinutes(5)).UtcDateTime, condition.LastTransitionTime);
        incident = Assert.Single(recovered.Status!.NodeIncidents!);
        Assert.Equal(broke.UtcDateTime, incident.StartedAt);
        Assert.Equal((broke + TimeSpan.FromMinutes(5)).UtcDateTime, incident.EndedAt);
        Assert.Equal(300, incident.DurationSeconds);
        Assert.Equal(NodeIncidentResolution.Recovered, incident.Resolution);
        Assert.Equal(LeasePhase.Active, recovered.Status.Phase);
        Assert.Equal(EventTypes.Normal, (await WaitForEventAsync(env, NodeIncidentReasons.NodeRecovered)).Type);

        // Once per transition: one Warning (not repeated as a series) and one recovery, whatever was reconciled between.
        var events = await LeaseEventsAsync(env);
        var only = Assert.Single(events, e => e.Reason == reason);
        Assert.Null(only.Series);
        Assert.Single(events, e => e.Reason == NodeIncidentReasons.NodeRecovered);

        // The return keeps the record (phase II rates with it), and the node leaves clean.
        await env.RequestReturnAsync("job");
        var returned = await env.WaitForPhaseAsync("job", LeasePhase.AwaitingRatings);
        Assert.Equal(300, Assert.Single(returned.Status!.NodeIncidents!).DurationSeconds);
        Assert.True(TpuNodePools.IsClean((await env.NodesAsync()).Single()), "the node still carries lease marks");
    }

    [Fact]
    public async Task A_deleted_node_degrades_the_lease_is_not_replaced_and_the_incident_ends_at_the_return()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 2);
        await env.StartOperatorAsync();
        await env.ApplyAsync(env.Lease("job").Build());
        var active = await env.WaitForPhaseAsync("job", LeasePhase.Active);
        var granted = Assert.Single(active.Status!.Nodes!);
        var spare = (await env.NodesAsync()).Single(n => n.Metadata.Name != granted).Metadata.Name;

        var deleted = Second(env.Time.GetUtcNow());
        await env.Client.CoreV1.DeleteNodeAsync(granted);
        var degraded = await WaitForDegradedAsync(env, "True");
        Assert.Equal(NodeIncidentReasons.NodeDeleted, DegradedOf(degraded)!.Reason);
        Assert.Contains(granted, DegradedOf(degraded)!.Message, StringComparison.Ordinal);
        var incident = Assert.Single(degraded.Status!.NodeIncidents!);
        Assert.Equal((granted, NodeIncidentReasons.NodeDeleted, deleted.UtcDateTime), (incident.Node, incident.Reason, incident.StartedAt));
        Assert.Equal(EventTypes.Warning, (await WaitForEventAsync(env, NodeIncidentReasons.NodeDeleted)).Type);

        // σ names the lost node: the lease keeps its grant and is not moved to the free node behind the renter's back.
        Assert.Equal(LeasePhase.Active, degraded.Status.Phase);
        Assert.Equal([granted], degraded.Status.Nodes);
        Assert.Equal(active.Status.GrantDigest, degraded.Status.GrantDigest);
        Assert.True(TpuNodePools.IsClean((await env.NodesAsync()).Single(n => n.Metadata.Name == spare)), "the lease claimed the spare node");

        env.Time.Advance(TimeSpan.FromMinutes(10));
        await env.RequestReturnAsync("job");
        // The clock stands still while the return runs (it needs no timer), so it ends the incident exactly 10 min in.
        var returned = await Eventually.ReturnsAsync(() => env.GetLeaseAsync("job"), l => l.Status?.Phase == LeasePhase.AwaitingRatings, "Lease job is returned");
        incident = Assert.Single(returned.Status!.NodeIncidents!);
        Assert.Equal(returned.Status.ReturnedAt, incident.EndedAt);
        Assert.Equal((deleted + TimeSpan.FromMinutes(10)).UtcDateTime, incident.EndedAt);
        Assert.Equal(600, incident.DurationSeconds);
        Assert.Equal(NodeIncidentResolution.Returned, incident.Resolution);
        var condition = DegradedOf(returned)!;
        Assert.Equal(("False", NodeIncidentReasons.Returned), (condition.Status, condition.Reason));
        Assert.Single(await LeaseEventsAsync(env), e => e.Reason == NodeIncidentReasons.NodeDeleted);
    }

    [Fact]
    public async Task One_lost_host_of_a_multi_host_slice_degrades_the_lease_without_a_new_claim_or_a_wait()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eMultiHost4x4Async(env.Client, "slice");
        await env.StartOperatorAsync();
        await env.ApplyAsync(env.Lease("job").Shape(LeaseBuilder.V5e, "4x4").Chips(16).Build());
        var active = await env.WaitForPhaseAsync("job", LeasePhase.Active);
        Assert.Equal(4, active.Status!.Nodes!.Count);

        // The lease now holds 12 of its 16 chips: it is reported, not re-queued (Pending) or topped up from elsewhere.
        var lost = active.Status.Nodes[2];
        await env.Client.CoreV1.DeleteNodeAsync(lost);
        var degraded = await WaitForDegradedAsync(env, "True");
        Assert.Equal(LeasePhase.Active, degraded.Status!.Phase);
        Assert.Null(degraded.Status.QueuePosition);
        Assert.Equal(active.Status.Nodes, degraded.Status.Nodes);
        Assert.Equal((lost, NodeIncidentReasons.NodeDeleted), (Assert.Single(degraded.Status.NodeIncidents!).Node, degraded.Status.NodeIncidents![0].Reason));
        Assert.Equal(3, (await env.NodesOfAsync("job")).Count);

        await env.RequestReturnAsync("job");
        await env.WaitForPhaseAsync("job", LeasePhase.AwaitingRatings);
        Assert.All(await env.NodesAsync(), n => Assert.True(TpuNodePools.IsClean(n), $"{n.Metadata.Name} still carries lease marks"));
    }

    [Fact]
    public async Task A_node_lost_while_no_operator_runs_is_found_on_start_and_recorded_incidents_survive_a_restart()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        await env.StartOperatorAsync();
        await env.ApplyAsync(env.Lease("job").Build());
        await env.WaitForPhaseAsync("job", LeasePhase.Active);
        var cordoned = Second(env.Time.GetUtcNow());
        await BreakAsync(env, Breakage.Cordoned, true);
        await WaitForDegradedAsync(env, "True");

        await env.StopOperatorAsync();
        env.Time.Advance(TimeSpan.FromMinutes(1));
        var notReady = Second(env.Time.GetUtcNow());
        await BreakAsync(env, Breakage.NotReady, true);
        await env.StartOperatorAsync();

        var both = await Eventually.ReturnsAsync(() => env.GetLeaseAsync("job"), l => l.Status?.NodeIncidents?.Count == 2, "the operator finds the NotReady node on start", env.Time);
        var incidents = both.Status!.NodeIncidents!;
        Assert.Equal([NodeIncidentReasons.NodeCordoned, NodeIncidentReasons.NodeNotReady], incidents.Select(i => i.Reason));
        Assert.Equal(cordoned.UtcDateTime, incidents[0].StartedAt);
        // Seen when the new replica first reconciled: starting it moves the fake clock a little (its readiness polls).
        Assert.InRange(incidents[1].StartedAt!.Value, notReady.UtcDateTime, Second(env.Time.GetUtcNow()).UtcDateTime);
        Assert.All(incidents, i => Assert.Null(i.EndedAt));
        Assert.Equal("True", DegradedOf(both)!.Status);
        await WaitForEventAsync(env, NodeIncidentReasons.NodeNotReady);
        // The restart did not open the cordon incident a second time.
        Assert.Single(await LeaseEventsAsync(env), e => e.Reason == NodeIncidentReasons.NodeCordoned);
    }

    private static DateTimeOffset Second(DateTimeOffset t) => new(t.UtcTicks - (t.UtcTicks % TimeSpan.TicksPerSecond), TimeSpan.Zero);

    private static V1Condition? DegradedOf(Lease lease) => lease.Status?.Conditions?.SingleOrDefault(c => c.Type == NodeIncidentReasons.Degraded);

    private static Task<Lease> WaitForDegradedAsync(PhaseOneEnvironment env, string status) =>
        // No clock is moved while waiting: a node event reaches the lease without any timer, so the times recorded are
        // exactly those of the change.
        Eventually.ReturnsAsync(() => env.GetLeaseAsync("job"), l => DegradedOf(l)?.Status == status, $"Lease job has Degraded={status}");

    private static async Task<IReadOnlyList<Eventsv1Event>> LeaseEventsAsync(PhaseOneEnvironment env) =>
        [.. (await env.Client.EventsV1.ListNamespacedEventAsync(PhaseOneEnvironment.Namespace)).Items.Where(e => e.Regarding?.Name == "job" && e.Regarding.Kind == Lease.KindName)];

    private static Task<Eventsv1Event> WaitForEventAsync(PhaseOneEnvironment env, string reason) =>
        Eventually.ReturnsAsync(async () => (await LeaseEventsAsync(env)).FirstOrDefault(e => e.Reason == reason), _ => true, $"an event {reason} about Lease job");

    /// <summary>Breaks the node the way <paramref name="breakage"/> says (or undoes it), as the kubelet, kubectl or GKE would.</summary>
    private static async Task BreakAsync(PhaseOneEnvironment env, Breakage breakage, bool broken)
    {
        var node = await env.Client.CoreV1.ReadNodeAsync(Node);
        switch (breakage)
        {
            case Breakage.NotReady:
                var ready = node.Status.Conditions.Single(c => c.Type == "Ready");
                ready.Status = broken ? "False" : "True";
                ready.Reason = broken ? "KubeletNotReady" : "KubeletReady";
                ready.Message = broken ? "container runtime is down" : "kubelet is posting ready status";
                await env.Client.CoreV1.ReplaceNodeStatusAsync(node, Node);
                return;
            case Breakage.Cordoned:
                node.Spec.Unschedulable = broken ? true : null;
                break;
            case Breakage.MaintenanceTaint:
                var taints = node.Spec.Taints.Where(t => t.Key != GkeMaintenance.ImpendingTerminationTaint).ToList();
                if (broken)
                {
                    taints.Add(new V1Taint { Key = GkeMaintenance.ImpendingTerminationTaint, Value = "true", Effect = "NoSchedule" });
                }

                node.Spec.Taints = taints;
                break;
            case Breakage.MaintenanceLabel:
                if (broken)
                {
                    node.Metadata.Labels[GkeMaintenance.ActiveMaintenanceLabel] = "ONGOING";
                }
                else
                {
                    node.Metadata.Labels.Remove(GkeMaintenance.ActiveMaintenanceLabel);
                }

                break;
        }

        await env.Client.CoreV1.ReplaceNodeAsync(node, Node);
    }
}
