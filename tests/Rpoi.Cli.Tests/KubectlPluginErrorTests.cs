using Rpoi.Cli.Tests.Support;

namespace Rpoi.Cli.Tests;

/// <summary>
/// Every command's error paths as a user meets them: <c>kubectl rpoi …</c> through the real kubectl binary (the plugin on
/// PATH) against the API test server. Each case checks the exit code of docs/cli.md's table and that the one-line
/// message names what was wrong (the flag, the lease, the namespace, the file) — and, for refused writes, that nothing
/// was created.
/// </summary>
public sealed class KubectlPluginErrorTests(ClusterFixture cluster) : IClassFixture<ClusterFixture>, IDisposable
{
    private readonly TempHome home = new();

    private async Task<CliResult> KubectlRpoi(params string[] args)
    {
        if (!File.Exists(home.File(".rpoi/renter.key")))
        {
            Assert.Equal(ExitCodes.Ok, (await home.RunAsync("keygen")).ExitCode);
        }

        return await home.KubectlRpoiAsync(["--kubeconfig", cluster.Kubeconfig, .. args]);
    }

    public static TheoryData<string[], int, string> Cases() => new()
    {
        // Usage (2): the flag and the form it wants, and the command's own --help.
        { ["request", "--name", "x", "--chips", "eight", "--accelerator", "tpu-v5-lite-podslice", "--topology", "2x4", "--duration", "1h", "--deposit", "1uusd", "--rent", "1uusd"], ExitCodes.Usage, "--chips" },
        { ["request", "--name", "x", "--chips", "8", "--accelerator", "tpu-v5-lite-podslice", "--topology", "2x4", "--duration", "2x", "--deposit", "1uusd", "--rent", "1uusd"], ExitCodes.Usage, "--duration: '2x' is not a duration" },
        { ["request", "--name", "x", "--chips", "8", "--accelerator", "tpu-v5-lite-podslice", "--topology", "2x4", "--duration", "1h", "--deposit", "1uusd", "--rent", "1uusd", "--rating-window", "3 days"], ExitCodes.Usage, "--rating-window: '3 days' is not a duration" },
        { ["rate", "lease-x", "--score", "five"], ExitCodes.Usage, "--score: 'five' is not a whole number from 1 to 5" },
        { ["access", "lease-x", "--wait", "--timeout", "soon"], ExitCodes.Usage, "--timeout: 'soon' is not a duration" },
        { ["status", "lease-x", "-o", "xml"], ExitCodes.Usage, "--output: 'xml' is not json or yaml" },
        { ["offers", "-o", "xml"], ExitCodes.Usage, "--output: 'xml' is not json or yaml" },
        { ["balance", "-o", "table"], ExitCodes.Usage, "--output: 'table' is not json or yaml" },
        { ["claim", "lease-x", "--score", "9"], ExitCodes.Usage, "--score" },
        { ["completion", "powershell"], ExitCodes.Usage, "Must be one of: 'bash', 'zsh', 'fish'" },
        { ["sandbox", "up", "--timeout", "2x"], ExitCodes.Usage, "--timeout: '2x' is not a duration" },
        { ["demo", "--no-such-flag"], ExitCodes.Usage, "'--no-such-flag'" },
        { ["no-such-command"], ExitCodes.Usage, "'no-such-command' is not a command of 'kubectl rpoi': use one of keygen, " },
        { ["sandbox", "frob"], ExitCodes.Usage, "'frob' is not a command of 'kubectl rpoi sandbox': use one of up, down, status, fund" },
        { ["sandbox"], ExitCodes.Usage, "'kubectl rpoi sandbox' needs a command: one of up, down, status, fund" },

        // Not found (3): the lease, the namespace, the file, each named.
        { ["access", "lease-x"], ExitCodes.NotFound, "lease-x" },
        { ["status", "lease-x"], ExitCodes.NotFound, "lease-x" },
        { ["rate", "lease-x", "--score", "5"], ExitCodes.NotFound, "lease-x" },
        { ["return", "lease-x"], ExitCodes.NotFound, "lease-x" },
        { ["cancel", "lease-x"], ExitCodes.NotFound, "lease-x" },
        { ["claim", "lease-x"], ExitCodes.NotFound, "lease-x" },
        { ["proof", "lease-x"], ExitCodes.NotFound, "lease-x" },
        { ["status", "lease-x", "-n", "no-such-ns"], ExitCodes.NotFound, "namespace no-such-ns does not exist" },
        { ["request", "--name", "x", "-n", "no-such-ns", "--chips", "8", "--accelerator", "tpu-v5-lite-podslice", "--topology", "2x4", "--duration", "1h", "--deposit", "1uusd", "--rent", "1uusd", "--apply"], ExitCodes.NotFound, "namespace no-such-ns does not exist" },
        { ["verify", "no-such-bundle.json"], ExitCodes.NotFound, "no-such-bundle.json" },
        { ["--key", "no-such.key", "list"], ExitCodes.NotFound, "no-such.key" },
        { ["--operator-namespace", "no-such-ns", "offers"], ExitCodes.NotFound, "rpoi-discovery" },

        // Conflict (8): an existing key file is never overwritten.
        { ["keygen"], ExitCodes.Conflict, "renter.key" },

        // Unreachable (7): the cluster's π URL in discovery answers nothing here.
        { ["balance"], ExitCodes.Unreachable, "127.0.0.1:1" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Each_error_through_the_real_kubectl_has_its_exit_code_and_names_what_was_wrong(string[] args, int exitCode, string message)
    {
        var result = await KubectlRpoi(args);

        Assert.True(result.ExitCode == exitCode, $"kubectl rpoi {string.Join(' ', args)}: expected exit {exitCode}\n{result}");
        // One "error: ..." line names it (a warning may come before it, e.g. that π's balance could not be checked).
        var errors = result.Err.Split('\n').Where(l => l.StartsWith("error: ", StringComparison.Ordinal)).ToList();
        Assert.True(errors.Any(e => e.Contains(message, StringComparison.Ordinal)), $"kubectl rpoi {string.Join(' ', args)}: no error line names '{message}'\n{result}");
        if (exitCode == ExitCodes.Usage)
        {
            // A usage error points to the help of the command that was parsed.
            Assert.Matches(@"(?m)^see 'kubectl rpoi( [a-z]+)* --help'$", result.Err);
        }
        // No .NET type names and no stack trace for a user's mistake.
        Assert.DoesNotContain("System.", result.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_refused_request_creates_nothing()
    {
        var refused = await KubectlRpoi("request", "--name", "refused-1", "--chips", "eight", "--accelerator", "tpu-v5-lite-podslice", "--topology", "2x4",
            "--duration", "1h", "--deposit", "1uusd", "--rent", "1uusd", "--apply");

        Assert.Equal(ExitCodes.Usage, refused.ExitCode);
        var list = await KubectlRpoi("list", "-o", "json");
        Assert.True(list.ExitCode == ExitCodes.Ok, list.ToString());
        Assert.DoesNotContain("refused-1", list.Out, StringComparison.Ordinal);
    }

    public void Dispose() => home.Dispose();
}
