using System.Numerics;
using System.Security.Cryptography;
using Rpoi.Protocol.Encoding;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Protocol.Checks;

/// <summary>The individual protocol checks. Each returns a typed <see cref="Check{T}"/>; none throws for bad input.</summary>
public static class ProtocolChecks
{
    /// <summary>Largest amount accepted, and largest ρ + ω: fits a signed 64-bit ledger column.</summary>
    public static readonly BigInteger MaxAmount = long.MaxValue;

    private static readonly System.Buffers.SearchValues<char> DenomChars =
        System.Buffers.SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/-._");

    /// <summary>Checks a payload's <c>kind</c>.</summary>
    public static Check<string> Kind(string? actual, string expected) =>
        string.Equals(actual, expected, StringComparison.Ordinal)
            ? Check.Ok(expected)
            : Check.Fail<string>(ReasonCode.WrongKind, $"kind is '{actual}' but '{expected}' is expected here; submit the right message");

    /// <summary>Checks ρ and ω: positive integer strings without leading zeros, same denomination, ρ + ω ≤ <see cref="MaxAmount"/>.</summary>
    public static Check<(long Deposit, long Rent)> Amounts(Money? deposit, Money? rent)
    {
        var d = Amount(deposit, "deposit");
        if (!d.IsOk)
        {
            return d.As<(long, long)>();
        }

        var r = Amount(rent, "rent");
        if (!r.IsOk)
        {
            return r.As<(long, long)>();
        }

        if (!string.Equals(deposit!.Denom, rent!.Denom, StringComparison.Ordinal))
        {
            return Check.Fail<(long, long)>(ReasonCode.DenominationMismatch, $"deposit.denom '{deposit.Denom}' and rent.denom '{rent.Denom}' differ; use one denomination for both");
        }

        if ((BigInteger)d.Value + r.Value > MaxAmount)
        {
            return Check.Fail<(long, long)>(ReasonCode.InvalidAmount, $"deposit + rent overflows the ledger limit {MaxAmount}; lower the amounts");
        }

        return Check.Ok((d.Value, r.Value));
    }

    /// <summary>Checks one amount.</summary>
    public static Check<long> Amount(Money? money, string field)
    {
        if (money is null)
        {
            return Check.Fail<long>(ReasonCode.InvalidAmount, $"{field} is missing; give it as {{\"amount\":\"1500000\",\"denom\":\"uusd\"}}");
        }

        var a = money.Amount;
        if (string.IsNullOrEmpty(a) || a.Length > 19 || a[0] == '0' || a.AsSpan().ContainsAnyExceptInRange('0', '9'))
        {
            return Check.Fail<long>(ReasonCode.InvalidAmount, $"{field}.amount '{a}' must be a positive integer string in the smallest unit without leading zeros, e.g. \"1500000\"");
        }

        if (!long.TryParse(a, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value))
        {
            return Check.Fail<long>(ReasonCode.InvalidAmount, $"{field}.amount '{a}' overflows the ledger limit {MaxAmount}");
        }

        if (string.IsNullOrEmpty(money.Denom) || money.Denom.Length > 64 || money.Denom.AsSpan().ContainsAnyExcept(DenomChars))
        {
            return Check.Fail<long>(ReasonCode.InvalidField, $"{field}.denom '{money.Denom}' must be 1..64 characters of letters, digits, '/', '-', '.', '_', e.g. \"uusd\"");
        }

        return Check.Ok(value);
    }

    /// <summary>Checks M &gt; 0.</summary>
    public static Check<int> Chips(int chips) =>
        chips > 0 ? Check.Ok(chips) : Check.Fail<int>(ReasonCode.InvalidChips, $"chips is {chips}; ask for at least 1 chip");

    /// <summary>Checks durationSeconds &gt; 0.</summary>
    public static Check<long> Duration(long seconds) =>
        seconds > 0 ? Check.Ok(seconds) : Check.Fail<long>(ReasonCode.InvalidDuration, $"durationSeconds is {seconds}; give a positive number of seconds");

    /// <summary>Checks a rating score is 1..5.</summary>
    public static Check<Rating> RatingRange(Rating rating, string field)
    {
        ArgumentNullException.ThrowIfNull(rating);
        return rating.Score is >= 1 and <= 5
            ? Check.Ok(rating)
            : Check.Fail<Rating>(ReasonCode.RatingOutOfRange, $"{field}.score is {rating.Score}; a score is 1 (worst) to 5 (best)");
    }

    /// <summary>Checks that the signed request is bound to the Lease object <paramref name="ns"/>/<paramref name="name"/>.</summary>
    public static Check<LeaseRequest> LeaseBinding(LeaseRequest request, string ns, string name)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.Lease is { } l && string.Equals(l.Namespace, ns, StringComparison.Ordinal) && string.Equals(l.Name, name, StringComparison.Ordinal)
            ? Check.Ok(request)
            : Check.Fail<LeaseRequest>(ReasonCode.LeaseBindingMismatch, $"the signed request is for Lease {request.Lease?.Namespace}/{request.Lease?.Name}, but it is in Lease {ns}/{name}; sign a new request for {ns}/{name} with 'kubectl rpoi request'");
    }

    /// <summary>Checks the request names the expected leaser and escrow addresses (null = not checked).</summary>
    public static Check<LeaseRequest> Parties(LeaseRequest request, string? leaserAddress, string? escrowAddress)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (leaserAddress is not null && !string.Equals(request.Leaser, leaserAddress, StringComparison.Ordinal))
        {
            return Check.Fail<LeaseRequest>(ReasonCode.PartyMismatch, $"request.leaser is '{request.Leaser}' but this leaser is '{leaserAddress}'; sign the request for the right leaser");
        }

        if (escrowAddress is not null && !string.Equals(request.Escrow, escrowAddress, StringComparison.Ordinal))
        {
            return Check.Fail<LeaseRequest>(ReasonCode.PartyMismatch, $"request.escrow is '{request.Escrow}' but the escrow is '{escrowAddress}'; sign the request for the right escrow");
        }

        return Check.Ok(request);
    }

    /// <summary>Checks T is no older than <see cref="RequestPolicy.MaxAge"/> and no further ahead than <see cref="RequestPolicy.MaxFutureSkew"/>.</summary>
    public static Check<LeaseRequest> Age(LeaseRequest request, DateTimeOffset now, RequestPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(policy);
        if (request.Timestamp < now - policy.MaxAge)
        {
            return Check.Fail<LeaseRequest>(ReasonCode.RequestTooOld, $"request timestamp {UtcTimestampConverter.Format(request.Timestamp)} is older than {policy.MaxAge.TotalHours:0.#} h; sign a fresh request");
        }

        if (request.Timestamp > now + policy.MaxFutureSkew)
        {
            return Check.Fail<LeaseRequest>(ReasonCode.RequestFromFuture, $"request timestamp {UtcTimestampConverter.Format(request.Timestamp)} is more than {policy.MaxFutureSkew.TotalMinutes:0.#} min ahead of {UtcTimestampConverter.Format(now)}; fix the signing machine's clock");
        }

        return Check.Ok(request);
    }

    /// <summary>Checks the nonce format (base64 of 16..64 bytes).</summary>
    public static Check<string> NonceFormat(string? nonce) =>
        Codec.TryFromBase64(nonce, out var bytes) && bytes.Length is >= 16 and <= 64
            ? Check.Ok(nonce!)
            : Check.Fail<string>(ReasonCode.InvalidField, "nonce must be canonical base64 of 16..64 random bytes; let 'kubectl rpoi request' generate it");

    /// <summary>Records the nonce and refuses it when it was already used with another H.</summary>
    public static async ValueTask<Check<string>> NonceAsync(INonceStore store, string renterKeyId, LeaseRequest request, TransactionHash h, RequestPolicy policy, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(h);
        ArgumentNullException.ThrowIfNull(policy);
        var format = NonceFormat(request.Nonce);
        if (!format.IsOk)
        {
            return format;
        }

        var expires = request.Timestamp + policy.MaxAge;
        return await store.TryRecordAsync(renterKeyId, request.Nonce, h.Hex, expires, cancellationToken).ConfigureAwait(false)
            ? Check.Ok(request.Nonce)
            : Check.Fail<string>(ReasonCode.NonceReplayed, $"nonce {request.Nonce} was already used by renter {renterKeyId} in another request; sign a new request (a fresh nonce)");
    }

    /// <summary>Checks that <paramref name="request"/> hashes to <paramref name="expected"/>.</summary>
    public static Check<TransactionHash> Hash(Signed<LeaseRequest> request, TransactionHash expected, string field = "h")
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(expected);
        var actual = RpoiEquations.TransactionHashOf(request);
        return actual.Equals(expected)
            ? Check.Ok(actual)
            : Check.Fail<TransactionHash>(ReasonCode.HashMismatch, $"{field} is {expected.Hex} but the signed request hashes to {actual.Hex}; the message belongs to another lease");
    }

    /// <summary>Checks a hex H field against the expected H.</summary>
    public static Check<TransactionHash> HashField(string? hex, TransactionHash expected, string field)
    {
        ArgumentNullException.ThrowIfNull(expected);
        var parsed = TransactionHash.Parse(hex, field);
        if (!parsed.IsOk)
        {
            return parsed;
        }

        return parsed.Value.Equals(expected)
            ? parsed
            : Check.Fail<TransactionHash>(ReasonCode.HashMismatch, $"{field} is {parsed.Value.Hex} but this lease's H is {expected.Hex}; the message belongs to another lease");
    }

    /// <summary>Checks that a digest field is 64 lower-case hex characters.</summary>
    public static Check<string> HexDigest(string? digestHex, string field) =>
        Codec.TryFromHex(digestHex, 32, out _)
            ? Check.Ok(digestHex!)
            : Check.Fail<string>(ReasonCode.InvalidEncoding, $"{field} must be 64 lower-case hex characters (SHA-256 of the access grant)");

    /// <summary>Checks that <paramref name="digestHex"/> is SHA-256 of σ's canonical bytes.</summary>
    public static Check<string> GrantDigest(string? digestHex, string expectedHex, string field = "grantDigest")
    {
        ArgumentNullException.ThrowIfNull(expectedHex);
        if (!Codec.TryFromHex(digestHex, 32, out _))
        {
            return Check.Fail<string>(ReasonCode.InvalidEncoding, $"{field} must be 64 lower-case hex characters (SHA-256 of the access grant)");
        }

        return CryptographicOperations.FixedTimeEquals(System.Text.Encoding.ASCII.GetBytes(digestHex!), System.Text.Encoding.ASCII.GetBytes(expectedHex))
            ? Check.Ok(digestHex!)
            : Check.Fail<string>(ReasonCode.GrantDigestMismatch, $"{field} {digestHex} is not the digest of the grant this lease received ({expectedHex}); rate with the grant from this lease's access Secret");
    }

    /// <summary>
    /// Checks that a request is signed by the renter whose keys it carries (key id in <c>signer</c> matches
    /// <c>renter.signingKey</c>) and, when <paramref name="expectedRenter"/> is given, that it is that renter.
    /// </summary>
    public static Check<PartyIdentity> RequestSignature(Signed<LeaseRequest> request, PartyIdentity? expectedRenter = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        var kind = Kind(request.Payload.Kind, MessageKinds.Request);
        if (!kind.IsOk)
        {
            return kind.As<PartyIdentity>();
        }

        var renter = PartyIdentity.FromPublicKeys(request.Payload.Renter, PartyRole.Renter);
        if (!renter.IsOk)
        {
            return renter;
        }

        if (expectedRenter is not null && !renter.Value.Equals(expectedRenter))
        {
            return Check.Fail<PartyIdentity>(ReasonCode.SignerMismatch, $"request carries renter key {renter.Value.KeyId}, expected renter {expectedRenter.KeyId}");
        }

        var sig = request.VerifySignature(renter.Value);
        return sig.IsOk ? renter : sig.As<PartyIdentity>();
    }
}
