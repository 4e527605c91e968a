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
        var output = ReadOutput.Create();
        var command = new Command("status", "Show a Lease's timeline and conditions, and verify π's settlement receipt with π's key.") { lease, escrowIdentity, output };
        f.Handle(command, async (ctx, parse, ct) =>
        {
            var name = parse.GetValue(lease)!;
            var ns = ctx.Namespace;
            var (current, _) = await ctx.GetLeaseAsync(name, ct).ConfigureAwait(false);
            var em = CliContext.RequestOf(current);
            var m = em.Payload;
            var h = RpoiEquations.TransactionHashOf(em);
            var status = current.Status;
            if (status?.TransactionHash is { } statusH && statusH != h.Hex)
            {
                throw new CliException(ExitCodes.VerificationFailed, $"status.transactionHash {statusH} is not the hash of spec.request ({h.Hex}): the status does not belong to this request");
            }

            var ratings = await RatingsAsync(ctx, name, ct).ConfigureAwait(false);
            ReceiptView? receiptView = null;
            PartyIdentity? escrow = null;
            if (status?.Settlement is { Receipt: { Length: > 0 } receiptJson })
            {
                escrow = await EscrowIdentityAsync(ctx, parse.GetValue(escrowIdentity), ct).ConfigureAwait(false);
                if (escrow.Address != m.Escrow)
                {
                    throw new CliException(ExitCodes.VerificationFailed, $"the request names escrow {m.Escrow} but the escrow identity given is {escrow.Address}; pass π's identity with --escrow-identity");
                }

                receiptView = ReceiptView.Of(VerifyReceipt(receiptJson, escrow, h), escrow);
            }

            var renter = PartyIdentity.FromPublicKeys(m.Renter);
            var view = new StatusView(
                ns,
                name,
                status?.Phase?.ToString() ?? "",
                m.Chips,
                m.Accelerator,
                m.Topology,
                m.DurationSeconds,
                new AmountView(m.Deposit.Amount, m.Deposit.Denom),
                new AmountView(m.Rent.Amount, m.Rent.Denom),
                renter.IsOk ? renter.Value.Address : "",
                m.Leaser,
                m.Escrow,
                h.Hex,
                status?.Nodes is { Count: > 0 } n ? [.. n] : [],
                status?.NodePool,
                new TimelineView(m.Timestamp, Utc(current.Metadata.CreationTimestamp), Utc(status?.ActiveSince), Utc(status?.ExpiresAt), Utc(status?.ReturnedAt), Utc(status?.RatingDeadline), Utc(status?.Settlement?.SettledAt)),
                [.. (status?.Conditions ?? []).Select(c => new ConditionView(c.Type, c.Status, c.Reason, c.Message))],
                ratings,
                receiptView,
                status?.QueuePosition is { } position ? new WaitingView(position, Utc(status.EarliestFreeAt)) : null);

            // The reminder goes to stderr in every format, so -o json stays one parseable document.
            var renterRated = ratings.Any(r => r.Rater == nameof(Rater.Renter) && r.Accepted != false);
            if (!ReadOutput.TryWrite(ctx.Out, parse.GetValue(output), view))
            {
                WriteText(ctx.Out, view, escrow);
            }

            if (status?.Phase is LeasePhase.AwaitingRatings && status.RatingDeadline is { } due && !renterRated)
            {
                ReturnCommand.RatingWarning(ctx.Err, ns, name, new DateTimeOffset(DateTime.SpecifyKind(due, DateTimeKind.Utc)));
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static void WriteText(TextWriter w, StatusView v, PartyIdentity? escrow)
    {
        w.WriteLine($"lease:       {v.Namespace}/{v.Name}");
        w.WriteLine($"phase:       {(v.Phase.Length > 0 ? v.Phase : "(not yet seen by the operator)")}");
        w.WriteLine($"asked:       {v.Chips} x {v.Accelerator} chips, topology {v.Topology}, for {Values.FormatDuration(v.DurationSeconds)}");
        w.WriteLine($"deposit ρ:   {v.Deposit.Amount} {v.Deposit.Denom}    rent ω: {v.Rent.Amount} {v.Rent.Denom}");
        w.WriteLine($"renter:      {(v.Renter.Length > 0 ? v.Renter : "(invalid keys)")}");
        w.WriteLine($"leaser β:    {v.Leaser}");
        w.WriteLine($"escrow π:    {v.Escrow}");
        w.WriteLine($"H:           {v.TransactionHash}");
        if (v.Nodes.Count > 0)
        {
            w.WriteLine($"nodes:       {string.Join(", ", v.Nodes)} (node pool {v.NodePool})");
        }

        if (v.Waiting is { } waiting)
        {
            var freeAt = waiting.EarliestFreeAt is { } t
                ? $"; chips free up no earlier than {AccessCommand.UtcText(t)} (when Active leases expire)"
                : "; no free-up time known from Active leases";
            w.WriteLine($"queue:       place {waiting.Position} among leases waiting for {v.Accelerator} {v.Topology}{freeAt}");
        }

        w.WriteLine("timeline:");
        Line(w, "signed", v.Timeline.Signed);
        Line(w, "created", v.Timeline.Created);
        Line(w, "active", v.Timeline.Active);
        Line(w, "expires", v.Timeline.Expires);
        Line(w, "returned", v.Timeline.Returned);
        Line(w, "ratings due", v.Timeline.RatingDeadline);
        Line(w, "settled", v.Timeline.Settled);
        if (v.Conditions.Count > 0)
        {
            w.WriteLine("conditions:");
            foreach (var c in v.Conditions)
            {
                w.WriteLine($"  {c.Type,-10} {c.Status,-7} {c.Reason,-22} {c.Message}");
            }
        }

        if (v.Ratings.Count > 0)
        {
            w.WriteLine("ratings:");
            foreach (var r in v.Ratings)
            {
                var accepted = r.Accepted switch { true => "accepted", false => $"refused: {r.Reason} {r.Message}", null => "not yet checked" };
                w.WriteLine($"  {r.Rater,-7} score {r.Score}  {accepted}");
            }
        }

        if (v.Receipt is { } receipt)
        {
            w.WriteLine($"receipt:     verified: signed by π {receipt.SignedBy} (key {escrow!.KeyId}) for this H");
            WriteReceipt(w, receipt);
        }
    }

    /// <summary>The decision row, each transfer and the ledger entry of a verified receipt (also claim's output).</summary>
    internal static void WriteReceipt(TextWriter w, ReceiptView receipt)
    {
        w.WriteLine($"  ratings:   renter {(receipt.RenterRated ? "yes" : "no")}, leaser {(receipt.LeaserRated ? "yes" : "no")}; deposit {receipt.Deposit}, rent {receipt.Rent}");
        foreach (var t in receipt.Transfers)
        {
            w.WriteLine($"  {t.Purpose,-8}   {t.Amount.Amount} {t.Amount.Denom} -> {t.To} ({t.Status})");
        }

        w.WriteLine($"  ledger:    {receipt.LedgerEntry} at {AccessCommand.UtcText(receipt.Time)}");
    }

    private static DateTimeOffset? Utc(DateTime? t) => t is { } v ? new DateTimeOffset(DateTime.SpecifyKind(v, DateTimeKind.Utc)) : null;

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

    /// <summary>The lease's Ratings (the renter's and β's), as status shows them.</summary>
    private static async Task<IReadOnlyList<RatingView>> RatingsAsync(CliContext ctx, string leaseName, CancellationToken ct)
    {
        var ns = ctx.Namespace;
        var list = await ctx.CallAsync(() => ctx.Kube().CustomObjects.ListNamespacedCustomObjectAsync(Lease.Group, Lease.Version, ns, RatingResource.Plural, cancellationToken: ct), $"ratings in {ns}", "").ConfigureAwait(false);
        var element = list is JsonElement e ? e : JsonSerializer.SerializeToElement(list);
        if (!element.TryGetProperty("items", out var items))
        {
            return [];
        }

        return [.. items.EnumerateArray()
            .Select(i => KubernetesJson.Deserialize<RatingResource>(i.GetRawText()))
            .Where(r => r.Spec.LeaseRef.Name == leaseName)
            .Select(r => new RatingView(r.Metadata.Name, r.Spec.Rater.ToString(), r.Spec.Score, r.Status?.Accepted, r.Status?.Reason, r.Status?.Message))];
    }

    private static void Line(TextWriter w, string label, DateTimeOffset? t)
    {
        if (t is { } v)
        {
            w.WriteLine($"  {label,-12} {AccessCommand.UtcText(v)}");
        }
    }
}
