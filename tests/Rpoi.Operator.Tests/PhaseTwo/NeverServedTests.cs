using k8s;
using k8s.Models;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Operator.Tests.Support;
using Rpoi.Protocol;
using Rpoi.Protocol.Messages;

namespace Rpoi.Operator.Tests.PhaseTwo;

/// <summary>
/// Issue 13 item 1 end to end: a pledged lease that is queued (Pending with a queue position) and then deleted or returned, on the real π
/// (SQLite and PostgreSQL), is refunded ρ + ω under the row NeverServed with π's receipt, without a rating window.
/// </summary>
public sealed class NeverServedTests
{
    private const long Deposit = 2_000_000;
    private const long Rent = 700_000;

    [Theory]
    [InlineData(false, true)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(true, false)]
    public async Task A_queued_lease_deleted_or_returned_is_refunded_in_full_at_once(bool postgres, bool delete)
    {
        await using var env = await PhaseTwoEnvironment.StartAsync(postgres);
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        await env.StartOperatorAsync(withPhaseOne: true);

        // "first" takes the only host; "queued" is pledged and waits behind it.
        var first = await CreateAsync(env, "first");
        await env.WaitForPhaseAsync("first", LeasePhase.Active);
        var queued = await CreateAsync(env, "queued");
        await Eventually.ReturnsAsync(() => env.GetLeaseAsync("queued"), l => l.Status?.Phase == LeasePhase.Pending && l.Status.QueuePosition is not null, "queued waits for the host", env.Time);
        Assert.Equal("Held", (await env.Anyone.GetPledgeAsync(queued.Hex))!.State);
        Assert.Equal(PhaseTwoEnvironment.RenterFunds - (2 * (Deposit + Rent)), await env.BalanceAsync(env.Parties.Renter.Identity.Address));

        if (delete)
        {
            await env.Client.CustomObjects.DeleteNamespacedCustomObjectAsync(Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural, "queued");
            // No rating window: the finalizer goes as soon as π's refund is confirmed, with no clock advanced.
            try
            {
                await Eventually.HoldsAsync(async () => await env.GetLeaseAsync("queued") is null, "the deleted queued Lease is gone without waiting for a rating window", timeout: TimeSpan.FromSeconds(30));
            }
            catch (Exception e)
            {
                var left = await env.GetLeaseAsync("queued");
                throw new InvalidOperationException(e.Message + " | " + System.Text.Json.JsonSerializer.Serialize(new { left?.Metadata.Finalizers, left?.Status }), e);
            }
        }
        else
        {
            await env.Client.CustomObjects.PatchNamespacedCustomObjectAsync(new V1Patch("{\"spec\":{\"returnRequested\":true}}", V1Patch.PatchType.MergePatch),
                Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural, "queued");
            var settled = await env.WaitForPhaseAsync("queued", LeasePhase.Settled);
            Assert.Null(settled.Status!.RatingDeadline);
            Assert.Null(settled.Status.GrantDigest);
            Assert.False(settled.Status.Settlement!.RenterRated);
            Assert.Equal(DepositOutcome.ReturnedToRenter, settled.Status.Settlement.Deposit);
            Assert.Equal(RentOutcome.ReturnedToRenter, settled.Status.Settlement.Rent);
            var receipt = RpoiEquations.VerifyReceipt(Signed<SettlementReceipt>.Parse(settled.Status.Settlement.Receipt!).Value, env.Parties.Escrow.Identity, queued);
            Assert.True(receipt.IsOk, receipt.Message);
            Assert.Equal(SettlementSource.NeverServed, receipt.Value.Source);
            Assert.Contains(settled.Status.Conditions!, c => c.Reason == LeaseConditions.NeverServed);
        }

        // π: the queued lease settled by the row NeverServed; the renter has its ρ + ω back, β got nothing from it.
        var settlement = await env.Anyone.GetSettlementAsync(queued.Hex);
        Assert.NotNull(settlement);
        Assert.Equal("ToRenter", settlement.Deposit);
        Assert.Equal("BackToRenter", settlement.Rent);
        Assert.Equal(PhaseTwoEnvironment.RenterFunds - (Deposit + Rent), await env.BalanceAsync(env.Parties.Renter.Identity.Address));
        Assert.Equal(0, await env.BalanceAsync(env.Parties.Leaser.Identity.Address));
        Assert.Equal(0, await env.WithheldAsync(queued));
        var audit = await env.AuditAsync();
        Assert.True(audit.Ok, string.Join("; ", audit.Problems));
        Assert.Equal((Deposit + Rent).ToString(System.Globalization.CultureInfo.InvariantCulture), Assert.Single(audit.Totals, t => t.Denom == "uusd").Held);

        // The served lease is untouched and still Active.
        Assert.Equal(LeasePhase.Active, (await env.GetLeaseAsync("first"))!.Status!.Phase);
        Assert.Equal("Held", (await env.Anyone.GetPledgeAsync(first.Hex))!.State);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_refund_sent_before_a_restart_is_not_paid_twice(bool postgres)
    {
        await using var env = await PhaseTwoEnvironment.StartAsync(postgres);
        await TpuNodePools.V5eSingleHostAsync(env.Client, "v5e", hosts: 1);
        await env.StartOperatorAsync(withPhaseOne: true);
        await CreateAsync(env, "first");
        await env.WaitForPhaseAsync("first", LeasePhase.Active);
        var request = await CreateRequestAsync(env, "queued");
        var queued = RpoiEquations.TransactionHashOf(request);
        await Eventually.ReturnsAsync(() => env.GetLeaseAsync("queued"), l => l.Status?.Phase == LeasePhase.Pending && l.Status.QueuePosition is not null, "queued waits for the host", env.Time);

        // β sent its notice and π refunded, then the operator died before writing status.
        await env.StopOperatorAsync();
        var sent = await env.EscrowClientFor(Rpoi.Escrow.Client.EscrowCredentials.Leaser(env.Parties.Leaser))
            .NeverServedAsync(RpoiEquations.SignNeverServed(request, "the Lease was returned while queued", env.Time.GetUtcNow(), env.Parties.Leaser));
        var entriesAfterRefund = (await env.LedgerEntriesAsync(queued)).Count;
        await env.Client.CustomObjects.PatchNamespacedCustomObjectAsync(new V1Patch("{\"spec\":{\"returnRequested\":true}}", V1Patch.PatchType.MergePatch),
            Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural, "queued");
        await env.StartOperatorAsync(withPhaseOne: true);

        var settled = await env.WaitForPhaseAsync("queued", LeasePhase.Settled);
        Assert.Equal(sent.Receipt.GetRawText(), settled.Status!.Settlement!.Receipt);
        Assert.Equal(PhaseTwoEnvironment.RenterFunds - (Deposit + Rent), await env.BalanceAsync(env.Parties.Renter.Identity.Address));
        Assert.Equal(entriesAfterRefund, (await env.LedgerEntriesAsync(queued)).Count);
        var audit = await env.AuditAsync();
        Assert.True(audit.Ok, string.Join("; ", audit.Problems));
    }

    private static async Task<TransactionHash> CreateAsync(PhaseTwoEnvironment env, string name) =>
        RpoiEquations.TransactionHashOf(await CreateRequestAsync(env, name));

    private static async Task<Signed<LeaseRequest>> CreateRequestAsync(PhaseTwoEnvironment env, string name)
    {
        var builder = LeaseBuilder.For(env.Parties.Renter).In(PhaseTwoEnvironment.Namespace, name).To(env.Parties.Leaser, env.Parties.Escrow)
            .SignedAt(env.Time.GetUtcNow()).Shape(LeaseBuilder.V5e, "2x2").Chips(4).Duration(TimeSpan.FromHours(1))
            .Amounts(Deposit.ToString(System.Globalization.CultureInfo.InvariantCulture), Rent.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .RatingWindow(TimeSpan.FromHours(3));
        var request = builder.BuildRequest();
        await env.Client.CustomObjects.CreateNamespacedCustomObjectAsync(builder.Build(request), Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, Lease.Plural);
        return request;
    }
}
