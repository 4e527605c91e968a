using Rpoi.Cli.Tests.Support;

namespace Rpoi.Cli.Tests;

/// <summary>
/// <c>completion</c>: the bash script is sourced in a real bash and asked what it completes, as bash itself asks it when
/// the user presses Tab; zsh and fish scripts name every command of the tree.
/// </summary>
public sealed class CompletionTests
{
    private static readonly string[] TopLevel = ["keygen", "keys", "request", "access", "rate", "return", "list", "claim", "cancel", "status", "balance", "offers", "proof", "verify", "demo", "sandbox", "completion"];

    /// <summary>Sources the script in bash, sets the words on the line as bash does on Tab, prints COMPREPLY one per line.</summary>
    private static async Task<string[]> CompleteAsync(TempHome home, string script, params string[] line)
    {
        File.WriteAllText(home.File("rpoi.bash"), script);
        var words = string.Join(' ', line.Select(w => "'" + w + "'"));
        var program = $"source ./rpoi.bash; COMP_WORDS=({words}); COMP_CWORD={line.Length - 1}; _kubectl_rpoi; printf '%s\\n' \"${{COMPREPLY[@]}}\"";
        var result = await Processes.RunAsync("bash", ["--norc", "-c", program], home.Path);
        Assert.True(result.ExitCode == 0, result.ToString());
        return result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    [Fact]
    public async Task Bash_completes_commands_subcommands_and_flags_of_the_command_on_the_line()
    {
        using var home = new TempHome();
        var script = await home.KubectlRpoiAsync("completion", "bash");
        Assert.True(script.ExitCode == ExitCodes.Ok, script.ToString());

        Assert.Equal(["request", "return"], (await CompleteAsync(home, script.Out, "kubectl-rpoi", "re")).Order(StringComparer.Ordinal));
        Assert.Equal(["up"], await CompleteAsync(home, script.Out, "kubectl-rpoi", "sandbox", "u"));
        Assert.Equal(["--chips"], await CompleteAsync(home, script.Out, "kubectl-rpoi", "request", "--ch"));
        Assert.Equal(["proof"], await CompleteAsync(home, script.Out, "kubectl-rpoi", "pro"));
        Assert.Equal(["--escrow-identity", "--escrow-url"], (await CompleteAsync(home, script.Out, "kubectl-rpoi", "proof", "train-1", "--esc")).Order(StringComparer.Ordinal));

        // A flag's value is skipped, not taken for a command; global flags complete under every command.
        Assert.Equal(["--jobset"], await CompleteAsync(home, script.Out, "kubectl-rpoi", "-n", "team-a", "access", "train-1", "--job"));
        Assert.Contains("--namespace", await CompleteAsync(home, script.Out, "kubectl-rpoi", "sandbox", "up", "--na"));

        // Flags of one command are not offered for another.
        Assert.Empty(await CompleteAsync(home, script.Out, "kubectl-rpoi", "list", "--ch"));
        Assert.Equal(TopLevel.Order(StringComparer.Ordinal), (await CompleteAsync(home, script.Out, "kubectl-rpoi", "")).Where(w => !w.StartsWith('-')).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("zsh", "#compdef kubectl-rpoi")]
    [InlineData("fish", "complete -c kubectl-rpoi -f")]
    public async Task Zsh_and_fish_scripts_name_every_command(string shell, string firstLine)
    {
        using var home = new TempHome();
        var script = await home.RunAsync("completion", shell);

        Assert.True(script.ExitCode == ExitCodes.Ok, script.ToString());
        Assert.Contains(firstLine, script.Out, StringComparison.Ordinal);
        foreach (var command in TopLevel)
        {
            Assert.Matches(shell == "fish" ? $"-a {command} " : $"[\\s\"]{command}[\\s\"]", script.Out);
        }
    }

    [Fact]
    public async Task An_unknown_shell_is_refused_naming_the_accepted_ones()
    {
        using var home = new TempHome();
        var result = await home.RunAsync("completion", "powershell");

        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains("powershell", result.Err, StringComparison.Ordinal);
        Assert.Contains("bash", result.Err, StringComparison.Ordinal);
        Assert.Contains("kubectl rpoi completion --help", result.Err, StringComparison.Ordinal);
    }

    /// <summary>A PATH with the plugin and the shipped <c>kubectl_complete-rpoi</c>, as an installed user has them.</summary>
    private static Dictionary<string, string> PluginPath(TempHome home)
    {
        // The script the build ships beside the plugin, executable as a user installs it.
        var shipped = Path.Combine(AppContext.BaseDirectory, "kubectl_complete-rpoi");
        Assert.True(File.Exists(shipped), "kubectl_complete-rpoi is not in the build output");
        Assert.True(File.GetUnixFileMode(shipped).HasFlag(UnixFileMode.UserExecute), "kubectl_complete-rpoi is not executable");
        return home.PluginEnvironment();
    }

    /// <summary>What the real kubectl offers for <c>kubectl rpoi &lt;words&gt;&lt;Tab&gt;</c>: candidates (names only) and its directive line.</summary>
    private static async Task<(string[] Names, string Directive)> KubectlCompleteAsync(TempHome home, Dictionary<string, string> env, params string[] words)
    {
        var result = await Processes.RunAsync("kubectl", ["__complete", "rpoi", .. words], home.Path, env);
        Assert.True(result.ExitCode == 0, result.ToString());
        var lines = result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length > 0 && lines[^1].StartsWith(':'), result.ToString());
        return (lines[..^1].Select(l => l.Split('\t')[0]).ToArray(), lines[^1]);
    }

    [Fact]
    public async Task The_real_kubectl_completes_kubectl_rpoi_through_the_shipped_kubectl_complete_rpoi()
    {
        using var home = new TempHome();
        var env = PluginPath(home);

        var (commands, directive) = await KubectlCompleteAsync(home, env, "re");
        Assert.Equal(["request", "return"], commands.Order(StringComparer.Ordinal));
        Assert.Equal(":4", directive); // no file names among commands

        Assert.Equal(["--chips"], (await KubectlCompleteAsync(home, env, "request", "--ch")).Names);
        Assert.Equal(["up"], (await KubectlCompleteAsync(home, env, "sandbox", "u")).Names);
        // A flag's value is skipped (team-a is not a command), global flags come with every command.
        Assert.Equal(["--jobset"], (await KubectlCompleteAsync(home, env, "-n", "team-a", "access", "train-1", "--job")).Names);
        Assert.Equal(TopLevel.Order(StringComparer.Ordinal), (await KubectlCompleteAsync(home, env, "")).Names.Order(StringComparer.Ordinal));

        // A flag's value: its choices when it has them, else the shell's file names (directive 0).
        var output = await KubectlCompleteAsync(home, env, "status", "train-1", "-o", "");
        Assert.Equal(["json", "yaml"], output.Names);
        Assert.Equal(":4", output.Directive);
        var file = await KubectlCompleteAsync(home, env, "access", "train-1", "--pod-template-out", "");
        Assert.Equal((0, ":0"), (file.Names.Length, file.Directive));
        Assert.Empty((await KubectlCompleteAsync(home, env, "list", "--ch")).Names);
    }

    [Fact]
    public async Task Complete_gives_descriptions_after_a_tab_as_kubectl_shows_them_in_zsh_and_fish()
    {
        using var home = new TempHome();
        var result = await home.RunAsync("__complete", "bal");

        Assert.True(result.ExitCode == ExitCodes.Ok, result.ToString());
        var lines = result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("balance\t", lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain('\n', lines[0].Split('\t')[1]);
        Assert.Equal(":4", lines[1]);
    }
}
