using Rpoi.Escrow.Client;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Operator.Tests.Support;
using Rpoi.Protocol.Keys;

namespace Rpoi.Operator.Tests.PhaseOne;

/// <summary>A bad Lease goes to Failed with a reason that says exactly what is wrong; nothing is claimed or charged.</summary>
public sealed class VerificationTests
{
    [Fact]
    public async Task Every_bad_lease_fails_with_its_reason_and_nothing_is_claimed_or_charged()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 4);
        await env.StartOperatorAsync();
        var stranger = PartyKeyPair.Generate(PartyRole.Leaser);
        var forger = PartyKeyPair.Generate(PartyRole.Renter);
        var cases = new (string Name, LeaseBuilder Lease, string Reason, string MessagePart)[]
        {
            ("tampered", env.Lease("tampered").TamperedWith(p => p["chips"] = 8).Chips(4), "BadSignature", "signature"),
            ("forged", env.Lease("forged").SignedBy(forger), "SignerMismatch", "expected renter key"),
            ("copied", env.Lease("copied").BoundTo("team-b", "copied"), "LeaseBindingMismatch", "team-b/copied"),
            ("stale", env.Lease("stale").SignedAt(env.Time.GetUtcNow().AddHours(-25)), "RequestTooOld", "older than 24 h"),
            ("future", env.Lease("future").SignedAt(env.Time.GetUtcNow().AddMinutes(30)), "RequestFromFuture", "ahead"),
            ("wrong-leaser", env.Lease("wrong-leaser").To(stranger, env.Parties.Escrow), "PartyMismatch", "request.leaser"),
            ("wrong-escrow", env.Lease("wrong-escrow").To(env.Parties.Leaser, stranger), "PartyMismatch", "request.escrow"),
            ("odd-chips", env.Lease("odd-chips").Chips(6), LeaseConditions.InvalidShape, "multiple of 4"),
            ("bad-topology", env.Lease("bad-topology").Shape(LeaseBuilder.V5e, "2by2").Chips(4), LeaseConditions.InvalidShape, "2by2"),
            ("zero-rent", env.Lease("zero-rent").Amounts("1000", "0"), "InvalidAmount", "rent"),
            (new string('n', 64), env.Lease(new string('n', 64)), LeaseConditions.InvalidLeaseName, "at most 63"),
        };
        foreach (var c in cases)
        {
            await env.ApplyAsync(c.Lease.Build());
        }

        foreach (var c in cases)
        {
            var lease = await env.WaitForPhaseAsync(c.Name, LeasePhase.Failed);
            var ready = Assert.Single(lease.Status!.Conditions!, x => x.Type == LeaseConditions.Ready);
            Assert.Equal("False", ready.Status);
            Assert.True(c.Reason == ready.Reason, $"{c.Name}: expected reason {c.Reason}, got {ready.Reason}: {ready.Message}");
            Assert.Contains(c.MessagePart, ready.Message, StringComparison.Ordinal);
            Assert.Null(lease.Status.Nodes);
            Assert.Null(await env.AccessSecretAsync(c.Name));
        }

        Assert.All(await env.NodesAsync(), n => Assert.True(TpuNodePools.IsClean(n), $"{n.Metadata.Name} was marked"));
        Assert.Equal(0, env.FakeEscrow!.PledgeCalls);
        Assert.Equal(1_000_000_000, env.FakeEscrow.Balance(env.Parties.Renter.Identity.Address));
    }

    [Fact]
    public async Task A_pledge_the_escrow_refuses_fails_the_lease_without_claiming_nodes()
    {
        await using var env = await PhaseOneEnvironment.StartAsync();
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        await env.StartOperatorAsync();
        await env.ApplyAsync(env.Lease("too-expensive").Amounts("999999999", "999999999").Build());

        var lease = await env.WaitForPhaseAsync("too-expensive", LeasePhase.Failed);
        var pledged = Assert.Single(lease.Status!.Conditions!, x => x.Type == LeaseConditions.Pledged);
        Assert.Equal(LeaseConditions.PledgeRefused, pledged.Reason);
        Assert.Contains(EscrowReasons.InsufficientFunds, pledged.Message, StringComparison.Ordinal);
        Assert.All(await env.NodesAsync(), n => Assert.True(TpuNodePools.IsClean(n)));
        Assert.Equal(0, env.FakeEscrow!.Debits);
    }
}
