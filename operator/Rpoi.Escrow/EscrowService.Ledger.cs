using System.Globalization;
using Rpoi.Escrow.Client;
using Rpoi.Escrow.Storage;
using Rpoi.Protocol.Keys;

namespace Rpoi.Escrow;

/// <summary>
/// π's rules over the store: validation, protocol verification, the decision table and receipts.
/// The store makes each change atomic; this class decides what the change is.
/// </summary>
public sealed partial class EscrowService(IEscrowStore store, PartyKeyPair keys, EscrowOptions options, TimeProvider time)
{
    /// <summary>Largest ledger page.</summary>
    public const int MaxPage = 1000;

    /// <summary>π's key pairs.</summary>
    public PartyKeyPair Keys { get; } = keys;

    /// <summary>π's public identity.</summary>
    public EscrowIdentity Identity() => new(
        Keys.Identity.Address,
        Keys.Identity.KeyId,
        Keys.Identity.SigningKeyBase64,
        Keys.Identity.EncryptionKeyBase64);

    /// <summary>The on-ramp: credits an account, idempotent by deposit id.</summary>
    public async Task<DepositReceipt> DepositAsync(DepositRequest request, CancellationToken ct)
    {
        var id = Validation.Id(request.DepositId, "depositId");
        var address = Validation.Address(request.Address, "address");
        if (request.Amount is null)
        {
            throw new EscrowRefusedException(EscrowReasons.InvalidField, "amount", "is required: {\"amount\":\"<integer>\",\"denom\":\"<denom>\"}");
        }

        var amount = Validation.PositiveAmount(request.Amount.Amount, "amount.amount");
        var denom = Validation.Denom(request.Amount.Denom, "amount.denom");
        var record = await store.DepositAsync(new DepositCommand(id, address, denom, amount, time.GetUtcNow()), ct);
        return new DepositReceipt(record.DepositId, record.Address, Money(record.Amount, record.Denom), record.Seq);
    }

    /// <summary>An account's free balances.</summary>
    public async Task<AccountView> AccountAsync(string address, CancellationToken ct)
    {
        Validation.Address(address, "address");
        var balances = await store.GetBalancesAsync(address, ct);
        return new AccountView(address, [.. balances.Select(kv => Money(kv.Value, kv.Key))]);
    }

    /// <summary>Everything withheld.</summary>
    public async Task<IReadOnlyList<WithheldView>> WithheldAsync(CancellationToken ct) =>
        [.. (await store.ListWithheldAsync(ct)).Select(View)];

    /// <summary>Adjudication: releases what is withheld under H to the pledge's renter or leaser.</summary>
    public async Task<WithheldView> ReleaseAsync(ReleaseRequest request, CancellationToken ct)
    {
        var h = Validation.Hash(request.H, "h");
        var pledge = await store.GetPledgeAsync(h, ct)
            ?? throw new EscrowRefusedException(EscrowReasons.WithheldNotFound, "h", $"nothing is withheld under H {h}: there is no such pledge", 404);
        var to = request.To switch
        {
            "renter" => pledge.Renter,
            "leaser" => pledge.Leaser,
            _ => throw new EscrowRefusedException(EscrowReasons.InvalidField, "to", "must be 'renter' or 'leaser': withheld funds go back to one of the lease's parties"),
        };
        return View(await store.ReleaseAsync(new ReleaseCommand(h, to, time.GetUtcNow()), ct));
    }

    /// <summary>A page of the ledger.</summary>
    public async Task<LedgerPage> LedgerAsync(long after, int limit, CancellationToken ct)
    {
        if (after < 0)
        {
            throw new EscrowRefusedException(EscrowReasons.InvalidField, "after", "must be a sequence number >= 0 (0 starts at the first entry)");
        }

        if (limit is < 1 or > MaxPage)
        {
            throw new EscrowRefusedException(EscrowReasons.InvalidField, "limit", $"must be between 1 and {MaxPage}");
        }

        var entries = await store.ReadLedgerAsync(after, limit, ct);
        var views = entries.Select(e => new LedgerEntryView(e.Seq, Storage.Ledger.FormatTime(e.At), e.Kind, e.H, e.Debit, e.Credit, Money(e.Amount, e.Denom), e.PrevHash, e.Hash)).ToList();
        return new LedgerPage(views, views.Count == limit ? views[^1].Seq : null);
    }

    /// <summary>The audit.</summary>
    public async Task<LedgerAudit> AuditAsync(CancellationToken ct)
    {
        var audit = await store.AuditAsync(ct);
        return new LedgerAudit(
            audit.Ok,
            audit.Entries,
            audit.Head,
            [.. audit.Totals.Select(t => new DenomTotals(t.Denom, SqlEscrowStore.Format(t.Balances), SqlEscrowStore.Format(t.Held), SqlEscrowStore.Format(t.Withheld), SqlEscrowStore.Format(t.Deposits)))],
            audit.Problems);
    }

    private static EscrowAmount Money(long amount, string denom) => new(amount.ToString(CultureInfo.InvariantCulture), denom);

    private static WithheldView View(WithheldRecord w) =>
        new(w.H, Money(w.Amount, w.Denom), w.State, w.ReleasedTo, w.ReleasedAt is { } at ? Storage.Ledger.FormatTime(at) : null);
}
