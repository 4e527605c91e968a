using k8s;
using Microsoft.Extensions.Time.Testing;
using Rpoi.Kube.ApiServer;
using Rpoi.Kube.Hosting;

namespace Rpoi.Operator.Tests.Support;

/// <summary>
/// The operator replicas a test environment runs in the background against its API server, each on the Rpoi.Kube
/// host with its own client, metrics registry and the environment's fake clock. Starting twice runs two replicas
/// without leader election; stopping cancels every replica at once, which the cluster sees as a crash or a rollout.
/// </summary>
/// <typeparam name="TControllers">What a replica's registration returns (its controllers), for the test to inspect.</typeparam>
public sealed class OperatorReplicas<TControllers>
    where TControllers : class
{
    private readonly KubeApiServer server;
    private readonly FakeTimeProvider time;
    private readonly List<Replica> replicas = [];

    /// <summary>Replicas of an operator that talks to <paramref name="server"/> on <paramref name="time"/>.</summary>
    public OperatorReplicas(KubeApiServer server, FakeTimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(time);
        this.server = server;
        this.time = time;
    }

    /// <summary>The controllers of the running replicas, oldest first.</summary>
    public IReadOnlyList<TControllers> Running => replicas.ConvertAll(r => r.Controllers);

    /// <summary>
    /// Starts a replica: <paramref name="register"/> adds its controllers to the host builder (given the replica's own
    /// client), then the host runs in the background until <see cref="StopAllAsync"/>. Returns once the host's
    /// informers synced and <paramref name="started"/> holds for the controllers; fails with <paramref name="because"/>.
    /// </summary>
    public async Task<TControllers> StartAsync(Func<Kubernetes, OperatorHostBuilder, TControllers> register, Func<TControllers, bool> started, string because)
    {
        ArgumentNullException.ThrowIfNull(register);
        ArgumentNullException.ThrowIfNull(started);
        var client = new Kubernetes(new KubernetesClientConfiguration { Host = server.Url, AccessToken = server.Options.Token });
        OperatorHost host;
        TControllers controllers;
        try
        {
            var builder = new OperatorHostBuilder(client, Prometheus.Metrics.NewCustomRegistry(), time);
            controllers = register(client, builder);
            host = builder.Build();
        }
        catch
        {
            // Nothing runs yet, so the replica's client is the only thing to release.
            client.Dispose();
            throw;
        }

        var cts = new CancellationTokenSource();
        var task = Task.Run(() => host.RunAsync(cts.Token));
        replicas.Add(new Replica(controllers, cts, task, client));
        await Eventually.HoldsAsync(() => Task.FromResult(host.IsReady && started(controllers)), because, time);
        return controllers;
    }

    /// <summary>Stops every replica and waits for each host to finish.</summary>
    public async Task StopAllAsync()
    {
        foreach (var replica in replicas)
        {
            await replica.Cancellation.CancelAsync();
            try
            {
                await replica.Task;
            }
            catch (OperationCanceledException)
            {
            }

            replica.Cancellation.Dispose();
            replica.Client.Dispose();
        }

        replicas.Clear();
    }

    private sealed record Replica(TControllers Controllers, CancellationTokenSource Cancellation, Task Task, Kubernetes Client);
}
