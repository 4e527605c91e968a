using System.Globalization;
using System.Text.RegularExpressions;
using Rpoi.Escrow.Client;
using Rpoi.Protocol.Keys;

namespace Rpoi.Escrow;

/// <summary>Field checks for the escrow's own inputs; each failure names the field and the fix.</summary>
public static partial class Validation
{
    [GeneratedRegex("^rpoi1[a-z2-7]{32}$", RegexOptions.CultureInvariant)]
    private static partial Regex AddressPattern();

    [GeneratedRegex("^[a-z][a-z0-9/._-]{1,63}$", RegexOptions.CultureInvariant)]
    private static partial Regex DenomPattern();

    [GeneratedRegex("^[A-Za-z0-9._:-]{1,128}$", RegexOptions.CultureInvariant)]
    private static partial Regex IdPattern();

    [GeneratedRegex("^[0-9a-f]{64}$", RegexOptions.CultureInvariant)]
    private static partial Regex HashPattern();

    /// <summary>An RPOI address: <c>rpoi1</c> + 32 base32 characters.</summary>
    public static string Address(string? value, string field) =>
        value is not null && AddressPattern().IsMatch(value)
            ? value
            : throw new EscrowRefusedException(EscrowReasons.InvalidField, field, $"must be an RPOI address ({PartyIdentity.AddressPrefix} followed by 32 base32 characters), as 'kubectl rpoi keys show' prints it");

    /// <summary>A transaction hash H: 64 lower-case hex characters.</summary>
    public static string Hash(string? value, string field) =>
        value is not null && HashPattern().IsMatch(value)
            ? value
            : throw new EscrowRefusedException(EscrowReasons.InvalidField, field, "must be a transaction hash H: 64 lower-case hex characters");

    /// <summary>A client-chosen id such as a deposit id.</summary>
    public static string Id(string? value, string field) =>
        value is not null && IdPattern().IsMatch(value)
            ? value
            : throw new EscrowRefusedException(EscrowReasons.InvalidField, field, "must be 1-128 characters of letters, digits, '.', '_', ':' or '-'");

    /// <summary>A denomination, e.g. <c>uusd</c>.</summary>
    public static string Denom(string? value, string field) =>
        value is not null && DenomPattern().IsMatch(value)
            ? value
            : throw new EscrowRefusedException(EscrowReasons.InvalidField, field, "must be a denomination: a lower-case letter then 1-63 of [a-z0-9/._-], e.g. 'uusd'");

    /// <summary>A positive integer string that fits the ledger's 64-bit amounts.</summary>
    public static long PositiveAmount(string? value, string field)
    {
        if (value is null || value.Length == 0 || value.Length > 19 || value[0] == '0' || !value.All(char.IsAsciiDigit)
            || !long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var amount) || amount <= 0)
        {
            throw new EscrowRefusedException(EscrowReasons.InvalidField, field, "must be a positive integer string in the smallest unit (no sign, no leading zeros, no decimals), at most 9223372036854775807");
        }

        return amount;
    }

    /// <summary>Non-negative version of <see cref="PositiveAmount"/> (a zero deposit ρ is allowed).</summary>
    public static long Amount(string? value, string field) =>
        value == "0" ? 0 : PositiveAmount(value, field);
}
