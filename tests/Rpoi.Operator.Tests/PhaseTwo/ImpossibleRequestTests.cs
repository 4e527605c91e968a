using System.Globalization;
using k8s;
using k8s.Models;
using Rpoi.Kube.Events;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Operator.Tests.Support;
using Rpoi.Protocol;
using Rpoi.Protocol.Messages;

namespace Rpoi.Operator.Tests.PhaseTwo;

/// <summary>
/// Issue 13 item 2 end to end on the real π (SQLite and PostgreSQL): a request the cluster can never hold fails before
/// anything is pledged, and blocks nobody.
/// </summary>
public sealed class ImpossibleRequestTests
{
    private const long Deposit = 2_000_000;
    private const long Rent = 700_000;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task More_chips_than_the_shape_holds_or_an_unoffered_topology_fail_before_any_pledge_and_block_nobody(bool postgres)
    {
        await using var env = await PhaseTwoEnvironment.StartAsync(postgres);
        // One 4x4 slice: 16 chips of tpu-v5-lite-podslice 4x4 in the whole cluster.
        await TpuNodePools.V5eMultiHost4x4Async(env.Client, "slice");
        await env.StartOperatorAsync(withPhaseOne: true);

        var huge = await CreateAsync(env, "huge", "4x4", 64);
        var failed = await env.WaitForPhaseAsync("huge", LeasePhase.Failed);
        var allocated = Assert.Single(failed.Status!.Conditions!, c => c.Type == LeaseConditions.Allocated);
        Assert.Equal(LeaseConditions.ImpossibleRequest, allocated.Reason);
        Assert.Contains("spec.request.payload.chips is 64", allocated.Message, StringComparison.Ordinal);
        Assert.Contains("16 chips in 1 usable slice(s)", allocated.Message, StringComparison.Ordinal);
        Assert.Contains("ask for at most 16 chips", allocated.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(failed.Status.Conditions!, c => c.Type == LeaseConditions.Pledged);
        Assert.Null(failed.Status.QueuePosition);

        var unoffered = await CreateAsync(env, "unoffered", "8x8", 64);
        failed = await env.WaitForPhaseAsync("unoffered", LeasePhase.Failed);
        allocated = Assert.Single(failed.Status!.Conditions!, c => c.Type == LeaseConditions.Allocated);
        Assert.Equal(LeaseConditions.ImpossibleRequest, allocated.Reason);
        Assert.Contains("spec.request.payload.topology", allocated.Message, StringComparison.Ordinal);
        Assert.Contains("tpu-v5-lite-podslice 4x4 (up to 16 chips)", allocated.Message, StringComparison.Ordinal);

        // A younger request that fits is served at once: the impossible ones hold no place in the queue.
        var fits = await CreateAsync(env, "fits", "4x4", 16);
        await env.WaitForPhaseAsync("fits", LeasePhase.Active);

        // Nothing was pledged for either impossible request: no pledge, no ledger entry, the renter paid only for "fits".
        foreach (var h in new[] { huge, unoffered })
        {
            Assert.Null(await env.Anyone.GetPledgeAsync(h.Hex));
            Assert.Empty(await env.LedgerEntriesAsync(h));
        }

        Assert.Equal("Held", (await env.Anyone.GetPledgeAsync(fits.Hex))!.State);
        Assert.Equal(PhaseTwoEnvironment.RenterFunds - (Deposit + Rent), await env.BalanceAsync(env.Parties.Renter.Identity.Address));
        var audit = await env.AuditAsync();
        Assert.True(audit.Ok, string.Join("; ", audit.Problems));
        Assert.Equal((Deposit + Rent).ToString(CultureInfo.InvariantCulture), Assert.Single(audit.Totals, t => t.Denom == "uusd").Held);

        // One Warning per failed lease, naming the fix.
        var events = (await env.Client.EventsV1.ListNamespacedEventAsync(PhaseTwoEnvironment.Namespace)).Items;
        var warning = Assert.Single(events, e => e.Regarding?.Name == "huge" && e.Reason == LeaseConditions.ImpossibleRequest);
        Assert.Equal(EventTypes.Warning, warning.Type);
        Assert.Contains("ask for at most 16 chips", warning.Note, StringComparison.Ordinal);
        Assert.Single(events, e => e.Regarding?.Name == "unoffered" && e.Reason == LeaseConditions.ImpossibleRequest);

        // Failed stays Failed when capacity grows; the renter re-applies with a new request, which is then served.
        await TpuNodePools.CreatePoolAsync(env.Client, "slice-8x8", LeaseBuilder.V5e, "8x8", hosts: 16, chipsPerHost: 4);
        var again = await CreateAsync(env, "again", "8x8", 64);
        await env.WaitForPhaseAsync("again", LeasePhase.Active);
        Assert.Equal(LeasePhase.Failed, (await env.GetLeaseAsync("unoffered"))!.Status!.Phase);
        Assert.Null(await env.Anyone.GetPledgeAsync(unoffered.Hex));
        Assert.Equal("Held", (await env.Anyone.GetPledgeAsync(again.Hex))!.State);
        Assert.Equal(PhaseTwoEnvironment.RenterFunds - (2 * (Deposit + Rent)), await env.BalanceAsync(env.Parties.Renter.Identity.Address));
        Assert.True((await env.AuditAsync()).Ok);
    }

    private static async Task<TransactionHash> CreateAsync(PhaseTwoEnvironment env, string name, string topology, int chips)
    {
        var builder = LeaseBuilder.For(env.Parties.Renter).In(PhaseTwoEnvironment.Namespace, name).To(env.Parties.Leaser, env.Parties.Escrow)
            .SignedAt(env.Time.GetUtcNow()).Shape(LeaseBuilder.V5e, topology).Chips(chips).Duration(TimeSpan.FromHours(1))
            .Amounts(Deposit.ToString(CultureInfo.InvariantCulture), Rent.ToString(CultureInfo.InvariantCulture))
            .RatingWindow(TimeSpan.FromHours(3));
        var request = builder.BuildRequest();
        await env.Client.CustomObjects.CreateNamespacedCustomObjectAsync(builder.Build(request), Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural);
        return RpoiEquations.TransactionHashOf(request);
    }
}
