using System.CommandLine;
using System.Text;

namespace Rpoi.Cli.Commands;

/// <summary>
/// <c>kubectl rpoi completion bash|zsh|fish</c>: a completion script generated from the command tree itself, so a new
/// command or flag completes without anyone editing a script by hand.
/// </summary>
internal static class CompletionCommand
{
    /// <summary>The shells a script is written for.</summary>
    public static readonly string[] Shells = ["bash", "zsh", "fish"];

    public static Command Create(CommandFactory f, RootCommand root)
    {
        var shell = new Argument<string>("shell") { Description = "bash, zsh or fish." };
        shell.AcceptOnlyFromAmong(Shells);
        var command = new Command("completion", "Print a shell completion script for kubectl rpoi (bash, zsh or fish); source it from your shell's profile.") { shell };
        f.Handle(command, (ctx, parse, ct) =>
        {
            ctx.Out.Write(Script(parse.GetValue(shell)!, root));
            return Task.FromResult(ExitCodes.Ok);
        });
        return command;
    }

    /// <summary>One node of the tree: the words after the program name, its subcommands, and every flag it takes.</summary>
    internal sealed record Node(IReadOnlyList<string> Path, Command Command, IReadOnlyList<Command> Subcommands, IReadOnlyList<string> Flags);

    /// <summary>Every command, depth first, with its own flags and the recursive (global) flags of its ancestors.</summary>
    internal static IReadOnlyList<Node> Tree(RootCommand root)
    {
        var nodes = new List<Node>();
        void Walk(Command command, IReadOnlyList<string> path, IReadOnlyList<Option> inherited)
        {
            var own = command.Options.Where(o => !o.Hidden).ToList();
            // Windows-style help aliases (/h, /?) and -? are not what a shell user types.
            var flags = own.Concat(inherited).SelectMany(o => new[] { o.Name }.Concat(o.Aliases)).Append("--help")
                .Where(n => n.StartsWith('-') && n != "-?").Distinct(StringComparer.Ordinal).ToList();
            var subs = command.Subcommands.Where(c => !c.Hidden).ToList();
            nodes.Add(new Node(path, command, subs, flags));
            var passOn = inherited.Concat(own.Where(o => o.Recursive)).ToList();
            foreach (var sub in subs)
            {
                Walk(sub, [.. path, sub.Name], passOn);
            }
        }

        Walk(root, [], []);
        return nodes;
    }

    /// <summary>The word kubectl passes first when it asks a plugin's <c>kubectl_complete-rpoi</c> what completes.</summary>
    public const string CompleteVerb = "__complete";

    /// <summary>
    /// Answers <c>kubectl rpoi __complete &lt;words&gt;</c> in the form kubectl (cobra) reads from a plugin's completion
    /// executable: one candidate per line, then <c>:N</c>, the directive (4: no file names; 0: let the shell
    /// complete file names, for a flag's value). The last word is the one being completed and may be empty.
    /// </summary>
    internal static string Complete(RootCommand root, IReadOnlyList<string> words)
    {
        var tree = Tree(root);
        var byPath = tree.ToDictionary(n => string.Join(' ', n.Path), StringComparer.Ordinal);
        var node = byPath[""];
        var current = words.Count == 0 ? "" : words[^1];
        Option? valueOf = null;
        foreach (var w in words.Take(words.Count - 1))
        {
            if (valueOf is not null)
            {
                valueOf = null;
                continue;
            }

            if (w.StartsWith('-'))
            {
                valueOf = !w.Contains('=', StringComparison.Ordinal) && FindOption(node, w) is { } o && TakesValue(o) ? o : null;
                continue;
            }

            // As in the bash script: a word is a command only where the tree has that path.
            if (byPath.TryGetValue(string.Join(' ', node.Path.Append(w)), out var next))
            {
                node = next;
            }
        }

        const int NoFileComp = 4, Default = 0;
        var s = new StringBuilder();
        if (valueOf is not null)
        {
            // A flag's value: its fixed choices if it has them (-o json|yaml), otherwise file names (key files, outputs).
            var choices = valueOf.GetCompletions(System.CommandLine.Completions.CompletionContext.Empty).Select(c => c.Label)
                .Where(c => c.StartsWith(current, StringComparison.Ordinal)).ToList();
            foreach (var c in choices)
            {
                s.Append(c).Append('\n');
            }

            return s.Append(':').Append(choices.Count > 0 ? NoFileComp : Default).Append('\n').ToString();
        }

        var candidates = current.StartsWith('-')
            ? node.Flags.Select(f => (Name: f, Description: FindOption(node, f)?.Description))
            : node.Subcommands.Select(c => (Name: c.Name, Description: c.Description));
        foreach (var (name, description) in candidates.Where(c => c.Name.StartsWith(current, StringComparison.Ordinal)))
        {
            // cobra's "name<TAB>description": zsh and fish show the description beside the candidate.
            s.Append(name);
            if (FirstSentence(description) is { Length: > 0 } d)
            {
                s.Append('\t').Append(d);
            }

            s.Append('\n');
        }

        return s.Append(':').Append(NoFileComp).Append('\n').ToString();
    }

    private static Option? FindOption(Node node, string flag)
    {
        // Own options first, then the recursive ones of the ancestors (the global flags).
        for (Command? c = node.Command; c is not null; c = c.Parents.OfType<Command>().FirstOrDefault())
        {
            if (c.Options.FirstOrDefault(o => (o.Name == flag || o.Aliases.Contains(flag)) && (c == node.Command || o.Recursive)) is { } o)
            {
                return o;
            }
        }

        return null;
    }

    private static bool TakesValue(Option o) => o.Arity.MaximumNumberOfValues > 0 && o.ValueType != typeof(bool);

    private static string FirstSentence(string? text) => (text ?? "").Split(". ")[0].TrimEnd('.').ReplaceLineEndings(" ");

    internal static string Script(string shell, RootCommand root) => shell switch
    {
        "bash" => Bash(root),
        "zsh" => Zsh(root),
        "fish" => Fish(root),
        _ => throw new CliException(ExitCodes.Usage, $"completion: '{shell}' is not bash, zsh or fish"),
    };

    private static string Bash(RootCommand root)
    {
        var tree = Tree(root);
        var s = new StringBuilder();
        s.Append("# bash completion for kubectl-rpoi (kubectl rpoi completion bash)\n");
        s.Append("# Load it in this shell:   source <(kubectl rpoi completion bash)\n");
        s.Append("_kubectl_rpoi() {\n");
        s.Append("  local cur=\"${COMP_WORDS[COMP_CWORD]}\" path=\"\" w i words=\"\"\n");
        s.Append("  for ((i = 1; i < COMP_CWORD; i++)); do\n");
        s.Append("    w=\"${COMP_WORDS[i]}\"\n");
        s.Append("    case \"$w\" in -*) continue ;; esac\n");
        // A word is a command only where the tree has that path; flag values (a namespace, a file) are skipped.
        s.Append("    case \"$path $w\" in\n");
        var paths = tree.Where(n => n.Path.Count > 0).Select(n => Quote(" " + string.Join(' ', n.Path))).ToList();
        s.Append("      ").Append(string.Join('|', paths)).Append(") path=\"$path $w\" ;;\n");
        s.Append("    esac\n");
        s.Append("  done\n");
        s.Append("  case \"$path\" in\n");
        foreach (var n in tree)
        {
            var key = n.Path.Count == 0 ? "\"\"" : Quote(" " + string.Join(' ', n.Path));
            var words = string.Join(' ', n.Subcommands.Select(c => c.Name).Concat(n.Flags));
            s.Append("    ").Append(key).Append(") words=").Append(Quote(words)).Append(" ;;\n");
        }

        s.Append("  esac\n");
        s.Append("  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n");
        s.Append("}\n");
        s.Append("complete -o default -F _kubectl_rpoi kubectl-rpoi\n");
        return s.ToString();
    }

    // zsh runs the same function through its bash-completion layer, so both shells complete exactly alike.
    private static string Zsh(RootCommand root) =>
        "#compdef kubectl-rpoi\n" +
        "# zsh completion for kubectl-rpoi (kubectl rpoi completion zsh)\n" +
        "# Load it in this shell:   source <(kubectl rpoi completion zsh)\n" +
        "autoload -U +X bashcompinit && bashcompinit\n" +
        string.Join('\n', Bash(root).Split('\n').Where(l => !l.StartsWith('#')));

    private static string Fish(RootCommand root)
    {
        var tree = Tree(root);
        var s = new StringBuilder();
        s.Append("# fish completion for kubectl-rpoi (kubectl rpoi completion fish)\n");
        s.Append("# Load it:   kubectl rpoi completion fish > ~/.config/fish/completions/kubectl-rpoi.fish\n");
        s.Append("complete -c kubectl-rpoi -f\n");
        foreach (var n in tree)
        {
            // The condition names the command path: the top level until a command is given, then the deepest word seen.
            var when = n.Path.Count == 0 ? "__fish_use_subcommand" : $"__fish_seen_subcommand_from {n.Path[^1]}";
            foreach (var sub in n.Subcommands)
            {
                s.Append($"complete -c kubectl-rpoi -n '{when}' -a {sub.Name} -d {FishQuote(sub.Description)}\n");
            }

            foreach (var o in n.Command.Options.Where(o => !o.Hidden))
            {
                s.Append($"complete -c kubectl-rpoi -n '{when}'");
                foreach (var name in new[] { o.Name }.Concat(o.Aliases).Where(n => n.StartsWith('-') && n != "-?"))
                {
                    s.Append(name.StartsWith("--", StringComparison.Ordinal) ? $" -l {name[2..]}" : $" -s {name.TrimStart('-')}");
                }

                s.Append(" -d ").Append(FishQuote(o.Description)).Append('\n');
            }
        }

        return s.ToString();
    }

    private static string Quote(string text) => "\"" + text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("$", "\\$", StringComparison.Ordinal).Replace("`", "\\`", StringComparison.Ordinal) + "\"";

    private static string FishQuote(string? text)
    {
        var first = FirstSentence(text);
        return "'" + first.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";
    }
}
