using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Rpoi.Escrow.Storage;

/// <summary>
/// The ledger's buckets and its hash chain. Every state change is a move of an amount from one
/// bucket to another, so replaying the entries rebuilds every balance, hold and withholding.
/// </summary>
public static class Ledger
{
    /// <summary>The hash before the first entry.</summary>
    public const string Genesis = "0000000000000000000000000000000000000000000000000000000000000000";

    /// <summary>Outside money coming in (the on-ramp).</summary>
    public const string External = "external";

    /// <summary>Entry kinds.</summary>
    public static class Kinds
    {
        /// <summary>On-ramp credit.</summary>
        public const string Deposit = "deposit";
        /// <summary>ρ from R into the hold under H.</summary>
        public const string PledgeDeposit = "pledge.deposit";
        /// <summary>ω from R into the hold under H.</summary>
        public const string PledgeRent = "pledge.rent";
        /// <summary>ζ (eq. 20): ρ → R.</summary>
        public const string DepositToRenter = "settle.deposit.renter";
        /// <summary>ζ failed: ρ withheld by π.</summary>
        public const string DepositWithheld = "settle.deposit.withheld";
        /// <summary>ξ (eq. 21): ω → β.</summary>
        public const string RentToLeaser = "settle.rent.leaser";
        /// <summary>ξ failed: ω back to R.</summary>
        public const string RentToRenter = "settle.rent.renter";
        /// <summary>Adjudication released withheld funds.</summary>
        public const string Release = "adjudicate.release";
    }

    /// <summary>The free balance of an address.</summary>
    public static string Balance(string address) => "balance:" + address;

    /// <summary>What is held under a pledge.</summary>
    public static string Held(string h) => "held:" + h;

    /// <summary>What π withholds under H.</summary>
    public static string Withheld(string h) => "withheld:" + h;

    /// <summary>Formats a ledger time: RFC 3339 UTC with Z, fixed width so it sorts and hashes the same everywhere.</summary>
    public static string FormatTime(DateTimeOffset at) =>
        at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    /// <summary>Parses <see cref="FormatTime"/>.</summary>
    public static DateTimeOffset ParseTime(string text) =>
        DateTimeOffset.ParseExact(text, "yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

    /// <summary>
    /// The entry's hash: SHA-256 over a length-prefixed encoding of every field and the previous
    /// hash. Length prefixes make the encoding unambiguous whatever the fields contain.
    /// </summary>
    public static string Hash(long seq, string at, string kind, string? h, string debit, string credit, string denom, long amount, string prevHash)
    {
        var text = new StringBuilder("rpoi/escrow/ledger/v1");
        foreach (var field in new[]
                 {
                     seq.ToString(CultureInfo.InvariantCulture), at, kind, h ?? "", debit, credit, denom,
                     amount.ToString(CultureInfo.InvariantCulture), prevHash,
                 })
        {
            text.Append('|').Append(field.Length.ToString(CultureInfo.InvariantCulture)).Append(':').Append(field);
        }

        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>Re-computes an entry's hash from its fields.</summary>
    public static string Hash(LedgerEntry e) =>
        Hash(e.Seq, FormatTime(e.At), e.Kind, e.H, e.Debit, e.Credit, e.Denom, e.Amount, e.PrevHash);
}
