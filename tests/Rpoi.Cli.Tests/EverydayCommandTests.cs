using System.CommandLine;
using Rpoi.Cli.Tests.Support;

namespace Rpoi.Cli.Tests;

/// <summary>return, access on an ended lease, flag errors and help, against the API test server and the real kubectl.</summary>
public sealed class EverydayCommandTests(ClusterFixture cluster) : IClassFixture<ClusterFixture>, IDisposable
{
    private readonly TempHome home = new();

    private async Task<CliResult> Run(params string[] args) => await home.RunAsync(["--kubeconfig", cluster.Kubeconfig, .. args]);

    /// <summary>As the user types it: through the real kubectl, which runs the plugin from PATH.</summary>
    private Task<CliResult> KubectlRpoi(params string[] args) => home.KubectlRpoiAsync(["--kubeconfig", cluster.Kubeconfig, .. args]);

    private async Task<string> RequestAsync(string name)
    {
        if (!File.Exists(home.File(".rpoi/renter.key")))
        {
            Assert.Equal(0, (await home.RunAsync("keygen")).ExitCode);
        }

        var result = await Run("request", "--name", name, "--chips", "8", "--accelerator", "tpu-v5-lite-podslice", "--topology", "2x4",
            "--duration", "1h", "--deposit", "1500000uusd", "--rent", "9000000uusd", "--rating-window", "2h", "--apply");
        Assert.True(result.ExitCode == 0, result.ToString());
        return name;
    }

    [Fact]
    public async Task Return_sets_returnRequested_and_warns_that_the_deposit_needs_a_rating()
    {
        var name = await RequestAsync("return-1");
        await cluster.ActivateAsync(name);

        var result = await KubectlRpoi("return", name);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("return requested", result.Out, StringComparison.Ordinal);
        Assert.Contains("π withholds your deposit ρ unless you rate", result.Err, StringComparison.Ordinal);
        var kubectl = await Processes.KubectlAsync(home.Path, cluster.Kubeconfig, "get", "tpulease", name, "-n", ClusterFixture.Namespace, "-o", "jsonpath={.spec.returnRequested}");
        Assert.True(kubectl.ExitCode == 0, kubectl.ToString());
        Assert.Equal("true", kubectl.Out.Trim());

        await cluster.PatchStatusAsync(name, new { phase = "AwaitingRatings" });
        var again = await Run("return", name);
        Assert.Equal(0, again.ExitCode);
        Assert.Contains("already ended (phase AwaitingRatings)", again.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cancel_withdraws_a_lease_before_active_and_refuses_an_active_one()
    {
        var pending = await RequestAsync("cancel-1");
        await cluster.PatchStatusAsync(pending, new { phase = "Allocating", queuePosition = 2 });

        var result = await KubectlRpoi("cancel", pending);

        Assert.True(result.ExitCode == 0, result.ToString());
        var kubectl = await Processes.KubectlAsync(home.Path, cluster.Kubeconfig, "get", "tpulease", pending, "-n", ClusterFixture.Namespace, "-o", "jsonpath={.spec.returnRequested}");
        Assert.Equal("true", kubectl.Out.Trim());

        var active = await RequestAsync("cancel-2");
        await cluster.ActivateAsync(active);
        var refused = await KubectlRpoi("cancel", active);
        Assert.Equal(ExitCodes.Conflict, refused.ExitCode);
        Assert.Contains($"kubectl rpoi return {active}", refused.Err, StringComparison.Ordinal);
        Assert.False((await cluster.GetLeaseAsync(active)).Spec.ReturnRequested ?? false);
    }

    [Fact]
    public async Task Access_on_an_ended_lease_says_so_at_once_even_with_wait()
    {
        var name = await RequestAsync("ended-1");
        await cluster.PatchStatusAsync(name, new { phase = "Settled" });

        // A 1h --timeout: a wait would hang the test; the answer must come from the first read.
        var result = await Run("access", name, "--wait", "--timeout", "1h");

        Assert.Equal(ExitCodes.LeaseEnded, result.ExitCode);
        Assert.Contains("has ended (phase Settled)", result.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("--wait", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_namespace_is_named_as_missing_not_as_a_missing_lease()
    {
        Assert.Equal(0, (await home.RunAsync("keygen")).ExitCode);

        var request = await Run("request", "--name", "big-run", "-n", "ml-research", "--chips", "8", "--accelerator", "tpu-v5-lite-podslice", "--topology", "2x4",
            "--duration", "1h", "--deposit", "1uusd", "--rent", "1uusd", "--apply");
        var status = await Run("status", "big-run", "-n", "ml-research");

        foreach (var result in new[] { request, status })
        {
            Assert.Equal(ExitCodes.NotFound, result.ExitCode);
            Assert.Contains("namespace ml-research does not exist", result.Err, StringComparison.Ordinal);
            Assert.DoesNotContain("lease ml-research/big-run not found", result.Err, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Status_warns_while_the_renters_rating_is_due()
    {
        var name = await RequestAsync("due-1");
        var deadline = new DateTime(2030, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        await cluster.PatchStatusAsync(name, new { phase = "AwaitingRatings", ratingDeadline = deadline });

        var result = await Run("status", name);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("warning: rate this lease by 2030-01-02T03:04:05Z: π withholds your deposit ρ", result.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "rate", "x", "--score", "five" }, "--score: 'five' is not a whole number from 1 to 5", "kubectl rpoi rate --help")]
    [InlineData(new[] { "rate", "x", "--score", "9" }, "--score: '9' is not a whole number from 1 to 5", "kubectl rpoi rate --help")]
    [InlineData(new[] { "sandbox", "down", "--timeout", "2x" }, "--timeout: '2x' is not a duration", "kubectl rpoi sandbox down --help")]
    [InlineData(new[] { "request", "--name", "a", "--chips", "lots", "--accelerator", "a", "--topology", "b", "--duration", "1h", "--deposit", "1uusd", "--rent", "1uusd" }, "--chips: 'lots' is not a whole number", "kubectl rpoi request --help")]
    public async Task Bad_values_name_the_flag_and_the_form_and_the_right_help(string[] args, string message, string help)
    {
        var result = await home.RunAsync(args);

        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains(message, result.Err, StringComparison.Ordinal);
        Assert.Contains($"see '{help}'", result.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", result.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("json")]
    [InlineData("yaml")]
    public async Task Offers_prints_json_and_yaml_with_the_documented_fields(string format)
    {
        var result = await Run("offers", "-o", format);

        Assert.True(result.ExitCode == 0, result.ToString());
        var doc = format == "json" ? System.Text.Json.Nodes.JsonNode.Parse(result.Out)! : Rpoi.Cli.Support.Yaml.ReadAll(result.Out).Single()!;
        Assert.Equal(cluster.Leaser.Identity.Address, (string?)doc["leaser"]);
        var offer = doc["offers"]!.AsArray().Single(o => (string?)o!["topology"] == "2x2")!;
        Assert.Equal("tpu-v6e-slice", (string?)offer["accelerator"]);
        Assert.Equal("4", offer["chipsPerSlice"]!.ToString());

        var bad = await Run("offers", "-o", "xml");
        Assert.Equal(ExitCodes.Usage, bad.ExitCode);
        Assert.Contains("--output: 'xml' is not json or yaml", bad.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sandbox_timeout_takes_a_duration()
    {
        // 2m parses; 'down' then says there is no sandbox, not a parse error.
        var result = await home.RunAsync("sandbox", "down", "--timeout", "2m");

        Assert.Equal(ExitCodes.NotFound, result.ExitCode);
        Assert.Contains("no sandbox runs from", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_command_help_says_kubectl_rpoi_and_has_examples()
    {
        var root = await home.RunAsync("--help");
        Assert.Contains("  kubectl rpoi [command] [options]", root.Out, StringComparison.Ordinal);
        var paths = new List<string[]>();
        foreach (var line in root.Out.Split('\n').SkipWhile(l => !l.StartsWith("Commands:", StringComparison.Ordinal)).Skip(1).TakeWhile(l => l.Length > 0))
        {
            paths.Add([line.Trim().Split(' ')[0]]);
        }

        paths.Add(["sandbox", "up"]);
        paths.Add(["sandbox", "down"]);
        paths.Add(["keys", "new"]);
        Assert.Contains(paths, p => p[0] == "return");
        foreach (var path in paths)
        {
            // Through the real kubectl: what a user sees for `kubectl rpoi <command> --help`.
            var help = await home.KubectlRpoiAsync([.. path, "--help"]);
            Assert.True(help.ExitCode == 0, help.ToString());
            Assert.Contains($"  kubectl rpoi {string.Join(' ', path)}", help.Out, StringComparison.Ordinal);
            Assert.DoesNotContain("kubectl-rpoi", help.Out, StringComparison.Ordinal);
            Assert.DoesNotContain("testhost", help.Out, StringComparison.Ordinal);
            var examples = help.Out[(help.Out.IndexOf("Examples:", StringComparison.Ordinal) + 1)..];
            Assert.True(help.Out.Contains("Examples:", StringComparison.Ordinal) && examples.Contains($"kubectl rpoi {path[0]}", StringComparison.Ordinal), $"{string.Join(' ', path)}: {help.Out}");
        }
    }

    public void Dispose() => home.Dispose();
}
