namespace Rpoi.Operator.PhaseOne.Allocation;

/// <summary>
/// Finds, claims and releases TPU capacity for leases (the ϕ of the paper's grant σ(Mϕ → β)).
/// Implementations must make a claim exclusive even against another operator replica, and all or nothing:
/// a lease either holds every chip it asked for or none.
/// </summary>
public interface ITpuProvider
{
    /// <summary>Free and claimed chips per accelerator and topology, for discovery (<c>kubectl rpoi offers</c>).</summary>
    Task<IReadOnlyList<TpuCapacity>> GetCapacityAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Capacity of one shape (what <see cref="GetCapacityAsync(CancellationToken)"/> lists for it), or null when no node has
    /// that accelerator and topology. Cheaper than the whole list: asked for each new request, to refuse one that can
    /// never be met before anything is pledged. With <paramref name="fresh"/> the nodes are listed from the API server
    /// rather than read from a cache that may not yet show a pool just added (asked before a refusal that is final).
    /// </summary>
    Task<TpuCapacity?> GetCapacityAsync(TpuShape shape, bool fresh, CancellationToken cancellationToken);

    /// <summary>
    /// Claims <see cref="TpuClaimRequest.Chips"/> chips of the request's shape for the lease, or adopts the claim
    /// the lease already holds (after an operator restart). Returns <see cref="TpuClaimOutcome.Insufficient"/>
    /// without holding anything when the chips cannot all be had now.
    /// </summary>
    Task<TpuClaimOutcome> ClaimAsync(TpuClaimRequest request, CancellationToken cancellationToken);

    /// <summary>The claim the lease holds now, or null when it holds no node.</summary>
    Task<TpuClaim?> FindClaimAsync(LeaseIdentity lease, CancellationToken cancellationToken);

    /// <summary>Removes this lease's marks from every node it holds; returns the released node names.</summary>
    Task<IReadOnlyList<string>> ReleaseAsync(LeaseIdentity lease, CancellationToken cancellationToken);

    /// <summary>
    /// Releases nodes still marked for a Lease named <paramref name="name"/> in <paramref name="namespace"/> by any UID other
    /// than <paramref name="liveUid"/> (the UID of the Lease that exists under that name now, or null when none does):
    /// claims left behind by a Lease that disappeared without the operator's finalizer running (it was removed by hand, or
    /// the Lease was deleted while the operator was not running). Returns the shapes that got capacity back.
    /// </summary>
    Task<IReadOnlyList<TpuShape>> ReleaseOrphansAsync(string @namespace, string name, string? liveUid, CancellationToken cancellationToken);
}

/// <summary>Who a claim is for. The UID makes the claim belong to this object, not to a reused name.</summary>
public sealed record LeaseIdentity(string Namespace, string Name, string Uid)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Namespace}/{Name}";
}

/// <summary>A request for chips: how many, of which accelerator and slice topology.</summary>
/// <param name="Lease">Who claims.</param>
/// <param name="Shape">Accelerator and topology.</param>
/// <param name="Chips">How many chips (a whole number of slices).</param>
/// <param name="Ahead">
/// Older leases queued for the same shape (strict FIFO): the chips of those that hold nothing yet must stay free for
/// them, so the claim succeeds only if it fits in what is left after them.
/// </param>
public sealed record TpuClaimRequest(LeaseIdentity Lease, TpuShape Shape, int Chips, IReadOnlyList<QueuedDemand>? Ahead = null);

/// <summary>An older lease's demand, from the FIFO queue.</summary>
/// <param name="Uid">The lease's UID (how its marks on nodes are recognised).</param>
/// <param name="Chips">The chips it asked for.</param>
public sealed record QueuedDemand(string Uid, int Chips);

/// <summary>Nodes held by one lease.</summary>
/// <param name="Shape">Accelerator and topology of the nodes.</param>
/// <param name="Nodes">Node names, sorted.</param>
/// <param name="NodePools">Node pools the nodes belong to, sorted.</param>
/// <param name="Chips">Total <c>google.com/tpu</c> chips on the nodes.</param>
public sealed record TpuClaim(TpuShape Shape, IReadOnlyList<string> Nodes, IReadOnlyList<string> NodePools, int Chips);

/// <summary>Free capacity of one shape.</summary>
/// <param name="Shape">Accelerator and topology.</param>
/// <param name="HostsPerSlice">Hosts in one slice (1 for single-host slices).</param>
/// <param name="TotalChips">Chips in complete, schedulable slices.</param>
/// <param name="FreeChips">Chips in slices no lease holds.</param>
/// <param name="FreeSlices">Slices no lease holds.</param>
/// <param name="UnusableSlices">
/// Slices of the shape that are not usable now (a host cordoned, NotReady, under GKE maintenance, or missing): not in
/// <paramref name="TotalChips"/>, but they may come back.
/// </param>
public sealed record TpuCapacity(TpuShape Shape, int HostsPerSlice, int TotalChips, int FreeChips, int FreeSlices, int UnusableSlices = 0);

/// <summary>The result of a claim.</summary>
public abstract record TpuClaimOutcome
{
    private TpuClaimOutcome()
    {
    }

    /// <summary>The lease holds all the chips it asked for.</summary>
    public sealed record Claimed(TpuClaim Claim) : TpuClaimOutcome;

    /// <summary>Not enough free chips now; nothing is held. <paramref name="Message"/> says what is missing.</summary>
    public sealed record Insufficient(int FreeChips, int AskedChips, string Message) : TpuClaimOutcome
    {
        /// <summary>Chips in every usable slice of the shape, free or held, when known: more asked than this cannot be met now at all.</summary>
        public int? UsableChips { get; init; }
    }

    /// <summary>The request cannot ever be met by this cluster's node shapes (e.g. chips not a multiple of a slice).</summary>
    public sealed record Impossible(string Message) : TpuClaimOutcome;
}
