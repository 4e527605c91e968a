using System.Text.Json.Nodes;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Protocol;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Messages;

namespace Rpoi.Operator.PhaseOne.Leases;

/// <summary>The outcome of checking a Lease's signed request: the verified request and its shape, or why it is refused.</summary>
public sealed record LeaseVerdict(VerifiedRequest? Request, TpuShape? Shape, string? Reason, string? Message)
{
    /// <summary>True when every check passed.</summary>
    public bool IsOk => Request is not null;

    /// <summary>A passed verdict.</summary>
    public static LeaseVerdict Ok(VerifiedRequest request, TpuShape shape) => new(request, shape, null, null);

    /// <summary>A refused verdict with a reason code and a message that names the field and the fix.</summary>
    public static LeaseVerdict Refused(string reason, string message) => new(null, null, reason, message);
}

/// <summary>
/// β's checks of a Lease (PROTOCOL.md phase I step 3, equation 3's <c>m = D_R(E(m))</c>): R's signature, the binding
/// to this namespace and name, leaser and escrow addresses, chips, duration, amounts, nonce format, the age window,
/// and the operator's own limits (the name must fit a node label; chips must be whole slices of the topology).
/// </summary>
public sealed class LeaseVerification
{
    /// <summary>Longest Lease name: it becomes the value of a node label, which Kubernetes caps at 63 characters.</summary>
    public const int MaxNameLength = 63;

    private readonly PhaseOneOptions options;
    private readonly RequestVerifier verifier;
    private readonly LeaseNonces? nonces;

    /// <summary>Creates the checker; with <paramref name="nonces"/>, <see cref="VerifyAsync"/> also refuses a replayed nonce.</summary>
    public LeaseVerification(PhaseOneOptions options, TimeProvider time, LeaseNonces? nonces = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        this.options = options;
        this.nonces = nonces;
        // The nonce is checked by VerifyAsync (the same ProtocolChecks.NonceAsync), only for a request not verified before.
        verifier = new RequestVerifier(time, nonceStore: null, options.RequestPolicy);
    }

    /// <summary>Parses <c>spec.request</c> into E(m) exactly as signed.</summary>
    public static Check<Signed<LeaseRequest>> Parse(SignedLeaseRequest? request)
    {
        // Read once: a cached request keeps its payload as JSON and parses it on every read (SignedLeaseRequest.Compact).
        if (request?.Payload is not { } payload)
        {
            return Check.Fail<Signed<LeaseRequest>>(ReasonCode.MalformedMessage, "spec.request.payload is missing; put the output of 'kubectl rpoi request' in spec.request");
        }

        var envelope = new JsonObject
        {
            ["payload"] = payload.DeepClone(),
            ["signer"] = request.Signer,
            ["sig"] = request.Sig,
        };
        return Signed<LeaseRequest>.Parse(envelope.ToJsonString());
    }

    /// <summary>
    /// Runs every check. When <paramref name="alreadyVerifiedHash"/> equals the request's H (the status recorded a passed
    /// verification), the age window is not checked again: a lease outlives its request's 24 h freshness.
    /// </summary>
    public LeaseVerdict Verify(Lease lease, string? alreadyVerifiedHash)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var ns = lease.Metadata.NamespaceProperty ?? string.Empty;
        var name = lease.Metadata.Name ?? string.Empty;
        var parsed = Parse(lease.Spec?.Request);
        if (!parsed.TryGetValue(out var signed))
        {
            return LeaseVerdict.Refused(parsed.Reason!.Value.ToString(), $"spec.request: {parsed.Message}");
        }

        var h = RpoiEquations.TransactionHashOf(signed);
        Check<VerifiedRequest> verified;
        if (alreadyVerifiedHash is not null && string.Equals(alreadyVerifiedHash, h.Hex, StringComparison.Ordinal))
        {
            // Spec is immutable (CEL); only the signature is re-checked, which is cheap and catches a forged status.
            verified = RpoiEquations.VerifyRequest(signed);
        }
        else
        {
            verified = verifier.Verify(signed, new RequestExpectations(ns, name, options.Leaser.Identity.Address, options.EscrowAddress));
        }

        if (!verified.TryGetValue(out var request))
        {
            return LeaseVerdict.Refused(verified.Reason!.Value.ToString(), verified.Message);
        }

        if (name.Length > MaxNameLength)
        {
            return LeaseVerdict.Refused(LeaseConditions.InvalidLeaseName,
                $"metadata.name is {name.Length} characters; a Lease name must be at most {MaxNameLength} so it can label its nodes; sign a request for a shorter name");
        }

        var m = signed.Payload;
        var shape = new TpuShape(m.Accelerator ?? string.Empty, m.Topology ?? string.Empty);
        if (string.IsNullOrWhiteSpace(m.Accelerator))
        {
            return LeaseVerdict.Refused(LeaseConditions.InvalidShape, "request.accelerator is empty; name a TPU accelerator such as tpu-v5-lite-podslice or tpu-v6e-slice");
        }

        if (!TpuShape.IsValidTopology(m.Topology))
        {
            return LeaseVerdict.Refused(LeaseConditions.InvalidShape, $"request.topology '{m.Topology}' is not a TPU topology; use dimensions joined by x, such as 2x2, 2x4 or 4x4");
        }

        if (m.Chips % shape.ChipsPerSlice != 0)
        {
            return LeaseVerdict.Refused(LeaseConditions.InvalidShape,
                $"request.chips is {m.Chips}, not a whole number of {m.Topology} slices ({shape.ChipsPerSlice} chips each); ask for a multiple of {shape.ChipsPerSlice}");
        }

        return LeaseVerdict.Ok(request, shape);
    }

    /// <summary>
    /// <see cref="Verify"/> plus the nonce (RequestVerifier's last check) for a request not verified before: a nonce the
    /// renter already used in another Lease under another H is refused <c>NonceReplayed</c>, naming that Lease. A Lease
    /// verified before is not checked again: it holds its nonce, and failing it later would take a served lease away.
    /// </summary>
    public async ValueTask<LeaseVerdict> VerifyAsync(Lease lease, string? alreadyVerifiedHash, CancellationToken cancellationToken)
    {
        var verdict = Verify(lease, alreadyVerifiedHash);
        if (!verdict.IsOk || nonces is null || string.Equals(alreadyVerifiedHash, verdict.Request!.H.Hex, StringComparison.Ordinal))
        {
            return verdict;
        }

        var v = verdict.Request;
        var m = v.Request.Payload;
        var nonce = await ProtocolChecks.NonceAsync(nonces, v.Renter.KeyId, m, v.H, options.RequestPolicy, cancellationToken).ConfigureAwait(false);
        if (nonce.IsOk)
        {
            return verdict;
        }

        // The holder is named so the renter sees which of its Leases took the nonce first.
        var holder = nonces.HolderOf(v.Renter.KeyId, m.Nonce, v.H.Hex);
        var where = holder is null ? "another request" : $"Lease {holder.Lease.Metadata.NamespaceProperty}/{holder.Lease.Metadata.Name} (H {holder.H})";
        return LeaseVerdict.Refused(nonce.Reason!.Value.ToString(),
            $"spec.request.payload.nonce {m.Nonce} was already used by renter {v.Renter.KeyId} in {where}; nothing was pledged. Sign a new request with a fresh nonce ('kubectl rpoi request' makes one)");
    }
}
