using Rpoi.Cli.Tests.Support;
using Rpoi.Sandbox;

namespace Rpoi.Cli.Tests;

/// <summary>
/// docs/quickstart.md, executed: every <c>bash</c> block in order, <c>kubectl rpoi …</c> through the CLI in this process
/// and every other <c>kubectl …</c> through the real kubectl binary, in a temporary directory that is also HOME. A
/// command that fails fails the test, so the walkthrough cannot drift from what works. The <c>bash setup</c> block
/// (build, PATH) is what this test process already is; the <c>bash settlement</c> block needs phase II in the operator
/// and ends the whole lifecycle: keygen → request → apply → Ready → access → return → both ratings → Settled → balances on π.
/// </summary>
public sealed class QuickstartTests : IDisposable
{
    private readonly TempHome home = new();

    [Fact]
    public async Task The_quickstart_runs_as_written()
    {
        var root = RepositoryRoot();
        CopyDirectory(Path.Combine(root, "config", "samples"), home.File("config/samples"));
        var blocks = Walkthrough.Blocks(File.ReadAllText(Path.Combine(root, "docs", "quickstart.md")));
        Assert.Contains(blocks, b => b.Info == "bash settlement");
        Assert.True(blocks.Count(b => b.Info == "bash") >= 5, "the walkthrough lost its steps");
        var env = new Dictionary<string, string> { ["HOME"] = home.Path };
        var transcript = new List<string>();
        try
        {
            foreach (var block in blocks.Where(b => b.Info is "bash" or "bash settlement"))
            {
                if (block.Info == "bash settlement")
                {
                    // The settlement needs phase II in the sandbox's operator; say so plainly rather than time out.
                    Assert.True(SandboxState.Load(home.File(".rpoi/sandbox"))?.Settles, "the sandbox's operator does not run phase II (OperatorApp registers no settlement controller)");
                }

                foreach (var line in block.Lines)
                {
                    var result = await RunLineAsync(line, env);
                    transcript.Add($"$ {line}\n{result}");
                    Assert.True(result.ExitCode == 0, string.Join("\n", transcript));
                }
            }

            // Funded 100000000; then the rent ω went to β and the deposit ρ came back.
            Assert.Contains("91000000 uusd", transcript.Last(t => t.StartsWith("$ kubectl rpoi balance\n", StringComparison.Ordinal)), StringComparison.Ordinal);
            Assert.Contains("  9000000 uusd", transcript.Last(t => t.StartsWith("$ kubectl rpoi balance --leaser", StringComparison.Ordinal)), StringComparison.Ordinal);
            Assert.Contains("receipt:     verified", transcript.Last(t => t.StartsWith("$ kubectl rpoi status", StringComparison.Ordinal)), StringComparison.Ordinal);
        }
        finally
        {
            // Whatever failed, never leave the background sandbox running.
            if (SandboxState.Load(home.File(".rpoi/sandbox")) is not null)
            {
                await home.RunAsync("sandbox", "down");
            }
        }
    }

    [Fact]
    public void Quoting_is_split_as_a_shell_does()
    {
        Assert.Equal(["kubectl", "patch", "-p", "{\"spec\":{\"returnRequested\":true}}"], Walkthrough.Words("kubectl patch -p '{\"spec\":{\"returnRequested\":true}}'"));
        Assert.Equal(["--for=jsonpath={.status.phase}=Settled", "x"], Walkthrough.Words("--for=jsonpath='{.status.phase}'=Settled x # comment"));
        Assert.Equal(["--comment", "fast and \"good\""], Walkthrough.Words("--comment \"fast and \\\"good\\\"\""));
    }

    private async Task<CliResult> RunLineAsync(string line, Dictionary<string, string> env)
    {
        var words = Walkthrough.Words(line);
        if (words[0] == "export")
        {
            foreach (var assignment in words.Skip(1))
            {
                var (name, value) = (assignment[..assignment.IndexOf('=', StringComparison.Ordinal)], assignment[(assignment.IndexOf('=', StringComparison.Ordinal) + 1)..]);
                env[name] = value;
                home.Variables[name] = value;
            }

            return new CliResult(0, "", "");
        }

        Assert.Equal("kubectl", words[0]);
        if (words.Count > 1 && words[1] == "rpoi")
        {
            return await home.RunAsync([.. words.Skip(2)]);
        }

        return await Processes.RunAsync("kubectl", words.Skip(1), home.Path, env);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Rpoi.Operator.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Rpoi.Operator.sln not found above " + AppContext.BaseDirectory);
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    public void Dispose() => home.Dispose();
}
