using k8s;
using k8s.Models;
using Rpoi.Operator.PhaseOne.Allocation;

namespace Rpoi.Chaos;

/// <summary>
/// Watches the run's Nodes (those matching its <c>key=value</c> node selector) for the whole run and counts, per (lease UID, node), how often the claim appeared and went away.
/// A released claim that comes back, or one that never goes, shows up as a count other than one. Watches that end
/// (cut by the injector, timed out) resume from the last resourceVersion, so no transition is missed; if the history
/// no longer reaches back (410), the gap is counted and reported.
/// </summary>
internal sealed class NodeClaims(IKubernetes client, string nodeSelector)
{
    private readonly Dictionary<string, string?> current = [];
    private readonly Dictionary<(string Uid, string Node), (int Claims, int Releases)> counts = [];
    private readonly Lock gate = new();
    private readonly Rpoi.Kube.Informers.IResourceClient<V1Node> nodes = Rpoi.Kube.Informers.ResourceClients.Nodes(client);

    public int Gaps { get; private set; }

    public int Resumes { get; private set; }

    public IReadOnlyDictionary<(string Uid, string Node), (int Claims, int Releases)> Counts
    {
        get
        {
            lock (gate)
            {
                return new Dictionary<(string, string), (int, int)>(counts);
            }
        }
    }

    public async Task RunAsync(CancellationToken ct)
    {
        string? rv = null;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (rv is null)
                {
                    var list = await Api.NodesAsync(client, nodeSelector, ct).ConfigureAwait(false);
                    foreach (var node in list.Items)
                    {
                        Observe(node, deleted: false);
                    }

                    rv = list.Metadata.ResourceVersion;
                }

                Exception? failure = null;
                await foreach (var (type, node) in nodes.WatchAsync(rv, 60, e => failure = e, ct).ConfigureAwait(false))
                {
                    rv = node.Metadata?.ResourceVersion ?? rv;
                    if (type is WatchEventType.Added or WatchEventType.Modified or WatchEventType.Deleted)
                    {
                        Observe(node, type == WatchEventType.Deleted);
                    }
                }

                if (failure is KubernetesException { Status.Code: 410 })
                {
                    Gaps++;
                    rv = null;
                }

                Resumes++;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (KubernetesException e) when (e.Status?.Code == 410)
            {
                Gaps++;
                rv = null;
            }
#pragma warning disable CA1031 // Any other failure (injected 500, a cut connection) just means: watch again.
            catch (Exception)
#pragma warning restore CA1031
            {
                Resumes++;
                await Task.Delay(100, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    private void Observe(V1Node node, bool deleted)
    {
        // The watch sees every Node (the label selector would turn a label change into a DELETED); count only the run's own.
        var (key, value) = (nodeSelector.Split('=')[0], nodeSelector.Split('=')[1]);
        if (node.Metadata.Labels is null || !node.Metadata.Labels.TryGetValue(key, out var run) || run != value)
        {
            return;
        }

        var name = node.Metadata.Name;
        string? uid = null;
        if (!deleted)
        {
            node.Metadata.Annotations?.TryGetValue(TpuLabels.LeaseUidAnnotation, out uid);
        }

        lock (gate)
        {
            current.TryGetValue(name, out var before);
            if (before == uid)
            {
                return;
            }

            if (before is not null)
            {
                var c = counts.GetValueOrDefault((before, name));
                counts[(before, name)] = (c.Claims, c.Releases + 1);
            }

            if (uid is not null)
            {
                var c = counts.GetValueOrDefault((uid, name));
                counts[(uid, name)] = (c.Claims + 1, c.Releases);
            }

            current[name] = uid;
        }
    }
}
