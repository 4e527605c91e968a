using System.Text.Json.Nodes;
using Rpoi.Cli.Support;
using Rpoi.Cli.Tests.Support;
using Rpoi.Protocol;
using Rpoi.Protocol.Messages;

namespace Rpoi.Cli.Tests;

/// <summary>list (mine, -A, --all, -o) and status -o, against the API test server; list also through the real kubectl as a plugin.</summary>
public sealed class ListTests(ClusterFixture cluster) : IClassFixture<ClusterFixture>, IDisposable
{
    private readonly TempHome home = new();
    private readonly TempHome other = new();

    private static async Task<CliResult> Run(TempHome h, string kubeconfig, params string[] args) => await h.RunAsync(["--kubeconfig", kubeconfig, .. args]);

    private Task<CliResult> Run(params string[] args) => Run(home, cluster.Kubeconfig, args);

    private async Task RequestAsync(TempHome h, string name, string ns = ClusterFixture.Namespace)
    {
        if (!File.Exists(h.File(".rpoi/renter.key")))
        {
            Assert.Equal(0, (await h.RunAsync("keygen")).ExitCode);
        }

        var result = await Run(h, cluster.Kubeconfig, "request", "--name", name, "-n", ns, "--chips", "8", "--accelerator", "tpu-v5-lite-podslice", "--topology", "2x4",
            "--duration", "1h", "--deposit", "1500000uusd", "--rent", "9000000uusd", "--apply");
        Assert.True(result.ExitCode == 0, result.ToString());
    }

    [Fact]
    public async Task List_shows_my_leases_here_everywhere_with_A_and_everyones_with_all()
    {
        await RequestAsync(home, "list-mine-a");
        await RequestAsync(home, "list-mine-b", "team-b");
        await RequestAsync(other, "list-theirs");
        var expires = new DateTime(2031, 5, 6, 7, 8, 9, DateTimeKind.Utc);
        await cluster.PatchStatusAsync("list-mine-a", new { phase = "Active", expiresAt = expires });

        var here = await Run("list");
        Assert.True(here.ExitCode == 0, here.ToString());
        var lines = here.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^NAMESPACE\s+NAME\s+PHASE\s+CHIPS\s+SHAPE\s+EXPIRES\s+DEPOSIT\s+RENT\s+RATING DUE\s+SETTLED$", lines[0]);
        var row = Assert.Single(lines, l => l.Contains("list-mine-a", StringComparison.Ordinal));
        Assert.Matches(@"^team-a\s+list-mine-a\s+Active\s+8\s+tpu-v5-lite-podslice 2x4\s+2031-05-06T07:08:09Z\s+1500000uusd\s+9000000uusd\s+-\s+-$", row);
        Assert.DoesNotContain("list-theirs", here.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("list-mine-b", here.Out, StringComparison.Ordinal);

        var everywhere = await Run("list", "-A");
        Assert.Contains("list-mine-a", everywhere.Out, StringComparison.Ordinal);
        Assert.Matches(@"(?m)^team-b\s+list-mine-b\s+<new>\s", everywhere.Out);
        Assert.DoesNotContain("list-theirs", everywhere.Out, StringComparison.Ordinal);

        var everyone = await Run("list", "--all");
        Assert.True(everyone.ExitCode == 0, everyone.ToString());
        Assert.Contains("RENTER", everyone.Out.Split('\n')[0], StringComparison.Ordinal);
        var otherAddress = Protocol.Keys.KeyFile.Load(other.File(".rpoi/renter.key")).Value.Keys.Identity.Address;
        Assert.Matches($@"(?m)^team-a\s+list-theirs\s.*{otherAddress}$", everyone.Out);
        Assert.DoesNotContain("list-mine-b", everyone.Out, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("json")]
    [InlineData("yaml")]
    public async Task List_prints_json_and_yaml_with_the_documented_fields(string format)
    {
        var name = $"list-doc-{format}";
        await RequestAsync(home, name);
        var deadline = new DateTime(2031, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        await cluster.PatchStatusAsync(name, new { phase = "AwaitingRatings", ratingDeadline = deadline, settlement = new { deposit = "Withheld", rent = "ReturnedToRenter" } });

        var result = await Run("list", "-o", format);

        Assert.True(result.ExitCode == 0, result.ToString());
        var doc = format == "json" ? JsonNode.Parse(result.Out)! : Yaml.ReadAll(result.Out).Single()!;
        var item = doc["items"]!.AsArray().Single(i => (string?)i!["name"] == name)!;
        Assert.Equal("team-a", (string?)item["namespace"]);
        Assert.Equal("AwaitingRatings", (string?)item["phase"]);
        Assert.Equal("8", item["chips"]!.ToString());
        Assert.Equal("tpu-v5-lite-podslice", (string?)item["accelerator"]);
        Assert.Equal("2x4", (string?)item["topology"]);
        Assert.Equal("3600", item["durationSeconds"]!.ToString());
        Assert.Equal("1500000", (string?)item["deposit"]!["amount"]);
        Assert.Equal("uusd", (string?)item["rent"]!["denom"]);
        Assert.StartsWith("2031-01-02T03:04:05", item["ratingDeadline"]!.ToString(), StringComparison.Ordinal);
        Assert.Equal(Protocol.Keys.KeyFile.Load(home.File(".rpoi/renter.key")).Value.Keys.Identity.Address, (string?)item["renter"]);

        // Not settled yet (no settledAt): the operator has not recorded π's settlement, so list says nothing about money moved.
        Assert.Null(item["settlement"]);
    }

    [Fact]
    public async Task List_shows_the_settlement_and_refuses_a_bad_output_and_a_missing_key()
    {
        await RequestAsync(home, "list-settled");
        await cluster.PatchStatusAsync("list-settled", new { phase = "Settled", settlement = new { deposit = "ReturnedToRenter", rent = "PaidToLeaser", settledAt = DateTime.UtcNow } });

        var result = await Run("list");
        Assert.Matches(@"(?m)^team-a\s+list-settled\s+Settled\s.*deposit ReturnedToRenter, rent PaidToLeaser$", result.Out);

        var bad = await Run("list", "-o", "table");
        Assert.Equal(ExitCodes.Usage, bad.ExitCode);
        Assert.Contains("--output: 'table' is not json or yaml", bad.Err, StringComparison.Ordinal);
        Assert.Contains("see 'kubectl rpoi list --help'", bad.Err, StringComparison.Ordinal);

        using var keyless = new TempHome();
        var noKey = await Run(keyless, cluster.Kubeconfig, "list");
        Assert.Equal(ExitCodes.NotFound, noKey.ExitCode);
        Assert.Contains("no key file at", noKey.Err, StringComparison.Ordinal);

        // The platform team's view needs no renter key.
        Assert.Equal(0, (await Run(keyless, cluster.Kubeconfig, "list", "--all", "-A")).ExitCode);
    }

    [Fact]
    public async Task List_with_nothing_to_show_says_so_on_stderr_and_prints_nothing()
    {
        Assert.Equal(0, (await home.RunAsync("keygen")).ExitCode);

        var result = await Run("list", "-n", "default");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("", result.Out);
        Assert.Contains("no leases signed by", result.Err, StringComparison.Ordinal);
        Assert.Contains("in namespace default (use -A for every namespace)", result.Err, StringComparison.Ordinal);
        var json = await Run("list", "-n", "default", "-o", "json");
        Assert.Empty(JsonNode.Parse(json.Out)!["items"]!.AsArray());
    }

    [Fact]
    public async Task Kubectl_rpoi_list_runs_the_plugin_through_the_real_kubectl()
    {
        await RequestAsync(home, "list-kubectl");

        // kubectl finds plugins as executables named kubectl-<name> on PATH; this one runs the built CLI.
        var env = home.PluginEnvironment();
        env["KUBECONFIG"] = cluster.Kubeconfig;

        var list = await Processes.RunAsync("kubectl", ["rpoi", "list", "-o", "json"], home.Path, env);
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Contains(JsonNode.Parse(list.Out)!["items"]!.AsArray(), i => (string?)i!["name"] == "list-kubectl");

        var bad = await Processes.RunAsync("kubectl", ["rpoi", "list", "-o", "xml"], home.Path, env);
        Assert.Equal(ExitCodes.Usage, bad.ExitCode);
        Assert.Contains("--output: 'xml' is not json or yaml", bad.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("json")]
    [InlineData("yaml")]
    public async Task Status_prints_json_and_yaml_with_the_verified_receipt(string format)
    {
        var name = $"status-doc-{format}";
        await RequestAsync(home, name);
        var em = CliContext.RequestOf(await cluster.GetLeaseAsync(name));
        var h = RpoiEquations.TransactionHashOf(em);
        var decision = RpoiEquations.Decide(false, true);
        var receipt = RpoiEquations.SignReceipt(new SettlementReceipt(MessageKinds.Receipt, h.Hex, cluster.Escrow.Identity.Address, SettlementSource.LeaserFinal, decision,
            RpoiEquations.TransfersFor(em.Payload, decision, cluster.Escrow.Identity.Address), DateTimeOffset.UtcNow, "ledger:9"), cluster.Escrow);
        await cluster.PatchStatusAsync(name, new { phase = "Settled", transactionHash = h.Hex, settlement = new { renterRated = false, leaserRated = true, receipt = receipt.ToJson(), settledAt = DateTime.UtcNow } });

        var result = await Run("status", name, "-o", format);

        Assert.True(result.ExitCode == 0, result.ToString());
        var doc = format == "json" ? JsonNode.Parse(result.Out)! : Yaml.ReadAll(result.Out).Single()!;
        Assert.Equal(name, (string?)doc["name"]);
        Assert.Equal("Settled", (string?)doc["phase"]);
        Assert.Equal(h.Hex, (string?)doc["transactionHash"]);
        Assert.NotNull(doc["timeline"]!["signed"]);
        Assert.Equal("true", doc["receipt"]!["verified"]!.ToString().ToLowerInvariant());
        Assert.Equal("Withheld", (string?)doc["receipt"]!["deposit"]);
        Assert.Equal("ledger:9", (string?)doc["receipt"]!["ledgerEntry"]);
        Assert.Contains(doc["receipt"]!["transfers"]!.AsArray(), t => (string?)t!["status"] == "Withheld");

        var bad = await Run("status", name, "-o", "wide");
        Assert.Equal(ExitCodes.Usage, bad.ExitCode);
        Assert.Contains("--output: 'wide' is not json or yaml", bad.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_json_keeps_stdout_one_document_and_the_rating_warning_on_stderr()
    {
        await RequestAsync(home, "status-due-json");
        await cluster.PatchStatusAsync("status-due-json", new { phase = "AwaitingRatings", ratingDeadline = new DateTime(2030, 1, 2, 3, 4, 5, DateTimeKind.Utc) });

        var result = await Run("status", "status-due-json", "-o", "json");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.StartsWith("2030-01-02T03:04:05", JsonNode.Parse(result.Out)!["timeline"]!["ratingDeadline"]!.ToString(), StringComparison.Ordinal);
        Assert.Null(JsonNode.Parse(result.Out)!["receipt"]);
        Assert.Contains("warning: rate this lease by 2030-01-02T03:04:05Z", result.Err, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        home.Dispose();
        other.Dispose();
    }
}
