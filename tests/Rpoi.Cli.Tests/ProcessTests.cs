using Rpoi.Cli.Tests.Support;
using Rpoi.Protocol.Keys;
using Rpoi.Sandbox;

namespace Rpoi.Cli.Tests;

/// <summary>The built kubectl-rpoi as a real process: exit codes, files, and the detached sandbox's lifecycle.</summary>
public sealed class ProcessTests : IDisposable
{
    private readonly TempHome home = new();

    private Task<CliResult> Run(params string[] args) =>
        Processes.RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "kubectl-rpoi.dll"), .. args], home.Path, new Dictionary<string, string> { ["HOME"] = home.Path });

    [Fact]
    public async Task Keygen_as_a_process_exits_0_and_bad_flags_exit_2()
    {
        var keygen = await Run("keygen", "--out", "r.key");
        Assert.True(keygen.ExitCode == 0, keygen.ToString());
        Assert.Contains(KeyFile.Load(home.File("r.key")).Value.Keys.Identity.Address, keygen.Out, StringComparison.Ordinal);

        var bad = await Run("rate", "x", "--score", "high");
        Assert.Equal(ExitCodes.Usage, bad.ExitCode);
        Assert.Contains("--score", bad.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sandbox_up_detach_then_down_stops_it_cleanly()
    {
        var up = await Run("sandbox", "up", "--detach");
        Assert.True(up.ExitCode == 0, up.ToString());
        var state = SandboxState.Load(home.File(".rpoi/sandbox"));
        Assert.NotNull(state);
        Assert.Contains("export KUBECONFIG=.rpoi/sandbox/kubeconfig", up.Out, StringComparison.Ordinal);

        var nodes = await Processes.KubectlAsync(home.Path, state.Kubeconfig, "get", "nodes");
        Assert.True(nodes.ExitCode == 0, nodes.ToString());

        var down = await Run("sandbox", "down");
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.Null(SandboxState.Load(home.File(".rpoi/sandbox")));
        Assert.Contains("stopping the sandbox", File.ReadAllText(home.File(".rpoi/sandbox/sandbox.log")), StringComparison.Ordinal);

        // SIGTERM is a clean stop: the API objects were saved for the next 'sandbox up'.
        Assert.Contains($"API objects saved to {home.File(".rpoi/sandbox/api-objects.json")}", File.ReadAllText(home.File(".rpoi/sandbox/sandbox.log")), StringComparison.Ordinal);
        Assert.Contains("gke-sandbox-tpu-v5e-4x4-3", File.ReadAllText(home.File(".rpoi/sandbox/api-objects.json")), StringComparison.Ordinal);
        Assert.Equal(ExitCodes.NotFound, (await Run("sandbox", "down")).ExitCode);
    }

    public void Dispose() => home.Dispose();
}
