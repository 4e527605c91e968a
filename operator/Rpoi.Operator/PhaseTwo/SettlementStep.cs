using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Rpoi.Escrow.Client;
using Rpoi.Kube.Controllers;
using Rpoi.Kube.Events;
using Rpoi.Kube.Informers;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;
using ProtocolRating = Rpoi.Protocol.Messages.Rating;
using RatingResource = Rpoi.Operator.Entities.Rating;

namespace Rpoi.Operator.PhaseTwo;

/// <summary>The collaborators of <see cref="SettlementStep"/>.</summary>
/// <param name="Leases">API access to Leases (status patches).</param>
/// <param name="Ratings">API access to Ratings (a fresh read of the accepted ones right before m_final is built).</param>
/// <param name="RatingCache">The Rating informer's cache, with the <see cref="RatingIndexes.ByLease"/> index.</param>
/// <param name="Escrow">π, called with β's credentials.</param>
/// <param name="Events">Kubernetes events.</param>
/// <param name="Metrics">Phase II metrics.</param>
/// <param name="Options">β's identity and phase II settings.</param>
/// <param name="Time">The clock (a FakeTimeProvider in tests).</param>
/// <param name="Logger">Logger; silent when null.</param>
public sealed record SettlementDependencies(
    IResourceClient<Lease> Leases,
    IResourceClient<RatingResource> Ratings,
    Store<RatingResource> RatingCache,
    IEscrowClient Escrow,
    IEventRecorder Events,
    PhaseTwoMetrics Metrics,
    PhaseTwoOptions Options,
    TimeProvider Time,
    ILogger? Logger = null);

/// <summary>
/// RPOI phase II settlement for one returned Lease (PROTOCOL.md phase II step 3, equations 19–21). When both ratings
/// are accepted, or when the rating window closes, it builds m_final = E_π(sign_β(m''')) from whatever ratings it has,
/// submits it to π, verifies π's signed receipt and records it with the decision-table row in the Lease's status.
/// <para>
/// Exactly once across restarts and retries: the phase <c>Settling</c> is written before m_final is submitted, and π
/// settles at most once per H (a replay returns the first receipt), so a crash between the submit and the status write
/// re-submits and records the same receipt. π is asked for an existing settlement first, which also picks up the
/// renter's own claim when β was absent.
/// </para>
/// </summary>
public sealed class SettlementStep
{
    private readonly SettlementDependencies d;
    private readonly LeaseStatusWriter writer;
    private readonly ILogger log;
    private PartyIdentity? escrowIdentity;

    /// <summary>Creates the step.</summary>
    public SettlementStep(SettlementDependencies dependencies)
    {
        ArgumentNullException.ThrowIfNull(dependencies);
        d = dependencies;
        writer = new LeaseStatusWriter(d.Leases);
        log = d.Logger ?? NullLogger.Instance;
    }

    /// <summary>True for the phases phase II owns: <c>AwaitingRatings</c> and <c>Settling</c>.</summary>
    public static bool Owns(Lease lease) => lease?.Status?.Phase is LeasePhase.AwaitingRatings or LeasePhase.Settling;

    /// <summary>
    /// When the rating window of <paramref name="lease"/> closes: <c>status.ratingDeadline</c> (set at the return), else
    /// the return time (or creation) plus <c>spec.ratingWindowSeconds</c> (or <paramref name="defaultWindow"/>).
    /// </summary>
    public static DateTimeOffset DeadlineOf(Lease lease, TimeSpan defaultWindow)
    {
        ArgumentNullException.ThrowIfNull(lease);
        if (lease.Status?.RatingDeadline is { } deadline)
        {
            return Utc(deadline);
        }

        var window = lease.Spec?.RatingWindowSeconds is { } seconds ? TimeSpan.FromSeconds(seconds) : defaultWindow;
        var start = lease.Status?.ReturnedAt ?? lease.Metadata.CreationTimestamp;
        return start is { } s ? Utc(s) + window : DateTimeOffset.MinValue;
    }

    /// <summary>How long until <paramref name="lease"/> should be looked at again while it waits for ratings (at least one second).</summary>
    public TimeSpan NextCheck(Lease lease)
    {
        var wait = DeadlineOf(lease, d.Options.DefaultRatingWindow) - d.Time.GetUtcNow();
        return wait > TimeSpan.FromSeconds(1) ? wait : TimeSpan.FromSeconds(1);
    }

    /// <summary>
    /// Settles <paramref name="lease"/> if it is due; otherwise asks to be called again at the deadline. For a Lease in
    /// <c>AwaitingRatings</c> or <c>Settling</c>; other phases are left alone.
    /// </summary>
    public async Task<ReconcileResult> ReconcileAsync(Lease lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        if (!Owns(lease))
        {
            return ReconcileResult.Done;
        }

        var (result, _) = await RunAsync(lease, cancellationToken).ConfigureAwait(false);
        return result;
    }

    /// <summary>
    /// For the Lease finalizer: may the Lease go? True when phase II holds nothing for it (it is settled, failed, or
    /// never reached phase II). A Lease waiting for ratings is settled here when it is due (both ratings in, or the
    /// window closed, then the partial m_final is submitted); until then the answer is false and the finalizer should
    /// look again after <see cref="NextCheck"/>.
    /// </summary>
    public async Task<bool> CanReleaseFinalizerAsync(Lease lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        if (!Owns(lease))
        {
            return true;
        }

        var (_, settled) = await RunAsync(lease, cancellationToken).ConfigureAwait(false);
        return settled;
    }

    /// <summary>
    /// <see cref="CanReleaseFinalizerAsync"/> as a finalizer result: <see cref="ReconcileResult.Done"/> when the Lease may
    /// go; otherwise when to look again (the deadline, or a retry after π refused or was unreachable).
    /// </summary>
    public async Task<ReconcileResult> FinalizeAsync(Lease lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        if (!Owns(lease))
        {
            return ReconcileResult.Done;
        }

        var (result, settled) = await RunAsync(lease, cancellationToken).ConfigureAwait(false);
        return settled ? ReconcileResult.Done : result is ReconcileResult.Success ? ReconcileResult.RequeueAfter(NextCheck(lease)) : result;
    }

    private async Task<(ReconcileResult Result, bool Settled)> RunAsync(Lease lease, CancellationToken ct)
    {
        var key = ObjectKey.Of(lease);
        var parsed = LeaseVerification.Parse(lease.Spec?.Request);
        if (!parsed.TryGetValue(out var em))
        {
            // Phase I verified this request; an unparseable one here means the object was changed behind the CEL rule.
            return (ReconcileResult.Error($"Lease {key} waits for settlement but spec.request does not parse ({parsed.Reason}): {parsed.Message}"), false);
        }

        var h = RpoiEquations.TransactionHashOf(em);
        var status = LeaseStatusWriter.Clone(lease.Status);
        status.Conditions ??= [];
        var now = d.Time.GetUtcNow();
        var deadline = DeadlineOf(lease, d.Options.DefaultRatingWindow);
        var (renter, leaser) = Recorded(lease, RatingIndexes.RatingsOf(d.RatingCache, lease));
        var due = status.Phase == LeasePhase.Settling || now >= deadline || (renter is not null && leaser is not null);
        if (!due)
        {
            SetSettled(status, lease, false, PhaseTwoReasons.AwaitingRatings,
                $"waiting for ratings until {StatusConditions.Format(deadline)}: renter rating {Describe(renter)}, leaser rating {Describe(leaser)}");
            try
            {
                await writer.WriteAsync(lease, status, ct).ConfigureAwait(false);
            }
            catch (k8s.Autorest.HttpOperationException e) when (Conflicts.IsConflict(e))
            {
                // The condition only informs; the newer object is reconciled again and reports then.
            }

            return (ReconcileResult.RequeueAfter(deadline - now), false);
        }

        PartyIdentity pi;
        SettlementView? settlement;
        try
        {
            pi = await EscrowIdentityAsync(ct).ConfigureAwait(false);
            // π first: it may already hold the settlement (a crash after the submit, or the renter's own claim).
            settlement = await d.Escrow.GetSettlementAsync(h.Hex, ct).ConfigureAwait(false);
            if (settlement is null)
            {
                if (status.Phase != LeasePhase.Settling)
                {
                    status.Phase = LeasePhase.Settling;
                    SetSettled(status, lease, null, PhaseTwoReasons.Submitting,
                        $"submitting m_final to escrow {d.Options.EscrowAddress}: renter rating {Describe(renter)}, leaser rating {Describe(leaser)}");
                    // Written before the submit, guarded by the resourceVersion read: a crash after it resumes here and
                    // re-submits (π answers with the first receipt), and a rating recorded on the Lease meanwhile makes
                    // it fail with 409 so the retry settles with that rating. From here on no rating is recorded.
                    lease = await writer.WriteAsync(lease, status, ct).ConfigureAwait(false);
                    await d.Events.RecordAsync(lease, EventTypes.Normal, "Settling", "Settle",
                        $"rating window {(now >= deadline ? "closed" : "complete")}; submitting m_final for H {h.Hex} with renter rating {Describe(renter)} and leaser rating {Describe(leaser)}", ct).ConfigureAwait(false);
                }

                var fresh = await FreshRatingsAsync(lease, ct).ConfigureAwait(false);
                var (digest, _) = GrantDigests.Of(lease);
                digest ??= fresh.Renter?.Signed.Payload.GrantDigest ?? GrantDigests.NoGrant;
                var final = RpoiEquations.SealFinal(em, digest, fresh.Renter?.Signed, LeaserRatingOf(fresh.Leaser, lease.Status), d.Options.Leaser, pi);
                settlement = await d.Escrow.SettleAsync(final, ct).ConfigureAwait(false);
            }
        }
        catch (EscrowException e) when (!e.IsTransient)
        {
            var message = $"the escrow refused m_final ({e.Reason}{(e.Field is null ? string.Empty : $", field {e.Field}")}): {e.Message}; nothing moved, retrying in {d.Options.RefusedRetryDelay}";
            await FailAsync(lease, status, PhaseTwoReasons.SettlementRefused, e.Reason, message, EventTypes.Warning, ct).ConfigureAwait(false);
            return (ReconcileResult.RequeueAfter(d.Options.RefusedRetryDelay), false);
        }
        catch (Exception e) when (e is EscrowException or HttpRequestException)
        {
            var message = $"the escrow could not be reached: {e.Message}; retrying";
            await FailAsync(lease, status, PhaseTwoReasons.EscrowUnavailable, PhaseTwoReasons.EscrowUnavailable, message, null, ct).ConfigureAwait(false);
            return (ReconcileResult.Error($"escrow unavailable while settling {key}: {e.Message}"), false);
        }

        var receipt = Signed<SettlementReceipt>.Parse(settlement.Receipt.GetRawText()).Then(r => RpoiEquations.VerifyReceipt(r, pi, h));
        if (!receipt.TryGetValue(out var payload))
        {
            var message = $"the escrow's receipt for H {h.Hex} does not verify under π's key {pi.KeyId} ({receipt.Reason}): {receipt.Message}";
            await FailAsync(lease, status, PhaseTwoReasons.ReceiptInvalid, PhaseTwoReasons.ReceiptInvalid, message, EventTypes.Warning, ct).ConfigureAwait(false);
            return (ReconcileResult.Error(message), false);
        }

        await RecordAsync(lease, status, settlement, payload, ct).ConfigureAwait(false);
        return (ReconcileResult.Done, true);
    }

    private async Task RecordAsync(Lease lease, LeaseStatus status, SettlementView settlement, SettlementReceipt receipt, CancellationToken ct)
    {
        // π's receipt is the truth: it names the row π applied, whatever this replica submitted.
        var decision = receipt.Decision;
        status.Phase = LeasePhase.Settled;
        status.Settlement = new LeaseSettlement
        {
            RenterRated = decision.RenterRated,
            LeaserRated = decision.LeaserRated,
            Deposit = decision.Deposit == DepositDisposition.ToRenter ? DepositOutcome.ReturnedToRenter : DepositOutcome.Withheld,
            Rent = decision.Rent == RentDisposition.ToLeaser ? RentOutcome.PaidToLeaser : RentOutcome.ReturnedToRenter,
            Receipt = settlement.Receipt.GetRawText(),
            SettledAt = receipt.Time.UtcDateTime,
        };
        var by = receipt.Source == SettlementSource.RenterFallback ? "the renter's own claim (the leaser never submitted m_final)" : "the leaser's m_final";
        var row = $"deposit {(decision.Deposit == DepositDisposition.ToRenter ? "returned to the renter" : "withheld by the escrow")}, rent {(decision.Rent == RentDisposition.ToLeaser ? "paid to the leaser" : "returned to the renter")}";
        SetSettled(status, lease, true, OutcomeReason(decision), $"settled by {by}: {row} ({receipt.LedgerEntry})");
        var changed = LeaseStatusWriter.Differs(lease.Status, status);
        lease = await writer.WriteAsync(lease, status, ct).ConfigureAwait(false);
        if (changed)
        {
            d.Metrics.Settled(decision);
            log.LogInformation("Lease {Lease} settled: {Row}", ObjectKey.Of(lease), row);
            await d.Events.RecordAsync(lease, EventTypes.Normal, "Settled", "Settle", $"escrow settled H {receipt.H} by {by}: {row}", ct).ConfigureAwait(false);
        }
    }

    private async Task FailAsync(Lease lease, LeaseStatus status, string conditionReason, string metricReason, string message, string? eventType, CancellationToken ct)
    {
        SetSettled(status, lease, false, conditionReason, message);
        var changed = LeaseStatusWriter.Differs(lease.Status, status);
        d.Metrics.SettlementFailed(metricReason);
        log.LogWarning("Settlement of Lease {Lease}: {Message}", ObjectKey.Of(lease), message);
        try
        {
            lease = await writer.WriteAsync(lease, status, ct).ConfigureAwait(false);
        }
        catch (k8s.Autorest.HttpOperationException e) when (Conflicts.IsConflict(e))
        {
            // Someone wrote first; the retry reads fresh state and reports again.
            return;
        }

        if (changed && eventType is not null)
        {
            await d.Events.RecordAsync(lease, eventType, conditionReason, "Settle", message, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The rating of each side that m_final carries: the one named in <c>status.acceptedRatings</c>. A side with no
    /// record falls back to the oldest Rating whose status says accepted, which only a Lease rated by an operator
    /// version from before the record was kept can have (this version records on the Lease first).
    /// </summary>
    private static (string? Renter, string? Leaser) Recorded(Lease lease, IEnumerable<RatingResource> ratings)
    {
        var record = lease.Status?.AcceptedRatings;
        var accepted = ratings.Where(r => r.Status?.Accepted == true && r.Metadata.DeletionTimestamp is null).ToList();
        accepted.Sort(RatingIndexes.CompareAge);
        return (record?.Renter ?? accepted.FirstOrDefault(r => r.Spec.Rater == Rater.Renter)?.Metadata.Name,
            record?.Leaser ?? accepted.FirstOrDefault(r => r.Spec.Rater == Rater.Leaser)?.Metadata.Name);
    }

    private sealed record RenterPart(RatingResource Resource, Signed<RenterRating> Signed);

    /// <summary>
    /// The ratings m_final carries, read from the API server by the names <see cref="Recorded"/> gives for the Lease as
    /// written at Settling (the cache may lag, and the record is frozen from then on), with the renter's E(m'')
    /// verified once more against the Lease so m_final never carries a piece π would refuse.
    /// </summary>
    private async Task<(RenterPart? Renter, RatingResource? Leaser)> FreshRatingsAsync(Lease lease, CancellationToken ct)
    {
        var (renterName, leaserName) = Recorded(lease, RatingIndexes.RatingsOf(d.RatingCache, lease));
        var renter = await ReadAsync(renterName).ConfigureAwait(false);
        var leaser = await ReadAsync(leaserName).ConfigureAwait(false);
        RenterPart? renterPart = null;
        if (renter is not null)
        {
            var verified = RatingVerification.VerifyAgainst(renter.Spec.SignedRating, lease);
            if (verified.TryGetValue(out var signed))
            {
                renterPart = new RenterPart(renter, signed);
            }
            else
            {
                log.LogWarning("Accepted Rating {Rating} no longer verifies ({Reason}: {Message}); settling without it", ObjectKey.Of(renter), verified.Reason, verified.Message);
            }
        }

        return (renterPart, leaser);

        async Task<RatingResource?> ReadAsync(string? name)
        {
            if (name is null)
            {
                return null;
            }

            var current = await d.Ratings.GetAsync(new ObjectKey(lease.Metadata.NamespaceProperty, name), ct).ConfigureAwait(false);
            if (current is null)
            {
                log.LogWarning("Accepted Rating {Namespace}/{Rating} of Lease {Lease} was deleted; settling without it", lease.Metadata.NamespaceProperty, name, ObjectKey.Of(lease));
            }

            return current;
        }
    }

    /// <summary>Ra_β as β signs it into m''': the platform team's score and comment with the lease's node incidents appended (<see cref="LeaserRatingFacts"/>), timed at the Rating's creation (stable across re-submits).</summary>
    private static ProtocolRating? LeaserRatingOf(RatingResource? rating, LeaseStatus? status) =>
        rating is null
            ? null
            : new ProtocolRating((int)rating.Spec.Score, LeaserRatingFacts.CommentOf(rating.Spec.Comment, status), rating.Metadata.CreationTimestamp is { } t ? Utc(t) : DateTimeOffset.UnixEpoch);

    private async Task<PartyIdentity> EscrowIdentityAsync(CancellationToken ct)
    {
        if (escrowIdentity is { } known)
        {
            return known;
        }

        var id = await d.Escrow.GetIdentityAsync(ct).ConfigureAwait(false);
        var parsed = PartyIdentity.FromBase64(id.SigningPublicKey, id.EncryptionPublicKey, PartyRole.Escrow);
        if (!parsed.TryGetValue(out var identity))
        {
            throw new InvalidOperationException($"the escrow's identity does not parse ({parsed.Reason}): {parsed.Message}");
        }

        if (identity.Address != d.Options.EscrowAddress)
        {
            // Sealing m_final to another party would hand the ratings to it; refuse loudly instead.
            throw new InvalidOperationException($"the escrow at the configured URL is {identity.Address}, but this operator settles with {d.Options.EscrowAddress}; point the escrow URL at {d.Options.EscrowAddress} or change the escrow address");
        }

        escrowIdentity = identity;
        return identity;
    }

    private void SetSettled(LeaseStatus status, Lease lease, bool? value, string reason, string message) =>
        StatusConditions.Set(status.Conditions ??= [], PhaseTwoReasons.SettledCondition, value, reason, message, lease.Metadata.Generation, d.Time);

    /// <summary>The Settled condition's reason for a decision-table row.</summary>
    public static string OutcomeReason(SettlementDecision decision)
    {
        ArgumentNullException.ThrowIfNull(decision);
        return (decision.RenterRated, decision.LeaserRated) switch
        {
            (true, true) => "BothRated",
            (false, true) => "RenterRatingMissing",
            (true, false) => "LeaserRatingMissing",
            _ => "NoRatings",
        };
    }

    private static string Describe(string? rating) => rating ?? "missing";

    private static DateTimeOffset Utc(DateTime t) => new(DateTime.SpecifyKind(t, DateTimeKind.Utc));
}
