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
        var script = await home.RunAsync("completion", "bash");
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
}
