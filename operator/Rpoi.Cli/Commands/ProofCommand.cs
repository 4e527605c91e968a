using System.CommandLine;
using System.Text.Json;
using k8s;
using Rpoi.Cli.Support;
using Rpoi.Escrow.Client;
using Rpoi.Operator.Entities;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;
using Rpoi.Protocol.Proof;
using RatingResource = Rpoi.Operator.Entities.Rating;

namespace Rpoi.Cli.Commands;

/// <summary>
/// <c>kubectl rpoi proof &lt;lease&gt; -o bundle.json</c>: gathers a settled lease's public evidence (docs/proof-bundle.md)
/// from the Lease, the renter's Rating, the keys in discovery and π's settlement, checks it with the same verifier as
/// <c>kubectl rpoi verify</c>, and writes it only when every check passes.
/// </summary>
internal static class ProofCommand
{
    public static Command Create(CommandFactory f)
    {
        var lease = new Argument<string>("lease") { Description = "The Lease's name." };
        var output = new Option<string?>("--output", "-o") { Description = "Where to write the bundle (JSON); '-' or no -o: stdout." };
        var escrowUrl = new Option<string?>("--escrow-url") { Description = "π's URL, to read the settlement and β's m''' from (default: from the operator's discovery ConfigMap)." };
        var escrowIdentity = new Option<string?>("--escrow-identity") { Description = "π's public identity file: the key the bundle's receipt is checked with (default: from discovery)." };
        var leaserIdentity = new Option<string?>("--leaser-identity") { Description = "β's public identity file: the key β's statements are checked with (default: from discovery)." };
        var command = new Command("proof", "Export a settled lease's proof bundle: E(m), H, σ's digest with β's signature, E(m''), π's receipt and the public keys, verified before it is written.")
        {
            lease, output, escrowUrl, escrowIdentity, leaserIdentity,
        };
        f.Handle(command, async (ctx, parse, ct) =>
        {
            var name = parse.GetValue(lease)!;
            var ns = ctx.Namespace;
            var (current, _) = await ctx.GetLeaseAsync(name, ct).ConfigureAwait(false);
            var em = CliContext.RequestOf(current);
            var h = RpoiEquations.TransactionHashOf(em);
            var status = current.Status;
            if (status?.TransactionHash is { } statusH && statusH != h.Hex)
            {
                throw new CliException(ExitCodes.VerificationFailed, $"lease {ns}/{name}: status.transactionHash {statusH} is not the hash of spec.request ({h.Hex}); the status does not belong to this request, so no proof can be made from it");
            }

            var needDiscovery = parse.GetValue(escrowUrl) is null || parse.GetValue(escrowIdentity) is null || parse.GetValue(leaserIdentity) is null;
            var discovery = needDiscovery ? await ctx.DiscoveryAsync(ct).ConfigureAwait(false) : null;
            var url = parse.GetValue(escrowUrl) ?? discovery!.Escrow.Url;
            var escrow = parse.GetValue(escrowIdentity) is { } ef ? await StatusCommand.EscrowIdentityAsync(ctx, ef, ct).ConfigureAwait(false) : discovery!.Escrow.ToIdentity().Identity!;
            var leaser = parse.GetValue(leaserIdentity) is { } lf ? await AccessCommand.LeaserIdentityAsync(ctx, lf, ct).ConfigureAwait(false) : discovery!.Leaser.ToIdentity(PartyRole.Leaser, "leaser").Identity!;

            // π is asked even when the Lease has a receipt: only π returns m''', and a renter's claim settles at π
            // without the Lease's status ever hearing of it.
            using var connection = BalanceCommand.Open(url);
            var settlement = await BalanceCommand.EscrowCallAsync(() => connection.Client.GetSettlementAsync(h.Hex, ct), url).ConfigureAwait(false);
            if (settlement is null)
            {
                var phase = status?.Phase?.ToString() ?? "not yet seen by the operator";
                var message = status?.Settlement is { Receipt.Length: > 0 }
                    ? $"lease {ns}/{name} carries a receipt in status.settlement, but π at {url} has no settlement under H {h.Hex}: this π is not the lease's escrow (check --escrow-url)"
                    : $"lease {ns}/{name} is not settled yet (phase {phase}; π at {url} has no settlement under H {h.Hex}): a proof bundle needs π's receipt; export it once the lease is Settled (kubectl wait --for=jsonpath='{{.status.phase}}'=Settled tpulease/{name} -n {ns}, or kubectl rpoi status {name} -n {ns})";
                throw new CliException(ExitCodes.NotFound, message);
            }

            var receipt = Parse<SettlementReceipt>(settlement.Receipt.GetRawText(), $"π's receipt for H {h.Hex}");
            if (status?.Settlement?.Receipt is { Length: > 0 } recorded)
            {
                // Two signed receipts for one H would be π contradicting itself: refuse rather than pick one.
                var fromLease = Parse<SettlementReceipt>(recorded, $"lease {ns}/{name} status.settlement.receipt");
                if (!fromLease.ToCanonicalBytes().AsSpan().SequenceEqual(receipt.ToCanonicalBytes()))
                {
                    throw new CliException(ExitCodes.VerificationFailed, $"lease {ns}/{name}'s status.settlement.receipt is not the receipt π at {url} returns for H {h.Hex}; do not trust either until the platform team explains it");
                }
            }

            var source = receipt.Payload.Source;
            if (source == SettlementSource.NeverServed)
            {
                throw new CliException(ExitCodes.NotFound, $"lease {ns}/{name} was refunded by π on β's never-served notice: it was never served, so there is no grant σ and no β signature over its digest to prove; the receipt itself is π's proof of the refund (kubectl rpoi status {name} -n {ns} verifies it)");
            }

            Signed<LeaserFinal>? final = null;
            Signed<GrantedLease>? granted = null;
            Signed<RenterRating>? rating;
            if (settlement.LeaserFinal is { } finalJson)
            {
                final = Parse<LeaserFinal>(finalJson.GetRawText(), $"π's leaserFinal for H {h.Hex}");
                // The E(m'') β forwarded is the one π settled on; a Rating applied later could only contradict the receipt.
                rating = final.Payload.RenterRating;
            }
            else if (source == SettlementSource.LeaserFinal)
            {
                throw new CliException(ExitCodes.NotFound, $"π at {url} settled lease {ns}/{name} from β's m_final but returns no leaserFinal (m'''): it settled before π kept m''' (or π is older than this CLI), so no β signature over σ's digest is available from π; a bundle cannot be made");
            }
            else
            {
                // The renter's fallback: β's signature over σ's digest exists only in m', opened by the renter.
                granted = await GrantedAsync(ctx, name, em, h, leaser, ct).ConfigureAwait(false);
                rating = await RenterRatingAsync(ctx, name, ct).ConfigureAwait(false)
                    ?? throw new CliException(ExitCodes.NotFound, $"π settled lease {ns}/{name} on your own claim, but there is no Rating {ns}/{Manifests.RenterRatingName(name)} with the E(m'') you claimed with (a claim with --score does not keep one): a renter-fallback bundle needs it");
                ctx.Err.WriteLine($"warning: this bundle carries m', which holds σ with the lease's ServiceAccount token (revoked when the lease ended); share it as you would the kubeconfig");
            }

            var grantDigest = status?.GrantDigest is { Length: > 0 } d ? d : final?.Payload.GrantDigest ?? (granted is null ? null : RpoiEquations.GrantDigest(granted.Payload.Grant));
            var bundle = new ProofBundle(
                ProofBundle.CurrentFormat,
                em,
                h.Hex,
                grantDigest ?? "",
                new ProofKeys(em.Payload.Renter, leaser.ToPublicKeys(), escrow.ToPublicKeys()),
                granted,
                rating,
                final,
                receipt);

            var checks = ProofBundleVerifier.Verify(bundle);
            var failed = checks.Where(c => !c.Ok).ToList();
            if (failed.Count > 0)
            {
                foreach (var c in failed)
                {
                    ctx.Err.WriteLine($"FAILED  {c.Name}  {c.Reason}");
                }

                throw new CliException(ExitCodes.VerificationFailed,
                    $"the bundle assembled for lease {ns}/{name} does not verify ({failed.Count} of {checks.Count} checks failed, first '{failed[0].Name}': {failed[0].Reason}); nothing was written. Check the keys (--leaser-identity, --escrow-identity) against the lease's parties");
            }

            var json = bundle.ToJson() + "\n";
            if (parse.GetValue(output) is not { Length: > 0 } target || target == "-")
            {
                ctx.Out.Write(json);
                return ExitCodes.Ok;
            }

            var path = ctx.Env.Resolve(target);
            WriteWhole(path, json);
            ctx.Out.WriteLine($"wrote {path}: lease {ns}/{name}, H {h.Hex}, settled by {source}, all {checks.Count} checks ok; anyone can check it with: kubectl rpoi verify {target}");
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>m' for a renter-fallback bundle: opened from the access Secret while it exists, else what <c>access</c> kept on this machine.</summary>
    private static async Task<Signed<GrantedLease>> GrantedAsync(CliContext ctx, string name, Signed<LeaseRequest> em, TransactionHash h, PartyIdentity leaser, CancellationToken ct)
    {
        var ns = ctx.Namespace;
        var secret = $"{ns}/{Operator.PhaseOne.Grant.GrantIssuer.SecretName(name)}";
        string secretState;
        try
        {
            // Opening needs the renter's key; the Secret is read first by OpenAsync, so a missing one is NotFound.
            var opened = await AccessCommand.OpenAsync(ctx, name, em, ctx.LoadKeys(), leaser, ct).ConfigureAwait(false);
            return opened.Granted;
        }
        catch (CliException e) when (e.ExitCode == ExitCodes.NotFound)
        {
            secretState = File.Exists(ctx.KeyPath) ? $"the access Secret {secret} is gone (deleted at the return)" : $"no renter key at {ctx.KeyPath} to open the access Secret {secret} with";
        }

        var cachePath = GrantCache.PathFor(ctx.Env, ns, name);
        var cached = GrantCache.Load(ctx.Env, ns, name);
        if (cached is { Granted: { Length: > 0 } m } && cached.H == h.Hex)
        {
            var parsed = Signed<GrantedLease>.Parse(m);
            if (parsed.IsOk)
            {
                return parsed.Value;
            }

            throw new CliException(ExitCodes.VerificationFailed, $"{cachePath} holds no valid m' ({parsed.Message}); it was edited; no β signature over σ's digest is available for lease {ns}/{name}");
        }

        var cacheState = cached is null
            ? $"'kubectl rpoi access {name} -n {ns}' was not run on this machine while the lease was Active (nothing at {cachePath})"
            : cached.H != h.Hex ? $"{cachePath} is for another request (H {cached.H})" : $"{cachePath} was written by an older 'kubectl rpoi access' that kept only σ's digest, not β's signed m'";
        throw new CliException(ExitCodes.NotFound,
            $"no β signature over σ's digest is available for lease {ns}/{name}: π settled it on the renter's claim, so π holds no m''' from β; {secretState}; and {cacheState}. A proof bundle cannot be made without β's signature (run 'kubectl rpoi access' while a lease is Active to keep m' for later proofs)");
    }

    /// <summary>E(m'') from the renter's Rating resource, or null when there is none.</summary>
    private static async Task<Signed<RenterRating>?> RenterRatingAsync(CliContext ctx, string name, CancellationToken ct)
    {
        var ns = ctx.Namespace;
        var ratingName = Manifests.RenterRatingName(name);
        object raw;
        try
        {
            raw = await ctx.CallAsync(
                () => ctx.Kube().CustomObjects.GetNamespacedCustomObjectAsync(Lease.Group, Lease.Version, ns, RatingResource.Plural, ratingName, ct),
                $"rating {ns}/{ratingName}", "").ConfigureAwait(false);
        }
        catch (CliException e) when (e.ExitCode == ExitCodes.NotFound)
        {
            return null;
        }

        var element = raw is JsonElement je ? je : JsonSerializer.SerializeToElement(raw);
        var resource = KubernetesJson.Deserialize<RatingResource>(element.GetRawText());
        return resource.Spec.SignedRating is { } signed ? Parse<RenterRating>(JsonSerializer.Serialize(signed), $"rating {ns}/{ratingName} spec.signed") : null;
    }

    private static Signed<T> Parse<T>(string json, string what)
        where T : class
    {
        var parsed = Signed<T>.Parse(json);
        return parsed.IsOk ? parsed.Value : throw new CliException(ExitCodes.VerificationFailed, $"{what} is not a signed protocol message: {parsed.Message}");
    }

    /// <summary>Writes through a temporary file and a rename, so a failed write never leaves half a bundle at <paramref name="path"/>.</summary>
    private static void WriteWhole(string path, string content)
    {
        var dir = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        try
        {
            File.WriteAllText(temp, content);
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }
}
