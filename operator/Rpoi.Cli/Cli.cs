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
        var factory = new CommandFactory(stdout, stderr, environment ?? CliEnvironment.Process);
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

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
            {
                await stderr.WriteLineAsync($"error: {error.Message}").ConfigureAwait(false);
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
