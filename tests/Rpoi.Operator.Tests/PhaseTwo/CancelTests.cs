using System.Globalization;
using k8s;
using k8s.Models;
using Rpoi.Escrow.Client;
using Rpoi.Kube.Controllers;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Operator.Tests.Support;
using Rpoi.Protocol;
using Rpoi.Protocol.Messages;

namespace Rpoi.Operator.Tests.PhaseTwo;

/// <summary>
/// Issue 13 item 1, the phases NeverServedTests does not cover, end to end on the real π (SQLite and PostgreSQL):
/// cancel (delete or <c>spec.returnRequested</c>) while Verified (π holds the pledge, no claim yet) and while
/// Allocating with a partial claim; a lease π never held a pledge for; and the operator killed after releasing the
/// nodes but before asking π. After each: every node clean, the balances, the ledger entries and /v1/ledger/verify.
/// </summary>
public sealed class CancelTests
{
    private const long Deposit = 2_000_000;
    private const long Rent = 700_000;

    [Theory]
    [InlineData(false, true)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(true, false)]
    public async Task Cancel_while_Verified_with_the_pledge_held_but_unrecorded_refunds_in_full_after_a_restart(bool postgres, bool delete)
    {
        await using var env = await PhaseTwoEnvironment.StartAsync(postgres);
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        // π takes the pledge, then the answer is lost and π stays unreachable: the Lease is Verified, its pledge unrecorded.
        var pi = new ScriptedEscrow(env.Escrow) { DieAfterPledge = true };
        await env.StartOperatorAsync(pi, withPhaseOne: true);
        var (request, h) = await CreateAsync(env, "v");
        var verified = await Eventually.ReturnsAsync(() => env.GetLeaseAsync("v"),
            l => Conditions.IsTrue(l.Status?.Conditions, LeaseConditions.Verified) && Conditions.Find(l.Status!.Conditions, LeaseConditions.Pledged)?.Reason == LeaseConditions.EscrowUnavailable,
            "the Lease is verified and its pledge unrecorded");
        Assert.True(verified.Status!.Nodes is null or { Count: 0 });
        Assert.Equal("Held", (await env.Anyone.GetPledgeAsync(h.Hex))!.State);
        Assert.Equal(PhaseTwoEnvironment.RenterFunds - (Deposit + Rent), await env.BalanceAsync(env.Parties.Renter.Identity.Address));

        await env.StopOperatorAsync();
        await CancelAsync(env, "v", delete);
        await env.StartOperatorAsync(withPhaseOne: true);

        await AssertRefundedAsync(env, "v", request, delete);
        Assert.All(await NodesAsync(env), n => Assert.True(TpuNodePools.IsClean(n), $"node {n.Metadata.Name} still carries RPOI marks"));
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(true, false)]
    public async Task Cancel_while_Allocating_with_a_partial_claim_releases_every_node_and_refunds_in_full(bool postgres, bool delete)
    {
        await using var env = await PhaseTwoEnvironment.StartAsync(postgres);
        var (request, _) = await PartialClaimAsync(env, "half");
        await CancelAsync(env, "half", delete);
        await env.StartOperatorAsync(withPhaseOne: true);

        await AssertRefundedAsync(env, "half", request, delete);
        var nodes = await NodesAsync(env);
        Assert.Equal(4, nodes.Count);
        Assert.All(nodes, n => Assert.True(TpuNodePools.IsClean(n), $"node {n.Metadata.Name} still carries RPOI marks"));
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(true, false)]
    public async Task A_lease_the_escrow_never_held_a_pledge_for_goes_with_nothing_refunded_or_charged(bool postgres, bool delete)
    {
        await using var env = await PhaseTwoEnvironment.StartAsync(postgres);
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        // π refuses to take pledges for now (overloaded), but answers reads: the Lease is verified and never pledged.
        var pi = new ScriptedEscrow(env.Escrow) { PledgeUnavailable = true };
        await env.StartOperatorAsync(pi, withPhaseOne: true);
        var (_, h) = await CreateAsync(env, "never");
        await Eventually.ReturnsAsync(() => env.GetLeaseAsync("never"),
            l => Conditions.Find(l.Status?.Conditions, LeaseConditions.Pledged)?.Reason == LeaseConditions.EscrowUnavailable, "the pledge is retried");
        var entriesBefore = (await env.Anyone.GetLedgerAsync(0, 100)).Entries.Count;

        await CancelAsync(env, "never", delete);
        if (delete)
        {
            await Eventually.HoldsAsync(async () => await env.GetLeaseAsync("never") is null, "the never-pledged Lease is gone", env.Time);
        }
        else
        {
            var failed = await env.WaitForPhaseAsync("never", LeasePhase.Failed);
            Assert.Equal(LeaseConditions.ReturnedBeforePledge, Conditions.Find(failed.Status!.Conditions, LeaseConditions.Ready)!.Reason);
            Assert.Null(failed.Status.Settlement);
        }

        Assert.Equal(0, pi.NeverServedCalls);
        Assert.Null(await env.Anyone.GetPledgeAsync(h.Hex));
        Assert.Null(await env.Anyone.GetSettlementAsync(h.Hex));
        Assert.Empty(await env.LedgerEntriesAsync(h));
        Assert.Equal(entriesBefore, (await env.Anyone.GetLedgerAsync(0, 100)).Entries.Count);
        Assert.Equal(PhaseTwoEnvironment.RenterFunds, await env.BalanceAsync(env.Parties.Renter.Identity.Address));
        Assert.Equal(0, await env.BalanceAsync(env.Parties.Leaser.Identity.Address));
        await AssertAuditAsync(env, held: 0);
        Assert.All(await NodesAsync(env), n => Assert.True(TpuNodePools.IsClean(n), $"node {n.Metadata.Name} still carries RPOI marks"));
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(true, false)]
    public async Task Killed_after_releasing_the_nodes_but_before_asking_the_escrow_the_restart_refunds_once(bool postgres, bool delete)
    {
        await using var env = await PhaseTwoEnvironment.StartAsync(postgres);
        var (request, h) = await PartialClaimAsync(env, "half");
        await CancelAsync(env, "half", delete);
        // The operator releases the nodes, then dies at the never-served call (it never reaches π).
        var pi = new ScriptedEscrow(env.Escrow) { HangOnNeverServed = true };
        await env.StartOperatorAsync(pi, withPhaseOne: true);
        await pi.NeverServedReached.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(await NodesAsync(env), n => Assert.True(TpuNodePools.IsClean(n), $"node {n.Metadata.Name} still carries RPOI marks"));
        Assert.Equal(LeasePhase.Returning, (await env.GetLeaseAsync("half"))!.Status!.Phase);
        Assert.Equal("Held", (await env.Anyone.GetPledgeAsync(h.Hex))!.State);
        Assert.Null(await env.Anyone.GetSettlementAsync(h.Hex));
        Assert.Equal(PhaseTwoEnvironment.RenterFunds - (Deposit + Rent), await env.BalanceAsync(env.Parties.Renter.Identity.Address));
        await AssertAuditAsync(env, held: Deposit + Rent);
        pi.Kill();
        await env.StopOperatorAsync();

        await env.StartOperatorAsync(withPhaseOne: true);
        await AssertRefundedAsync(env, "half", request, delete);
        Assert.All(await NodesAsync(env), n => Assert.True(TpuNodePools.IsClean(n), $"node {n.Metadata.Name} still carries RPOI marks"));
    }

    /// <summary>
    /// A 16-chip lease on the one 4x4 slice as a crash in the middle of its claim leaves it: β pledged it at π, two of the
    /// four hosts are marked for it, nothing was written to its status, and no operator runs.
    /// </summary>
    private static async Task<(Signed<LeaseRequest> Request, TransactionHash H)> PartialClaimAsync(PhaseTwoEnvironment env, string name)
    {
        await TpuNodePools.V5eMultiHost4x4Async(env.Client, "s1");
        var builder = Builder(env, name).Shape(LeaseBuilder.V5e, "4x4").Chips(16).WithFinalizer();
        var request = builder.BuildRequest();
        var lease = await env.Client.CustomObjects.CreateNamespacedCustomObjectAsync<Lease>(builder.Build(request), Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural);
        var id = new LeaseIdentity(PhaseTwoEnvironment.Namespace, name, lease.Metadata.Uid);
        foreach (var node in new[] { "gke-s1-0", "gke-s1-1" })
        {
            var n = await env.Client.CoreV1.ReadNodeAsync(node);
            GkeTpuProvider.AddMarks(n, id, env.Time.GetUtcNow());
            await env.Client.CoreV1.ReplaceNodeAsync(n, node);
        }

        await env.Escrow.PledgeAsync(request);
        Assert.Equal(2, (await NodesAsync(env)).Count(n => !TpuNodePools.IsClean(n)));
        Assert.Equal(PhaseTwoEnvironment.RenterFunds - (Deposit + Rent), await env.BalanceAsync(env.Parties.Renter.Identity.Address));
        return (request, RpoiEquations.TransactionHashOf(request));
    }

    private static async Task AssertRefundedAsync(PhaseTwoEnvironment env, string name, Signed<LeaseRequest> request, bool deleted)
    {
        var h = RpoiEquations.TransactionHashOf(request);
        if (deleted)
        {
            // No rating window: the finalizer goes once π's refund is confirmed.
            await Eventually.HoldsAsync(async () => await env.GetLeaseAsync(name) is null, $"the deleted Lease {name} is gone after the refund", env.Time);
        }
        else
        {
            var settled = await env.WaitForPhaseAsync(name, LeasePhase.Settled);
            Assert.Null(settled.Status!.RatingDeadline);
            var receipt = RpoiEquations.VerifyReceipt(Signed<SettlementReceipt>.Parse(settled.Status.Settlement!.Receipt!).Value, env.Parties.Escrow.Identity, h);
            Assert.True(receipt.IsOk, receipt.Message);
            Assert.Equal(SettlementSource.NeverServed, receipt.Value.Source);
        }

        var settlement = await env.Anyone.GetSettlementAsync(h.Hex);
        Assert.NotNull(settlement);
        Assert.Equal("ToRenter", settlement.Deposit);
        Assert.Equal("BackToRenter", settlement.Rent);
        // One pledge and one settlement under H, whatever the restarts and retries.
        var entries = await env.LedgerEntriesAsync(h);
        Assert.Equal(["pledge.deposit", "pledge.rent", "settle.deposit.renter", "settle.rent.renter"], entries.Select(e => e.Kind).Order(StringComparer.Ordinal));
        Assert.Equal(PhaseTwoEnvironment.RenterFunds, await env.BalanceAsync(env.Parties.Renter.Identity.Address));
        Assert.Equal(0, await env.BalanceAsync(env.Parties.Leaser.Identity.Address));
        Assert.Equal(0, await env.WithheldAsync(h));
        await AssertAuditAsync(env, held: 0);
    }

    private static async Task AssertAuditAsync(PhaseTwoEnvironment env, long held)
    {
        var audit = await env.AuditAsync();
        Assert.True(audit.Ok, string.Join("; ", audit.Problems));
        var uusd = audit.Totals.SingleOrDefault(t => t.Denom == "uusd");
        Assert.Equal(held.ToString(CultureInfo.InvariantCulture), uusd?.Held ?? "0");
    }

    private static async Task<IReadOnlyList<V1Node>> NodesAsync(PhaseTwoEnvironment env) => [.. (await env.Client.CoreV1.ListNodeAsync()).Items];

    private static async Task CancelAsync(PhaseTwoEnvironment env, string name, bool delete)
    {
        if (delete)
        {
            await env.Client.CustomObjects.DeleteNamespacedCustomObjectAsync(Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural, name);
        }
        else
        {
            await env.Client.CustomObjects.PatchNamespacedCustomObjectAsync(new V1Patch("{\"spec\":{\"returnRequested\":true}}", V1Patch.PatchType.MergePatch),
                Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural, name);
        }
    }

    private static LeaseBuilder Builder(PhaseTwoEnvironment env, string name) =>
        LeaseBuilder.For(env.Parties.Renter).In(PhaseTwoEnvironment.Namespace, name).To(env.Parties.Leaser, env.Parties.Escrow)
            .SignedAt(env.Time.GetUtcNow()).Shape(LeaseBuilder.V5e, "2x2").Chips(4).Duration(TimeSpan.FromHours(1))
            .Amounts(Deposit.ToString(CultureInfo.InvariantCulture), Rent.ToString(CultureInfo.InvariantCulture))
            .RatingWindow(TimeSpan.FromHours(3));

    private static async Task<(Signed<LeaseRequest> Request, TransactionHash H)> CreateAsync(PhaseTwoEnvironment env, string name)
    {
        var builder = Builder(env, name);
        var request = builder.BuildRequest();
        await env.Client.CustomObjects.CreateNamespacedCustomObjectAsync(builder.Build(request), Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural);
        return (request, RpoiEquations.TransactionHashOf(request));
    }

    /// <summary>
    /// β's client of π with injected faults: the pledge answer lost and π gone after it; pledges refused as overloaded;
    /// or the process dying at the never-served call (it waits there until the test kills it, never reaching π).
    /// </summary>
    private sealed class ScriptedEscrow(IEscrowClient inner) : IEscrowClient
    {
        private readonly TaskCompletionSource killed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private volatile bool dead;
        private int neverServedCalls;

        public bool DieAfterPledge { get; init; }

        public bool PledgeUnavailable { get; init; }

        public bool HangOnNeverServed { get; init; }

        public TaskCompletionSource NeverServedReached { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int NeverServedCalls => Volatile.Read(ref neverServedCalls);

        /// <summary>From now on every call fails as if the process were gone (the test then stops the replica).</summary>
        public void Kill()
        {
            dead = true;
            killed.TrySetResult();
        }

        public async Task<PledgeView> PledgeAsync(Signed<LeaseRequest> signedRequest, CancellationToken ct = default)
        {
            Alive();
            if (PledgeUnavailable)
            {
                throw new EscrowException(503, "Overloaded", null, "π is overloaded (injected)");
            }

            var view = await inner.PledgeAsync(signedRequest, ct);
            if (DieAfterPledge)
            {
                dead = true;
                Alive();
            }

            return view;
        }

        public async Task<SettlementView> NeverServedAsync(Signed<NeverServedNotice> notice, CancellationToken ct = default)
        {
            Alive();
            Interlocked.Increment(ref neverServedCalls);
            if (HangOnNeverServed)
            {
                // The process "dies" here: the call waits until the test kills it, then fails as if π were gone.
                NeverServedReached.TrySetResult();
                await killed.Task.WaitAsync(ct);
                dead = true;
                Alive();
            }

            return await inner.NeverServedAsync(notice, ct);
        }

        public Task<EscrowIdentity> GetIdentityAsync(CancellationToken ct = default) => Alive() ? inner.GetIdentityAsync(ct) : throw Gone();

        public Task<DepositReceipt> DepositAsync(DepositRequest request, CancellationToken ct = default) => Alive() ? inner.DepositAsync(request, ct) : throw Gone();

        public Task<AccountView> GetAccountAsync(string address, CancellationToken ct = default) => Alive() ? inner.GetAccountAsync(address, ct) : throw Gone();

        public Task<SettlementView> SettleAsync(SealedMessage final, CancellationToken ct = default) => Alive() ? inner.SettleAsync(final, ct) : throw Gone();

        public Task<PledgeView?> GetPledgeAsync(string h, CancellationToken ct = default) => Alive() ? inner.GetPledgeAsync(h, ct) : throw Gone();

        public Task<SettlementView?> GetSettlementAsync(string h, CancellationToken ct = default) => Alive() ? inner.GetSettlementAsync(h, ct) : throw Gone();

        public Task<SettlementView> ClaimAsync(Signed<RenterRating> renterRating, CancellationToken ct = default) => Alive() ? inner.ClaimAsync(renterRating, ct) : throw Gone();

        public Task<IReadOnlyList<WithheldView>> GetWithheldAsync(CancellationToken ct = default) => Alive() ? inner.GetWithheldAsync(ct) : throw Gone();

        public Task<WithheldView> ReleaseWithheldAsync(ReleaseRequest request, CancellationToken ct = default) => Alive() ? inner.ReleaseWithheldAsync(request, ct) : throw Gone();

        public Task<LedgerPage> GetLedgerAsync(long after = 0, int limit = 100, CancellationToken ct = default) => Alive() ? inner.GetLedgerAsync(after, limit, ct) : throw Gone();

        public Task<LedgerAudit> VerifyLedgerAsync(CancellationToken ct = default) => Alive() ? inner.VerifyLedgerAsync(ct) : throw Gone();

        private bool Alive() => !dead ? true : throw Gone();

        private static EscrowException Gone() => new(0, "Unreachable", null, "π is unreachable (injected)");
    }
}
