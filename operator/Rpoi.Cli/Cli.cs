using System.CommandLine;
using System.CommandLine.Help;
using Rpoi.Cli.Commands;

namespace Rpoi.Cli;

/// <summary>
/// <c>kubectl-rpoi</c>: the renter's way into RPOI (keys, signed requests, sealed grants, ratings, receipts) and the
/// newcomer's (the protocol demo and the local sandbox). <see cref="RunAsync"/> is the whole program, so tests run it in-process.
/// </summary>
public static class Cli
{
    /// <summary>Parses <paramref name="args"/> and runs the command; returns one of <see cref="ExitCodes"/>.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CliEnvironment? environment = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        var root = BuildRoot(stdout, stderr, environment ?? CliEnvironment.Process);

        // kubectl's plugin completion (kubectl_complete-rpoi) passes the words as typed, flags included: answered before
        // parsing, because a half-typed flag is not an error here.
        if (args.Length > 0 && args[0] == CompletionCommand.CompleteVerb)
        {
            await stdout.WriteAsync(CompletionCommand.Complete(root, args[1..])).ConfigureAwait(false);
            return ExitCodes.Ok;
        }

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var message in ErrorLines(parse))
            {
                await stderr.WriteLineAsync($"error: {message}").ConfigureAwait(false);
            }

            await stderr.WriteLineAsync($"see '{CommandPath(parse.CommandResult)} --help'").ConfigureAwait(false);
            return ExitCodes.Usage;
        }

        if (parse.Action is HelpAction)
        {
            // Render help into a buffer to show the plugin's name (kubectl runs us as kubectl-rpoi) and the examples.
            using var buffer = new StringWriter();
            await parse.InvokeAsync(new InvocationConfiguration { Output = buffer, Error = stderr }, cancellationToken).ConfigureAwait(false);
            var text = buffer.ToString().Replace("  " + root.Name + " ", "  kubectl rpoi ", StringComparison.Ordinal);
            await stdout.WriteAsync(text).ConfigureAwait(false);
            if (Examples.For(CommandPath(parse.CommandResult)) is { Length: > 0 } examples)
            {
                await stdout.WriteLineAsync("Examples:").ConfigureAwait(false);
                foreach (var e in examples)
                {
                    await stdout.WriteLineAsync("  " + e).ConfigureAwait(false);
                }

                await stdout.WriteLineAsync().ConfigureAwait(false);
            }

            return ExitCodes.Ok;
        }

        var invocation = new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false };
        return await parse.InvokeAsync(invocation, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The command tree (every command, subcommand and flag): run here, walked by completion and the docs test.</summary>
    internal static RootCommand BuildRoot(TextWriter stdout, TextWriter stderr, CliEnvironment environment)
    {
        var factory = new CommandFactory(stdout, stderr, environment);
        var root = new RootCommand("kubectl rpoi: rent TPU chips under RPOI. Sign lease requests, open sealed access grants, rate, and check π's receipts.")
        {
            KeygenCommand.Create(factory),
            KeygenCommand.CreateKeys(factory),
            RequestCommand.Create(factory),
            AccessCommand.Create(factory),
            RateCommand.Create(factory),
            ReturnCommand.Create(factory),
            ListCommand.Create(factory),
            ClaimCommand.Create(factory),
            CancelCommand.Create(factory),
            StatusCommand.Create(factory),
            BalanceCommand.Create(factory),
            OffersCommand.Create(factory),
            ProofCommand.Create(factory),
            VerifyCommand.Create(factory),
            DemoCommand.Create(factory),
            SandboxCommand.Create(factory),
        };
        root.Subcommands.Add(CompletionCommand.Create(factory, root));
        factory.AddGlobalOptions(root);
        return root;
    }

    /// <summary>
    /// The parser's errors as one line each, in our words where its own would puzzle: a missing or unknown command
    /// names the commands there are, and a list of allowed values stays on the line.
    /// </summary>
    internal static IEnumerable<string> ErrorLines(ParseResult parse)
    {
        var command = parse.CommandResult.Command;
        var path = CommandPath(parse.CommandResult);
        var subcommands = string.Join(", ", command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name));
        var errors = parse.Errors.Select(e => e.Message).ToList();
        const string Required = "Required command was not provided.";
        var unknown = errors.Where(e => e.StartsWith("Unrecognized command or argument '", StringComparison.Ordinal)).ToList();
        if (subcommands.Length > 0 && parse.CommandResult.Tokens.Count == 0 && errors.Contains(Required))
        {
            // "kubectl rpoi sandbox frob": the first unknown word was meant as a command.
            if (unknown.Count > 0)
            {
                var word = unknown[0]["Unrecognized command or argument '".Length..].TrimEnd('.').TrimEnd('\'');
                yield return $"'{word}' is not a command of '{path}': use one of {subcommands}";
                yield break;
            }

            yield return $"'{path}' needs a command: one of {subcommands}";
            errors.Remove(Required);
        }

        foreach (var e in errors)
        {
            // System.CommandLine lists allowed values on lines of their own; one line per error is the rule here.
            yield return string.Join(' ', e.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                .Replace("' '", "', '", StringComparison.Ordinal);
        }
    }

    /// <summary>"kubectl rpoi sandbox down" for the command being parsed: its whole path, so the hint names the right command.</summary>
    internal static string CommandPath(System.CommandLine.Parsing.CommandResult result)
    {
        var names = new List<string>();
        for (var r = result; r is not null; r = r.Parent as System.CommandLine.Parsing.CommandResult)
        {
            if (r.Command is not RootCommand)
            {
                names.Insert(0, r.Command.Name);
            }
        }

        return string.Join(' ', ["kubectl rpoi", .. names]);
    }
}

/// <summary>Shared plumbing for the commands: the global flags, the writers, and error handling around every action.</summary>
internal sealed class CommandFactory(TextWriter stdout, TextWriter stderr, CliEnvironment env)
{
    public Option<string?> Kubeconfig { get; } = new("--kubeconfig") { Description = "Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).", Recursive = true };

    public Option<string?> Context { get; } = new("--context") { Description = "The kubeconfig context to use (default: the current context).", Recursive = true };

    public Option<string?> Namespace { get; } = new("--namespace", "-n") { Description = "The Lease's namespace (default: the context's namespace, then 'default').", Recursive = true };

    public Option<string?> Key { get; } = new("--key") { Description = "The renter's key file (default: $RPOI_KEY, then ~/.rpoi/renter.key).", Recursive = true };

    public Option<string?> OperatorNamespace { get; } = new("--operator-namespace") { Description = "Where the operator publishes its discovery ConfigMap rpoi-discovery (default: $RPOI_OPERATOR_NAMESPACE, then rpoi-system).", Recursive = true };

    public CliEnvironment Env => env;

    public void AddGlobalOptions(RootCommand root)
    {
        root.Options.Add(Kubeconfig);
        root.Options.Add(Context);
        root.Options.Add(Namespace);
        root.Options.Add(Key);
        root.Options.Add(OperatorNamespace);
    }

    /// <summary>Sets <paramref name="command"/>'s action: builds the context, runs <paramref name="body"/>, reports a <see cref="CliException"/> as its exit code.</summary>
    public void Handle(Command command, Func<CliContext, ParseResult, CancellationToken, Task<int>> body)
    {
        command.SetAction(async (parse, ct) =>
        {
            var flags = new GlobalFlags(parse.GetValue(Kubeconfig), parse.GetValue(Context), parse.GetValue(Namespace), parse.GetValue(Key), parse.GetValue(OperatorNamespace));
            using var context = new CliContext(stdout, stderr, env, flags);
            try
            {
                return await body(context, parse, ct).ConfigureAwait(false);
            }
            catch (CliException e)
            {
                await stderr.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
                if (e.ExitCode == ExitCodes.Usage)
                {
                    // A value checked in the command (not by the parser) gets the same pointer to the command's help.
                    await stderr.WriteLineAsync($"see '{Cli.CommandPath(parse.CommandResult)} --help'").ConfigureAwait(false);
                }

                return e.ExitCode;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                await stderr.WriteLineAsync("interrupted").ConfigureAwait(false);
                return ExitCodes.Interrupted;
            }
        });
    }
}
