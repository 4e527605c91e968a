using Rpoi.Protocol.Messages;

namespace Rpoi.Protocol.Checks;

/// <summary>What the checker expects a request to say. Null fields are not checked.</summary>
/// <param name="Namespace">Lease namespace the request must be bound to (null = not checked, e.g. at π).</param>
/// <param name="Name">Lease name.</param>
/// <param name="LeaserAddress">β's address.</param>
/// <param name="EscrowAddress">π's address.</param>
public sealed record RequestExpectations(string? Namespace = null, string? Name = null, string? LeaserAddress = null, string? EscrowAddress = null);

/// <summary>
/// All checks on a signed request, in a fixed order: kind and keys, R's signature (equation 3), lease binding,
/// parties, chips, duration, amounts, age window, and last the nonce (last because it records the nonce).
/// </summary>
public sealed class RequestVerifier(TimeProvider timeProvider, INonceStore? nonceStore = null, RequestPolicy? policy = null)
{
    private readonly RequestPolicy _policy = policy ?? RequestPolicy.Default;

    /// <summary>Runs every check; the first failure is returned.</summary>
    public async ValueTask<Check<VerifiedRequest>> VerifyAsync(Signed<LeaseRequest> request, RequestExpectations expectations, CancellationToken cancellationToken = default)
    {
        var stateless = Verify(request, expectations);
        if (!stateless.IsOk || nonceStore is null)
        {
            return stateless;
        }

        var v = stateless.Value;
        var nonce = await ProtocolChecks.NonceAsync(nonceStore, v.Renter.KeyId, request.Payload, v.H, _policy, cancellationToken).ConfigureAwait(false);
        return nonce.IsOk ? stateless : nonce.As<VerifiedRequest>();
    }

    /// <summary>Every check except the nonce.</summary>
    public Check<VerifiedRequest> Verify(Signed<LeaseRequest> request, RequestExpectations expectations)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(expectations);
        var verified = RpoiEquations.VerifyRequest(request);
        if (!verified.IsOk)
        {
            return verified;
        }

        var m = request.Payload;
        var check = Check.Ok(m);
        if (expectations.Namespace is not null || expectations.Name is not null)
        {
            check = ProtocolChecks.LeaseBinding(m, expectations.Namespace ?? string.Empty, expectations.Name ?? string.Empty);
        }

        check = check
            .Then(_ => ProtocolChecks.Parties(m, expectations.LeaserAddress, expectations.EscrowAddress))
            .Then(_ => ProtocolChecks.Chips(m.Chips).Then(_ => Check.Ok(m)))
            .Then(_ => ProtocolChecks.Duration(m.DurationSeconds).Then(_ => Check.Ok(m)))
            .Then(_ => ProtocolChecks.Amounts(m.Deposit, m.Rent).Then(_ => Check.Ok(m)))
            .Then(_ => ProtocolChecks.NonceFormat(m.Nonce).Then(_ => Check.Ok(m)))
            .Then(_ => ProtocolChecks.Age(m, timeProvider.GetUtcNow(), _policy));
        return check.IsOk ? verified : check.As<VerifiedRequest>();
    }
}
