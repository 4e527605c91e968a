using System.Globalization;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Rpoi.Escrow.Client;
using Rpoi.Kube.Controllers;
using Rpoi.Kube.Events;
using Rpoi.Kube.Informers;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Operator.PhaseOne.Grant;
using Rpoi.Operator.PhaseOne.Nodes;
using Rpoi.Protocol.Messages;

namespace Rpoi.Operator.PhaseOne.Leases;

/// <summary>The collaborators of <see cref="LeaseReconciler"/>, bundled so the host wires them once.</summary>
/// <param name="Leases">API access to Lease objects (status and metadata patches).</param>
/// <param name="Tpus">Claims and releases TPU nodes.</param>
/// <param name="Queue">The FIFO queue of leases waiting for chips.</param>
/// <param name="Grants">Builds, seals and writes σ.</param>
/// <param name="Access">Per-lease ServiceAccount, Role, RoleBinding and tokens.</param>
/// <param name="Escrow">π.</param>
/// <param name="Events">Kubernetes events.</param>
/// <param name="Metrics">Phase I metrics.</param>
/// <param name="Options">β's identity and settings.</param>
/// <param name="Time">The clock (a FakeTimeProvider in tests).</param>
/// <param name="Nodes">Node objects by name from the Node informer (null when gone), to watch an Active lease's nodes; null: not watched.</param>
/// <param name="Nonces">β's nonce store over the Lease cache, which refuses a replayed request nonce; null: not checked (π still refuses it).</param>
/// <param name="CachedLeases">The Leases in the informer cache, to tell a waiting lease when Active ones free chips; null: not told.</param>
public sealed record LeaseReconcilerDependencies(
    IResourceClient<Lease> Leases,
    ITpuProvider Tpus,
    AllocationQueue Queue,
    GrantIssuer Grants,
    LeaseAccess Access,
    IEscrowClient Escrow,
    IEventRecorder Events,
    PhaseOneMetrics Metrics,
    PhaseOneOptions Options,
    TimeProvider Time,
    Func<string, V1Node?>? Nodes = null,
    LeaseNonces? Nonces = null,
    Func<IEnumerable<Lease>>? CachedLeases = null);

/// <summary>
/// RPOI phase I for one Lease: verify E(m) → pledge it to π → claim TPU nodes (FIFO when short) → deliver the
/// sealed grant → Active; and the return (expiry, <c>spec.returnRequested</c>, deletion) → AwaitingRatings, where
/// phase II takes over. Every step is idempotent, so a restart at any point resumes without a second pledge or claim:
/// π is asked for the pledge under H before pledging, claims are found by the lease UID on the nodes, and the grant is
/// found by H in the Lease's own status (<c>transactionHash</c>, <c>grantDigest</c>, <c>activeSince</c>, <c>expiresAt</c>).
/// </summary>
public sealed class LeaseReconciler : IReconciler<Lease>, IFinalizer<Lease>
{
    /// <summary>
    /// Legacy: the annotation in which operator versions before <c>status.grantDigest</c> kept the hex SHA-256 of σ on the
    /// Lease. No longer written; phase II still reads it for Leases those versions made Active.
    /// </summary>
    public const string GrantDigestAnnotation = "rpoi.io/grant-digest";

    private const string HeldState = "Held";

    private readonly LeaseReconcilerDependencies d;
    private readonly LeaseVerification verification;
    private readonly LeaseStatusWriter statusWriter;
    private readonly NeverServedRefund refund;
    private readonly ILogger<LeaseReconciler> logger;

    /// <summary>Creates the reconciler.</summary>
    public LeaseReconciler(LeaseReconcilerDependencies dependencies, ILogger<LeaseReconciler> logger)
    {
        ArgumentNullException.ThrowIfNull(dependencies);
        d = dependencies;
        this.logger = logger;
        verification = new LeaseVerification(d.Options, d.Time, d.Nonces);
        statusWriter = new LeaseStatusWriter(d.Leases);
        refund = new NeverServedRefund(d.Escrow, d.Options, d.Time);
    }

    /// <summary>
    /// Phase II's finalizer, which this reconciler's finalizer delegates to for a Lease deleted in <c>AwaitingRatings</c>
    /// or <c>Settling</c> (it settles when due and answers Done once the Lease may go). Null until phase II is wired:
    /// then such a Lease keeps its finalizer and is looked at again at its rating deadline.
    /// </summary>
    public IFinalizer<Lease>? SettlementFinalizer { get; set; }

    /// <summary>The claim identity of a Lease.</summary>
    public static LeaseIdentity IdentityOf(Lease lease)
    {
        ArgumentNullException.ThrowIfNull(lease);
        return new LeaseIdentity(lease.Metadata.NamespaceProperty ?? string.Empty, lease.Metadata.Name, lease.Metadata.Uid ?? string.Empty);
    }

    /// <inheritdoc/>
    public async Task<ReconcileResult> ReconcileAsync(Lease entity, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entity);
        var lease = entity;
        var id = IdentityOf(lease);
        var status = LeaseStatusWriter.Clone(lease.Status);
        switch (status.Phase)
        {
            case LeasePhase.Failed or LeasePhase.AwaitingRatings or LeasePhase.Settling or LeasePhase.Settled:
                // Terminal for phase I; phase II owns AwaitingRatings onwards.
                d.Queue.Leave(id);
                ObserveMetrics(id, status, 0);
                return ReconcileResult.Done;
            case LeasePhase.Returning:
                return await ReturnAsync(lease, status, "the return was interrupted and is resumed", cancellationToken).ConfigureAwait(false);
        }

        var verdict = await verification.VerifyAsync(lease, VerifiedHash(status), cancellationToken).ConfigureAwait(false);
        if (!verdict.IsOk)
        {
            return await FailAsync(lease, status, LeaseConditions.Verified, verdict.Reason!, verdict.Message!, cancellationToken).ConfigureAwait(false);
        }

        var request = verdict.Request!;
        var m = request.Request.Payload;
        // What this reconcile did, told in one event when the lease reaches Active or starts to wait (one event write
        // per transition instead of one per step).
        var steps = new List<string>();
        var recordedHash = status.TransactionHash;
        status.TransactionHash = request.H.Hex;
        status.Renter = request.Renter.Address;
        status.Chips = m.Chips;
        status.Accelerator = m.Accelerator;
        status.Topology = m.Topology;
        status.ObservedGeneration = lease.Metadata.Generation;
        SetCondition(status, lease, LeaseConditions.Verified, true, LeaseConditions.Succeeded, "the renter's signature, the binding to this Lease, the parties, amounts and age are valid");

        if (lease.Spec?.ReturnRequested == true)
        {
            return await ReturnAsync(lease, status, "spec.returnRequested is true", cancellationToken).ConfigureAwait(false);
        }

        if (status.Phase == LeasePhase.Active && status.ExpiresAt is { } expiry && d.Time.GetUtcNow() >= Utc(expiry))
        {
            return await ReturnAsync(lease, status, $"the lease expired at {GrantIssuer.FormatTime(Utc(expiry))}", cancellationToken).ConfigureAwait(false);
        }

        // Pledge: π is idempotent by H, so a restart that pledges again gets the same pledge and R is debited once.
        if (!(Conditions.IsTrue(status.Conditions, LeaseConditions.Pledged) && recordedHash == request.H.Hex))
        {
            // A request no pool can ever hold fails before anything is pledged, so no money is locked and it blocks no queue.
            if (status.Phase != LeasePhase.Active && await RefuseImpossibleAsync(lease, status, request, verdict.Shape!, cancellationToken).ConfigureAwait(false) is { } refused)
            {
                return refused;
            }

            var pledge = await EnsurePledgeAsync(request, cancellationToken).ConfigureAwait(false);
            if (pledge.Refused is { } refusal)
            {
                return await FailAsync(lease, status, LeaseConditions.Pledged, refusal.Reason, refusal.Message, cancellationToken).ConfigureAwait(false);
            }

            if (pledge.Unavailable is { } unavailable)
            {
                SetCondition(status, lease, LeaseConditions.Pledged, null, LeaseConditions.EscrowUnavailable, unavailable);
                status.Phase ??= LeasePhase.Pending;
                await statusWriter.WriteAsync(lease, status, cancellationToken).ConfigureAwait(false);
                return ReconcileResult.Error($"escrow unavailable for {id}: {unavailable}");
            }

            SetCondition(status, lease, LeaseConditions.Pledged, true, LeaseConditions.Succeeded, $"the escrow holds the deposit and rent under H {request.H.Hex}");
            steps.Add($"escrow {d.Options.EscrowAddress} holds the pledge under H {request.H.Hex}");
        }

        // Nodes still marked for an earlier Lease of this name (it vanished without its finalizer, and this one was
        // created in its place) are released; a look at the node cache, no request, when there are none.
        foreach (var freed in await d.Tpus.ReleaseOrphansAsync(id.Namespace, id.Name, id.Uid, cancellationToken).ConfigureAwait(false))
        {
            d.Queue.CapacityFreed(freed);
        }

        // Before a grant is issued the stored Lease is read (see below); the read goes out now, alongside the claim.
        var recorded = GrantIssuer.Find(lease, request.H);
        var storedRead = recorded is null ? d.Leases.GetAsync(ObjectKey.Of(lease), cancellationToken) : null;

        // Allocate: adopt what this lease already holds (restart), else claim in FIFO order.
        var shape = verdict.Shape!;
        var claim = await d.Tpus.FindClaimAsync(id, cancellationToken).ConfigureAwait(false);
        IReadOnlyList<string>? held = null;
        if (status.Phase == LeasePhase.Active && recorded is not null && status.Nodes is { Count: > 0 } granted && (claim is null || claim.Chips != m.Chips))
        {
            // σ names the nodes: one lost while Active is reported (Degraded, below), never replaced behind the renter's back.
            held = claim?.Nodes ?? [];
            claim = new TpuClaim(shape, [.. granted], (status.NodePool ?? string.Empty).Split(','), m.Chips);
        }

        if (claim is null || claim.Chips != m.Chips)
        {
            // Leases that fit claim side by side; a lease claims only what is left after the older leases queued for the
            // same shape are served (strict FIFO), else it parks until they move or capacity is freed.
            // A partial claim (a crash in the middle of a multi-host claim) is completed or rolled back by ClaimAsync.
            claim = null;
            var entry = new QueuedLease(id, shape, CreatedAt(lease), m.Chips);
            for (var look = 0; claim is null; look++)
            {
                var view = d.Queue.Look(entry);
                var outcome = await d.Tpus.ClaimAsync(new TpuClaimRequest(id, shape, m.Chips, view.Ahead), cancellationToken).ConfigureAwait(false);
                switch (outcome)
                {
                    case TpuClaimOutcome.Claimed claimed:
                        claim = claimed.Claim;
                        d.Queue.Leave(id);
                        steps.Add($"claimed {claim.Chips} chips on {string.Join(", ", claim.Nodes)}");
                        break;
                    case TpuClaimOutcome.Insufficient insufficient when d.Queue.Park(id, look >= 3 ? null : view):
                        return await WaitAsync(lease, status, shape, m.Chips, view, insufficient, steps, cancellationToken).ConfigureAwait(false);
                    case TpuClaimOutcome.Insufficient:
                        // Room may have appeared while this lease decided to wait: look again instead of missing the wake-up.
                        break;
                    case TpuClaimOutcome.Impossible impossible:
                        d.Queue.Leave(id);
                        return await FailAsync(lease, status, LeaseConditions.Allocated, LeaseConditions.InvalidShape, impossible.Message, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        else
        {
            d.Queue.Leave(id);
        }

        status.Nodes = [.. claim!.Nodes];
        status.NodePool = string.Join(",", claim.NodePools);
        status.QueuePosition = null;
        status.EarliestFreeAt = null;
        SetCondition(status, lease, LeaseConditions.Allocated, true, LeaseConditions.Succeeded, $"{claim.Chips} chips on {claim.Nodes.Count} node(s) of pool {status.NodePool}");

        // Grant: reuse the grant the Lease's status records for H (restart), else issue credentials, seal σ and write the
        // Secret (the operator never reads Secrets outside its namespace). The status write below is the record: a crash
        // or conflict before it re-issues the grant, and the new Secret replaces the old one.
        var issued = recorded;
        if (issued is null)
        {
            // The cache can lag behind this operator's own last status write (a key queued by an earlier event runs
            // before the informer has the write). Issuing from such a view would replace a Secret whose digest the stored
            // status already records, so wait for the informer's newer copy instead.
            var stored = await storedRead!.ConfigureAwait(false);
            if (stored is not null && stored.Metadata.ResourceVersion != lease.Metadata.ResourceVersion)
            {
                return ReconcileResult.Requeue;
            }

            var validFrom = status.ActiveSince is { } since ? Utc(since) : Truncate(d.Time.GetUtcNow());
            var validUntil = validFrom + TimeSpan.FromSeconds(m.DurationSeconds);
            issued = await d.Grants.IssueAsync(id, OwnerOf(lease), request, claim, validFrom, validUntil, d.Options.Leaser, d.Options.Cluster, d.Options.PodImage, cancellationToken).ConfigureAwait(false);
            steps.Add($"sealed access grant written to Secret {issued.SecretName} for renter key {request.Renter.KeyId}");
        }

        var wasActive = status.Phase == LeasePhase.Active;
        status.Phase = LeasePhase.Active;
        status.ActiveSince = issued.ValidFrom.UtcDateTime;
        status.ExpiresAt = issued.ValidUntil.UtcDateTime;
        status.GrantDigest = issued.GrantDigest;
        status.AccessSecretName = issued.SecretName;
        SetCondition(status, lease, LeaseConditions.Ready, true, LeaseConditions.Succeeded,
            $"the renter's sealed grant is in Secret {issued.SecretName}; valid until {GrantIssuer.FormatTime(issued.ValidUntil)}");
        var nodes = d.Nodes is { } lookup ? NodeIncidents.Observe(status, lookup, (held ?? claim.Nodes).ToHashSet(StringComparer.Ordinal), Truncate(d.Time.GetUtcNow())) : null;
        if (nodes?.Condition is { } degraded)
        {
            SetCondition(status, lease, NodeIncidentReasons.Degraded, degraded.IsDegraded, degraded.Reason, degraded.Message);
        }

        lease = await statusWriter.WriteAsync(lease, status, cancellationToken).ConfigureAwait(false);
        ObserveMetrics(id, status, 0);
        if (!wasActive)
        {
            d.Metrics.BecameActive(d.Time.GetUtcNow() - CreatedAt(lease));
            steps.Add($"lease active until {GrantIssuer.FormatTime(issued.ValidUntil)}");
            await RecordAsync(lease, EventTypes.Normal, "Active", "Activate", string.Join("; ", steps), cancellationToken).ConfigureAwait(false);
        }

        // One event per incident opened or ended, after the status that records it is written (a resync records none).
        foreach (var e in nodes?.Events ?? [])
        {
            await RecordAsync(lease, e.Type, e.Reason, "ObserveNodes", e.Note, cancellationToken).ConfigureAwait(false);
        }

        var remaining = issued.ValidUntil - d.Time.GetUtcNow();
        if (remaining <= TimeSpan.Zero)
        {
            return await ReturnAsync(lease, status, $"the lease expired at {GrantIssuer.FormatTime(issued.ValidUntil)}", cancellationToken).ConfigureAwait(false);
        }

        // Expiry is a timer on the injected clock, never a poll.
        return ReconcileResult.RequeueAfter(remaining);
    }

    /// <inheritdoc/>
    public async Task DeletedAsync(ObjectKey key, CancellationToken cancellationToken)
    {
        // Normally the finalizer already released everything and only in-memory state keyed by this object remains. A
        // Lease that vanished without its finalizer running (removed by hand, or deleted while no operator ran) may still
        // hold nodes: release those, unless a Lease of that name exists again and they are its own (read fresh, so a
        // lagging cache can never free a live lease's nodes).
        d.Queue.Forget(key.Namespace ?? string.Empty, key.Name);
        d.Metrics.ForgetByKey(key.ToString());
        var live = await d.Leases.GetAsync(key, cancellationToken).ConfigureAwait(false);
        foreach (var shape in await d.Tpus.ReleaseOrphansAsync(key.Namespace ?? string.Empty, key.Name, live?.Metadata.Uid, cancellationToken).ConfigureAwait(false))
        {
            d.Queue.CapacityFreed(shape);
        }
    }

    /// <inheritdoc/>
    public async Task<ReconcileResult> FinalizeAsync(Lease entity, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entity);
        var status = LeaseStatusWriter.Clone(entity.Status);
        switch (status.Phase)
        {
            case LeasePhase.AwaitingRatings or LeasePhase.Settling:
                return await HandOffToPhaseTwoAsync(entity, status, cancellationToken).ConfigureAwait(false);
            case LeasePhase.Settled or LeasePhase.Failed:
                // Nothing is held by a Failed lease; release defensively in case it failed after a partial step.
                await ReleaseAllAsync(entity, cancellationToken).ConfigureAwait(false);
                d.Queue.Leave(IdentityOf(entity));
                d.Metrics.Forget(IdentityOf(entity).Uid);
                return ReconcileResult.Done;
        }

        var verdict = verification.Verify(entity, VerifiedHash(status));
        if (!verdict.IsOk)
        {
            // Never verified means never pledged and never claimed: nothing to give back.
            await ReleaseAllAsync(entity, cancellationToken).ConfigureAwait(false);
            d.Queue.Leave(IdentityOf(entity));
            d.Metrics.Forget(IdentityOf(entity).Uid);
            return ReconcileResult.Done;
        }

        status.TransactionHash = verdict.Request!.H.Hex;
        var result = await ReturnAsync(entity, status, "the Lease was deleted", cancellationToken).ConfigureAwait(false);
        if (result is not ReconcileResult.Success)
        {
            return result;
        }

        // ReturnAsync wrote the phase it reached into this status (and the Lease).
        if (status.Phase is LeasePhase.AwaitingRatings or LeasePhase.Settling)
        {
            var fresh = await d.Leases.GetAsync(ObjectKey.Of(entity), cancellationToken).ConfigureAwait(false);
            if (fresh?.Status is { } stored)
            {
                return await HandOffToPhaseTwoAsync(fresh, stored, cancellationToken).ConfigureAwait(false);
            }
        }

        // Failed before a pledge, or Settled by a never-served refund: the result carries the version of that status
        // write, so the runtime removes the finalizer at once instead of conflicting on the version it handed in.
        d.Metrics.Forget(IdentityOf(entity).Uid);
        return result;
    }

    /// <summary>
    /// The seam to phase II: a returned lease holds π's pledge until settlement, so its finalizer stays until phase II
    /// moves it to Settled (or Failed). Look again at the rating deadline, when phase II settles with what it has.
    /// </summary>
    private async Task<ReconcileResult> HandOffToPhaseTwoAsync(Lease lease, LeaseStatus status, CancellationToken cancellationToken)
    {
        if (SettlementFinalizer is { } phaseTwo)
        {
            var result = await phaseTwo.FinalizeAsync(lease, cancellationToken).ConfigureAwait(false);
            if (result is ReconcileResult.Success)
            {
                d.Metrics.Forget(IdentityOf(lease).Uid);
            }

            return result;
        }

        var deadline = status.RatingDeadline is { } t ? Utc(t) : d.Time.GetUtcNow() + d.Options.DefaultRatingWindow;
        var wait = deadline - d.Time.GetUtcNow();
        logger.LogInformation("Lease {Lease} is deleted while {Phase}; its finalizer stays until phase II settles it", IdentityOf(lease), status.Phase);
        return ReconcileResult.RequeueAfter(wait > TimeSpan.FromMinutes(1) ? wait : TimeSpan.FromMinutes(1));
    }

    /// <summary>
    /// Records that the lease waits (phase Pending, its queue position, when chips may free up) and says why in one Warning
    /// event per transition into waiting (and one more if it learns its room shrank below it); a resync or a move up the
    /// queue records none.
    /// </summary>
    private async Task<ReconcileResult> WaitAsync(Lease lease, LeaseStatus status, TpuShape shape, int chips, QueueView view, TpuClaimOutcome.Insufficient insufficient, List<string> steps, CancellationToken cancellationToken)
    {
        var position = view.Position;
        var (reason, message) = insufficient.UsableChips is { } usable && chips > usable
            ? (LeaseConditions.Unsatisfiable,
                $"{chips} chips of {shape} asked, but its usable slices hold {usable} chips now (slices were removed or became unusable); "
                + $"the lease keeps place {position} without holding room, so younger leases of {shape} are served meanwhile; "
                + "delete the Lease or set spec.returnRequested for a full refund of deposit and rent, or wait for the slices to come back")
            : position > 1
                ? (LeaseConditions.Queued, $"waiting for {chips} chips of {shape.Accelerator} {shape.Topology}: {position - 1} older lease(s) ahead in the queue; {insufficient.Message}")
                : (LeaseConditions.InsufficientChips, $"next in the queue; {insufficient.Message}");
        var wasWaiting = status.Phase == LeasePhase.Pending && status.QueuePosition is not null;
        var previousReason = status.Conditions?.FirstOrDefault(c => c.Type == LeaseConditions.Allocated)?.Reason;
        status.Phase = LeasePhase.Pending;
        status.QueuePosition = position;
        status.EarliestFreeAt = reason == LeaseConditions.Unsatisfiable ? null : (await EarliestFreeAsync(shape, chips, view, cancellationToken).ConfigureAwait(false))?.UtcDateTime;
        SetCondition(status, lease, LeaseConditions.Allocated, false, reason, message);
        SetCondition(status, lease, LeaseConditions.Ready, false, reason, message);
        await statusWriter.WriteAsync(lease, status, cancellationToken).ConfigureAwait(false);
        ObserveMetrics(IdentityOf(lease), status, status.Chips ?? 0);
        // Moving up to the head (Queued → InsufficientChips) is no news worth an event; finding the room gone is.
        if (!wasWaiting || (reason == LeaseConditions.Unsatisfiable && previousReason != reason))
        {
            steps.Add(message);
            if (status.EarliestFreeAt is { } freeAt)
            {
                steps.Add($"chips free up no earlier than {GrantIssuer.FormatTime(Utc(freeAt))}, when Active leases expire");
            }

            await RecordAsync(lease, EventTypes.Warning, reason, "Queue", string.Join("; ", steps), cancellationToken).ConfigureAwait(false);
        }

        if (reason == LeaseConditions.Unsatisfiable)
        {
            // This lease cannot use the room now: the next lease behind it may (each time it looks, as room may have freed).
            d.Queue.WakeBehind(IdentityOf(lease));
        }

        // The queue wakes this lease when the head leaves or capacity is freed; nothing to poll.
        return ReconcileResult.Done;
    }

    /// <summary>
    /// The earliest time the chips of this lease and of the older leases ahead of it that the shape can hold are free
    /// together, from the chips free now and the expiry of the shape's Active leases in the cache; null when unknown.
    /// </summary>
    private async Task<DateTimeOffset?> EarliestFreeAsync(TpuShape shape, int chips, QueueView view, CancellationToken cancellationToken)
    {
        if (d.CachedLeases is not { } cached || await d.Tpus.GetCapacityAsync(shape, fresh: false, cancellationToken).ConfigureAwait(false) is not { } room)
        {
            return null;
        }

        var needed = chips + view.Ahead.Where(a => a.Chips <= room.TotalChips).Sum(a => a.Chips);
        var active = cached()
            .Where(l => l.Status is { Phase: LeasePhase.Active, ExpiresAt: not null, Chips: > 0 } s && s.Accelerator == shape.Accelerator && s.Topology == shape.Topology)
            .Select(l => new ActiveHold((int)l.Status!.Chips!.Value, Utc(l.Status.ExpiresAt!.Value)));
        return QueueForecast.EarliestFree(needed, room.FreeChips, active);
    }

    /// <summary>
    /// Fails the lease with <see cref="LeaseConditions.ImpossibleRequest"/> when its request is more than the shape's room
    /// (or a shape no pool offers); null when it can be met, now or later. A pledge π already holds under H (made just
    /// before a crash that kept it out of the status) is never failed over: that lease waits, and is refunded if deleted.
    /// </summary>
    private async Task<ReconcileResult?> RefuseImpossibleAsync(Lease lease, LeaseStatus status, VerifiedRequest request, TpuShape shape, CancellationToken cancellationToken)
    {
        var chips = request.Request.Payload.Chips;
        var room = await d.Tpus.GetCapacityAsync(shape, fresh: false, cancellationToken).ConfigureAwait(false);
        if (room is not null && chips <= room.TotalChips)
        {
            return null;
        }

        // The refusal is final, and the cache may not show a pool added a moment ago: look at the API server before it.
        room = await d.Tpus.GetCapacityAsync(shape, fresh: true, cancellationToken).ConfigureAwait(false);
        if (room is not null && chips <= room.TotalChips)
        {
            return null;
        }

        var offers = room is null ? await d.Tpus.GetCapacityAsync(cancellationToken).ConfigureAwait(false) : [];
        var message = RoomCheck.Impossible(shape, chips, room, offers);
        if (message is null)
        {
            return null;
        }

        try
        {
            // Read-only: nothing is pledged here; it only tells a lease pledged before a lost status write from a new one.
            if (await d.Escrow.GetPledgeAsync(request.H.Hex, cancellationToken).ConfigureAwait(false) is not null)
            {
                return null;
            }
        }
        catch (Exception e) when (e is EscrowException { IsTransient: true } or HttpRequestException)
        {
            return ReconcileResult.Error($"escrow unavailable while refusing the impossible request of {IdentityOf(lease)}: {e.Message}");
        }

        return await FailAsync(lease, status, LeaseConditions.Allocated, LeaseConditions.ImpossibleRequest, message, cancellationToken).ConfigureAwait(false);
    }

    private async Task<ReconcileResult> FailAsync(Lease lease, LeaseStatus status, string conditionType, string reason, string message, CancellationToken cancellationToken)
    {
        var id = IdentityOf(lease);
        d.Queue.Leave(id);
        status.Phase = LeasePhase.Failed;
        status.QueuePosition = null;
        status.EarliestFreeAt = null;
        status.ObservedGeneration = lease.Metadata.Generation;
        SetCondition(status, lease, conditionType, false, reason, message);
        SetCondition(status, lease, LeaseConditions.Ready, false, reason, message);
        var changed = LeaseStatusWriter.Differs(lease.Status, status);
        await statusWriter.WriteAsync(lease, status, cancellationToken).ConfigureAwait(false);
        ObserveMetrics(id, status, 0);
        if (changed)
        {
            logger.LogWarning("Lease {Lease} failed: {Reason}: {Message}", id, reason, message);
            await RecordAsync(lease, EventTypes.Warning, reason, "Verify", message, cancellationToken).ConfigureAwait(false);
        }

        return ReconcileResult.Done;
    }

    /// <summary>
    /// The return: nodes released (labels, annotations and taint removed), the ServiceAccount, Role and RoleBinding
    /// deleted (which revokes the token), the access Secret deleted after its σ digest is kept on the Lease, and the
    /// rating window started. Resumable: the phase Returning is written first, every step tolerates "already done".
    /// </summary>
    private async Task<ReconcileResult> ReturnAsync(Lease lease, LeaseStatus status, string why, CancellationToken cancellationToken)
    {
        var id = IdentityOf(lease);
        var pledged = Conditions.IsTrue(status.Conditions, LeaseConditions.Pledged);
        if (!pledged && status.TransactionHash is { } hex)
        {
            try
            {
                pledged = await d.Escrow.GetPledgeAsync(hex, cancellationToken).ConfigureAwait(false) is not null;
            }
            catch (EscrowException e) when (e.IsTransient)
            {
                return ReconcileResult.Error($"escrow unavailable while returning {id}: {e.Message}");
            }
        }

        if (status.Phase != LeasePhase.Returning)
        {
            status.Phase = LeasePhase.Returning;
            SetCondition(status, lease, LeaseConditions.Ready, false, LeaseConditions.Returned, $"returning: {why}");
            lease = await statusWriter.WriteAsync(lease, status, cancellationToken).ConfigureAwait(false);
            await RecordAsync(lease, EventTypes.Normal, "Returning", "Return", why, cancellationToken).ConfigureAwait(false);
        }

        var released = await ReleaseAllAsync(lease, cancellationToken).ConfigureAwait(false);
        d.Queue.Leave(id);
        if (released.Count > 0 && status.Accelerator is { } acc && status.Topology is { } topo)
        {
            d.Queue.CapacityFreed(new TpuShape(acc, topo));
        }

        var now = Truncate(d.Time.GetUtcNow());
        status.QueuePosition = null;
        status.EarliestFreeAt = null;
        status.ReturnedAt ??= now.UtcDateTime;
        if (NodeIncidents.EndAll(status, Utc(status.ReturnedAt.Value)) is { } recovered)
        {
            SetCondition(status, lease, NodeIncidentReasons.Degraded, recovered.IsDegraded, recovered.Reason, recovered.Message);
        }

        SetCondition(status, lease, LeaseConditions.Allocated, false, LeaseConditions.Returned, released.Count > 0 ? $"released {string.Join(", ", released)}" : "no nodes held");
        if (pledged && NeverServedRefund.NeverServed(lease, status))
        {
            return await RefundNeverServedAsync(lease, status, why, released, cancellationToken).ConfigureAwait(false);
        }

        if (pledged)
        {
            var window = lease.Spec?.RatingWindowSeconds is { } seconds ? TimeSpan.FromSeconds(seconds) : d.Options.DefaultRatingWindow;
            status.Phase = LeasePhase.AwaitingRatings;
            status.RatingDeadline = (Utc(status.ReturnedAt.Value) + window).UtcDateTime;
            SetCondition(status, lease, LeaseConditions.Ready, false, LeaseConditions.Returned,
                $"returned ({why}); ratings are accepted until {GrantIssuer.FormatTime(Utc(status.RatingDeadline!.Value))}");
        }
        else
        {
            status.Phase = LeasePhase.Failed;
            SetCondition(status, lease, LeaseConditions.Ready, false, LeaseConditions.ReturnedBeforePledge, $"returned ({why}) before the escrow held a pledge; nothing was charged");
        }

        lease = await statusWriter.WriteAsync(lease, status, cancellationToken).ConfigureAwait(false);
        ObserveMetrics(id, status, 0);
        await RecordAsync(lease, EventTypes.Normal, "Returned", "Return", $"nodes released and access revoked ({why})", cancellationToken).ConfigureAwait(false);
        return DoneAt(lease);
    }

    /// <summary>
    /// A pledged lease that ends before σ was ever delivered (deleted or returned while queued or claiming): β signs the
    /// never-served notice and π refunds ρ + ω to R (row NeverServed). No rating window: the Lease is Settled with π's
    /// receipt, so its finalizer goes at once. The phase stays Returning until π answers, so a restart asks again (π
    /// answers a repeat with the first receipt).
    /// </summary>
    private async Task<ReconcileResult> RefundNeverServedAsync(Lease lease, LeaseStatus status, string why, IReadOnlyList<string> released, CancellationToken cancellationToken)
    {
        var id = IdentityOf(lease);
        var verdict = verification.Verify(lease, VerifiedHash(status));
        if (!verdict.IsOk)
        {
            // Pledged means verified once; a request that no longer parses is an edited spec, which the CRD forbids.
            return ReconcileResult.Error($"the signed request of {id} no longer verifies ({verdict.Reason}); cannot sign the never-served refund");
        }

        var outcome = await refund.RefundAsync(verdict.Request!.Request, $"the lease ended before it was served: {why}", cancellationToken).ConfigureAwait(false);
        switch (outcome)
        {
            case RefundOutcome.Unavailable unavailable:
                SetCondition(status, lease, LeaseConditions.Ready, false, LeaseConditions.EscrowUnavailable, unavailable.Message);
                await statusWriter.WriteAsync(lease, status, cancellationToken).ConfigureAwait(false);
                return ReconcileResult.Error($"escrow unavailable while refunding {id}: {unavailable.Message}");
            case RefundOutcome.Refused refused:
                var message = $"{refused.Message}; nothing moved, asking again in 5 minutes";
                SetCondition(status, lease, LeaseConditions.Ready, false, LeaseConditions.RefundRefused, message);
                var changed = LeaseStatusWriter.Differs(lease.Status, status);
                lease = await statusWriter.WriteAsync(lease, status, cancellationToken).ConfigureAwait(false);
                if (changed)
                {
                    logger.LogWarning("Never-served refund of Lease {Lease} refused: {Message}", id, refused.Message);
                    await RecordAsync(lease, EventTypes.Warning, LeaseConditions.RefundRefused, "Refund", message, cancellationToken).ConfigureAwait(false);
                }

                return ReconcileResult.RequeueAfter(TimeSpan.FromMinutes(5));
        }

        var settled = (RefundOutcome.Settled)outcome;
        var row = settled.Receipt.Source == SettlementSource.NeverServed
            ? "row NeverServed: deposit and rent returned to the renter in full"
            : $"already settled by the renter's own claim: deposit {settled.Settlement.Deposit}, rent {settled.Settlement.Rent}";
        status.Phase = LeasePhase.Settled;
        status.RatingDeadline = null;
        status.Settlement = NeverServedRefund.Record(settled.Settlement, settled.Receipt);
        SetCondition(status, lease, PhaseTwo.PhaseTwoReasons.SettledCondition, true, LeaseConditions.NeverServed, $"the escrow settled H {settled.Receipt.H} by {row} ({settled.Receipt.LedgerEntry})");
        SetCondition(status, lease, LeaseConditions.Ready, false, LeaseConditions.NeverServed, $"returned ({why}) before it was served; the escrow refunded the deposit and the rent");
        lease = await statusWriter.WriteAsync(lease, status, cancellationToken).ConfigureAwait(false);
        ObserveMetrics(id, status, 0);
        await RecordAsync(lease, EventTypes.Normal, LeaseConditions.NeverServed, "Refund",
            $"{(released.Count > 0 ? $"released {string.Join(", ", released)}; " : string.Empty)}the lease was never served ({why}); escrow {d.Options.EscrowAddress} settled H {settled.Receipt.H} by {row} ({settled.Receipt.LedgerEntry})", cancellationToken).ConfigureAwait(false);
        return DoneAt(lease);
    }

    /// <summary>Releases nodes, revokes credentials and deletes the access Secret; σ's digest stays in the Lease's status.</summary>
    private async Task<IReadOnlyList<string>> ReleaseAllAsync(Lease lease, CancellationToken cancellationToken)
    {
        var id = IdentityOf(lease);
        var released = await d.Tpus.ReleaseAsync(id, cancellationToken).ConfigureAwait(false);
        await d.Access.RevokeAsync(id, cancellationToken).ConfigureAwait(false);
        // σ's digest stays in status.grantDigest (written with phase Active) for phase II, so the Secret can go.
        await d.Grants.DeleteAsync(id, cancellationToken).ConfigureAwait(false);
        return released;
    }

    private sealed record PledgeCheck(EscrowRefusal? Refused, string? Unavailable);

    private sealed record EscrowRefusal(string Reason, string Message);

    private async Task<PledgeCheck> EnsurePledgeAsync(VerifiedRequest request, CancellationToken cancellationToken)
    {
        PledgeView view;
        try
        {
            // One round trip: π answers the same E(m) again with the pledge it already holds under H (200, no age or nonce
            // re-check), so a restart cannot pledge twice and a look-up first would only add a call per new lease.
            view = await d.Escrow.PledgeAsync(request.Request, cancellationToken).ConfigureAwait(false);
        }
        catch (EscrowException e) when (!e.IsTransient)
        {
            return new PledgeCheck(new EscrowRefusal(LeaseConditions.PledgeRefused, $"the escrow refused the pledge ({e.Reason}{(e.Field is null ? string.Empty : $", field {e.Field}")}): {e.Message}"), null);
        }
        catch (EscrowException e)
        {
            return new PledgeCheck(null, $"the escrow could not be reached ({e.Reason}): {e.Message}; retrying");
        }
        catch (HttpRequestException e)
        {
            return new PledgeCheck(null, $"the escrow could not be reached: {e.Message}; retrying");
        }

        var m = request.Request.Payload;
        var problem =
            view.H != request.H.Hex ? $"the escrow answered for H {view.H}, not {request.H.Hex}"
            : view.Renter != request.Renter.Address ? $"the pledge's renter is {view.Renter}, not {request.Renter.Address}"
            : view.Leaser != d.Options.Leaser.Identity.Address ? $"the pledge's leaser is {view.Leaser}, not this leaser {d.Options.Leaser.Identity.Address}"
            : !SameAmount(view.Deposit, m.Deposit) ? $"the escrow holds deposit {view.Deposit.Amount} {view.Deposit.Denom}, but the request says {m.Deposit.Amount} {m.Deposit.Denom}"
            : !SameAmount(view.Rent, m.Rent) ? $"the escrow holds rent {view.Rent.Amount} {view.Rent.Denom}, but the request says {m.Rent.Amount} {m.Rent.Denom}"
            : view.State != HeldState ? $"the pledge under H is {view.State}, not {HeldState}; it was already settled or released"
            : null;
        return problem is null ? new PledgeCheck(null, null) : new PledgeCheck(new EscrowRefusal(LeaseConditions.PledgeMismatch, problem), null);
    }

    private static bool SameAmount(EscrowAmount held, Rpoi.Protocol.Messages.Money asked) =>
        held.Denom == asked.Denom
        && long.TryParse(held.Amount, NumberStyles.None, CultureInfo.InvariantCulture, out var a)
        && long.TryParse(asked.Amount, NumberStyles.None, CultureInfo.InvariantCulture, out var b)
        && a == b;

    private void SetCondition(LeaseStatus status, Lease lease, string type, bool? value, string reason, string message)
    {
        status.Conditions ??= [];
        var text = value switch { true => Conditions.True, false => Conditions.False, null => Conditions.Unknown };
        Conditions.Set(status.Conditions, type, text, reason, message, lease.Metadata.Generation, d.Time);
        // metav1.Time has whole seconds on the wire; keeping the same here makes "status changed?" stable.
        foreach (var c in status.Conditions)
        {
            c.LastTransitionTime = Truncate(Utc(c.LastTransitionTime)).UtcDateTime;
        }
    }

    private static ReconcileResult DoneAt(Lease written) =>
        written.Metadata.ResourceVersion is { Length: > 0 } rv ? ReconcileResult.DoneAt(rv) : ReconcileResult.Done;

    private static string? VerifiedHash(LeaseStatus status) =>
        Conditions.IsTrue(status.Conditions, LeaseConditions.Verified) ? status.TransactionHash : null;

    private void ObserveMetrics(LeaseIdentity id, LeaseStatus status, long waitingChips) =>
        d.Metrics.Observe(id.Uid, id.Namespace, id.Name, status.Phase, status.Phase == LeasePhase.Active ? status.Chips ?? 0 : 0, waitingChips);

    private async Task RecordAsync(Lease lease, string type, string reason, string action, string note, CancellationToken cancellationToken) =>
        await d.Events.RecordAsync(lease, type, reason, action, note, cancellationToken).ConfigureAwait(false);

    private static V1OwnerReference OwnerOf(Lease lease) => new()
    {
        ApiVersion = $"{Lease.Group}/{Lease.Version}",
        Kind = Lease.KindName,
        Name = lease.Metadata.Name,
        Uid = lease.Metadata.Uid,
        Controller = true,
    };

    private static DateTimeOffset CreatedAt(Lease lease) =>
        lease.Metadata.CreationTimestamp is { } t ? Utc(t) : DateTimeOffset.MinValue;

    private static DateTimeOffset Utc(DateTime t) => new(DateTime.SpecifyKind(t, DateTimeKind.Utc));

    private static DateTimeOffset Truncate(DateTimeOffset t) => new(t.UtcTicks - (t.UtcTicks % TimeSpan.TicksPerSecond), TimeSpan.Zero);
}
