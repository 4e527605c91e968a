using System.Text;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Rpoi.Escrow;
using Rpoi.Escrow.Client;
using Rpoi.Escrow.Storage;
using k8s;
using k8s.Models;
using Rpoi.Operator.Discovery;
using Rpoi.Operator.Entities;
using Rpoi.Operator.Hosting;
using Rpoi.Operator.Tests.Support;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;

namespace Rpoi.Operator.Tests.PhaseOne;

/// <summary>The operator process end to end: flags, β's key file, the real π on SQLite, leader election, metrics.</summary>
public sealed class OperatorAppTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("rpoi-operator-app-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public async Task Bad_settings_name_every_missing_flag_and_start_nothing()
    {
        var code = await OperatorApp.RunAsync(["--escrow-url", "ftp://nowhere", "--workers", "0"]);
        Assert.Equal(OperatorApp.BadSettings, code);
        var (settings, errors) = OperatorSettings.Load(["--escrow-url", "ftp://nowhere", "--workers", "0", "--leader-election", "maybe"], dir);
        Assert.Null(settings);
        Assert.Contains(errors, e => e.StartsWith("--leaser-key-file is required", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("--escrow-url: 'ftp://nowhere' is not an http(s) URL", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("--cluster-server is required", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("--workers: '0'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("--leader-election: 'maybe'", StringComparison.Ordinal));
        Assert.Contains("unknown flag --colour", Assert.Single(OperatorSettings.Load(["--colour", "red"], dir).Errors), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Settings_come_from_the_config_file_and_flags_override_it()
    {
        var keyFile = Path.Combine(dir, "leaser.key.json");
        KeyFile.Save(keyFile, PartyKeyPair.Generate(PartyRole.Leaser), DateTimeOffset.UtcNow);
        await File.WriteAllTextAsync(Path.Combine(dir, "operator.json"), $$"""
            { "Operator": { "LeaserKeyFile": "{{keyFile}}", "EscrowUrl": "http://127.0.0.1:5080", "ClusterServer": "https://10.0.0.1", "Workers": 3, "RatingWindow": "2.00:00:00" } }
            """);
        var (settings, errors) = OperatorSettings.Load(["--config", "operator.json", "--workers", "5", "--leader-election", "false"], dir);
        Assert.Empty(errors);
        Assert.Equal(5, settings!.Workers);
        Assert.False(settings.LeaderElection);
        Assert.Equal(new Uri("http://127.0.0.1:5080/"), settings.EscrowUrl);
        Assert.Equal(TimeSpan.FromDays(2), settings.RatingWindow);
    }

    [Fact]
    public async Task Operator_process_leases_chips_against_the_real_escrow_on_sqlite()
    {
        var parties = new TestParties();
        await using var store = new SqliteEscrowStore(Path.Combine(dir, "escrow.db"));
        await store.InitializeAsync();
        var escrowApp = EscrowHost.Build(new EscrowOptions(), new EscrowHostParts(store, parties.Escrow, TimeProvider.System, [parties.Leaser.Identity], Encoding.UTF8.GetBytes("admin")), "http://127.0.0.1:0");
        await escrowApp.StartAsync();
        try
        {
            var escrowUrl = new Uri(escrowApp.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single() + "/");
            using var http = new HttpClient();
            var admin = new EscrowClient(http, new EscrowClientOptions { BaseAddress = escrowUrl, Credentials = EscrowCredentials.Admin("admin") });
            await admin.DepositAsync(new DepositRequest("fund-1", parties.Renter.Identity.Address, new EscrowAmount("5000000", "uusd")));

            await using var env = await PhaseOneEnvironment.StartAsync(parties, (_, _) => admin);
            await env.CreateNamespaceAsync("rpoi-system");
            await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e-2x4", hosts: 1, topology: "2x4");
            var keyFile = Path.Combine(dir, "leaser.key.json");
            KeyFile.Save(keyFile, parties.Leaser, DateTimeOffset.UtcNow);
            var kubeconfig = env.Server.WriteKubeconfig(Path.Combine(dir, "kubeconfig"));

            using var stop = new CancellationTokenSource();
            OperatorRuntime? runtime = null;
            var run = OperatorApp.RunAsync(
                [
                    "--leaser-key-file", keyFile, "--escrow-url", escrowUrl.ToString(), "--cluster-server", env.Server.Url,
                    "--kubeconfig", kubeconfig, "--namespace", "rpoi-system", "--metrics-port", "0", "--metrics-address", "127.0.0.1",
                    "--escrow-public-url", "https://escrow.example.com",
                ],
                stop.Token,
                rt => runtime = rt);
            await Eventually.HoldsAsync(() => Task.FromResult(runtime?.Host.IsLeader == true || run.IsCompleted), "the operator started and leads");
            Assert.False(run.IsCompleted, run.IsCompleted ? $"operator exited with {await run}" : null);

            // The operator publishes discovery itself, with π's public URL rather than the one it calls.
            V1ConfigMap? discovery = null;
            await Eventually.HoldsAsync(async () => (discovery = await TryReadConfigMapAsync(env.Client, "rpoi-system", DiscoveryDocument.ConfigMapName)) is not null, "the operator published the discovery ConfigMap");
            Assert.Equal("https://escrow.example.com/", discovery!.Data["escrow.url"]);
            Assert.Equal(parties.Escrow.Identity.Address, discovery.Data["escrow.address"]);
            Assert.Equal(parties.Leaser.Identity.Address, discovery.Data["leaser.address"]);
            var (document, _) = DiscoveryDocument.Parse(discovery.Data[DiscoveryDocument.DataKey]);
            var offer = Assert.Single(document!.Offers);
            Assert.Equal(("2x4", 8), (offer.Topology, offer.FreeChips));

            var builder = env.Lease("e2e").Shape(LeaseBuilder.V5e, "2x4").Chips(8).Amounts("1000000", "250000");
            var request = builder.BuildRequest();
            await env.ApplyAsync(builder.Build(request));
            var lease = await env.WaitForPhaseAsync("e2e", LeasePhase.Active);

            var h = RpoiEquations.TransactionHashOf(request).Hex;
            var pledge = await admin.GetPledgeAsync(h);
            Assert.NotNull(pledge);
            Assert.Equal("Held", pledge.State);
            Assert.Equal(parties.Leaser.Identity.Address, pledge.Leaser);
            Assert.Equal("3750000", (await admin.GetAccountAsync(parties.Renter.Identity.Address)).Balances.Single(b => b.Denom == "uusd").Amount);
            Assert.Equal(["gke-v5e-2x4-0"], lease.Status!.Nodes);

            var metrics = await http.GetStringAsync(new Uri(new Uri(runtime!.MetricsUrl!), "/metrics"));
            Assert.Contains("rpoi_leases{phase=\"Active\"} 1", metrics, StringComparison.Ordinal);
            Assert.Contains("rpoi_tpu_chips{state=\"claimed\"} 8", metrics, StringComparison.Ordinal);
            Assert.Contains("rpoi_lease_time_to_active_seconds_count 1", metrics, StringComparison.Ordinal);

            await env.RequestReturnAsync("e2e");
            await env.WaitForPhaseAsync("e2e", LeasePhase.AwaitingRatings);
            Assert.True(TpuNodePools.IsClean(Assert.Single(await env.NodesAsync())));
            Assert.Equal("Held", (await admin.GetPledgeAsync(h))!.State);

            await stop.CancelAsync();
            Assert.Equal(0, await run);
        }
        finally
        {
            await escrowApp.StopAsync();
            await escrowApp.DisposeAsync();
        }
    }

    private static async Task<V1ConfigMap?> TryReadConfigMapAsync(IKubernetes client, string ns, string name)
    {
        try
        {
            return await client.CoreV1.ReadNamespacedConfigMapAsync(name, ns);
        }
        catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }
    }
}
