using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Rpoi.Kube.Informers;

namespace Rpoi.Operator.PhaseOne.Allocation;

/// <summary>
/// Claims TPU nodes that GKE already runs, as GKE labels them (<see cref="TpuLabels"/>). A claim is a label,
/// an annotation with the lease's UID and a <c>rpoi.io/lease=&lt;namespace&gt;:NoSchedule</c> taint, written with
/// PUT carrying the node's resourceVersion: the API server refuses a write based on a stale read (409), so
/// two leases or two operator replicas can never both believe they hold one node.
/// Reads that only look (<see cref="FindClaimAsync"/>, <see cref="GetCapacityAsync"/>) use the Node informer's cache
/// when one is given and synced; claims and releases always list from the API server.
/// </summary>
public sealed class GkeTpuProvider : ITpuProvider
{
    // Rounds of list → pick → mark before giving up for this reconcile (the lease is retried later).
    private const int MaxRounds = 5;
    // Conflicts on one node where the node stayed free (someone else touched an unrelated field) before moving on.
    private const int MaxConflictsPerNode = 5;

    private readonly IKubernetes client;
    private readonly TimeProvider time;
    private readonly ILogger<GkeTpuProvider> logger;
    // Serialises claims of one shape inside this process: the API's optimistic concurrency is the real guard,
    // this only spares our own reconcilers from racing each other into 409s.
    private readonly ConcurrentDictionary<TpuShape, SemaphoreSlim> shapeLocks = new();
    private readonly Informer<V1Node>? nodeCache;
    // Leases this process claimed nodes for and has not released: the cache may not show all their marks yet, so their
    // look-ups go to the API server (an Active lease must never look unallocated or partly allocated).
    private readonly ConcurrentDictionary<string, byte> claimedHere = new(StringComparer.Ordinal);

    /// <summary>Creates the provider.</summary>
    /// <param name="client">The API client (claims, releases, and reads when there is no synced cache).</param>
    /// <param name="time">The clock.</param>
    /// <param name="logger">The logger.</param>
    /// <param name="nodeCache">The Node informer; when given, lookups read its cache instead of listing nodes per reconcile.</param>
    public GkeTpuProvider(IKubernetes client, TimeProvider time, ILogger<GkeTpuProvider> logger, Informer<V1Node>? nodeCache = null)
    {
        this.client = client;
        this.time = time;
        this.logger = logger;
        this.nodeCache = nodeCache;
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<TpuCapacity>> GetCapacityAsync(CancellationToken cancellationToken)
    {
        IEnumerable<V1Node> nodes = CachedNodes()?.Where(n => n.Metadata.Labels?.ContainsKey(TpuLabels.Accelerator) == true)
            ?? (await client.CoreV1.ListNodeAsync(labelSelector: TpuLabels.Accelerator, cancellationToken: cancellationToken).ConfigureAwait(false)).Items;
        var result = new List<TpuCapacity>();
        var byShape = nodes
            .Where(n => n.Metadata.Labels?.ContainsKey(TpuLabels.Topology) == true)
            .GroupBy(n => new TpuShape(n.Metadata.Labels[TpuLabels.Accelerator], n.Metadata.Labels[TpuLabels.Topology]));
        foreach (var group in byShape.OrderBy(g => g.Key.Accelerator, StringComparer.Ordinal).ThenBy(g => g.Key.Topology, StringComparer.Ordinal))
        {
            var shape = group.Key;
            if (shape.ChipsPerSlice <= 0)
            {
                continue;
            }

            var slices = TpuSlices.Group(shape, group).Where(s => s.Usable).ToList();
            var free = slices.Where(s => s.IsFree).ToList();
            var hosts = slices.Count == 0 ? 0 : slices[0].Nodes.Count;
            result.Add(new TpuCapacity(shape, hosts, slices.Sum(s => s.Chips), free.Sum(s => s.Chips), free.Count));
        }

        return result;
    }

    /// <inheritdoc/>
    public async Task<TpuClaimOutcome> ClaimAsync(TpuClaimRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var shape = request.Shape;
        if (shape.ChipsPerSlice <= 0)
        {
            return new TpuClaimOutcome.Impossible($"topology '{shape.Topology}' is not a TPU topology such as 2x2, 2x4 or 4x4");
        }

        if (request.Chips <= 0 || request.Chips % shape.ChipsPerSlice != 0)
        {
            return new TpuClaimOutcome.Impossible(
                $"{request.Chips} chips is not a whole number of {shape.Topology} slices ({shape.ChipsPerSlice} chips each); ask for a multiple of {shape.ChipsPerSlice}");
        }

        var gate = shapeLocks.GetOrAdd(shape, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await ClaimLockedAsync(request, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
        }
    }

    private async Task<TpuClaimOutcome> ClaimLockedAsync(TpuClaimRequest request, CancellationToken cancellationToken)
    {
        var uid = request.Lease.Uid;
        var shape = request.Shape;
        var need = request.Chips / shape.ChipsPerSlice;
        var lostRaces = 0;
        for (var round = 0; round < MaxRounds; round++)
        {
            var slices = TpuSlices.Group(shape, await ListShapeAsync(shape, cancellationToken).ConfigureAwait(false));
            var held = slices.Where(s => s.Usable && s.IsHeldWhollyBy(uid)).ToList();
            var partial = slices.Where(s => s.Usable && s.IsTouchedBy(uid) && !s.IsHeldWhollyBy(uid) && s.IsCompletableBy(uid)).ToList();
            var free = slices.Where(s => s.Usable && s.IsFree).ToList();
            var chosen = held.Concat(partial).Concat(free).Take(need).ToList();
            // Marks of ours on slices we will not keep (unusable now, lost to someone else, or surplus) go first.
            var stray = slices.Where(s => s.IsTouchedBy(uid) && !chosen.Contains(s)).SelectMany(s => s.Nodes).ToList();
            await UnmarkAsync(stray, uid, cancellationToken).ConfigureAwait(false);

            if (chosen.Count < need)
            {
                await UnmarkAsync(chosen.SelectMany(s => s.Nodes).ToList(), uid, cancellationToken).ConfigureAwait(false);
                var available = chosen.Count * shape.ChipsPerSlice;
                var hosts = slices.FirstOrDefault(s => s.Usable)?.Nodes.Count ?? 0;
                var sliceWord = hosts > 1 ? $"{hosts}-host {shape.Topology} slices" : $"{shape.Topology} slices";
                var message = slices.Count == 0
                    ? $"no node in this cluster has {TpuLabels.Accelerator}={shape.Accelerator} and {TpuLabels.Topology}={shape.Topology}"
                    : $"{request.Chips} chips of {shape.Accelerator} {shape.Topology} asked ({need} {sliceWord}); {available} free now ({chosen.Count} slices of {slices.Count(s => s.Usable)} usable)";
                return new TpuClaimOutcome.Insufficient(available, request.Chips, message);
            }

            var marked = new List<V1Node>();
            var lost = false;
            foreach (var node in chosen.SelectMany(s => s.Nodes))
            {
                if (TpuSlices.OwnerOf(node) == uid)
                {
                    marked.Add(node);
                    continue;
                }

                var result = await TryMarkAsync(node, request.Lease, cancellationToken).ConfigureAwait(false);
                if (result is null)
                {
                    lost = true;
                    break;
                }

                marked.Add(result);
            }

            if (!lost)
            {
                var claim = ToClaim(shape, marked);
                claimedHere[uid] = 0;
                logger.LogInformation("Lease {Lease} claimed {Chips} chips on {Nodes}", request.Lease, claim.Chips, string.Join(",", claim.Nodes));
                return new TpuClaimOutcome.Claimed(claim);
            }

            // All or nothing: a slice (or lease) that lost a race gives back every host it already marked.
            lostRaces++;
            await UnmarkAsync(marked, uid, cancellationToken).ConfigureAwait(false);
            logger.LogInformation("Lease {Lease} lost a race for {Shape} nodes (round {Round}); rolled back {Count} marks", request.Lease, shape, round + 1, marked.Count);
        }

        return new TpuClaimOutcome.Insufficient(0, request.Chips,
            $"{request.Chips} chips of {shape.Accelerator} {shape.Topology}: lost {lostRaces} races for free slices to other claims; will retry");
    }

    /// <inheritdoc/>
    public async Task<TpuClaim?> FindClaimAsync(LeaseIdentity lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        // A synced cache can only lag behind marks this process wrote moments ago (all or part of a claim), so leases
        // claimed here are read from the API server; a lease that never claimed here (the queued ones, nearly every
        // reconcile of a burst) costs no API request.
        var nodes = claimedHere.ContainsKey(lease.Uid) ? null : CachedNodes() is { } all ? HeldBy(all, lease) : null;
        if (nodes is null)
        {
            nodes = await ListHeldAsync(lease, cancellationToken).ConfigureAwait(false);
        }

        if (nodes.Count == 0)
        {
            return null;
        }

        var shape = new TpuShape(
            TpuSlices.LabelOf(nodes[0], TpuLabels.Accelerator) ?? string.Empty,
            TpuSlices.LabelOf(nodes[0], TpuLabels.Topology) ?? string.Empty);
        return ToClaim(shape, nodes);
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<string>> ReleaseAsync(LeaseIdentity lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var nodes = await ListHeldAsync(lease, cancellationToken).ConfigureAwait(false);
        await UnmarkAsync(nodes, lease.Uid, cancellationToken).ConfigureAwait(false);
        claimedHere.TryRemove(lease.Uid, out _);
        if (nodes.Count > 0)
        {
            logger.LogInformation("Lease {Lease} released {Nodes}", lease, string.Join(",", nodes.Select(n => n.Metadata.Name)));
        }

        return nodes.Select(n => n.Metadata.Name).Order(StringComparer.Ordinal).ToList();
    }

    private async Task<IList<V1Node>> ListShapeAsync(TpuShape shape, CancellationToken cancellationToken)
    {
        var selector = $"{TpuLabels.Accelerator}={shape.Accelerator},{TpuLabels.Topology}={shape.Topology}";
        var list = await client.CoreV1.ListNodeAsync(labelSelector: selector, cancellationToken: cancellationToken).ConfigureAwait(false);
        return list.Items;
    }

    private async Task<List<V1Node>> ListHeldAsync(LeaseIdentity lease, CancellationToken cancellationToken)
    {
        var selector = $"{TpuLabels.LeaseNamespaceLabel}={lease.Namespace},{TpuLabels.LeaseNameLabel}={lease.Name}";
        var list = await client.CoreV1.ListNodeAsync(labelSelector: selector, cancellationToken: cancellationToken).ConfigureAwait(false);
        return HeldBy(list.Items, lease);
    }

    /// <summary>The nodes marked for <paramref name="lease"/> (labels and UID annotation), by name.</summary>
    private static List<V1Node> HeldBy(IEnumerable<V1Node> nodes, LeaseIdentity lease) =>
        nodes.Where(n => TpuSlices.LabelOf(n, TpuLabels.LeaseNamespaceLabel) == lease.Namespace
                && TpuSlices.LabelOf(n, TpuLabels.LeaseNameLabel) == lease.Name
                && TpuSlices.OwnerOf(n) == lease.Uid)
            .OrderBy(n => n.Metadata.Name, StringComparer.Ordinal)
            .ToList();

    /// <summary>The informer's nodes, or null when there is no cache or it has not synced yet (then callers list).</summary>
    private IReadOnlyList<V1Node>? CachedNodes() => nodeCache is { HasSynced: true } cache ? cache.Store.List() : null;

    private static TpuClaim ToClaim(TpuShape shape, IEnumerable<V1Node> nodes)
    {
        var list = nodes.OrderBy(n => n.Metadata.Name, StringComparer.Ordinal).ToList();
        var pools = list.Select(n => TpuSlices.LabelOf(n, TpuLabels.NodePool)).OfType<string>().Distinct().Order(StringComparer.Ordinal).ToList();
        return new TpuClaim(shape, list.Select(n => n.Metadata.Name).ToList(), pools, list.Sum(TpuSlices.ChipsOn));
    }

    /// <summary>Marks a free node for the lease. Returns the updated node, or null when the node is no longer free.</summary>
    private async Task<V1Node?> TryMarkAsync(V1Node node, LeaseIdentity lease, CancellationToken cancellationToken)
    {
        var current = node;
        for (var attempt = 0; attempt < MaxConflictsPerNode; attempt++)
        {
            var owner = TpuSlices.OwnerOf(current);
            if (owner == lease.Uid)
            {
                return current;
            }

            if (owner is not null || !TpuSlices.IsSchedulable(current))
            {
                return null;
            }

            try
            {
                return await client.CoreV1.PatchNodeAsync(MarkPatch(current, lease, time.GetUtcNow()), current.Metadata.Name, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
            {
                var fresh = await ReadNodeAsync(current.Metadata.Name, cancellationToken).ConfigureAwait(false);
                if (fresh is null)
                {
                    return null;
                }

                current = fresh;
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
            {
                return null;
            }
        }

        return null;
    }

    /// <summary>Removes the lease's marks from every node in <paramref name="nodes"/> that still carries them.</summary>
    private async Task UnmarkAsync(IReadOnlyCollection<V1Node> nodes, string uid, CancellationToken cancellationToken)
    {
        foreach (var node in nodes)
        {
            var current = node;
            for (var attempt = 0; ; attempt++)
            {
                if (TpuSlices.OwnerOf(current) != uid)
                {
                    break;
                }

                try
                {
                    await client.CoreV1.PatchNodeAsync(UnmarkPatch(current), current.Metadata.Name, cancellationToken: cancellationToken).ConfigureAwait(false);
                    break;
                }
                catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict && attempt < MaxConflictsPerNode * 4)
                {
                    var fresh = await ReadNodeAsync(current.Metadata.Name, cancellationToken).ConfigureAwait(false);
                    if (fresh is null)
                    {
                        break;
                    }

                    current = fresh;
                }
                catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
                {
                    break;
                }
            }
        }
    }

    private async Task<V1Node?> ReadNodeAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            return await client.CoreV1.ReadNodeAsync(name, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>
    /// A merge patch adding the lease marks, conditional on the node's resourceVersion (409 when the node changed since
    /// it was read). The taint list is replaced whole, computed from the node as read, which the precondition makes safe.
    /// </summary>
    internal static V1Patch MarkPatch(V1Node node, LeaseIdentity lease, DateTimeOffset now)
    {
        var marked = KubernetesJson.Deserialize<V1Node>(KubernetesJson.Serialize(node));
        AddMarks(marked, lease, now);
        var body = new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["resourceVersion"] = node.Metadata.ResourceVersion,
                ["labels"] = new JsonObject
                {
                    [TpuLabels.LeaseNamespaceLabel] = lease.Namespace,
                    [TpuLabels.LeaseNameLabel] = lease.Name,
                },
                ["annotations"] = new JsonObject
                {
                    [TpuLabels.LeaseUidAnnotation] = lease.Uid,
                    [TpuLabels.ClaimedAtAnnotation] = marked.Metadata.Annotations[TpuLabels.ClaimedAtAnnotation],
                },
            },
            ["spec"] = new JsonObject { ["taints"] = JsonNode.Parse(KubernetesJson.Serialize(marked.Spec.Taints)) },
        };
        return new V1Patch(body.ToJsonString(), V1Patch.PatchType.MergePatch);
    }

    /// <summary>A merge patch removing the lease marks (and nothing else), conditional on the node's resourceVersion.</summary>
    internal static V1Patch UnmarkPatch(V1Node node)
    {
        var kept = node.Spec?.Taints?.Where(t => t.Key != TpuLabels.LeaseTaintKey).ToList() ?? [];
        var body = new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["resourceVersion"] = node.Metadata.ResourceVersion,
                ["labels"] = new JsonObject { [TpuLabels.LeaseNamespaceLabel] = null, [TpuLabels.LeaseNameLabel] = null },
                ["annotations"] = new JsonObject { [TpuLabels.LeaseUidAnnotation] = null, [TpuLabels.ClaimedAtAnnotation] = null },
            },
            ["spec"] = new JsonObject { ["taints"] = kept.Count == 0 ? null : JsonNode.Parse(KubernetesJson.Serialize(kept)) },
        };
        return new V1Patch(body.ToJsonString(), V1Patch.PatchType.MergePatch);
    }

    /// <summary>Adds exactly the marks <see cref="RemoveMarks"/> takes away.</summary>
    internal static void AddMarks(V1Node node, LeaseIdentity lease, DateTimeOffset now)
    {
        node.Metadata.Labels ??= new Dictionary<string, string>();
        node.Metadata.Labels[TpuLabels.LeaseNamespaceLabel] = lease.Namespace;
        node.Metadata.Labels[TpuLabels.LeaseNameLabel] = lease.Name;
        node.Metadata.Annotations ??= new Dictionary<string, string>();
        node.Metadata.Annotations[TpuLabels.LeaseUidAnnotation] = lease.Uid;
        node.Metadata.Annotations[TpuLabels.ClaimedAtAnnotation] = now.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        node.Spec ??= new V1NodeSpec();
        var taints = node.Spec.Taints?.Where(t => t.Key != TpuLabels.LeaseTaintKey).ToList() ?? [];
        taints.Add(new V1Taint { Key = TpuLabels.LeaseTaintKey, Value = lease.Namespace, Effect = TpuLabels.NoSchedule });
        node.Spec.Taints = taints;
    }

    /// <summary>Removes the lease marks and nothing else (GKE's own <c>google.com/tpu</c> taint stays).</summary>
    internal static void RemoveMarks(V1Node node)
    {
        node.Metadata.Labels?.Remove(TpuLabels.LeaseNamespaceLabel);
        node.Metadata.Labels?.Remove(TpuLabels.LeaseNameLabel);
        node.Metadata.Annotations?.Remove(TpuLabels.LeaseUidAnnotation);
        node.Metadata.Annotations?.Remove(TpuLabels.ClaimedAtAnnotation);
        if (node.Spec?.Taints is { } taints)
        {
            var kept = taints.Where(t => t.Key != TpuLabels.LeaseTaintKey).ToList();
            node.Spec.Taints = kept.Count == 0 ? null : kept;
        }
    }
}
