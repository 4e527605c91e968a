namespace Rpoi.Operator.PhaseOne.Allocation;

/// <summary>
/// The node labels, taints and resources GKE puts on TPU nodes, and the marks this operator adds
/// when it claims a node for one lease. docs/phase-one.md lists them for the admission policy and for users.
/// </summary>
public static class TpuLabels
{
    /// <summary>GKE: the TPU accelerator type of the node, e.g. <c>tpu-v5-lite-podslice</c>, <c>tpu-v6e-slice</c>.</summary>
    public const string Accelerator = "cloud.google.com/gke-tpu-accelerator";

    /// <summary>GKE: the topology of the slice the node belongs to, e.g. <c>2x2</c>, <c>4x4</c>, <c>2x2x2</c>.</summary>
    public const string Topology = "cloud.google.com/gke-tpu-topology";

    /// <summary>GKE: the node pool. A multi-host TPU node pool is exactly one slice.</summary>
    public const string NodePool = "cloud.google.com/gke-nodepool";

    /// <summary>GKE: the extended resource counting TPU chips on a host (1, 4 or 8).</summary>
    public const string TpuResource = "google.com/tpu";

    /// <summary>GKE: the taint every TPU node carries (<c>google.com/tpu=present:NoSchedule</c>).</summary>
    public const string GkeTpuTaintKey = "google.com/tpu";

    /// <summary>Value of <see cref="GkeTpuTaintKey"/>.</summary>
    public const string GkeTpuTaintValue = "present";

    /// <summary>RPOI: the taint on a claimed node; its value is the lease's namespace, effect NoSchedule.</summary>
    public const string LeaseTaintKey = "rpoi.io/lease";

    /// <summary>RPOI: label on a claimed node naming the lease's namespace.</summary>
    public const string LeaseNamespaceLabel = "rpoi.io/lease-namespace";

    /// <summary>RPOI: label on a claimed node naming the lease.</summary>
    public const string LeaseNameLabel = "rpoi.io/lease-name";

    /// <summary>
    /// RPOI: annotation holding the claiming Lease's UID. The UID, not the name, decides ownership, so a
    /// Lease deleted and created again under the same name never inherits a stale claim.
    /// </summary>
    public const string LeaseUidAnnotation = "rpoi.io/lease-uid";

    /// <summary>RPOI: annotation with the RFC 3339 time the claim was made (diagnostics only).</summary>
    public const string ClaimedAtAnnotation = "rpoi.io/claimed-at";

    /// <summary>Effect of both taints.</summary>
    public const string NoSchedule = "NoSchedule";
}
