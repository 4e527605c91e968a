using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Rpoi.Kube.ApiServer.Tests.Support;

namespace Rpoi.Kube.ApiServer.Tests;

/// <summary>Concurrent writers and watchers: every watcher sees every change once, in resourceVersion order.</summary>
public sealed class ConcurrencyTests
{
    [Fact]
    public async Task Parallel_writers_and_watchers_agree_on_one_ordered_history()
    {
        await using var server = await KubeApiServer.StartAsync();
        using var client = new Kubernetes(new KubernetesClientConfiguration { Host = server.Url });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var start = (await client.CoreV1.ListNamespacedConfigMapAsync("default")).Metadata.ResourceVersion;

        const int writers = 4;
        const int updates = 40;
        var seen = new List<long>[3];
        var watchers = new List<Task>();
        for (var w = 0; w < seen.Length; w++)
        {
            var list = seen[w] = [];
            watchers.Add(Task.Run(async () =>
            {
                await foreach (var (_, cm) in client.CoreV1.WatchListNamespacedConfigMapAsync("default", resourceVersion: start, cancellationToken: cts.Token))
                {
                    lock (list)
                    {
                        list.Add(long.Parse(cm.Metadata.ResourceVersion, System.Globalization.CultureInfo.InvariantCulture));
                    }
                }
            }, cts.Token));
        }

        await Eventually.HoldsAsync(() => server.OpenWatches == seen.Length);
        await Task.WhenAll(Enumerable.Range(0, writers).Select(async i =>
        {
            var name = $"cm{i}";
            await client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = name }, Data = new Dictionary<string, string> { ["n"] = "0" } }, "default");
            for (var n = 1; n <= updates; n++)
            {
                var patch = new V1Patch(new JsonObject { ["data"] = new JsonObject { ["n"] = n.ToString(System.Globalization.CultureInfo.InvariantCulture) } }.ToJsonString(), V1Patch.PatchType.MergePatch);
                await client.CoreV1.PatchNamespacedConfigMapAsync(patch, name, "default");
            }
        }));

        const int total = writers * (updates + 1);
        await Eventually.HoldsAsync(() => seen.All(l =>
        {
            lock (l)
            {
                return l.Count >= total;
            }
        }), TimeSpan.FromSeconds(30));
        foreach (var list in seen)
        {
            lock (list)
            {
                Assert.Equal(total, list.Count);
                Assert.True(list.Zip(list.Skip(1)).All(p => p.First < p.Second), "resourceVersions must strictly increase on every watch");
                Assert.Equal(server.ResourceVersion, list[^1]);
            }
        }

        await cts.CancelAsync();
        await Task.WhenAll(watchers.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));
    }
}
