using System.CommandLine;
using System.Text.Json;
using k8s;
using Rpoi.Cli.Support;
using Rpoi.Operator.Entities;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;
using RatingResource = Rpoi.Operator.Entities.Rating;

namespace Rpoi.Cli.Commands;

/// <summary><c>kubectl rpoi status &lt;lease&gt;</c>: the phase timeline, the conditions, the ratings, and π's receipt verified with π's key.</summary>
internal static class StatusCommand
{
    public static Command Create(CommandFactory f)
    {
        var lease = new Argument<string>("lease") { Description = "The Lease's name." };
        var escrowIdentity = new Option<string?>("--escrow-identity") { Description = "π's public identity file, instead of the one in the operator's discovery ConfigMap." };
        var command = new Command("status", "Show a Lease's timeline and conditions, and verify π's settlement receipt with π's key.") { lease, escrowIdentity };
        f.Handle(command, async (ctx, parse, ct) =>
        {
            var name = parse.GetValue(lease)!;
            var ns = ctx.Namespace;
            var (current, _) = await ctx.GetLeaseAsync(name, ct).ConfigureAwait(false);
            var em = CliContext.RequestOf(current);
            var m = em.Payload;
            var h = RpoiEquations.TransactionHashOf(em);
            var status = current.Status;
            var w = ctx.Out;
            w.WriteLine($"lease:       {ns}/{name}");
            w.WriteLine($"phase:       {status?.Phase?.ToString() ?? "(not yet seen by the operator)"}");
            w.WriteLine($"asked:       {m.Chips} x {m.Accelerator} chips, topology {m.Topology}, for {Values.FormatDuration(m.DurationSeconds)}");
            w.WriteLine($"deposit ρ:   {m.Deposit.Amount} {m.Deposit.Denom}    rent ω: {m.Rent.Amount} {m.Rent.Denom}");
            var renter = PartyIdentity.FromPublicKeys(m.Renter);
            w.WriteLine($"renter:      {(renter.IsOk ? renter.Value.Address : "(invalid keys)")}");
            w.WriteLine($"leaser β:    {m.Leaser}");
            w.WriteLine($"escrow π:    {m.Escrow}");
            w.WriteLine($"H:           {h.Hex}");
            if (status?.TransactionHash is { } statusH && statusH != h.Hex)
            {
                throw new CliException(ExitCodes.VerificationFailed, $"status.transactionHash {statusH} is not the hash of spec.request ({h.Hex}): the status does not belong to this request");
            }

            if (status?.Nodes is { Count: > 0 } nodes)
            {
                w.WriteLine($"nodes:       {string.Join(", ", nodes)} (node pool {status.NodePool})");
            }

            w.WriteLine("timeline:");
            Line(w, "signed", m.Timestamp);
            Line(w, "created", current.Metadata.CreationTimestamp);
            Line(w, "active", status?.ActiveSince);
            Line(w, "expires", status?.ExpiresAt);
            Line(w, "returned", status?.ReturnedAt);
            Line(w, "ratings due", status?.RatingDeadline);
            Line(w, "settled", status?.Settlement?.SettledAt);
            if (status?.Conditions is { Count: > 0 } conditions)
            {
                w.WriteLine("conditions:");
                foreach (var c in conditions)
                {
                    w.WriteLine($"  {c.Type,-10} {c.Status,-7} {c.Reason,-22} {c.Message}");
                }
            }

            var renterRated = await RatingsAsync(ctx, name, ct).ConfigureAwait(false);
            if (status?.Phase is LeasePhase.AwaitingRatings && status.RatingDeadline is { } due && !renterRated)
            {
                ReturnCommand.RatingWarning(ctx.Err, ns, name, new DateTimeOffset(DateTime.SpecifyKind(due, DateTimeKind.Utc)));
            }

            if (status?.Settlement is { Receipt: { Length: > 0 } receiptJson })
            {
                var escrow = await EscrowIdentityAsync(ctx, parse.GetValue(escrowIdentity), ct).ConfigureAwait(false);
                if (escrow.Address != m.Escrow)
                {
                    throw new CliException(ExitCodes.VerificationFailed, $"the request names escrow {m.Escrow} but the escrow identity given is {escrow.Address}; pass π's identity with --escrow-identity");
                }

                var receipt = VerifyReceipt(receiptJson, escrow, h);
                w.WriteLine($"receipt:     verified: signed by π {escrow.Address} (key {escrow.KeyId}) for this H");
                w.WriteLine($"  ratings:   renter {(receipt.Decision.RenterRated ? "yes" : "no")}, leaser {(receipt.Decision.LeaserRated ? "yes" : "no")}; deposit {receipt.Decision.Deposit}, rent {receipt.Decision.Rent}");
                foreach (var t in receipt.Transfers)
                {
                    w.WriteLine($"  {t.Purpose,-8}   {t.Amount.Amount} {t.Amount.Denom} -> {t.To} ({t.Status})");
                }

                w.WriteLine($"  ledger:    {receipt.LedgerEntry} at {AccessCommand.UtcText(receipt.Time)}");
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>Parses π's receipt and verifies its signature and H; any failure is exit 4.</summary>
    internal static SettlementReceipt VerifyReceipt(string receiptJson, PartyIdentity escrow, TransactionHash h)
    {
        var parsed = Signed<SettlementReceipt>.Parse(receiptJson);
        if (!parsed.IsOk)
        {
            throw new CliException(ExitCodes.VerificationFailed, $"status.settlement.receipt is not a signed receipt: {parsed.Message}");
        }

        var verified = RpoiEquations.VerifyReceipt(parsed.Value, escrow, h);
        return verified.IsOk
            ? verified.Value
            : throw new CliException(ExitCodes.VerificationFailed, $"π's receipt did NOT verify ({verified.Reason}): {verified.Message}; do not trust this settlement, ask π (kubectl rpoi balance) and the platform team");
    }

    internal static async Task<PartyIdentity> EscrowIdentityAsync(CliContext ctx, string? identityFile, CancellationToken ct)
    {
        if (identityFile is { Length: > 0 })
        {
            var path = ctx.Env.Resolve(identityFile);
            if (!File.Exists(path))
            {
                throw new CliException(ExitCodes.NotFound, $"--escrow-identity {path} does not exist");
            }

            var id = PartyIdentity.FromJson(await File.ReadAllTextAsync(path, ct).ConfigureAwait(false));
            return id.IsOk ? id.Value : throw new CliException(ExitCodes.Usage, $"--escrow-identity {path}: {id.Message}");
        }

        var doc = await ctx.DiscoveryAsync(ct).ConfigureAwait(false);
        return doc.Escrow.ToIdentity().Identity!;
    }

    /// <summary>Prints the lease's Ratings; true when the renter has one not refused.</summary>
    private static async Task<bool> RatingsAsync(CliContext ctx, string leaseName, CancellationToken ct)
    {
        var ns = ctx.Namespace;
        var list = await ctx.CallAsync(() => ctx.Kube().CustomObjects.ListNamespacedCustomObjectAsync(Lease.Group, Lease.Version, ns, RatingResource.Plural, cancellationToken: ct), $"ratings in {ns}", "").ConfigureAwait(false);
        var element = list is JsonElement e ? e : JsonSerializer.SerializeToElement(list);
        if (!element.TryGetProperty("items", out var items))
        {
            return false;
        }

        var ratings = items.EnumerateArray()
            .Select(i => KubernetesJson.Deserialize<RatingResource>(i.GetRawText()))
            .Where(r => r.Spec.LeaseRef.Name == leaseName)
            .ToList();
        if (ratings.Count == 0)
        {
            return false;
        }

        ctx.Out.WriteLine("ratings:");
        foreach (var r in ratings)
        {
            var accepted = r.Status?.Accepted switch { true => "accepted", false => $"refused: {r.Status.Reason} {r.Status.Message}", null => "not yet checked" };
            ctx.Out.WriteLine($"  {r.Spec.Rater,-7} score {r.Spec.Score}  {accepted}");
        }

        return ratings.Any(r => r.Spec.Rater == Rater.Renter && r.Status?.Accepted != false);
    }

    private static void Line(TextWriter w, string label, DateTimeOffset? t)
    {
        if (t is { } v)
        {
            w.WriteLine($"  {label,-12} {AccessCommand.UtcText(v)}");
        }
    }

    private static void Line(TextWriter w, string label, DateTime? t)
    {
        if (t is { } v)
        {
            Line(w, label, new DateTimeOffset(DateTime.SpecifyKind(v, DateTimeKind.Utc)));
        }
    }
}
