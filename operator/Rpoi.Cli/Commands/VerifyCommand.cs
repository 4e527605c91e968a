using System.CommandLine;
using Rpoi.Protocol.Proof;

namespace Rpoi.Cli.Commands;

/// <summary><c>kubectl rpoi verify bundle.json</c>: checks a lease's proof bundle offline (no cluster, no π).</summary>
internal static class VerifyCommand
{
    public static Command Create(CommandFactory f)
    {
        var file = new Argument<string>("bundle") { Description = "The proof bundle (JSON, format rpoi.proof-bundle/v1; docs/proof-bundle.md)." };
        var command = new Command("verify", "Check every signature, hash and binding of a lease's proof bundle, offline; name each check that fails.") { file };
        f.Handle(command, async (ctx, parse, ct) =>
        {
            var path = ctx.Env.Resolve(parse.GetValue(file)!);
            if (!File.Exists(path))
            {
                throw new CliException(ExitCodes.NotFound, $"bundle {path} does not exist; give the file 'kubectl rpoi proof <lease> -o bundle.json' wrote");
            }

            var parsed = ProofBundle.Parse(await File.ReadAllTextAsync(path, ct).ConfigureAwait(false));
            if (!parsed.TryGetValue(out var bundle))
            {
                throw new CliException(ExitCodes.VerificationFailed, $"{path}: {parsed.Message}");
            }

            var checks = ProofBundleVerifier.Verify(bundle);
            var width = checks.Max(c => c.Name.Length);
            foreach (var c in checks)
            {
                ctx.Out.WriteLine(c.Ok ? $"ok      {c.Name}" : $"FAILED  {c.Name.PadRight(width)}  {c.Reason}");
            }

            var failed = checks.Where(c => !c.Ok).ToList();
            if (failed.Count > 0)
            {
                throw new CliException(ExitCodes.VerificationFailed, $"the bundle does not verify: {failed.Count} of {checks.Count} checks failed, first '{failed[0].Name}': {failed[0].Reason}");
            }

            ctx.Out.WriteLine($"verified: lease {bundle.Request.Payload.Lease.Namespace}/{bundle.Request.Payload.Lease.Name}, H {bundle.H}, all {checks.Count} checks ok");
            return ExitCodes.Ok;
        });
        return command;
    }
}
