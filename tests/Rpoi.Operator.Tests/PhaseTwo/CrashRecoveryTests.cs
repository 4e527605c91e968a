using Rpoi.Escrow.Client;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseTwo;
using Rpoi.Operator.Tests.Support;
using Rpoi.Protocol.Messages;

namespace Rpoi.Operator.Tests.PhaseTwo;

/// <summary>
/// Exactly once across crashes: an operator killed right after π accepted m_final (before the receipt is recorded),
/// or right after it wrote Settling (before the submit), settles the lease exactly once after a restart.
/// </summary>
public sealed class CrashRecoveryTests
{
    [Fact]
    public async Task Killed_between_submitting_m_final_and_recording_the_receipt_settles_exactly_once_after_restart()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        var crashing = new DyingEscrow(env.Escrow, DyingEscrow.Moment.AfterSubmit);
        await env.StartOperatorAsync(crashing);
        var lease = await env.ReturnedLeaseAsync("train", ratingWindow: TimeSpan.FromHours(1));
        await env.ApplyAsync(PhaseTwoEnvironment.RenterRatingResource("train-renter", "train", env.SignRenterRating(lease, 5)));
        await env.ApplyAsync(PhaseTwoEnvironment.LeaserRatingResource("train-leaser", "train", 5));

        // π settled, the operator died before it could record the receipt: the lease is left in Settling.
        await Eventually.HoldsAsync(() => Task.FromResult(crashing.IsDead), "the operator submitted m_final and died", env.Time);
        await env.StopOperatorAsync();
        var first = await env.Anyone.GetSettlementAsync(lease.H.Hex);
        Assert.NotNull(first);
        var stuck = await env.GetLeaseAsync("train");
        Assert.Equal(LeasePhase.Settling, stuck!.Status!.Phase);
        Assert.Null(stuck.Status.Settlement);
        Assert.Equal(1, crashing.Submits);
        var afterCrash = await env.AuditAsync();

        // A fresh replica resumes the Settling lease and records π's first receipt; nothing moves again.
        await env.StartOperatorAsync();
        var settled = await env.WaitForPhaseAsync("train", LeasePhase.Settled);
        Assert.Equal(first.Receipt.GetRawText(), settled.Status!.Settlement!.Receipt);
        Assert.Equal(afterCrash.Head, (await env.AuditAsync()).Head);
        Assert.Equal(2, (await env.LedgerEntriesAsync(lease.H)).Count(e => e.Kind.StartsWith("settle.", StringComparison.Ordinal)));
        Assert.Equal(lease.Rent, await env.BalanceAsync(env.Parties.Leaser.Identity.Address));
        Assert.Equal(PhaseTwoEnvironment.RenterFunds - lease.Rent, await env.BalanceAsync(env.Parties.Renter.Identity.Address));
    }

    [Fact]
    public async Task Killed_after_writing_Settling_but_before_the_submit_settles_once_after_restart()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        var crashing = new DyingEscrow(env.Escrow, DyingEscrow.Moment.BeforeSubmit);
        var phaseTwo = await env.StartOperatorAsync(crashing);
        var lease = await env.ReturnedLeaseAsync("train", ratingWindow: TimeSpan.FromMinutes(10));
        await env.ApplyAsync(PhaseTwoEnvironment.RenterRatingResource("train-renter", "train", env.SignRenterRating(lease, 3)));
        await env.WaitForDecisionAsync("train-renter");
        await Requeues.AdvanceAsync(env.Time, TimeSpan.FromMinutes(10), "settlement at the rating deadline", [phaseTwo.SettlementController]);

        await Eventually.HoldsAsync(() => Task.FromResult(crashing.IsDead), "the operator wrote Settling and died before the submit", env.Time);
        await env.StopOperatorAsync();
        Assert.Null(await env.Anyone.GetSettlementAsync(lease.H.Hex));
        var stuck = await env.GetLeaseAsync("train");
        Assert.Equal(LeasePhase.Settling, stuck!.Status!.Phase);
        Assert.Equal(0, crashing.Submits);

        await env.StartOperatorAsync();
        var settled = await env.WaitForPhaseAsync("train", LeasePhase.Settled);
        Assert.True(settled.Status!.Settlement!.RenterRated);
        Assert.False(settled.Status.Settlement.LeaserRated);
        Assert.Equal(2, (await env.LedgerEntriesAsync(lease.H)).Count(e => e.Kind.StartsWith("settle.", StringComparison.Ordinal)));
        Assert.Equal(PhaseTwoEnvironment.RenterFunds, await env.BalanceAsync(env.Parties.Renter.Identity.Address));
        await env.AuditAsync();
    }

    [Fact]
    public async Task An_unreachable_escrow_keeps_the_lease_settling_and_it_settles_once_the_escrow_is_back()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        var flaky = new DyingEscrow(env.Escrow, DyingEscrow.Moment.Never);
        var phaseTwo = await env.StartOperatorAsync(flaky);
        var lease = await env.ReturnedLeaseAsync("train", ratingWindow: TimeSpan.FromMinutes(5));
        flaky.Unreachable = true;
        await Requeues.AdvanceAsync(env.Time, TimeSpan.FromMinutes(5), "settlement at the rating deadline", [phaseTwo.SettlementController]);

        var waiting = await Eventually.ReturnsAsync(() => env.GetLeaseAsync("train"),
            l => l.Status?.Conditions?.Any(c => c.Type == PhaseTwoReasons.SettledCondition && c.Reason == PhaseTwoReasons.EscrowUnavailable) == true,
            "the lease reports that π cannot be reached", env.Time);
        Assert.NotEqual(LeasePhase.Settled, waiting.Status!.Phase);

        flaky.Unreachable = false;
        var settled = await env.WaitForPhaseAsync("train", LeasePhase.Settled);
        Assert.Equal(DepositOutcome.Withheld, settled.Status!.Settlement!.Deposit);
        Assert.Equal(RentOutcome.ReturnedToRenter, settled.Status.Settlement.Rent);
        Assert.Equal(lease.Deposit, await env.WithheldAsync(lease.H));
        await Eventually.HoldsAsync(() => Task.FromResult(phaseTwo.Metrics.SettlementCount("none_rated") == 1), "the metric counts it once (it is updated right after the status write)", env.Time);
    }

    [Fact]
    public async Task A_refused_m_final_is_reported_moves_nothing_and_is_retried_later()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        var phaseTwo = await env.StartOperatorAsync();
        // π lost track of the pledge (or never had it): it must refuse, and the operator must say so.
        var lease = await env.ReturnedLeaseAsync("orphan", ratingWindow: TimeSpan.FromMinutes(10), pledge: false);
        await env.ApplyAsync(PhaseTwoEnvironment.LeaserRatingResource("orphan-leaser", "orphan", 5));
        await env.WaitForDecisionAsync("orphan-leaser");
        var head = await env.AuditAsync();
        await Requeues.AdvanceAsync(env.Time, TimeSpan.FromMinutes(10), "settlement at the rating deadline", [phaseTwo.SettlementController]);

        var refused = await Eventually.ReturnsAsync(() => env.GetLeaseAsync("orphan"),
            l => l.Status?.Conditions?.Any(c => c.Type == PhaseTwoReasons.SettledCondition && c.Reason == PhaseTwoReasons.SettlementRefused) == true,
            "the lease reports π's refusal", env.Time);
        Assert.Equal(LeasePhase.Settling, refused.Status!.Phase);
        var condition = Assert.Single(refused.Status.Conditions!, c => c.Type == PhaseTwoReasons.SettledCondition);
        Assert.Contains(EscrowReasons.PledgeNotFound, condition.Message, StringComparison.Ordinal);
        Assert.Contains("nothing moved", condition.Message, StringComparison.Ordinal);
        Assert.Equal(head.Head, (await env.AuditAsync()).Head);

        // Once π holds the pledge, the retry (RefusedRetryDelay later) settles it.
        await env.Escrow.PledgeAsync(lease.Request);
        await Requeues.AdvanceAsync(env.Time, TimeSpan.FromMinutes(5), "the retry after the refusal", [phaseTwo.SettlementController]);
        var settled = await env.WaitForPhaseAsync("orphan", LeasePhase.Settled);
        Assert.True(settled.Status!.Settlement!.LeaserRated);
        Assert.Equal(lease.Rent, await env.BalanceAsync(env.Parties.Leaser.Identity.Address));
        await Eventually.HoldsAsync(() => Task.FromResult(phaseTwo.Metrics.SettlementCount("renter_missing") == 1), "the metric counts it once (it is updated right after the status write)", env.Time);
    }

    [Fact]
    public async Task Two_replicas_settling_the_same_lease_at_once_move_the_money_once()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        // No leader election: both replicas see the deadline pass and both may submit m_final.
        var replicas = new[] { await env.StartOperatorAsync(), await env.StartOperatorAsync() };
        var leases = new List<ReturnedLease>();
        for (var i = 0; i < 4; i++)
        {
            leases.Add(await env.ReturnedLeaseAsync($"race-{i}", ratingWindow: TimeSpan.FromMinutes(1)));
        }

        await Requeues.AdvanceAsync(env.Time, TimeSpan.FromMinutes(1), "settlement of each lease at its rating deadline", replicas.Select(r => r.SettlementController).ToList(), keys: leases.Count);
        foreach (var lease in leases)
        {
            var settled = await env.WaitForPhaseAsync(lease.Name, LeasePhase.Settled);
            Assert.Equal((await env.Anyone.GetSettlementAsync(lease.H.Hex))!.Receipt.GetRawText(), settled.Status!.Settlement!.Receipt);
            Assert.Equal(2, (await env.LedgerEntriesAsync(lease.H)).Count(e => e.Kind.StartsWith("settle.", StringComparison.Ordinal)));
            Assert.Equal(lease.Deposit, await env.WithheldAsync(lease.H));
        }

        Assert.Equal(PhaseTwoEnvironment.RenterFunds - leases.Sum(l => l.Deposit), await env.BalanceAsync(env.Parties.Renter.Identity.Address));
        await env.AuditAsync();
    }

    /// <summary>
    /// β's client of π that makes the operator "die" at a chosen moment of the settlement: from then on every call
    /// fails as if the process were gone (the test then stops the replica). It can also play an unreachable π.
    /// </summary>
    private sealed class DyingEscrow(IEscrowClient inner, DyingEscrow.Moment moment) : IEscrowClient
    {
        private int submits;
        private volatile bool dead;

        public enum Moment
        {
            Never,
            BeforeSubmit,
            AfterSubmit,
        }

        public bool IsDead => dead;

        public bool Unreachable { get; set; }

        public int Submits => Volatile.Read(ref submits);

        public async Task<SettlementView> SettleAsync(SealedMessage final, CancellationToken ct = default)
        {
            Alive();
            if (moment == Moment.BeforeSubmit)
            {
                dead = true;
                Alive();
            }

            var result = await inner.SettleAsync(final, ct);
            Interlocked.Increment(ref submits);
            if (moment == Moment.AfterSubmit)
            {
                dead = true;
                Alive();
            }

            return result;
        }

        public Task<EscrowIdentity> GetIdentityAsync(CancellationToken ct = default) => Alive() ? inner.GetIdentityAsync(ct) : throw Gone();

        public Task<DepositReceipt> DepositAsync(DepositRequest request, CancellationToken ct = default) => Alive() ? inner.DepositAsync(request, ct) : throw Gone();

        public Task<AccountView> GetAccountAsync(string address, CancellationToken ct = default) => Alive() ? inner.GetAccountAsync(address, ct) : throw Gone();

        public Task<PledgeView> PledgeAsync(Signed<LeaseRequest> signedRequest, CancellationToken ct = default) => Alive() ? inner.PledgeAsync(signedRequest, ct) : throw Gone();

        public Task<SettlementView> NeverServedAsync(Signed<NeverServedNotice> notice, CancellationToken ct = default) => Alive() ? inner.NeverServedAsync(notice, ct) : throw Gone();

        public Task<PledgeView?> GetPledgeAsync(string h, CancellationToken ct = default) => Alive() ? inner.GetPledgeAsync(h, ct) : throw Gone();

        public Task<SettlementView?> GetSettlementAsync(string h, CancellationToken ct = default) => Alive() ? inner.GetSettlementAsync(h, ct) : throw Gone();

        public Task<SettlementView> ClaimAsync(Signed<RenterRating> renterRating, CancellationToken ct = default) => Alive() ? inner.ClaimAsync(renterRating, ct) : throw Gone();

        public Task<IReadOnlyList<WithheldView>> GetWithheldAsync(CancellationToken ct = default) => Alive() ? inner.GetWithheldAsync(ct) : throw Gone();

        public Task<WithheldView> ReleaseWithheldAsync(ReleaseRequest request, CancellationToken ct = default) => Alive() ? inner.ReleaseWithheldAsync(request, ct) : throw Gone();

        public Task<LedgerPage> GetLedgerAsync(long after = 0, int limit = 100, CancellationToken ct = default) => Alive() ? inner.GetLedgerAsync(after, limit, ct) : throw Gone();

        public Task<LedgerAudit> VerifyLedgerAsync(CancellationToken ct = default) => Alive() ? inner.VerifyLedgerAsync(ct) : throw Gone();

        private bool Alive() => !dead && !Unreachable ? true : throw Gone();

        private static EscrowException Gone() => new(0, "Unreachable", null, "the operator process is gone (injected)");
    }
}
