using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Operator.Tests.Support;

/// <summary>
/// Builds a Lease carrying a renter-signed request, so a test reads as its story:
/// <c>LeaseBuilder.For(renter).In("team-a", "train").To(leaser, escrow).Chips(8).Build()</c>.
/// </summary>
public sealed class LeaseBuilder
{
    /// <summary>GKE's v5e accelerator label value.</summary>
    public const string V5e = "tpu-v5-lite-podslice";

    /// <summary>GKE's v6e accelerator label value.</summary>
    public const string V6e = "tpu-v6e-slice";

    private readonly PartyKeyPair renter;
    private string ns = "default";
    private string name = "lease";
    private string? boundNamespace;
    private string? boundName;
    private string leaser = "rpoi1unset";
    private string escrow = "rpoi1unset";
    private string accelerator = V5e;
    private string topology = "2x2";
    private int chips = 4;
    private long durationSeconds = 3600;
    private DateTimeOffset timestamp = DateTimeOffset.UtcNow;
    private string deposit = "1000000";
    private string rent = "500000";
    private bool returnRequested;
    private bool withFinalizer;
    private long? ratingWindowSeconds;
    private Action<JsonObject>? tamper;
    private PartyKeyPair? signer;
    private string? nonce;

    private LeaseBuilder(PartyKeyPair renter) => this.renter = renter;

    /// <summary>Starts a lease for <paramref name="renter"/>.</summary>
    public static LeaseBuilder For(PartyKeyPair renter) => new(renter);

    /// <summary>The Lease object's namespace and name (the request is bound to them unless <see cref="BoundTo"/> says otherwise).</summary>
    public LeaseBuilder In(string @namespace, string leaseName)
    {
        ns = @namespace;
        name = leaseName;
        return this;
    }

    /// <summary>Binds the signed request to another namespace/name than the object's (a copied request).</summary>
    public LeaseBuilder BoundTo(string @namespace, string leaseName)
    {
        boundNamespace = @namespace;
        boundName = leaseName;
        return this;
    }

    /// <summary>The leaser and escrow addresses the request names.</summary>
    public LeaseBuilder To(PartyKeyPair leaserKeys, PartyKeyPair escrowKeys) => To(leaserKeys.Identity.Address, escrowKeys.Identity.Address);

    /// <summary>The leaser and escrow addresses the request names.</summary>
    public LeaseBuilder To(string leaserAddress, string escrowAddress)
    {
        leaser = leaserAddress;
        escrow = escrowAddress;
        return this;
    }

    /// <summary>Accelerator and topology.</summary>
    public LeaseBuilder Shape(string acceleratorType, string sliceTopology)
    {
        accelerator = acceleratorType;
        topology = sliceTopology;
        return this;
    }

    /// <summary>Chip count M.</summary>
    public LeaseBuilder Chips(int count)
    {
        chips = count;
        return this;
    }

    /// <summary>Lease duration.</summary>
    public LeaseBuilder Duration(TimeSpan duration)
    {
        durationSeconds = (long)duration.TotalSeconds;
        return this;
    }

    /// <summary>When R signed (T).</summary>
    public LeaseBuilder SignedAt(DateTimeOffset time)
    {
        timestamp = time;
        return this;
    }

    /// <summary>Deposit ρ and rent ω in uusd.</summary>
    public LeaseBuilder Amounts(string depositAmount, string rentAmount)
    {
        deposit = depositAmount;
        rent = rentAmount;
        return this;
    }

    /// <summary>Signs with this nonce instead of a fresh random one (a replay).</summary>
    public LeaseBuilder Nonce(string value)
    {
        nonce = value;
        return this;
    }

    /// <summary>Sets <c>spec.returnRequested</c>.</summary>
    public LeaseBuilder ReturnRequested(bool value = true)
    {
        returnRequested = value;
        return this;
    }

    /// <summary>Sets <c>spec.ratingWindowSeconds</c>.</summary>
    public LeaseBuilder RatingWindow(TimeSpan window)
    {
        ratingWindowSeconds = (long)window.TotalSeconds;
        return this;
    }

    /// <summary>
    /// Carries the operator's finalizer from the start, as <c>kubectl rpoi request</c> writes it; without this the Lease is
    /// a hand-written one that the operator patches the finalizer into.
    /// </summary>
    public LeaseBuilder WithFinalizer()
    {
        withFinalizer = true;
        return this;
    }

    /// <summary>Changes the payload after signing (the signature no longer matches).</summary>
    public LeaseBuilder TamperedWith(Action<JsonObject> change)
    {
        tamper = change;
        return this;
    }

    /// <summary>Signs with another key than the renter's own (a forged request).</summary>
    public LeaseBuilder SignedBy(PartyKeyPair other)
    {
        signer = other;
        return this;
    }

    /// <summary>The signed request E(m).</summary>
    public Signed<LeaseRequest> BuildRequest()
    {
        var m = new LeaseRequest(
            MessageKinds.Request,
            renter.Identity.ToPublicKeys(),
            leaser,
            escrow,
            accelerator,
            topology,
            chips,
            durationSeconds,
            new DateTimeOffset(timestamp.UtcTicks - (timestamp.UtcTicks % TimeSpan.TicksPerSecond), TimeSpan.Zero),
            nonce ?? Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)),
            new Money(deposit, "uusd"),
            new Money(rent, "uusd"),
            new LeaseRef(boundNamespace ?? ns, boundName ?? name));
        return signer is null ? RpoiEquations.SignRequest(m, renter) : Signed<LeaseRequest>.Create(m, signer);
    }

    /// <summary>The Lease object.</summary>
    public Lease Build() => Build(BuildRequest());

    /// <summary>The Lease object for an already signed request.</summary>
    public Lease Build(Signed<LeaseRequest> request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var envelope = JsonNode.Parse(request.ToJson())!.AsObject();
        var payload = envelope["payload"]!.AsObject();
        tamper?.Invoke(payload);
        return new Lease
        {
            Metadata = new k8s.Models.V1ObjectMeta { Name = name, NamespaceProperty = ns, Finalizers = withFinalizer ? [LeaseConditions.Finalizer] : null },
            Spec = new LeaseSpec
            {
                Request = new SignedLeaseRequest
                {
                    Payload = (JsonObject)payload.DeepClone(),
                    Signer = envelope["signer"]!.GetValue<string>(),
                    Sig = envelope["sig"]!.GetValue<string>(),
                },
                ReturnRequested = returnRequested ? true : null,
                RatingWindowSeconds = ratingWindowSeconds,
            },
        };
    }

    /// <summary>Shape of this lease.</summary>
    public TpuShape TpuShape => new(accelerator, topology);
}
