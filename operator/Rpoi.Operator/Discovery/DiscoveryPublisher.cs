using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Protocol.Keys;

namespace Rpoi.Operator.Discovery;

/// <summary>Who the operator is and where renters reach π: the fixed half of the discovery document.</summary>
/// <param name="Leaser">β's public identity.</param>
/// <param name="Escrow">π's public identity.</param>
/// <param name="EscrowUrl">π's URL as renters reach it (not necessarily the in-cluster URL the operator uses).</param>
/// <param name="Namespace">The operator's namespace, where the ConfigMap is written.</param>
public sealed record DiscoveryOptions(PartyIdentity Leaser, PartyIdentity Escrow, Uri EscrowUrl, string Namespace)
{
    /// <summary>How often the free capacity is refreshed.</summary>
    public TimeSpan RefreshInterval { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>Builds the discovery document (pure) and the ConfigMap that carries it.</summary>
public static class DiscoveryBuilder
{
    /// <summary>The document for the given capacity, offers sorted by accelerator then topology.</summary>
    public static DiscoveryDocument Build(DiscoveryOptions options, IEnumerable<TpuCapacity> capacity, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(capacity);
        var offers = capacity
            .Select(c => new DiscoveryOffer(c.Shape.Accelerator, c.Shape.Topology, c.Shape.ChipsPerSlice, c.HostsPerSlice, c.TotalChips, c.FreeChips, c.FreeSlices))
            .OrderBy(o => o.Accelerator, StringComparer.Ordinal)
            .ThenBy(o => o.ChipsPerSlice)
            .ThenBy(o => o.Topology, StringComparer.Ordinal)
            .ToList();
        return new DiscoveryDocument(DiscoveryDocument.CurrentVersion, DiscoveryParty.From(options.Leaser), DiscoveryEscrow.From(options.Escrow, options.EscrowUrl), offers, now);
    }

    /// <summary>
    /// The ConfigMap: the whole document under <see cref="DiscoveryDocument.DataKey"/>, plus the three values a
    /// person most often wants (<c>leaser.address</c>, <c>escrow.address</c>, <c>escrow.url</c>) as plain keys for
    /// <c>kubectl get -o jsonpath</c>.
    /// </summary>
    public static V1ConfigMap ToConfigMap(DiscoveryDocument document, string @namespace)
    {
        ArgumentNullException.ThrowIfNull(document);
        return new V1ConfigMap
        {
            ApiVersion = "v1",
            Kind = "ConfigMap",
            Metadata = new V1ObjectMeta
            {
                Name = DiscoveryDocument.ConfigMapName,
                NamespaceProperty = @namespace,
                Labels = new Dictionary<string, string>
                {
                    ["app.kubernetes.io/name"] = "rpoi-operator",
                    ["app.kubernetes.io/component"] = "discovery",
                    ["app.kubernetes.io/managed-by"] = "rpoi-operator",
                },
            },
            Data = new Dictionary<string, string>
            {
                [DiscoveryDocument.DataKey] = document.ToJson(),
                ["leaser.address"] = document.Leaser.Address,
                ["escrow.address"] = document.Escrow.Address,
                ["escrow.url"] = document.Escrow.Url,
            },
        };
    }
}

/// <summary>
/// Writes the discovery ConfigMap and keeps its free capacity current. The operator's host calls
/// <see cref="RunAsync"/> beside its controllers (or <see cref="PublishOnceAsync"/> from its own loop).
/// </summary>
public sealed class DiscoveryPublisher
{
    private readonly IKubernetes client;
    private readonly ITpuProvider tpus;
    private readonly DiscoveryOptions options;
    private readonly TimeProvider time;
    private readonly ILogger<DiscoveryPublisher> logger;

    /// <summary>Creates the publisher.</summary>
    public DiscoveryPublisher(IKubernetes client, ITpuProvider tpus, DiscoveryOptions options, TimeProvider time, ILogger<DiscoveryPublisher> logger)
    {
        this.client = client;
        this.tpus = tpus;
        this.options = options;
        this.time = time;
        this.logger = logger;
    }

    /// <summary>Reads the capacity now and creates or replaces the ConfigMap; an unchanged ConfigMap is not written.</summary>
    /// <returns>The document now published.</returns>
    public async Task<DiscoveryDocument> PublishOnceAsync(CancellationToken cancellationToken)
    {
        var capacity = await tpus.GetCapacityAsync(cancellationToken).ConfigureAwait(false);
        var document = DiscoveryBuilder.Build(options, capacity, time.GetUtcNow());
        var desired = DiscoveryBuilder.ToConfigMap(document, options.Namespace);
        await WriteAsync(client, desired, cancellationToken).ConfigureAwait(false);
        return document;
    }

    /// <summary>Publishes now and then every <see cref="DiscoveryOptions.RefreshInterval"/> until cancelled; a failed round is logged and retried on the next tick.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(options.RefreshInterval, time);
        do
        {
            try
            {
                await PublishOnceAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpOperationException or HttpRequestException)
            {
                logger.LogWarning(e, "could not publish discovery configmap {Namespace}/{Name}; retrying in {Interval}", options.Namespace, DiscoveryDocument.ConfigMapName, options.RefreshInterval);
            }
        }
        while (await WaitAsync(timer, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>Creates the ConfigMap, or replaces its data when it differs; keeps labels others added.</summary>
    public static async Task WriteAsync(IKubernetes client, V1ConfigMap desired, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(desired);
        var ns = desired.Metadata.NamespaceProperty;
        var name = desired.Metadata.Name;
        V1ConfigMap? current;
        try
        {
            current = await client.CoreV1.ReadNamespacedConfigMapAsync(name, ns, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            current = null;
        }

        if (current is null)
        {
            try
            {
                await client.CoreV1.CreateNamespacedConfigMapAsync(desired, ns, cancellationToken: cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
            {
                // Another replica created it between our read and create: replace below.
                current = await client.CoreV1.ReadNamespacedConfigMapAsync(name, ns, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
        }

        if (SameData(current.Data, desired.Data))
        {
            return;
        }

        current.Data = desired.Data;
        current.Metadata.Labels ??= new Dictionary<string, string>();
        foreach (var (k, v) in desired.Metadata.Labels ?? new Dictionary<string, string>())
        {
            current.Metadata.Labels[k] = v;
        }

        // resourceVersion from the read: a concurrent writer gets 409 and wins; the next tick converges.
        await client.CoreV1.ReplaceNamespacedConfigMapAsync(current, name, ns, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    private static bool SameData(IDictionary<string, string>? a, IDictionary<string, string>? b)
    {
        if (a is null || b is null)
        {
            return a is null && b is null;
        }

        // updatedAt changes every round; compare without it so an idle cluster does not write every tick.
        return a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && (kv.Key == DiscoveryDocument.DataKey ? WithoutTime(kv.Value) == WithoutTime(v) : kv.Value == v));
    }

    private static string WithoutTime(string json)
    {
        var (doc, _) = DiscoveryDocument.Parse(json);
        return doc is null ? json : (doc with { UpdatedAt = default }).ToJson();
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken cancellationToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
