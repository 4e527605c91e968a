using System.CommandLine;
using System.Reflection;
using System.Text.RegularExpressions;
using Rpoi.Cli.Commands;

namespace Rpoi.Cli.Tests;

/// <summary>
/// docs/cli.md is the reference users read: every command, subcommand, flag and exit code the program has must be in it,
/// read from the command tree itself, so a new flag without docs fails here.
/// </summary>
public sealed partial class CliDocsTests
{
    private static readonly string Doc = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "cli.md"));

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

    /// <summary>The text of each "### `name ...`" section, by every command name its heading gives in backticks.</summary>
    private static Dictionary<string, string> Sections()
    {
        var sections = new Dictionary<string, string>(StringComparer.Ordinal);
        var parts = Regex.Split(Doc, @"^(?=##+ )", RegexOptions.Multiline);
        foreach (var part in parts.Where(p => p.StartsWith("###", StringComparison.Ordinal)))
        {
            var heading = part[..part.IndexOf('\n', StringComparison.Ordinal)];
            foreach (Match m in Backticked().Matches(heading))
            {
                var name = m.Groups[1].Value.Split(' ')[0];
                sections[name] = sections.TryGetValue(name, out var text) ? text + part : part;
            }
        }

        return sections;
    }

    private static string Section(string heading) =>
        Regex.Split(Doc, @"^(?=## )", RegexOptions.Multiline).Single(p => p.StartsWith("## " + heading, StringComparison.Ordinal));

    // The tree the program runs (Cli.RunAsync builds the same one).
    private static RootCommand Root() => Cli.BuildRoot(TextWriter.Null, TextWriter.Null, CliEnvironment.Process);

    public static TheoryData<string> Commands() => [.. Root().Subcommands.Where(c => !c.Hidden).Select(c => c.Name)];

    [Theory]
    [MemberData(nameof(Commands))]
    public void Every_command_its_subcommands_and_its_flags_are_in_docs_cli_md(string name)
    {
        var sections = Sections();
        Assert.True(sections.TryGetValue(name, out var text), $"docs/cli.md has no '### `{name} ...`' section");
        var node = CompletionCommand.Tree(Root()).Single(n => n.Path.Count == 1 && n.Path[0] == name);
        var missing = new List<string>();
        void Check(Command command)
        {
            foreach (var sub in command.Subcommands.Where(c => !c.Hidden))
            {
                if (!Regex.IsMatch(text!, $@"\b{Regex.Escape(sub.Name)}\b"))
                {
                    missing.Add("subcommand " + sub.Name);
                }

                Check(sub);
            }

            foreach (var option in command.Options.Where(o => !o.Hidden && !o.Recursive && o.Name.StartsWith("--", StringComparison.Ordinal)))
            {
                if (!text!.Contains("`" + option.Name, StringComparison.Ordinal) && !text.Contains(option.Name + "`", StringComparison.Ordinal) && !text.Contains(option.Name + " ", StringComparison.Ordinal))
                {
                    missing.Add(option.Name);
                }
            }
        }

        Check(node.Command);
        Assert.True(missing.Count == 0, $"docs/cli.md, section '{name}', does not mention: {string.Join(", ", missing)}");
    }

    [Fact]
    public void Every_global_flag_is_in_the_global_flags_table()
    {
        var table = Section("Global flags");
        var globals = Root().Options.Where(o => o.Recursive && !o.Hidden).Select(o => o.Name).ToList();
        Assert.NotEmpty(globals);
        Assert.All(globals, g => Assert.Contains("`" + (Root().Options.Single(o => o.Name == g).Aliases.FirstOrDefault(a => a.Length == 2) is { } s ? s + ", " : "") + g, table, StringComparison.Ordinal));
    }

    [Fact]
    public void Every_exit_code_is_in_the_exit_code_table()
    {
        var table = Section("Exit codes");
        var codes = typeof(ExitCodes).GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.IsLiteral).Select(f => (int)f.GetRawConstantValue()!).ToList();
        Assert.True(codes.Count >= 10);
        Assert.All(codes, c => Assert.Matches($@"(?m)^\| {c} \| \S", table));
        // And no row for a code the program does not have.
        var rows = Regex.Matches(table, @"(?m)^\| (\d+) \|").Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        Assert.All(rows, r => Assert.Contains(r, codes));
    }

    [GeneratedRegex("`([a-z][a-z0-9-]*(?: [^`]*)?)`")]
    private static partial Regex Backticked();
}
