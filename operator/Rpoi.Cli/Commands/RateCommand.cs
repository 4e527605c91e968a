using System.CommandLine;
using System.Text.RegularExpressions;
using Rpoi.Cli.Support;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseTwo;
using Rpoi.Protocol;
using Rpoi.Protocol.Messages;
using Rating = Rpoi.Protocol.Messages.Rating;
using RatingResource = Rpoi.Operator.Entities.Rating;

namespace Rpoi.Cli.Commands;

/// <summary><c>kubectl rpoi rate &lt;lease&gt; --score N</c>: signs E(m'') = sign_R(m + digest(σ) + Ra_R) (eq. 18) into a Rating.</summary>
internal static partial class RateCommand
{
    public static Command Create(CommandFactory f)
    {
        var lease = new Argument<string>("lease") { Description = "The Lease's name." };
        var score = Flags.WholeNumber("--score", 1, 5, "from 1 to 5");
        score.Description = "Your rating of the leaser, 1 (worst) to 5 (best).";
        score.Required = true;
        var comment = new Option<string>("--comment") { Description = "A comment (at most 1024 characters).", DefaultValueFactory = _ => "" };
        var digest = new Option<string?>("--grant-digest") { Description = "The hex SHA-256 of σ, instead of the one from the access Secret, 'kubectl rpoi access' on this machine, or the Lease's status.grantDigest." };
        var leaserIdentity = new Option<string?>("--leaser-identity") { Description = "β's public identity file, instead of the one in the operator's discovery ConfigMap." };
        var apply = new Option<bool>("--apply") { Description = "Create the Rating in the cluster instead of printing it." };
        var format = new Option<string>("--output", "-o") { Description = "Print format: yaml or json.", DefaultValueFactory = _ => "yaml" };
        format.AcceptOnlyFromAmong("yaml", "json");
        var command = new Command("rate", "Rate the leaser after the lease: sign E(m'') and print or --apply the Rating.")
        {
            lease, score, comment, digest, leaserIdentity, apply, format,
        };
        f.Handle(command, async (ctx, parse, ct) =>
        {
            var name = parse.GetValue(lease)!;
            var s = parse.GetValue(score);
            if (s is < 1 or > 5)
            {
                throw new CliException(ExitCodes.Usage, $"--score must be from 1 to 5, got {s}");
            }

            var text = parse.GetValue(comment) ?? "";
            if (text.Length > 1024)
            {
                throw new CliException(ExitCodes.Usage, $"--comment is {text.Length} characters long; at most 1024 fit in a Rating");
            }

            var given = parse.GetValue(digest);
            if (given is not null && !HexDigest().IsMatch(given))
            {
                throw new CliException(ExitCodes.Usage, $"--grant-digest '{given}' is not 64 lower-case hex characters (the 'grant digest' line of 'kubectl rpoi access')");
            }

            var keys = ctx.LoadKeys();
            var ns = ctx.Namespace;
            var (current, _) = await ctx.GetLeaseAsync(name, ct).ConfigureAwait(false);
            var em = CliContext.RequestOf(current);
            var grantDigest = given ?? await DigestAsync(ctx, current, em, keys, parse.GetValue(leaserIdentity), ct).ConfigureAwait(false);
            if (LeaserRatingFacts.FactsOf(current.Status) is { Length: > 0 } incidents)
            {
                // The operator puts the same lines into β's rating; the renter's own rating can cite them.
                ctx.Err.WriteLine($"note: lease {ns}/{name}'s nodes had incidents while it was Active (status.nodeIncidents); cite them in --comment if they matter to your score:\n{incidents}");
            }


            var signed = RpoiEquations.SignRenterRating(em, grantDigest, new Rating(s, text, ctx.Time.GetUtcNow()), keys);
            var check = RpoiEquations.VerifyRenterRating(signed, em, grantDigest);
            if (!check.IsOk)
            {
                throw new CliException(ExitCodes.VerificationFailed, $"the rating does not verify against lease {ns}/{name} ({check.Reason}): {check.Message}");
            }

            var manifest = Manifests.RenterRating(ns, name, signed);
            if (!parse.GetValue(apply))
            {
                ctx.Out.Write(Manifests.Render(manifest, parse.GetValue(format)!,
                [
                    $"RPOI renter rating E(m'') of lease {ns}/{name}, signed by {keys.Identity.Address}",
                    $"transaction hash H = {signed.Payload.H}, grant digest = {grantDigest}",
                ]));
                return ExitCodes.Ok;
            }

            var ratingName = Manifests.RenterRatingName(name);
            await ctx.CreateAsync(manifest, Lease.Group, Lease.Version, RatingResource.Plural, ns, $"rating {ns}/{ratingName}", ct).ConfigureAwait(false);
            ctx.Out.WriteLine($"rating.rpoi.io/{ratingName} created in {ns} (score {s})");
            ctx.Out.WriteLine($"next: kubectl rpoi status {name} -n {ns}");
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>
    /// digest(σ), most trusted source first: the access Secret opened and verified now, what this machine verified when
    /// it opened the grant, then the operator's record in <c>status.grantDigest</c> (β's word, which the renter did not
    /// verify: said on stderr). A verified digest that differs from the operator's record is warned about, because the
    /// operator refuses a rating that names another digest.
    /// </summary>
    internal static async Task<string> DigestAsync(CliContext ctx, Lease lease, Signed<LeaseRequest> em, Protocol.Keys.PartyKeyPair keys, string? leaserIdentity, CancellationToken ct)
    {
        var ns = ctx.Namespace;
        var name = lease.Metadata.Name;
        var h = RpoiEquations.TransactionHashOf(em).Hex;
        var recorded = lease.Status?.TransactionHash == h && lease.Status.GrantDigest is { } d && HexDigest().IsMatch(d) ? d : null;
        string verified;
        try
        {
            var leaser = await AccessCommand.LeaserIdentityAsync(ctx, leaserIdentity, ct).ConfigureAwait(false);
            var opened = await AccessCommand.OpenAsync(ctx, name, em, keys, leaser, ct).ConfigureAwait(false);
            verified = opened.GrantDigest;
        }
        catch (CliException e) when (e.ExitCode == ExitCodes.NotFound)
        {
            // After the return the Secret is gone: use the digest this machine verified when it opened the grant.
            var cached = GrantCache.Load(ctx.Env, ns, name);
            if (cached is not null && cached.H == h)
            {
                verified = cached.GrantDigest;
            }
            else if (recorded is not null)
            {
                ctx.Err.WriteLine($"note: the access Secret is gone and 'kubectl rpoi access' was not run on this machine; rating against the grant digest the operator recorded in lease {ns}/{name}'s status.grantDigest ({recorded}), which this machine did not verify");
                return recorded;
            }
            else
            {
                throw new CliException(ExitCodes.NotFound,
                    $"cannot find the digest of lease {ns}/{name}'s grant: the access Secret is gone, 'kubectl rpoi access' was not run on this machine while the lease was Active, and the Lease has no status.grantDigest for H {h}; pass --grant-digest (the 'grant digest' line of 'kubectl rpoi access'; for a Lease made Active by an older operator, its rpoi.io/grant-digest annotation, if you trust it)", e);
            }
        }

        if (recorded is not null && recorded != verified)
        {
            ctx.Err.WriteLine($"warning: the grant this machine opened has digest {verified}, but lease {ns}/{name}'s status.grantDigest is {recorded}: the operator will refuse this rating (GrantDigestMismatch)");
        }

        return verified;
    }

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex HexDigest();
}
