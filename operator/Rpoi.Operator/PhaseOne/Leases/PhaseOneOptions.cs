using Rpoi.Operator.PhaseOne.Grant;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Keys;

namespace Rpoi.Operator.PhaseOne.Leases;

/// <summary>What the phase I reconciler needs to know about this operator: who β is, which π it trusts, where renters reach the cluster.</summary>
public sealed record PhaseOneOptions
{
    /// <summary>β's key pair (signs the grant σ; its address must be the request's leaser).</summary>
    public required PartyKeyPair Leaser { get; init; }

    /// <summary>π's address: a request naming another escrow is refused.</summary>
    public required string EscrowAddress { get; init; }

    /// <summary>The API server URL and CA written into each renter's kubeconfig.</summary>
    public required ClusterEndpointOptions Cluster { get; init; }

    /// <summary>Age window of a request (default 24 h old, 5 min ahead).</summary>
    public RequestPolicy RequestPolicy { get; init; } = RequestPolicy.Default;

    /// <summary>Rating window when the Lease does not set one (72 h, PROTOCOL.md).</summary>
    public TimeSpan DefaultRatingWindow { get; init; } = TimeSpan.FromHours(72);

    /// <summary>Image of the ready pod template in σ.</summary>
    public string PodImage { get; init; } = PodPlacement.DefaultImage;

    /// <summary>The shipped ClusterRole each lease's ServiceAccount is bound to in the lease's namespace (<see cref="LeaseAccess"/>).</summary>
    public string LeaseUserClusterRole { get; init; } = LeaseAccess.DefaultClusterRole;
}
