using k8s;
using k8s.Models;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Operator.PhaseOne.Nodes;

namespace Rpoi.Operator.Tests.PhaseOne;

/// <summary>
/// NodeCache.Trim drops what phase I never reads from a Node, and nothing it does read: every judgement the allocator
/// and node health make, and every patch built from a cached node, come out the same from the trimmed copy.
/// </summary>
public sealed class NodeCacheTests
{
    /// <summary>A node as GKE writes one: many labels and annotations, a dozen conditions, node info, cached images.</summary>
    private static V1Node GkeNode(string name)
    {
        var resources = new Dictionary<string, ResourceQuantity> { [TpuLabels.TpuResource] = new("4"), ["cpu"] = new("224"), ["memory"] = new("198015032Ki"), ["pods"] = new("110") };
        string[] conditions = ["KernelDeadlock", "ReadonlyFilesystem", "FrequentKubeletRestart", "NetworkUnavailable", "MemoryPressure", "DiskPressure", "PIDPressure", "Ready"];
        return new V1Node
        {
            ApiVersion = "v1",
            Kind = "Node",
            Metadata = new V1ObjectMeta
            {
                Name = name,
                ResourceVersion = "42",
                Uid = "node-uid",
                Labels = new Dictionary<string, string>
                {
                    [TpuLabels.Accelerator] = "tpu-v5-lite-podslice",
                    [TpuLabels.Topology] = "2x2",
                    [TpuLabels.NodePool] = "pool-a",
                    ["kubernetes.io/hostname"] = name,
                    ["topology.kubernetes.io/zone"] = "us-west4-a",
                    ["cloud.google.com/gke-os-distribution"] = "cos",
                },
                Annotations = new Dictionary<string, string>
                {
                    ["container.googleapis.com/instance_id"] = "7000000000000000001",
                    ["node.alpha.kubernetes.io/ttl"] = "0",
                    ["volumes.kubernetes.io/controller-managed-attach-detach"] = "true",
                },
            },
            Spec = new V1NodeSpec
            {
                PodCIDR = "10.0.0.0/24",
                ProviderID = $"gce://p/us-west4-a/{name}",
                Taints = [new V1Taint { Key = TpuLabels.GkeTpuTaintKey, Value = TpuLabels.GkeTpuTaintValue, Effect = TpuLabels.NoSchedule }],
            },
            Status = new V1NodeStatus
            {
                Capacity = resources,
                Allocatable = new Dictionary<string, ResourceQuantity>(resources),
                Addresses = [new V1NodeAddress { Address = "10.0.0.1", Type = "InternalIP" }],
                Conditions = [.. conditions.Select(c => new V1NodeCondition { Type = c, Status = c == "Ready" ? "True" : "False", Reason = "R" + c, Message = "m " + c })],
                NodeInfo = new V1NodeSystemInfo { KubeletVersion = "v1.32.2-gke.1", OsImage = "Container-Optimized OS", Architecture = "amd64" },
                Images = [.. Enumerable.Range(0, 10).Select(i => new V1ContainerImage { Names = [$"us-docker.pkg.dev/x/tpu@sha256:{i:x4}{new string('a', 60)}"], SizeBytes = 1_000_000_000 })],
            },
        };
    }

    private static V1Node Copy(V1Node node) => KubernetesJson.Deserialize<V1Node>(KubernetesJson.Serialize(node));

    /// <summary>The node states phase I tells apart: healthy, claimed, NotReady, cordoned, GKE maintenance (taint, label), no chips.</summary>
    public static TheoryData<string> States() => ["healthy", "claimed", "not-ready", "cordoned", "terminating", "maintenance", "no-chips"];

    private static V1Node InState(string state)
    {
        var node = GkeNode("gke-n-1");
        switch (state)
        {
            case "claimed":
                GkeTpuProvider.AddMarks(node, new LeaseIdentity("team-a", "train-1", "lease-uid"), new DateTimeOffset(2026, 12, 3, 9, 0, 0, TimeSpan.Zero));
                break;
            case "not-ready":
                node.Status.Conditions.Single(c => c.Type == "Ready").Status = "Unknown";
                break;
            case "cordoned":
                node.Spec.Unschedulable = true;
                break;
            case "terminating":
                node.Spec.Taints.Add(new V1Taint { Key = GkeMaintenance.ImpendingTerminationTaint, Effect = TpuLabels.NoSchedule });
                break;
            case "maintenance":
                node.Metadata.Labels[GkeMaintenance.ActiveMaintenanceLabel] = "true";
                break;
            case "no-chips":
                node.Status.Allocatable[TpuLabels.TpuResource] = new ResourceQuantity("0");
                break;
        }

        return node;
    }

    [Theory]
    [MemberData(nameof(States))]
    public void A_trimmed_node_is_judged_and_patched_exactly_like_the_whole_one(string state)
    {
        var whole = InState(state);
        var trimmed = NodeCache.Trim(Copy(whole));

        Assert.Equal(NodeHealth.ProblemsOf(whole.Metadata.Name, whole, claimed: true), NodeHealth.ProblemsOf(trimmed.Metadata.Name, trimmed, claimed: true));
        Assert.Equal(NodeHealth.InMaintenance(whole), NodeHealth.InMaintenance(trimmed));
        Assert.Equal(TpuSlices.IsSchedulable(whole), TpuSlices.IsSchedulable(trimmed));
        Assert.Equal(TpuSlices.ChipsOn(whole), TpuSlices.ChipsOn(trimmed));
        Assert.Equal(TpuSlices.OwnerOf(whole), TpuSlices.OwnerOf(trimmed));
        foreach (var label in NodeCache.KeptLabels)
        {
            Assert.Equal(TpuSlices.LabelOf(whole, label), TpuSlices.LabelOf(trimmed, label));
        }

        var lease = new LeaseIdentity("team-b", "other", "uid-2");
        var at = new DateTimeOffset(2026, 12, 3, 10, 0, 0, TimeSpan.Zero);
        Assert.Equal(GkeTpuProvider.MarkPatch(whole, lease, at).Content, GkeTpuProvider.MarkPatch(trimmed, lease, at).Content);
        Assert.Equal(GkeTpuProvider.UnmarkPatch(whole).Content, GkeTpuProvider.UnmarkPatch(trimmed).Content);
    }

    [Fact]
    public void Trim_keeps_identity_labels_rpoi_annotations_taints_the_tpu_count_and_ready_and_drops_the_bulk()
    {
        var whole = InState("claimed");
        var size = KubernetesJson.Serialize(whole).Length;
        var trimmed = NodeCache.Trim(Copy(whole));

        // Name and resourceVersion (claims are conditional on it); the node's UID is read by nothing and dropped.
        Assert.Equal(("gke-n-1", "42", (string?)null), (trimmed.Metadata.Name, trimmed.Metadata.ResourceVersion, trimmed.Metadata.Uid));
        // Of the labels only those the operator reads; GKE's others (hostname, zone, OS) are gone.
        Assert.Equal(
            whole.Metadata.Labels.Where(l => NodeCache.KeptLabels.Contains(l.Key)).OrderBy(l => l.Key, StringComparer.Ordinal),
            trimmed.Metadata.Labels.OrderBy(l => l.Key, StringComparer.Ordinal));
        Assert.DoesNotContain("kubernetes.io/hostname", trimmed.Metadata.Labels.Keys);
        Assert.Equal([TpuLabels.LeaseUidAnnotation, TpuLabels.ClaimedAtAnnotation], trimmed.Metadata.Annotations.Keys.Order(StringComparer.Ordinal).Reverse());
        Assert.Equal(whole.Spec.Taints.Select(t => t.Key), trimmed.Spec.Taints.Select(t => t.Key));
        Assert.Equal([TpuLabels.TpuResource], trimmed.Status.Allocatable.Keys);
        Assert.Equal(["Ready"], trimmed.Status.Conditions.Select(c => c.Type));
        Assert.Null(trimmed.Status.Images);
        Assert.Null(trimmed.Status.NodeInfo);
        Assert.True(KubernetesJson.Serialize(trimmed).Length * 3 < size, $"trimmed {KubernetesJson.Serialize(trimmed).Length} of {size} bytes");
    }

    [Fact]
    public void Trimmed_nodes_share_one_copy_of_the_strings_they_have_in_common()
    {
        // Read from JSON, as the informer reads them: each node brings its own copy of every string.
        var a = Copy(InState("claimed"));
        var b = Copy(InState("claimed"));
        Assert.NotSame(a.Metadata.Labels[TpuLabels.Accelerator], b.Metadata.Labels[TpuLabels.Accelerator]);

        NodeCache.Trim(a);
        NodeCache.Trim(b);

        Assert.Same(a.Metadata.Labels[TpuLabels.Accelerator], b.Metadata.Labels[TpuLabels.Accelerator]);
        Assert.Same(a.Metadata.Labels.Keys.Single(k => k == TpuLabels.Topology), b.Metadata.Labels.Keys.Single(k => k == TpuLabels.Topology));
        Assert.Same(a.Spec.Taints[0].Key, b.Spec.Taints[0].Key);
        Assert.Same(a.Status.Conditions.Single().Reason, b.Status.Conditions.Single().Reason);
    }

    [Fact]
    public void Trimmed_nodes_alike_share_one_read_only_taint_list_tpu_map_and_ready_condition()
    {
        var a = NodeCache.Trim(Copy(GkeNode("gke-n-1")));
        var b = NodeCache.Trim(Copy(GkeNode("gke-n-2")));
        var notReady = GkeNode("gke-n-3");
        notReady.Status.Conditions.Single(c => c.Type == "Ready").Status = "False";
        var c = NodeCache.Trim(Copy(notReady));

        // What most nodes have alike is one object in the cache, not one per node (BENCHMARKS.md "memcache").
        Assert.Same(a.Spec.Taints, b.Spec.Taints);
        Assert.Same(a.Status.Allocatable, b.Status.Allocatable);
        Assert.Same(a.Status.Capacity, b.Status.Capacity);
        Assert.Same(a.Status.Conditions, b.Status.Conditions);
        Assert.Same(a.Spec, b.Spec);
        Assert.Same(a.Status, b.Status);
        Assert.NotSame(a.Status, c.Status);
        Assert.NotSame(a.Status.Conditions, c.Status.Conditions);
        Assert.Equal("False", c.Status.Conditions.Single().Status);
        Assert.Equal(4, TpuSlices.ChipsOn(a));
        // The heartbeat would make every node's condition distinct, and nothing reads it.
        Assert.Null(a.Status.Conditions.Single().LastHeartbeatTime);
        // Shared, so read-only: a change must be made to a copy (as claims do), never to the cache.
        Assert.Throws<NotSupportedException>(() => a.Spec.Taints.Add(new V1Taint { Key = "k", Effect = TpuLabels.NoSchedule }));
        Assert.Throws<NotSupportedException>(() => a.Status.Allocatable[TpuLabels.TpuResource] = new ResourceQuantity("8"));
        Assert.Throws<NotSupportedException>(() => a.Metadata.Labels[TpuLabels.Topology] = "2x4");
    }
}
