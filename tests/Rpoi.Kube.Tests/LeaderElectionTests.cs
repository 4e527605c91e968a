using System.Collections.Concurrent;
using k8s;
using Prometheus;
using Rpoi.Kube.Controllers;
using Rpoi.Kube.Election;
using Rpoi.Kube.Hosting;
using Rpoi.Kube.Informers;

namespace Rpoi.Kube.Tests;

/// <summary>Two operator replicas against one API server: only the leader reconciles; a stopping leader hands over.</summary>
public sealed class LeaderElectionTests
{
    private sealed class NamedReconciler : IReconciler<Widget>
    {
        public ConcurrentQueue<string> Seen { get; } = new();

        public Task<ReconcileResult> ReconcileAsync(Widget entity, CancellationToken cancellationToken)
        {
            Seen.Enqueue(entity.Metadata.Name);
            return Task.FromResult(ReconcileResult.Done);
        }
    }

    private sealed record Replica(OperatorHost Host, NamedReconciler Reconciler, Kubernetes Client) : IDisposable
    {
        public void Dispose() => Client.Dispose();
    }

    private static Replica Start(WidgetCluster cluster, string identity)
    {
        var client = cluster.NewClient();
        var reconciler = new NamedReconciler();
        var builder = new OperatorHostBuilder(client, Metrics.NewCustomRegistry());
        builder.AddController("widgets", ResourceClients.Custom<Widget>(client, WidgetCluster.Resource, cluster.Namespace), reconciler);

        // Short timings so a hand-over takes well under a second of the test's time.
        builder.WithLeaderElection(new LeaderElectionOptions
        {
            LeaseName = "widget-operator",
            Namespace = cluster.Namespace,
            Identity = identity,
            LeaseDuration = TimeSpan.FromSeconds(6),
            RenewDeadline = TimeSpan.FromSeconds(4),
            RetryPeriod = TimeSpan.FromMilliseconds(200),
        });
        return new Replica(builder.Build(), reconciler, client);
    }

    [Fact]
    public async Task Only_the_leader_reconciles_and_a_stopping_leader_hands_over_at_once()
    {
        await using var cluster = await WidgetCluster.StartAsync();
        using var a = Start(cluster, "replica-a");
        using var b = Start(cluster, "replica-b");
        var runA = Background.Run(a.Host.RunAsync);
        await Eventually.HoldsAsync(() => a.Host.IsLeader);
        await using var runB = Background.Run(b.Host.RunAsync);
        await Eventually.HoldsAsync(() => b.Host.IsReady);

        await cluster.CreateAsync("x");
        await Eventually.HoldsAsync(() => a.Reconciler.Seen.Contains("x"));
        Assert.False(b.Host.IsLeader);
        Assert.Empty(b.Reconciler.Seen);

        // A graceful stop releases the Lease: the standby must not wait out the 6 s lease duration.
        await runA.StopAsync();
        var handOver = System.Diagnostics.Stopwatch.StartNew();
        await Eventually.HoldsAsync(() => b.Host.IsLeader);
        Assert.True(handOver.Elapsed < TimeSpan.FromSeconds(4), $"hand-over took {handOver.Elapsed}");
        Assert.Equal("replica-b", (await cluster.Client.CoordinationV1.ReadNamespacedLeaseAsync("widget-operator", cluster.Namespace)).Spec.HolderIdentity);

        var seenByA = a.Reconciler.Seen.Count;
        await cluster.CreateAsync("y");
        await Eventually.HoldsAsync(() => b.Reconciler.Seen.Contains("y") && b.Reconciler.Seen.Contains("x"));
        Assert.Equal(seenByA, a.Reconciler.Seen.Count);
        await runA.DisposeAsync();
    }
}
