using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Rpoi.Kube.Informers;
using Rpoi.Operator.Entities;

namespace Rpoi.Operator.PhaseOne.Leases;

/// <summary>
/// Writes <c>status</c> only when it changed, as a merge patch guarded by the object's resourceVersion (a stale
/// write fails with 409 instead of overwriting). Unlike a plain merge patch of the new status, fields that were set
/// and are now empty (e.g. <c>queuePosition</c> once a lease is Active) are sent as null, so they are removed.
/// </summary>
public sealed class LeaseStatusWriter
{
    private readonly IResourceClient<Lease> client;

    /// <summary>Creates the writer.</summary>
    public LeaseStatusWriter(IResourceClient<Lease> client) => this.client = client;

    /// <summary>Deep copy of a status (the cached object must never be mutated).</summary>
    public static LeaseStatus Clone(LeaseStatus? status) =>
        status is null ? new LeaseStatus() : KubernetesJson.Deserialize<LeaseStatus>(KubernetesJson.Serialize(status));

    /// <summary>True when the two statuses serialise differently.</summary>
    public static bool Differs(LeaseStatus? before, LeaseStatus after) =>
        !JsonNode.DeepEquals(ToNode(before), ToNode(after));

    /// <summary>Patches the status when it differs from the lease's; returns the stored object (or the input when unchanged).</summary>
    public async Task<Lease> WriteAsync(Lease lease, LeaseStatus status, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(status);
        var before = ToNode(lease.Status) as JsonObject ?? [];
        var after = ToNode(status) as JsonObject ?? [];
        if (JsonNode.DeepEquals(before, after))
        {
            return lease;
        }

        foreach (var (key, _) in before)
        {
            if (!after.ContainsKey(key))
            {
                after[key] = null;
            }
        }

        var body = new JsonObject
        {
            ["metadata"] = new JsonObject { ["resourceVersion"] = lease.Metadata.ResourceVersion },
            ["status"] = after,
        };
        return await client.PatchStatusAsync(ObjectKey.Of(lease), new V1Patch(body.ToJsonString(), V1Patch.PatchType.MergePatch), cancellationToken).ConfigureAwait(false);
    }

    private static JsonNode? ToNode(LeaseStatus? status) => status is null ? null : JsonNode.Parse(KubernetesJson.Serialize(status));
}
