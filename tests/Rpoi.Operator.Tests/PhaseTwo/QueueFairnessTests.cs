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
/// Issue 13 item 2 end to end on the real π (SQLite and PostgreSQL): FIFO among leases that compete for the same room,
/// never across rooms; one Warning per transition into waiting; queue position and earliest free-up time in status.
/// </summary>
public sealed class QueueFairnessTests
{
    private const long Deposit = 2_000_000;
    private const long Rent = 700_000;
    private const long Pledge = Deposit + Rent;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Younger_leases_in_other_room_go_ahead_while_same_room_keeps_fifo_and_waits_are_warned_once(bool postgres)
    {
        await using var env = await PhaseTwoEnvironment.StartAsync(postgres);
        // Two rooms: v5e 2x2 (two hosts, 8 chips) and v6e 2x2 (one host, 4 chips).
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 2);
        await TpuNodePools.V6eSingleHostAsync(env.Client, "v6e", hosts: 1);
        await env.StartOperatorAsync(withPhaseOne: true);

        await CreateAsync(env, "holder", LeaseBuilder.V5e, 4);
        var holder = await env.WaitForPhaseAsync("holder", LeasePhase.Active);

        // "big" can be met once "holder" ends: it waits first in line, and is told when from holder's expiry.
        env.Time.Advance(TimeSpan.FromSeconds(1));
        await CreateAsync(env, "big", LeaseBuilder.V5e, 8);
        var big = await Eventually.ReturnsAsync(() => env.GetLeaseAsync("big"), l => l.Status?.QueuePosition == 1, "big waits first in the v5e queue", env.Time);
        Assert.Equal(LeasePhase.Pending, big.Status!.Phase);
        Assert.Equal(LeaseConditions.InsufficientChips, ReasonOf(big));
        Assert.Equal(holder.Status!.ExpiresAt, big.Status.EarliestFreeAt);

        // Same room: "small" would fit in the 4 free chips, but they are big's; it waits behind (FIFO), as does "tiny".
        env.Time.Advance(TimeSpan.FromSeconds(1));
        var smallH = await CreateAsync(env, "small", LeaseBuilder.V5e, 4);
        var small = await Eventually.ReturnsAsync(() => env.GetLeaseAsync("small"), l => l.Status?.QueuePosition == 2, "small queues behind big", env.Time);
        Assert.Equal(LeaseConditions.Queued, ReasonOf(small));
        // big holds all 8 chips for as long as it runs, and its end is not known yet: no time to tell.
        Assert.Null(small.Status!.EarliestFreeAt);
        env.Time.Advance(TimeSpan.FromSeconds(1));
        await CreateAsync(env, "tiny", LeaseBuilder.V5e, 4);
        await Eventually.ReturnsAsync(() => env.GetLeaseAsync("tiny"), l => l.Status?.QueuePosition == 3, "tiny queues third", env.Time);

        // Other room: the youngest lease is served at once, although older ones wait for v5e.
        env.Time.Advance(TimeSpan.FromSeconds(1));
        await CreateAsync(env, "other", LeaseBuilder.V6e, 4);
        await env.WaitForPhaseAsync("other", LeasePhase.Active);
        Assert.Equal(LeasePhase.Pending, (await env.GetLeaseAsync("big"))!.Status!.Phase);
        Assert.Empty(await NodesOfAsync(env, "small"));

        // "small" gives up (refunded in full, row NeverServed); its leaving wakes big, which still does not fit.
        await env.Client.CustomObjects.DeleteNamespacedCustomObjectAsync(Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural, "small");
        await Eventually.HoldsAsync(async () => await env.GetLeaseAsync("small") is null, "small is refunded and gone", env.Time);
        Assert.Equal("BackToRenter", (await env.Anyone.GetSettlementAsync(smallH.Hex))!.Rent);

        // When holder returns, big (oldest) is served first; tiny becomes next, told when big's chips free up.
        await env.Client.CustomObjects.PatchNamespacedCustomObjectAsync(new V1Patch("{\"spec\":{\"returnRequested\":true}}", V1Patch.PatchType.MergePatch),
            Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural, "holder");
        big = await env.WaitForPhaseAsync("big", LeasePhase.Active);
        Assert.Null(big.Status!.QueuePosition);
        Assert.Null(big.Status.EarliestFreeAt);
        // tiny is woken by big's claim, before big's expiry is written, and again once big is Active: then it is told.
        var tiny = await Eventually.ReturnsAsync(() => env.GetLeaseAsync("tiny"), l => l.Status?.QueuePosition == 1 && l.Status.EarliestFreeAt is not null, "tiny is next and told when big's chips free up", env.Time);
        Assert.Equal(LeaseConditions.InsufficientChips, ReasonOf(tiny));
        Assert.Equal(big.Status.ExpiresAt, tiny.Status!.EarliestFreeAt);

        // One Warning per lease that waited, on entering the wait: none for the wake-ups, the move to the head, or the
        // position and message changes in between.
        var events = await WarningsAsync(env);
        var bigWarning = Assert.Single(events, e => e.Regarding.Name == "big");
        Assert.Equal(LeaseConditions.InsufficientChips, bigWarning.Reason);
        Assert.Contains("next in the queue", bigWarning.Note, StringComparison.Ordinal);
        Assert.Contains($"chips free up no earlier than {holder.Status.ExpiresAt!.Value.ToUniversalTime():yyyy-MM-ddTHH:mm:ssZ}", bigWarning.Note, StringComparison.Ordinal);
        Assert.Equal(LeaseConditions.Queued, Assert.Single(events, e => e.Regarding.Name == "tiny").Reason);
        Assert.Equal(LeaseConditions.Queued, Assert.Single(events, e => e.Regarding.Name == "small").Reason);
        Assert.DoesNotContain(events, e => e.Regarding.Name is "holder" or "other");

        // Money: holder's pledge awaits ratings, small's was refunded, the others are held; the ledger balances.
        Assert.Equal(PhaseTwoEnvironment.RenterFunds - (4 * Pledge), await env.BalanceAsync(env.Parties.Renter.Identity.Address));
        var audit = await env.AuditAsync();
        Assert.True(audit.Ok, string.Join("; ", audit.Problems));
        Assert.Equal((4 * Pledge).ToString(CultureInfo.InvariantCulture), Assert.Single(audit.Totals, t => t.Denom == "uusd").Held);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_pledged_lease_whose_room_shrank_below_it_waits_refundable_and_lets_younger_ones_through(bool postgres)
    {
        await using var env = await PhaseTwoEnvironment.StartAsync(postgres);
        var hosts = await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 3);
        await env.StartOperatorAsync(withPhaseOne: true);

        await CreateAsync(env, "holder", LeaseBuilder.V5e, 4);
        var held = Assert.Single((await env.WaitForPhaseAsync("holder", LeasePhase.Active)).Status!.Nodes!);
        env.Time.Advance(TimeSpan.FromSeconds(1));
        var big = await CreateAsync(env, "big", LeaseBuilder.V5e, 12);
        await Eventually.ReturnsAsync(() => env.GetLeaseAsync("big"), l => l.Status?.QueuePosition == 1, "big waits for all 12 chips", env.Time);
        env.Time.Advance(TimeSpan.FromSeconds(1));
        await CreateAsync(env, "small", LeaseBuilder.V5e, 4);
        await Eventually.ReturnsAsync(() => env.GetLeaseAsync("small"), l => l.Status?.QueuePosition == 2, "small waits behind big (FIFO)", env.Time);

        // A free host is removed: 8 chips remain, big (pledged) cannot be met now; it keeps its place but no room.
        await env.Client.CoreV1.DeleteNodeAsync(hosts.First(h => h != held));
        var waiting = await Eventually.ReturnsAsync(() => env.GetLeaseAsync("big"), l => ReasonOf(l) == LeaseConditions.Unsatisfiable, "big is told it cannot be met now", env.Time);
        Assert.Equal(LeasePhase.Pending, waiting.Status!.Phase);
        Assert.Equal(1, waiting.Status.QueuePosition);
        Assert.Contains("full refund", ConditionOf(waiting).Message, StringComparison.Ordinal);
        await env.WaitForPhaseAsync("small", LeasePhase.Active);
        var warning = Assert.Single(await WarningsAsync(env), e => e.Regarding.Name == "big" && e.Reason == LeaseConditions.Unsatisfiable);
        Assert.Contains("usable slices hold 8 chips now", warning.Note, StringComparison.Ordinal);

        // A host of the shape is added: big can be met again (once holder and small end) and is first in line, holding room.
        await TpuNodePools.CreatePoolAsync(env.Client, "v5e-more", LeaseBuilder.V5e, "2x2", hosts: 1, chipsPerHost: 4);
        var smallActive = (await env.GetLeaseAsync("small"))!;
        var back = await Eventually.ReturnsAsync(() => env.GetLeaseAsync("big"), l => ReasonOf(l) == LeaseConditions.InsufficientChips, "big is back at the head of the queue", env.Time);
        Assert.Equal(1, back.Status!.QueuePosition);
        // 4 chips free now, 4 more when holder expires, the last 4 when small does.
        Assert.Equal(smallActive.Status!.ExpiresAt, back.Status.EarliestFreeAt);

        // The renter gives up: ρ + ω back in full, at once.
        await env.Client.CustomObjects.DeleteNamespacedCustomObjectAsync(Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural, "big");
        await Eventually.HoldsAsync(async () => await env.GetLeaseAsync("big") is null, "big is deleted and refunded", env.Time);
        Assert.Equal("BackToRenter", (await env.Anyone.GetSettlementAsync(big.Hex))!.Rent);
        Assert.Equal(PhaseTwoEnvironment.RenterFunds - (2 * Pledge), await env.BalanceAsync(env.Parties.Renter.Identity.Address));
        Assert.True((await env.AuditAsync()).Ok);
    }

    private static string? ReasonOf(Lease lease) => lease.Status?.Conditions?.FirstOrDefault(c => c.Type == LeaseConditions.Allocated)?.Reason;

    private static V1Condition ConditionOf(Lease lease) => lease.Status!.Conditions!.Single(c => c.Type == LeaseConditions.Allocated);

    private static async Task<IList<V1Node>> NodesOfAsync(PhaseTwoEnvironment env, string lease) =>
        [.. (await env.Client.CoreV1.ListNodeAsync()).Items.Where(n => n.Metadata.Labels.TryGetValue(Rpoi.Operator.PhaseOne.Allocation.TpuLabels.LeaseNameLabel, out var name) && name == lease)];

    private static async Task<IReadOnlyList<Eventsv1Event>> WarningsAsync(PhaseTwoEnvironment env) =>
        [.. (await env.Client.EventsV1.ListNamespacedEventAsync(PhaseTwoEnvironment.Namespace)).Items.Where(e => e.Type == EventTypes.Warning && e.Regarding?.Kind == Lease.KindName)];

    private static async Task<TransactionHash> CreateAsync(PhaseTwoEnvironment env, string name, string accelerator, int chips)
    {
        var builder = LeaseBuilder.For(env.Parties.Renter).In(PhaseTwoEnvironment.Namespace, name).To(env.Parties.Leaser, env.Parties.Escrow)
            .SignedAt(env.Time.GetUtcNow()).Shape(accelerator, "2x2").Chips(chips).Duration(TimeSpan.FromHours(1))
            .Amounts(Deposit.ToString(CultureInfo.InvariantCulture), Rent.ToString(CultureInfo.InvariantCulture))
            .RatingWindow(TimeSpan.FromHours(3));
        var request = builder.BuildRequest();
        await env.Client.CustomObjects.CreateNamespacedCustomObjectAsync(builder.Build(request), Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural);
        return RpoiEquations.TransactionHashOf(request);
    }
}
