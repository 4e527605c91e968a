using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rpoi.Cli.Support;

/// <summary><c>-o json|yaml</c> for the read commands: the view as a document with the field names docs/cli.md lists.</summary>
internal static class ReadOutput
{
    private static readonly JsonSerializerOptions Options = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = true };

    public static Option<string?> Create()
    {
        var option = new Option<string?>("--output", "-o") { Description = "Print format: json or yaml (default: a table for people)." };
        option.Validators.Add(r =>
        {
            var text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
            if (text is not ("json" or "yaml"))
            {
                r.AddError($"--output: '{text}' is not json or yaml");
            }
        });
        // Offered by Tab completion (kubectl rpoi __complete); the validator above stays the one that refuses.
        option.CompletionSources.Add("json", "yaml");
        return option;
    }

    /// <summary>Writes <paramref name="view"/> as JSON or YAML; false when the table is wanted.</summary>
    public static bool TryWrite<T>(TextWriter w, string? format, T view)
    {
        if (format is null)
        {
            return false;
        }

        var node = JsonSerializer.SerializeToNode(view, Options)!;
        w.Write(format == "json" ? node.ToJsonString(Options) + "\n" : Yaml.Write(node));
        return true;
    }
}

/// <summary>balance -o: the account, π's URL and the free balances.</summary>
internal sealed record BalanceView(string Account, string Escrow, IReadOnlyList<AmountView> Balances);

/// <summary>An amount in the smallest unit and its denomination.</summary>
internal sealed record AmountView(string Amount, string Denom);

/// <summary>offers -o: the parties, when capacity was measured, and each shape on offer.</summary>
internal sealed record OffersView(string Leaser, string Escrow, string EscrowUrl, DateTimeOffset UpdatedAt, IReadOnlyList<OfferView> Offers);

/// <summary>One accelerator/topology on offer.</summary>
internal sealed record OfferView(string Accelerator, string Topology, int ChipsPerSlice, int HostsPerSlice, int FreeChips, int FreeSlices, int TotalChips);

/// <summary>list -o: the leases, as kubectl's lists carry them, in <c>items</c>.</summary>
internal sealed record LeaseListView(IReadOnlyList<LeaseRow> Items);

/// <summary>One lease in list -o: its place, phase, renter, what was asked and the money; times in UTC, null when not known yet.</summary>
internal sealed record LeaseRow(
    string Namespace,
    string Name,
    string Phase,
    string Renter,
    long Chips,
    string Accelerator,
    string Topology,
    long DurationSeconds,
    DateTimeOffset? ExpiresAt,
    AmountView? Deposit,
    AmountView? Rent,
    DateTimeOffset? RatingDeadline,
    SettledView? Settlement,
    string? TransactionHash);

/// <summary>Where ρ and ω went, as the operator recorded π's settlement (<c>ReturnedToRenter</c>/<c>Withheld</c>, <c>PaidToLeaser</c>/<c>ReturnedToRenter</c>).</summary>
internal sealed record SettledView(string? Deposit, string? Rent, DateTimeOffset? SettledAt);

/// <summary>status -o: the request, the timeline, the conditions, the ratings and π's receipt (only once verified).</summary>
internal sealed record StatusView(
    string Namespace,
    string Name,
    string Phase,
    long Chips,
    string Accelerator,
    string Topology,
    long DurationSeconds,
    AmountView Deposit,
    AmountView Rent,
    string Renter,
    string Leaser,
    string Escrow,
    string TransactionHash,
    IReadOnlyList<string> Nodes,
    string? NodePool,
    TimelineView Timeline,
    IReadOnlyList<ConditionView> Conditions,
    IReadOnlyList<RatingView> Ratings,
    ReceiptView? Receipt,
    WaitingView? Waiting = null);

/// <summary>While a lease waits for chips: its place in its shape's queue and, when Active leases' expiry tells, the earliest time chips free up.</summary>
internal sealed record WaitingView(long Position, DateTimeOffset? EarliestFreeAt);

/// <summary>When each step happened; null when it has not.</summary>
internal sealed record TimelineView(DateTimeOffset? Signed, DateTimeOffset? Created, DateTimeOffset? Active, DateTimeOffset? Expires, DateTimeOffset? Returned, DateTimeOffset? RatingDeadline, DateTimeOffset? Settled);

/// <summary>A Lease condition.</summary>
internal sealed record ConditionView(string Type, string Status, string? Reason, string? Message);

/// <summary>A Rating of the lease and whether the operator accepted it (null: not checked yet).</summary>
internal sealed record RatingView(string Name, string Rater, long Score, bool? Accepted, string? Reason, string? Message);

/// <summary>π's settlement receipt after its signature and H verified: the decision row, the transfers, the ledger entry.</summary>
internal sealed record ReceiptView(
    bool Verified,
    string SignedBy,
    string Source,
    bool RenterRated,
    bool LeaserRated,
    string Deposit,
    string Rent,
    IReadOnlyList<TransferView> Transfers,
    string LedgerEntry,
    DateTimeOffset Time)
{
    public static ReceiptView Of(Rpoi.Protocol.Messages.SettlementReceipt r, Rpoi.Protocol.Keys.PartyIdentity escrow) => new(
        true,
        escrow.Address,
        r.Source.ToString(),
        r.Decision.RenterRated,
        r.Decision.LeaserRated,
        r.Decision.Deposit.ToString(),
        r.Decision.Rent.ToString(),
        [.. r.Transfers.Select(t => new TransferView(t.Purpose, new AmountView(t.Amount.Amount, t.Amount.Denom), t.From, t.To, t.Status.ToString()))],
        r.LedgerEntry,
        r.Time);
}

/// <summary>One transfer of a receipt.</summary>
internal sealed record TransferView(string Purpose, AmountView Amount, string From, string To, string Status);

/// <summary>claim -o: the lease, H, whether this call claimed (false: π had settled already), π's URL and the verified receipt.</summary>
internal sealed record ClaimView(string Namespace, string Name, string TransactionHash, bool Claimed, string Escrow, ReceiptView Receipt);
