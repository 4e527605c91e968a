using Rpoi.Cli.Tests.Support;
using Rpoi.Sandbox;

namespace Rpoi.Cli.Tests;

/// <summary>
/// The README's "Five minutes" walkthrough, executed: every <c>bash</c> block of that section (and only that section; the
/// "Two commands" block above it runs a foreground server and the whole suite) in order, every <c>kubectl …</c> line through the real kubectl binary (<c>kubectl rpoi …</c> finds the
/// built plugin on PATH, as an installed user's kubectl does), in a temporary directory that is also HOME. A
/// command that fails fails the test, so the walkthrough cannot drift from what works. The <c>bash setup</c> block
/// (build, PATH) is what this test process already is; the <c>bash settlement</c> block needs phase II in the operator
/// and ends the whole lifecycle: keygen → request → apply → Ready → access → return → both ratings → Settled → balances on π;
/// then the proof bundle is exported and, after <c>sandbox down</c>, verified with no cluster and no π.
/// </summary>
public sealed class QuickstartTests : IDisposable
{
    /// <summary>The README heading the walkthrough lives under; the section ends at the next <c>## </c> heading.</summary>
    private const string Heading = "## Five minutes";

    /// <summary>What each block's info string means to this test; any other marker fails rather than being skipped.</summary>
    private static readonly string[] Markers = ["bash", "bash setup", "bash settlement"];

    private readonly TempHome home = new();

    [Fact]
    public async Task The_quickstart_runs_as_written()
    {
        var root = RepositoryRoot();
        CopyDirectory(Path.Combine(root, "config", "samples"), home.File("config/samples"));
        var blocks = ReadmeWalkthrough(root);
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

            // The bundle proves β's settlement (m''' from π), and verify, run after the sandbox is down, accepts every check.
            Assert.Contains("settled by LeaserFinal, all 13 checks ok", transcript.Single(t => t.StartsWith("$ kubectl rpoi proof ", StringComparison.Ordinal)), StringComparison.Ordinal);
            Assert.Null(SandboxState.Load(home.File(".rpoi/sandbox")));
            var verify = transcript.Single(t => t.StartsWith("$ kubectl rpoi verify ", StringComparison.Ordinal));
            Assert.Contains("ok      final", verify, StringComparison.Ordinal);
            Assert.Contains("ok      receipt.transfers", verify, StringComparison.Ordinal);
            Assert.Contains("verified: lease team-a/train-1", verify, StringComparison.Ordinal);
            Assert.Contains("all 13 checks ok", verify, StringComparison.Ordinal);
            Assert.DoesNotContain("FAILED", verify, StringComparison.Ordinal);
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
    public void The_readme_section_is_the_whole_walkthrough_and_nothing_else()
    {
        var root = RepositoryRoot();
        var blocks = ReadmeWalkthrough(root);
        var lines = blocks.SelectMany(b => b.Lines).ToList();

        // Exactly the issue's lifecycle, in this order, and not the "Two commands" block (a foreground server, the whole suite).
        string[] steps = ["kubectl rpoi sandbox up --detach", "kubectl rpoi keygen", "kubectl rpoi request ", "kubectl wait --for=condition=Ready",
            "kubectl rpoi access ", "kubectl rpoi return ", "kubectl rpoi rate ", "rating-leaser.yaml", "=Settled", "kubectl rpoi status ", "kubectl rpoi balance --leaser", "kubectl rpoi proof train-1 -n team-a -o bundle.json", "kubectl rpoi sandbox down", "kubectl rpoi verify bundle.json"];
        var at = steps.Select(step => lines.FindIndex(l => l.Contains(step, StringComparison.Ordinal))).ToList();
        Assert.DoesNotContain(-1, at);
        Assert.Equal(at.Order(), at);
        Assert.DoesNotContain(lines, l => l.StartsWith("dotnet test", StringComparison.Ordinal) || l == "dotnet run --project operator/Rpoi.Cli -- sandbox up");
        // It ends with the lease's proof: the export, then (once the sandbox is down) the offline check.
        Assert.Equal("kubectl rpoi verify bundle.json", lines[^1]);

        // docs/quickstart.md explains the steps but holds no second copy of the commands to drift.
        Assert.Empty(Walkthrough.Blocks(File.ReadAllText(Path.Combine(root, "docs", "quickstart.md"))));
    }

    [Fact]
    public void A_section_ends_at_the_next_heading_and_continued_lines_are_joined()
    {
        var markdown = "# T\n```bash\nrun-me-not\n```\n## Five minutes\n### step\n```bash\nkubectl a \\\n  --b c\nkubectl d # note\n```\n## Next\n```bash\nnor-me\n```\n";
        var blocks = Walkthrough.Blocks(Walkthrough.Section(markdown, Heading));
        var block = Assert.Single(blocks);
        Assert.Equal(["kubectl a --b c", "kubectl d # note"], block.Lines);
        Assert.Throws<InvalidOperationException>(() => Walkthrough.Section(markdown, "## Ten minutes"));
        Assert.Throws<FormatException>(() => Walkthrough.Blocks("```bash\nkubectl a \\\n```\n"));
        Assert.Equal("", Assert.Single(Walkthrough.Blocks("```\nbare\n```\n")).Info);
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
            // As the user runs it: the real kubectl finds the plugin on PATH.
            return await home.KubectlRpoiAsync([.. words.Skip(2)]);
        }

        return await Processes.RunAsync("kubectl", words.Skip(1), home.Path, env);
    }

    /// <summary>The blocks of the README's walkthrough section, checked for shape before anything runs.</summary>
    private static IReadOnlyList<CodeBlock> ReadmeWalkthrough(string root)
    {
        var blocks = Walkthrough.Blocks(Walkthrough.Section(File.ReadAllText(Path.Combine(root, "README.md")), Heading));
        Assert.All(blocks, b => Assert.True(Markers.Contains(b.Info), $"README's walkthrough has a ```{b.Info} block; use one of: {string.Join(", ", Markers)}"));
        Assert.Single(blocks, b => b.Info == "bash setup");
        Assert.Single(blocks, b => b.Info == "bash settlement");
        Assert.True(blocks.Count(b => b.Info == "bash") >= 5, "the README's walkthrough lost its steps");
        return blocks;
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
