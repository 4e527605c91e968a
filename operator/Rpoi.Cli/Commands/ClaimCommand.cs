using System.CommandLine;
using System.Text.Json;
using k8s;
using Rpoi.Cli.Support;
using Rpoi.Escrow.Client;
using Rpoi.Operator.Entities;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;
using Rating = Rpoi.Protocol.Messages.Rating;
using RatingResource = Rpoi.Operator.Entities.Rating;

namespace Rpoi.Cli.Commands;

/// <summary>
/// <c>kubectl rpoi claim &lt;lease&gt;</c>: the renter's fallback at π. When β never settles, R sends its own signed rating
/// E(m'') to π (<c>POST /v1/claims</c>) once the claim window has passed, and π applies the row "renter rated, leaser did
/// not": ρ and ω both back to R. The signature on E(m'') is the whole authorisation, so no call credential is needed.
/// </summary>
internal static class ClaimCommand
{
    public static Command Create(CommandFactory f)
    {
        var lease = new Argument<string>("lease") { Description = "The Lease's name." };
        var score = Flags.WholeNumber("--score", 1, 5, "from 1 to 5");
        score.Description = "When you have no Rating in the cluster yet: sign E(m'') with this score (1 to 5) for the claim.";
        var comment = new Option<string>("--comment") { Description = "With --score: a comment (at most 1024 characters).", DefaultValueFactory = _ => "" };
        var escrowUrl = new Option<string?>("--escrow-url") { Description = "π's URL (default: from the operator's discovery ConfigMap)." };
        var escrowIdentity = new Option<string?>("--escrow-identity") { Description = "π's public identity file to verify the receipt with (default: from discovery)." };
        var leaserIdentity = new Option<string?>("--leaser-identity") { Description = "With --score: β's public identity file, to verify the grant the rating names (default: from discovery)." };
        var output = ReadOutput.Create();
        var command = new Command("claim", "Claim your deposit and rent back from π when the leaser never settled (the renter's fallback, after the claim window).")
        {
            lease, score, comment, escrowUrl, escrowIdentity, leaserIdentity, output,
        };
        f.Handle(command, async (ctx, parse, ct) =>
        {
            var name = parse.GetValue(lease)!;
            var text = parse.GetValue(comment) ?? "";
            if (text.Length > 1024)
            {
                throw new CliException(ExitCodes.Usage, $"--comment is {text.Length} characters long; at most 1024 fit in a rating");
            }

            var keys = ctx.LoadKeys();
            var ns = ctx.Namespace;
            var (current, _) = await ctx.GetLeaseAsync(name, ct).ConfigureAwait(false);
            var em = CliContext.RequestOf(current);
            var mine = RpoiEquations.VerifyRequest(em, keys.Identity);
            if (!mine.IsOk)
            {
                throw new CliException(ExitCodes.VerificationFailed, $"lease {ns}/{name} was not signed by your key {keys.Identity.Address} ({mine.Reason}); only its renter can claim: pass that renter's --key");
            }

            var h = mine.Value.H;
            var rating = await RenterRatingAsync(ctx, current, em, keys, parse.GetValue(score), text, parse.GetValue(leaserIdentity), ct).ConfigureAwait(false);

            var discovery = parse.GetValue(escrowUrl) is null || parse.GetValue(escrowIdentity) is null ? await ctx.DiscoveryAsync(ct).ConfigureAwait(false) : null;
            var url = parse.GetValue(escrowUrl) ?? discovery!.Escrow.Url;
            var escrow = parse.GetValue(escrowIdentity) is { } file ? await StatusCommand.EscrowIdentityAsync(ctx, file, ct).ConfigureAwait(false) : discovery!.Escrow.ToIdentity().Identity!;
            if (escrow.Address != em.Payload.Escrow)
            {
                throw new CliException(ExitCodes.VerificationFailed, $"the request names escrow {em.Payload.Escrow} but the escrow identity given is {escrow.Address}; pass π's identity with --escrow-identity");
            }

            using var connection = BalanceCommand.Open(url);
            var pledge = await BalanceCommand.EscrowCallAsync(() => connection.Client.GetPledgeAsync(h.Hex, ct), url).ConfigureAwait(false)
                ?? throw new CliException(ExitCodes.NotFound, $"nothing to claim: π at {url} holds no pledge under H {h.Hex} for lease {ns}/{name} (it was never pledged, so nothing was charged; kubectl rpoi balance shows your funds)");
            SettlementView settlement;
            if (pledge.State == "Held")
            {
                try
                {
                    settlement = await BalanceCommand.EscrowCallAsync(() => connection.Client.ClaimAsync(rating, ct), url).ConfigureAwait(false);
                }
                catch (CliException e) when (e.InnerException is EscrowException { Reason: EscrowReasons.ClaimTooEarly })
                {
                    throw new CliException(ExitCodes.EscrowRefused, $"the claim window is not over yet: β may still settle lease {ns}/{name} until {pledge.ClaimableAfter} (signing time + duration + π's rating window + grace); claim after that (π said: {e.InnerException.Message})", e);
                }
            }
            else
            {
                settlement = await BalanceCommand.EscrowCallAsync(() => connection.Client.GetSettlementAsync(h.Hex, ct), url).ConfigureAwait(false)
                    ?? throw new CliException(ExitCodes.EscrowRefused, $"π at {url} says the pledge under H {h.Hex} is {pledge.State} but has no settlement for it; ask the platform team");
            }

            var receipt = StatusCommand.VerifyReceipt(settlement.Receipt.GetRawText(), escrow, h);
            var claimed = receipt.Source == SettlementSource.RenterFallback && pledge.State == "Held";
            var view = new ClaimView(ns, name, h.Hex, claimed, url, ReceiptView.Of(receipt, escrow));
            if (!ReadOutput.TryWrite(ctx.Out, parse.GetValue(output), view))
            {
                ctx.Out.WriteLine(claimed
                    ? $"claimed: π settled lease {ns}/{name} on your rating (renter fallback); receipt verified: signed by π {escrow.Address} for H {h.Hex}"
                    : $"lease {ns}/{name} was already settled by π ({receipt.Source}) at {AccessCommand.UtcText(receipt.Time)}; receipt verified: signed by π {escrow.Address} for H {h.Hex}");
                StatusCommand.WriteReceipt(ctx.Out, view.Receipt);
            }

            if (claimed)
            {
                return ExitCodes.Ok;
            }

            var withheld = receipt.Decision.Deposit == DepositDisposition.Withheld
                ? $"; your deposit ρ is withheld by π under H {h.Hex}, and only π's admin can release withheld funds: ask the platform team to adjudicate (POST /v1/withheld/release), citing H"
                : "";
            ctx.Err.WriteLine($"error: nothing to claim: π already settled H {h.Hex} (see the receipt above){withheld}");
            return ExitCodes.Conflict;
        });
        return command;
    }

    /// <summary>E(m''): the renter's Rating in the cluster when there is one, else signed now with <c>--score</c>.</summary>
    private static async Task<Signed<RenterRating>> RenterRatingAsync(CliContext ctx, Lease lease, Signed<LeaseRequest> em, PartyKeyPair keys, int score, string comment, string? leaserIdentity, CancellationToken ct)
    {
        var ns = ctx.Namespace;
        var name = lease.Metadata.Name;
        var ratingName = Manifests.RenterRatingName(name);
        RatingResource? resource = null;
        try
        {
            var raw = await ctx.CallAsync(
                () => ctx.Kube().CustomObjects.GetNamespacedCustomObjectAsync(Lease.Group, Lease.Version, ns, RatingResource.Plural, ratingName, ct),
                $"rating {ns}/{ratingName}", "").ConfigureAwait(false);
            var element = raw is JsonElement e ? e : JsonSerializer.SerializeToElement(raw);
            resource = KubernetesJson.Deserialize<RatingResource>(element.GetRawText());
        }
        catch (CliException e) when (e.ExitCode == ExitCodes.NotFound)
        {
            // No Rating applied: --score signs one below.
        }

        if (resource?.Spec.SignedRating is { } signedRating)
        {
            if (score != 0)
            {
                ctx.Err.WriteLine($"note: rating {ns}/{ratingName} exists; claiming with it (score {resource.Spec.Score}), not with --score {score}");
            }

            var parsed = Signed<RenterRating>.Parse(JsonSerializer.Serialize(signedRating));
            var check = parsed.IsOk ? RpoiEquations.VerifyRenterRating(parsed.Value, em, null) : parsed.As<Signed<RenterRating>>();
            return check.IsOk
                ? check.Value
                : throw new CliException(ExitCodes.VerificationFailed, $"rating {ns}/{ratingName} does not verify as your rating of this lease ({check.Reason}): {check.Message}; delete it and claim with --score");
        }

        if (score == 0)
        {
            throw new CliException(ExitCodes.NotFound, $"you have not rated lease {ns}/{name} (no rating {ns}/{ratingName}): π pays a claim only against your signed rating E(m''); pass --score 1-5 to sign one now, or run 'kubectl rpoi rate {name} -n {ns} --score N --apply' first");
        }

        var digest = await RateCommand.DigestAsync(ctx, lease, em, keys, leaserIdentity, ct).ConfigureAwait(false);
        return RpoiEquations.SignRenterRating(em, digest, new Rating(score, comment, ctx.Time.GetUtcNow()), keys);
    }
}
