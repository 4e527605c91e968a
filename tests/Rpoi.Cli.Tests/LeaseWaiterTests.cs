using Rpoi.Cli.Support;
using Rpoi.Operator.Entities;

namespace Rpoi.Cli.Tests;

/// <summary>When a wait gives up because the lease is past what was waited for (exit 10), and when it keeps waiting.</summary>
public sealed class LeaseWaiterTests
{
    private static readonly HashSet<LeasePhase> ForAccess = [LeasePhase.Active];
    private static readonly HashSet<LeasePhase> ForReturn = [LeasePhase.AwaitingRatings, LeasePhase.Settling, LeasePhase.Settled];

    [Theory]
    [InlineData(LeasePhase.Returning, true)]
    [InlineData(LeasePhase.AwaitingRatings, true)]
    [InlineData(LeasePhase.Settled, true)]
    [InlineData(LeasePhase.Allocating, false)]
    [InlineData(LeasePhase.Pending, false)]
    public void A_wait_for_Active_ends_once_the_lease_is_returning_or_later(LeasePhase phase, bool ended) =>
        Assert.Equal(ended, LeaseWaiter.HasEnded(phase, ForAccess));

    [Theory]
    [InlineData(LeasePhase.Active)]
    [InlineData(LeasePhase.Returning)]
    public void A_return_wait_passes_through_Returning_on_its_way_to_AwaitingRatings(LeasePhase phase) =>
        // The sandbox caught `return --wait` giving up with exit 10 when its poll saw the brief Returning phase.
        Assert.False(LeaseWaiter.HasEnded(phase, ForReturn));
}
