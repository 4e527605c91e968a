using System.Net;
using System.Net.Sockets;
using System.Text;
using Rpoi.Cli.Tests.Support;
using Rpoi.Operator.Discovery;
using Rpoi.Operator.PhaseOne.Allocation;

namespace Rpoi.Cli.Tests;

/// <summary>request --apply checks the renter's free balance on π first: short of ρ + ω, nothing is applied.</summary>
public sealed class BalanceCheckTests(ClusterFixture cluster) : IClassFixture<ClusterFixture>, IDisposable
{
    private readonly TempHome home = new();

    private async Task<CliResult> Run(params string[] args) => await home.RunAsync(["--kubeconfig", cluster.Kubeconfig, .. args]);

    /// <summary>π's account endpoint answering one fixed balance (the test only needs what π reports, not how it got there).</summary>
    private static (HttpListener Listener, string Url) Escrow(string amount)
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var url = $"http://127.0.0.1:{port}/";
        var listener = new HttpListener();
        listener.Prefixes.Add(url);
        listener.Start();
        _ = Task.Run(async () =>
        {
            while (listener.IsListening)
            {
                HttpListenerContext c;
                try
                {
                    c = await listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException)
                {
                    return;
                }

                var address = c.Request.Url!.AbsolutePath.Split('/')[^1];
                var body = Encoding.UTF8.GetBytes($"{{\"address\":\"{address}\",\"balances\":[{{\"amount\":\"{amount}\",\"denom\":\"uusd\"}}]}}");
                c.Response.ContentType = "application/json";
                await c.Response.OutputStream.WriteAsync(body);
                c.Response.Close();
            }
        });
        return (listener, url);
    }

    private async Task PublishAsync(string escrowUrl)
    {
        var capacity = new[] { new TpuCapacity(new TpuShape("tpu-v5-lite-podslice", "2x4"), 1, 16, 8, 1) };
        var doc = DiscoveryBuilder.Build(new DiscoveryOptions(cluster.Leaser.Identity, cluster.Escrow.Identity, new Uri(escrowUrl), DiscoveryDocument.DefaultNamespace), capacity, DateTimeOffset.UtcNow);
        await DiscoveryPublisher.WriteAsync(cluster.Client, DiscoveryBuilder.ToConfigMap(doc, DiscoveryDocument.DefaultNamespace), CancellationToken.None);
    }

    [Fact]
    public async Task Request_apply_refuses_a_shortfall_before_applying_and_goes_ahead_when_funded()
    {
        var (listener, url) = Escrow("10000000");
        using var _ = listener;
        await PublishAsync(url);
        Assert.Equal(0, (await home.RunAsync("keygen")).ExitCode);

        var short_ = await Run("request", "--name", "short-1", "--chips", "8", "--accelerator", "tpu-v5-lite-podslice", "--topology", "2x4",
            "--duration", "1h", "--deposit", "1500000uusd", "--rent", "9000000uusd", "--apply");

        Assert.Equal(ExitCodes.EscrowRefused, short_.ExitCode);
        Assert.Contains("is 10000000 uusd, short of ρ + ω = 10500000 uusd by 500000 uusd; nothing was applied", short_.Err, StringComparison.Ordinal);
        var get = await Processes.KubectlAsync(home.Path, cluster.Kubeconfig, "get", "tpulease", "short-1", "-n", ClusterFixture.Namespace);
        Assert.NotEqual(0, get.ExitCode);
        Assert.Contains("NotFound", get.Err, StringComparison.Ordinal);

        var enough = await Run("request", "--name", "enough-1", "--chips", "8", "--accelerator", "tpu-v5-lite-podslice", "--topology", "2x4",
            "--duration", "1h", "--deposit", "1000000uusd", "--rent", "9000000uusd", "--apply");
        Assert.True(enough.ExitCode == 0, enough.ToString());
        Assert.DoesNotContain("warning", enough.Err, StringComparison.Ordinal);
    }

    public void Dispose() => home.Dispose();
}
