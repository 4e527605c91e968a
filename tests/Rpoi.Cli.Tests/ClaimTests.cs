using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Rpoi.Cli.Tests.Support;
using Rpoi.Escrow;
using Rpoi.Escrow.Client;
using Rpoi.Escrow.Storage;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Cli.Tests;

/// <summary>
/// claim against the real π (Rpoi.Escrow on SQLite, in this process, with a fake clock so the claim window can pass):
/// too early, claimed, already settled, nothing pledged, π unreachable, no rating.
/// </summary>
public sealed class ClaimTests(ClusterFixture cluster) : IClassFixture<ClusterFixture>, IAsyncLifetime
{
    private const string AdminToken = "claim-test-admin";

    private readonly TempHome home = new();
    private readonly FakeTimeProvider time = new(DateTimeOffset.UtcNow);
    private WebApplication app = null!;
    private HttpClient http = null!;
    private string url = "";

    public async Task InitializeAsync()
    {
        var store = new SqliteEscrowStore(home.File("escrow.db"));
        await store.InitializeAsync(CancellationToken.None);
        app = EscrowHost.Build(new EscrowOptions { Database = home.File("escrow.db") }, new EscrowHostParts(store, cluster.Escrow, time, [cluster.Leaser.Identity], Encoding.UTF8.GetBytes(AdminToken)),
            "http://127.0.0.1:0", b => b.Logging.ClearProviders());
        await app.StartAsync();
        url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single() + "/";
        http = new HttpClient();
        Assert.Equal(0, (await home.RunAsync("keygen")).ExitCode);
    }

    private EscrowClient Client(EscrowCredentials credentials) => new(http, new EscrowClientOptions { BaseAddress = new Uri(url), Credentials = credentials, Time = time, MaxAttempts = 1 });

    private PartyKeyPair Renter => KeyFile.Load(home.File(".rpoi/renter.key")).Value.Keys;

    private async Task<CliResult> Run(params string[] args) => await home.RunAsync(time, ["--kubeconfig", cluster.Kubeconfig, .. args]);

    /// <summary>A lease requested by the CLI, pledged to π by β (as the operator would), made Active with a grant.</summary>
    private async Task<Signed<LeaseRequest>> PledgedAsync(string name, bool pledge = true)
    {
        var request = await Run("request", "--name", name, "--chips", "8", "--accelerator", "tpu-v5-lite-podslice", "--topology", "2x4",
            "--duration", "1h", "--deposit", "1500000uusd", "--rent", "9000000uusd", "--apply");
        Assert.True(request.ExitCode == 0, request.ToString());
        var em = CliContext.RequestOf(await cluster.GetLeaseAsync(name));
        if (pledge)
        {
            await Client(EscrowCredentials.Admin(AdminToken)).DepositAsync(new DepositRequest($"fund-{name}", Renter.Identity.Address, new EscrowAmount("10500000", "uusd")));
            await Client(EscrowCredentials.Leaser(cluster.Leaser)).PledgeAsync(em);
        }

        await cluster.ActivateAsync(name);
        return em;
    }

    [Fact]
    public async Task Claim_is_refused_until_the_window_ends_then_returns_rho_and_omega_with_pis_receipt()
    {
        var em = await PledgedAsync("claim-1");
        var rate = await Run("rate", "claim-1", "--score", "4", "--apply");
        Assert.True(rate.ExitCode == 0, rate.ToString());

        // Through the real kubectl (the plugin on PATH), while π's fake clock still agrees with the plugin's real one.
        var early = await home.KubectlRpoiAsync("--kubeconfig", cluster.Kubeconfig, "claim", "claim-1", "--escrow-url", url);

        Assert.Equal(ExitCodes.EscrowRefused, early.ExitCode);
        var opens = (await Client(EscrowCredentials.None).GetPledgeAsync(RpoiEquations.TransactionHashOf(em).Hex))!.ClaimableAfter;
        Assert.Contains($"the claim window is not over yet: β may still settle lease team-a/claim-1 until {opens}", early.Err, StringComparison.Ordinal);
        Assert.Equal("0", (await Client(EscrowCredentials.None).GetAccountAsync(Renter.Identity.Address)).Balances.Single().Amount);

        // 1 h lease + π's 72 h rating window + 24 h grace, and a minute.
        time.Advance(TimeSpan.FromHours(97) + TimeSpan.FromMinutes(1));
        var claim = await Run("claim", "claim-1", "--escrow-url", url);

        Assert.True(claim.ExitCode == 0, claim.ToString());
        Assert.Contains($"claimed: π settled lease team-a/claim-1 on your rating (renter fallback); receipt verified: signed by π {cluster.Escrow.Identity.Address}", claim.Out, StringComparison.Ordinal);
        Assert.Contains($"1500000 uusd -> {Renter.Identity.Address} (Transferred)", claim.Out, StringComparison.Ordinal);
        Assert.Contains($"9000000 uusd -> {Renter.Identity.Address} (Transferred)", claim.Out, StringComparison.Ordinal);
        Assert.Equal("10500000", (await Client(EscrowCredentials.None).GetAccountAsync(Renter.Identity.Address)).Balances.Single().Amount);

        // Again: π settled already; nothing moves, the receipt is shown, exit 8.
        var again = await Run("claim", "claim-1", "--escrow-url", url, "-o", "json");
        Assert.Equal(ExitCodes.Conflict, again.ExitCode);
        var doc = JsonNode.Parse(again.Out)!;
        Assert.False((bool)doc["claimed"]!);
        Assert.Equal("RenterFallback", (string?)doc["receipt"]!["source"]);
        Assert.Contains("nothing to claim: π already settled H", again.Err, StringComparison.Ordinal);
        Assert.Equal("10500000", (await Client(EscrowCredentials.None).GetAccountAsync(Renter.Identity.Address)).Balances.Single().Amount);
    }

    [Fact]
    public async Task Claim_with_score_signs_the_rating_itself_and_json_names_the_receipt()
    {
        await PledgedAsync("claim-score");
        time.Advance(TimeSpan.FromHours(98));

        var claim = await Run("claim", "claim-score", "--score", "5", "--escrow-url", url, "-o", "yaml");

        Assert.True(claim.ExitCode == 0, claim.ToString());
        var doc = Rpoi.Cli.Support.Yaml.ReadAll(claim.Out).Single()!;
        Assert.Equal("true", doc["claimed"]!.ToString().ToLowerInvariant());
        Assert.Equal("ToRenter", (string?)doc["receipt"]!["deposit"]);
        Assert.Equal("BackToRenter", (string?)doc["receipt"]!["rent"]);
    }

    [Fact]
    public async Task Claim_without_a_rating_or_a_pledge_or_pi_says_which()
    {
        await PledgedAsync("claim-unrated");
        var unrated = await Run("claim", "claim-unrated", "--escrow-url", url);
        Assert.Equal(ExitCodes.NotFound, unrated.ExitCode);
        Assert.Contains("you have not rated lease team-a/claim-unrated", unrated.Err, StringComparison.Ordinal);
        Assert.Contains("pass --score 1-5", unrated.Err, StringComparison.Ordinal);

        await PledgedAsync("claim-unpledged", pledge: false);
        var nothing = await Run("claim", "claim-unpledged", "--score", "3", "--escrow-url", url);
        Assert.Equal(ExitCodes.NotFound, nothing.ExitCode);
        Assert.Contains("nothing to claim: π at", nothing.Err, StringComparison.Ordinal);
        Assert.Contains("holds no pledge under H", nothing.Err, StringComparison.Ordinal);

        // Discovery's π URL (127.0.0.1:1) answers nothing.
        var unreachable = await Run("claim", "claim-unrated", "--score", "3");
        Assert.Equal(ExitCodes.Unreachable, unreachable.ExitCode);
        Assert.Contains("cannot reach π at http://127.0.0.1:1/", unreachable.Err, StringComparison.Ordinal);

        var bad = await Run("claim", "claim-unrated", "--score", "ten");
        Assert.Equal(ExitCodes.Usage, bad.ExitCode);
        Assert.Contains("--score: 'ten' is not a whole number from 1 to 5", bad.Err, StringComparison.Ordinal);
        Assert.Contains("see 'kubectl rpoi claim --help'", bad.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Claim_refuses_a_lease_signed_by_another_renter()
    {
        await PledgedAsync("claim-theirs", pledge: false);
        using var stranger = new TempHome();
        Assert.Equal(0, (await stranger.RunAsync("keygen")).ExitCode);

        var result = await stranger.RunAsync(time, "--kubeconfig", cluster.Kubeconfig, "claim", "claim-theirs", "--score", "1", "--escrow-url", url);

        Assert.Equal(ExitCodes.VerificationFailed, result.ExitCode);
        Assert.Contains("was not signed by your key", result.Err, StringComparison.Ordinal);
    }

    public async Task DisposeAsync()
    {
        http?.Dispose();
        if (app is not null)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }

        home.Dispose();
    }
}
