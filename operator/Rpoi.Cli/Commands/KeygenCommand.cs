using System.CommandLine;
using Rpoi.Protocol.Keys;

namespace Rpoi.Cli.Commands;

/// <summary><c>kubectl rpoi keygen</c>: a renter's Ed25519 + X25519 key pair in a 0600 key file.</summary>
internal static class KeygenCommand
{
    public static Command Create(CommandFactory f) => Create(f, "keygen");

    /// <summary><c>kubectl rpoi keys new</c>: the same as keygen, under the name the Protocol's key-file messages use.</summary>
    public static Command CreateKeys(CommandFactory f) =>
        new("keys", "Manage the renter's key file.") { Create(f, "new") };

    private static Command Create(CommandFactory f, string name)
    {
        var output = new Option<string?>("--out", "-o") { Description = "Where to write the key file (default: --key, $RPOI_KEY, then ~/.rpoi/renter.key)." };
        var force = new Option<bool>("--force") { Description = "Overwrite an existing key file (the old keys are lost: leases signed with them can no longer be opened)." };
        var identity = new Option<string?>("--identity-out") { Description = "Also write the public identity (no private keys) to this file, to share or to document." };
        var command = new Command(name, "Create the renter's key pair (private keys stay on this machine) and print its address.") { output, force, identity };
        f.Handle(command, (ctx, parse, ct) =>
        {
            var path = parse.GetValue(output) is { Length: > 0 } o ? ctx.Env.Resolve(o) : ctx.KeyPath;
            if (File.Exists(path) && !parse.GetValue(force))
            {
                throw new CliException(ExitCodes.Conflict, $"{path} already exists; keep it (leases signed with it need it), choose another --out, or pass --force to replace it");
            }

            if (Directory.Exists(path))
            {
                throw new CliException(ExitCodes.Usage, $"--out {path} is a directory; give a file name such as {Path.Combine(path, "renter.key")}");
            }

            var keys = PartyKeyPair.Generate(PartyRole.Renter);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            if (File.Exists(path))
            {
                File.Delete(path);
            }

            KeyFile.Save(path, keys, ctx.Time.GetUtcNow());
            if (parse.GetValue(identity) is { Length: > 0 } idPath)
            {
                File.WriteAllText(ctx.Env.Resolve(idPath), keys.Identity.ToJson() + "\n");
            }

            ctx.Out.WriteLine($"wrote renter key file {path} (mode 0600): keep it private, never put it in the cluster");
            ctx.Out.WriteLine($"address: {keys.Identity.Address}");
            ctx.Out.WriteLine($"key id:  {keys.Identity.KeyId}");
            return Task.FromResult(ExitCodes.Ok);
        });
        return command;
    }
}
