using System.CommandLine;
using System.Text.Json.Nodes;
using k8s;
using Rpoi.Cli.Support;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Grant;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Cli.Commands;

/// <summary><c>kubectl rpoi access &lt;lease&gt;</c>: opens the sealed grant Enc(m') with the renter's key (eq. 4) and checks β's signature.</summary>
internal static class AccessCommand
{
    public static Command Create(CommandFactory f)
    {
        var lease = new Argument<string>("lease") { Description = "The Lease's name." };
        var wait = new Option<bool>("--wait") { Description = "Show progress and wait until the Lease is Active." };
        var timeout = new Option<string>("--timeout") { Description = "How long --wait waits (e.g. 90s, 5m).", DefaultValueFactory = _ => "5m" };
        var output = new Option<string?>("--kubeconfig-out") { Description = "Where to write the lease's kubeconfig (default: ./<lease>.kubeconfig, mode 0600)." };
        var podTemplate = new Option<string?>("--pod-template-out")
        {
            Description = "Also write a manifest ready to apply to this file (YAML): the pod template for a single-host slice; for a multi-host slice one Pod per host (a headless Service and an indexed Job with the TPU worker environment).",
        };
        var jobSet = new Option<bool>("--jobset") { Description = "For a multi-host slice write a JobSet (jobset.x-k8s.io/v1alpha2; needs the JobSet controller installed) instead of the indexed Job and Service." };
        var leaserIdentity = new Option<string?>("--leaser-identity") { Description = "β's public identity file, instead of the one in the operator's discovery ConfigMap." };
        var command = new Command("access", "Open the Lease's sealed access grant with your key, verify β's signature, write the kubeconfig and show where to run.")
        {
            lease, wait, timeout, output, podTemplate, jobSet, leaserIdentity,
        };
        f.Handle(command, async (ctx, parse, ct) =>
        {
            var name = parse.GetValue(lease)!;
            if (!Values.TryParseDuration(parse.GetValue(timeout), out var timeoutSeconds))
            {
                throw new CliException(ExitCodes.Usage, $"--timeout: '{parse.GetValue(timeout)}' is not a duration: give seconds (90) or 90s, 5m");
            }

            var keys = ctx.LoadKeys();
            var ns = ctx.Namespace;
            var (current, _) = await ctx.GetLeaseAsync(name, ct).ConfigureAwait(false);
            if (current.Status?.Phase is LeasePhase.Returning or LeasePhase.AwaitingRatings or LeasePhase.Settling or LeasePhase.Settled)
            {
                // Ended: the grant is gone for good, so waiting could only run out the timeout.
                throw new CliException(ExitCodes.LeaseEnded, $"lease {ns}/{name} has ended (phase {current.Status.Phase}): its access grant was revoked at the return; see 'kubectl rpoi status {name} -n {ns}'");
            }

            if (current.Status?.Phase is LeasePhase.Failed)
            {
                var ready = current.Status.Conditions?.FirstOrDefault(c => c.Type == "Ready");
                throw new CliException(ExitCodes.LeaseFailed, $"lease {ns}/{name} failed ({ready?.Reason}: {ready?.Message}): it will never be Active; create a new Lease (kubectl rpoi request ...)");
            }

            if (parse.GetValue(wait))
            {
                current = await LeaseWaiter.WaitAsync(ctx, name, new HashSet<LeasePhase> { LeasePhase.Active }, TimeSpan.FromSeconds(timeoutSeconds), ct).ConfigureAwait(false);
            }
            else if (current.Status?.Phase is not LeasePhase.Active)
            {
                var phase = current.Status?.Phase?.ToString() ?? "not yet seen by the operator";
                throw new CliException(ExitCodes.NotFound,
                    $"lease {ns}/{name} is {phase}, not ready yet: the access grant is written when it becomes Active; rerun with --wait to wait for it");
            }

            var em = CliContext.RequestOf(current);
            var leaser = await LeaserIdentityAsync(ctx, parse.GetValue(leaserIdentity), ct).ConfigureAwait(false);
            var opened = await OpenAsync(ctx, name, em, keys, leaser, ct).ConfigureAwait(false);
            var grant = opened.Grant;

            var kubeconfigPath = parse.GetValue(output) is { Length: > 0 } o ? ctx.Env.Resolve(o) : Path.Combine(ctx.Env.WorkingDirectory, name + ".kubeconfig");
            WritePrivate(kubeconfigPath, grant.Kubeconfig);
            new GrantCache(opened.H.Hex, opened.GrantDigest, leaser.Address, opened.Granted.ToJson()).Save(ctx.Env, ns, name);
            var template = Yaml.Write(JsonNode.Parse(grant.PodTemplate.GetRawText())!);
            var slice = SliceManifests.SliceOf(grant);
            string? manifestPath = null;
            if (parse.GetValue(podTemplate) is { Length: > 0 } p)
            {
                manifestPath = ctx.Env.Resolve(p);
                File.WriteAllText(manifestPath, SliceManifests.ToYaml(SliceManifests.For(grant, name, parse.GetValue(jobSet))));
            }

            var w = ctx.Out;
            w.WriteLine($"lease {ns}/{name}: access grant opened with your key and signed by β {leaser.Address} (key {leaser.KeyId})");
            w.WriteLine($"transaction hash H: {opened.H.Hex}");
            w.WriteLine($"grant digest:       {opened.GrantDigest}");
            w.WriteLine($"nodes:              {string.Join(", ", grant.NodeNames)} (node pool {grant.NodePool})");
            w.WriteLine($"accelerator:        {grant.Accelerator}, topology {grant.Topology}");
            w.WriteLine($"slice:              {slice.Hosts} host(s) x {slice.ChipsPerHost} chips{(slice.Hosts > 1 ? ": run one pod per host (--pod-template-out writes them)" : "")}");
            w.WriteLine($"valid:              {UtcText(grant.ValidFrom)} .. {UtcText(grant.ValidUntil)}");
            w.WriteLine($"kubeconfig:         {kubeconfigPath} (a token for namespace {ns} only, until the lease ends)");
            w.WriteLine("node selector:");
            foreach (var (k, v) in grant.NodeSelector.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                w.WriteLine($"  {k}: {v}");
            }

            var t = grant.Toleration;
            w.WriteLine($"toleration:         {t.Key}{(t.Value is null ? "" : "=" + t.Value)}:{t.Effect} (operator {t.Operator})");
            w.WriteLine("pod template:");
            foreach (var line in template.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                w.WriteLine("  " + line);
            }

            if (manifestPath is not null)
            {
                var what = slice.Hosts == 1 ? "the pod" : parse.GetValue(jobSet) ? $"a JobSet of {slice.Hosts} pods (needs the JobSet controller)" : $"a headless Service and an indexed Job of {slice.Hosts} pods";
                w.WriteLine($"manifest:           {manifestPath} ({what})");
            }

            w.WriteLine($"next: kubectl --kubeconfig {kubeconfigPath} get pods");
            return ExitCodes.Ok;
        });
        return command;
    }

    internal static async Task<PartyIdentity> LeaserIdentityAsync(CliContext ctx, string? identityFile, CancellationToken ct)
    {
        if (identityFile is { Length: > 0 })
        {
            var path = ctx.Env.Resolve(identityFile);
            if (!File.Exists(path))
            {
                throw new CliException(ExitCodes.NotFound, $"--leaser-identity {path} does not exist");
            }

            var id = PartyIdentity.FromJson(await File.ReadAllTextAsync(path, ct).ConfigureAwait(false));
            return id.IsOk ? id.Value : throw new CliException(ExitCodes.Usage, $"--leaser-identity {path}: {id.Message}");
        }

        var doc = await ctx.DiscoveryAsync(ct).ConfigureAwait(false);
        return doc.Leaser.ToIdentity(PartyRole.Leaser, "leaser").Identity!;
    }

    /// <summary>Reads <c>&lt;lease&gt;-access</c> and opens it (eq. 4); every failure is exit 4 with the reason.</summary>
    internal static async Task<OpenedGrant> OpenAsync(CliContext ctx, string name, Signed<LeaseRequest> em, PartyKeyPair keys, PartyIdentity leaser, CancellationToken ct)
    {
        var ns = ctx.Namespace;
        if (em.Payload.Renter.SigningKey != keys.Identity.SigningKeyBase64)
        {
            var requested = PartyIdentity.FromPublicKeys(em.Payload.Renter);
            throw new CliException(ExitCodes.VerificationFailed,
                $"lease {ns}/{name} was requested by renter {(requested.IsOk ? requested.Value.Address : "?")}, but --key {ctx.KeyPath} is {keys.Identity.Address}: only the requester's key opens the grant; pass the key file you signed the request with");
        }

        if (em.Payload.Leaser != leaser.Address)
        {
            throw new CliException(ExitCodes.VerificationFailed,
                $"lease {ns}/{name} names leaser {em.Payload.Leaser}, but this cluster's operator is {leaser.Address}: the grant cannot come from the leaser you asked; check the kubeconfig context");
        }

        var secretName = GrantIssuer.SecretName(name);
        var secret = await ctx.CallAsync(() => ctx.Kube().CoreV1.ReadNamespacedSecretAsync(secretName, ns, cancellationToken: ct), $"secret {ns}/{secretName}",
            "the operator writes it when the lease becomes Active and deletes it at the return").ConfigureAwait(false);
        if (secret.Data is null || !secret.Data.TryGetValue(GrantIssuer.DataKey, out var bytes))
        {
            throw new CliException(ExitCodes.VerificationFailed, $"secret {ns}/{secretName} has no '{GrantIssuer.DataKey}' key: it is not an RPOI access Secret");
        }

        var sealedGrant = SealedMessage.Parse(bytes);
        if (!sealedGrant.IsOk)
        {
            throw new CliException(ExitCodes.VerificationFailed, $"secret {ns}/{secretName}: {sealedGrant.Message}");
        }

        var opened = RpoiEquations.OpenGrant(sealedGrant.Value, keys, em, leaser);
        return opened.IsOk
            ? opened.Value
            : throw new CliException(ExitCodes.VerificationFailed, $"the access grant in secret {ns}/{secretName} did not verify ({opened.Reason}): {opened.Message}");
    }

    internal static void WritePrivate(string path, string content)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var stream = new FileStream(path, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(content);
        }

        if (!OperatingSystem.IsWindows())
        {
            // UnixCreateMode applies only to new files; an existing file keeps its mode otherwise.
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    internal static string UtcText(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
}
