using System.Security.Cryptography;
using k8s.Models;
using Microsoft.Extensions.Time.Testing;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Operator.Tests.Support;
using Rpoi.Protocol;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Keys;

namespace Rpoi.Operator.Tests.PhaseOne;

/// <summary>Which Lease holds a renter's nonce (β's store over the Lease cache), rule by rule.</summary>
public sealed class LeaseNoncesTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 3, 12, 0, 0, TimeSpan.Zero);
    private readonly TestParties parties = new();
    private readonly string nonce = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));

    [Fact]
    public void The_older_lease_holds_the_nonce_unless_the_younger_is_already_verified()
    {
        var older = Lease("older", Now.AddMinutes(-10));
        var younger = Lease("younger", Now.AddMinutes(-5));
        var store = Store(older.Lease, younger.Lease);

        Assert.Equal(older.H, store.HolderOf(parties.Renter.Identity.KeyId, nonce, younger.H)!.H);
        Assert.Null(store.HolderOf(parties.Renter.Identity.KeyId, nonce, older.H));

        Verified(younger.Lease, true);
        Assert.Equal(younger.H, store.HolderOf(parties.Renter.Identity.KeyId, nonce, older.H)!.H);
        Assert.Null(store.HolderOf(parties.Renter.Identity.KeyId, nonce, younger.H));
    }

    [Fact]
    public async Task A_forged_a_refused_an_aged_out_or_another_renters_lease_holds_nothing()
    {
        var mine = Lease("mine", Now.AddMinutes(-1));
        var forged = Lease("forged", Now.AddMinutes(-30), b => b.SignedBy(PartyKeyPair.Generate(PartyRole.Renter)));
        var refused = Lease("refused", Now.AddMinutes(-20));
        Verified(refused.Lease, false);
        var old = Lease("old", Now.AddHours(-25), b => b.SignedAt(Now.AddHours(-25)));
        var other = Lease("other", Now.AddMinutes(-40), renter: PartyKeyPair.Generate(PartyRole.Renter));
        var store = Store(mine.Lease, forged.Lease, refused.Lease, old.Lease, other.Lease);

        Assert.Null(store.HolderOf(parties.Renter.Identity.KeyId, nonce, mine.H));
        Assert.True(await store.TryRecordAsync(parties.Renter.Identity.KeyId, nonce, mine.H, Now.AddHours(24)));

        // The check is per renter key: a second request of mine with the nonce is refused, the other renter's is not.
        var second = Lease("second", Now);
        var again = Store(mine.Lease, second.Lease, other.Lease);
        Assert.False(await again.TryRecordAsync(parties.Renter.Identity.KeyId, nonce, second.H, Now.AddHours(24)));
        Assert.Null(again.HolderOf(other.RenterKeyId, nonce, other.H));
    }

    private LeaseNonces Store(params Lease[] leases) =>
        new(n => [.. leases.Where(l => LeaseNonces.NonceOf(l).Contains(n))], new FakeTimeProvider(Now), RequestPolicy.Default);

    private (Lease Lease, string H, string RenterKeyId) Lease(string name, DateTimeOffset created, Func<LeaseBuilder, LeaseBuilder>? change = null, PartyKeyPair? renter = null)
    {
        var who = renter ?? parties.Renter;
        var builder = LeaseBuilder.For(who).In("team-a", name).To(parties.Leaser, parties.Escrow).SignedAt(Now.AddMinutes(-1)).Nonce(nonce);
        builder = change?.Invoke(builder) ?? builder;
        var request = builder.BuildRequest();
        var lease = builder.Build(request);
        lease.Metadata.Uid = Guid.NewGuid().ToString();
        lease.Metadata.CreationTimestamp = created.UtcDateTime;
        return (lease, RpoiEquations.TransactionHashOf(request).Hex, who.Identity.KeyId);
    }

    private static void Verified(Lease lease, bool ok)
    {
        lease.Status ??= new LeaseStatus();
        lease.Status.Conditions = [new V1Condition { Type = LeaseConditions.Verified, Status = ok ? "True" : "False", Reason = ok ? "Succeeded" : "NonceReplayed", Message = "-", LastTransitionTime = Now.UtcDateTime }];
    }
}
