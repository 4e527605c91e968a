using k8s.Models;
using Rpoi.Kube.Informers;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Allocation;

namespace Rpoi.Operator.PhaseOne.Nodes;

/// <summary>
/// Maps a Node change to the Active lease that holds the node, by the claim labels the provider writes
/// (<c>rpoi.io/lease-namespace</c>, <c>rpoi.io/lease-name</c>), so a lost node reaches its lease at once instead of at
/// its next resync. Only changes that alter what the lease would record wake it: a node update that leaves its health as
/// the lease's open incidents say (kubelet status updates, label edits) wakes nothing.
/// </summary>
public static class LeaseNodeWatch
{
    /// <summary>The leases to reconcile for a node change.</summary>
    /// <param name="leases">Leases by key from the Lease informer's cache.</param>
    /// <param name="node">The Node informer's cache by name (null when the node is gone).</param>
    /// <param name="before">The node before the change (null for an add).</param>
    /// <param name="after">The node after the change (for a delete, its last known state).</param>
    public static IReadOnlyList<ObjectKey> Affected(Func<ObjectKey, Lease?> leases, Func<string, V1Node?> node, V1Node? before, V1Node after)
    {
        ArgumentNullException.ThrowIfNull(leases);
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(after);
        var name = after.Metadata?.Name;
        if (name is null)
        {
            return [];
        }

        // The claim labels of both versions: a node whose marks were just removed still maps to the lease it had.
        var keys = new[] { before, after }.Select(ClaimKeyOf).OfType<ObjectKey>().Distinct().ToList();
        var affected = new List<ObjectKey>(keys.Count);
        foreach (var key in keys)
        {
            if (leases(key) is not { Status: { Phase: LeasePhase.Active } status } lease || status.Nodes?.Contains(name) != true)
            {
                continue;
            }

            var current = node(name);
            var claimed = current is not null && TpuSlices.OwnerOf(current) == lease.Metadata.Uid;
            var now = NodeHealth.ProblemsOf(name, current, claimed).Select(p => p.Reason).ToHashSet(StringComparer.Ordinal);
            var recorded = (status.NodeIncidents ?? []).Where(i => i.Node == name && i.EndedAt is null).Select(i => i.Reason ?? string.Empty).ToHashSet(StringComparer.Ordinal);
            if (!now.SetEquals(recorded))
            {
                affected.Add(key);
            }
        }

        return affected;
    }

    private static ObjectKey? ClaimKeyOf(V1Node? node) =>
        node is not null && TpuSlices.LabelOf(node, TpuLabels.LeaseNamespaceLabel) is { } ns && TpuSlices.LabelOf(node, TpuLabels.LeaseNameLabel) is { } name
            ? new ObjectKey(ns, name)
            : null;
}
