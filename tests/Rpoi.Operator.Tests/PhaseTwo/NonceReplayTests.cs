using System.Globalization;
using System.Security.Cryptography;
using k8s;
using k8s.Models;
using Rpoi.Kube.Controllers;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Operator.Tests.Support;
using Rpoi.Protocol;
using Rpoi.Protocol.Messages;

namespace Rpoi.Operator.Tests.PhaseTwo;

/// <summary>
/// Issue 13 item 3 end to end, on the real π (SQLite and PostgreSQL): β's nonce store over the Lease cache refuses a
/// request that reuses a nonce of another Lease of the same renter under another H before anything is pledged, names
/// that Lease, and is the same after a restart (the store is the cache, rebuilt by the informer's list).
/// </summary>
public sealed class NonceReplayTests
{
    private const long Deposit = 2_000_000;
    private const long Rent = 700_000;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_reused_nonce_under_another_H_fails_NonceReplayed_and_nothing_moves_before_and_after_a_restart(bool postgres)
    {
        await using var env = await PhaseTwoEnvironment.StartAsync(postgres);
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 3);
        await env.StartOperatorAsync(withPhaseOne: true);
        var nonce = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));

        var first = await CreateAsync(env, "first", nonce);
        await env.WaitForPhaseAsync("first", LeasePhase.Active);
        var firstEntries = (await env.LedgerEntriesAsync(first)).Count;

        // Same renter, same nonce, another Lease (so another H): refused before any pledge, naming the Lease that holds it.
        var second = await CreateAsync(env, "second", nonce);
        var failed = await env.WaitForPhaseAsync("second", LeasePhase.Failed);
        AssertReplayed(failed, first);
        Assert.True(failed.Status!.Nodes is null or { Count: 0 });
        await Eventually.HoldsAsync(async () => (await EventsAsync(env, "second")).Any(e => e.Type == "Warning" && e.Reason == nameof(Protocol.Checks.ReasonCode.NonceReplayed) && e.Note.Contains("team-a/first", StringComparison.Ordinal)),
            "a Warning event NonceReplayed names the Lease holding the nonce");
        await AssertNothingMovedAsync(env, first, firstEntries, second);

        // After a restart the store is rebuilt from the cache: the same bytes (first, same H) are reconciled again and
        // stay Active without a second pledge; a third request with the nonce is refused the same way.
        await env.StopOperatorAsync();
        await env.StartOperatorAsync(withPhaseOne: true);
        var third = await CreateAsync(env, "third", nonce);
        AssertReplayed(await env.WaitForPhaseAsync("third", LeasePhase.Failed), first);
        Assert.Equal(LeasePhase.Active, (await env.GetLeaseAsync("first"))!.Status!.Phase);
        Assert.Equal(LeasePhase.Failed, (await env.GetLeaseAsync("second"))!.Status!.Phase);
        await AssertNothingMovedAsync(env, first, firstEntries, second, third);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Two_leases_with_one_nonce_made_while_no_operator_ran_the_older_is_served_and_the_younger_refused(bool postgres)
    {
        await using var env = await PhaseTwoEnvironment.StartAsync(postgres);
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 2);
        var nonce = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        var older = await CreateAsync(env, "older", nonce);
        // Creation timestamps have whole seconds: the younger is created a second later on the API server's clock.
        env.Time.Advance(TimeSpan.FromSeconds(1));
        var younger = await CreateAsync(env, "younger", nonce);

        // Whichever the workers look at first, the precedence (verified first, else older) decides the same way.
        await env.StartOperatorAsync(withPhaseOne: true);
        await env.WaitForPhaseAsync("older", LeasePhase.Active);
        AssertReplayed(await env.WaitForPhaseAsync("younger", LeasePhase.Failed), older);
        await AssertNothingMovedAsync(env, older, (await env.LedgerEntriesAsync(older)).Count, younger);
    }

    private static void AssertReplayed(Lease lease, TransactionHash holder)
    {
        var verified = Conditions.Find(lease.Status!.Conditions, LeaseConditions.Verified);
        Assert.NotNull(verified);
        Assert.Equal(Conditions.False, verified.Status);
        Assert.Equal("NonceReplayed", verified.Reason);
        Assert.Contains("spec.request.payload.nonce", verified.Message, StringComparison.Ordinal);
        Assert.Contains(holder.Hex, verified.Message, StringComparison.Ordinal);
        Assert.Contains("fresh nonce", verified.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Conditions.Find(lease.Status.Conditions, LeaseConditions.Pledged) is { } p ? [p] : Array.Empty<V1Condition>(), c => c.Status == Conditions.True);
    }

    /// <summary>Only the holder's pledge is at π: the refused requests have no pledge and no ledger entry, the renter paid once.</summary>
    private static async Task AssertNothingMovedAsync(PhaseTwoEnvironment env, TransactionHash holder, int holderEntries, params TransactionHash[] refused)
    {
        Assert.Equal("Held", (await env.Anyone.GetPledgeAsync(holder.Hex))!.State);
        Assert.Equal(holderEntries, (await env.LedgerEntriesAsync(holder)).Count);
        foreach (var h in refused)
        {
            Assert.Null(await env.Anyone.GetPledgeAsync(h.Hex));
            Assert.Empty(await env.LedgerEntriesAsync(h));
        }

        Assert.Equal(PhaseTwoEnvironment.RenterFunds - (Deposit + Rent), await env.BalanceAsync(env.Parties.Renter.Identity.Address));
        var audit = await env.AuditAsync();
        Assert.True(audit.Ok, string.Join("; ", audit.Problems));
        Assert.Equal((Deposit + Rent).ToString(CultureInfo.InvariantCulture), Assert.Single(audit.Totals, t => t.Denom == "uusd").Held);
    }

    private static async Task<IReadOnlyList<Eventsv1Event>> EventsAsync(PhaseTwoEnvironment env, string lease) =>
        [.. (await env.Client.EventsV1.ListNamespacedEventAsync(PhaseTwoEnvironment.Namespace)).Items.Where(e => e.Regarding?.Name == lease && e.Regarding.Kind == Lease.KindName)];

    private static async Task<TransactionHash> CreateAsync(PhaseTwoEnvironment env, string name, string nonce)
    {
        var builder = LeaseBuilder.For(env.Parties.Renter).In(PhaseTwoEnvironment.Namespace, name).To(env.Parties.Leaser, env.Parties.Escrow)
            .SignedAt(env.Time.GetUtcNow()).Shape(LeaseBuilder.V5e, "2x2").Chips(4).Duration(TimeSpan.FromHours(1))
            .Amounts(Deposit.ToString(CultureInfo.InvariantCulture), Rent.ToString(CultureInfo.InvariantCulture))
            .RatingWindow(TimeSpan.FromHours(3)).Nonce(nonce);
        var request = builder.BuildRequest();
        await env.Client.CustomObjects.CreateNamespacedCustomObjectAsync(builder.Build(request), Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural);
        return RpoiEquations.TransactionHashOf(request);
    }
}
