using Prometheus;
using Rpoi.Protocol.Messages;

namespace Rpoi.Operator.PhaseTwo;

/// <summary>
/// Phase II metrics: <c>rpoi_settlements_total{outcome,deposit,rent}</c> (one per lease settled, by decision-table
/// row), <c>rpoi_settlement_failures_total{reason}</c> (m_final refused or undelivered) and
/// <c>rpoi_ratings_total{rater,result,reason}</c> (each rating decided once).
/// </summary>
public sealed class PhaseTwoMetrics
{
    private readonly Counter settlements;
    private readonly Counter failures;
    private readonly Counter ratings;

    /// <summary>Creates (or reuses) the collectors in <paramref name="registry"/>.</summary>
    public PhaseTwoMetrics(CollectorRegistry registry)
    {
        var factory = Metrics.WithCustomRegistry(registry);
        // deposit and rent are kept beside outcome because the shipped dashboard sums by them.
        settlements = factory.CreateCounter("rpoi_settlements_total", "Leases settled by the escrow, by decision-table row.", "outcome", "deposit", "rent");
        failures = factory.CreateCounter("rpoi_settlement_failures_total", "m_final submissions the escrow refused or could not be reached for.", "reason");
        ratings = factory.CreateCounter("rpoi_ratings_total", "Ratings decided by the operator, by side, result and reason.", "rater", "result", "reason");
    }

    /// <summary>The <c>outcome</c> label of a decision-table row.</summary>
    public static string OutcomeOf(SettlementDecision decision)
    {
        ArgumentNullException.ThrowIfNull(decision);
        return (decision.RenterRated, decision.LeaserRated) switch
        {
            (true, true) => "both_rated",
            (false, true) => "renter_missing",
            (true, false) => "leaser_missing",
            _ => "none_rated",
        };
    }

    /// <summary>Counts a settlement recorded on a Lease.</summary>
    public void Settled(SettlementDecision decision)
    {
        ArgumentNullException.ThrowIfNull(decision);
        settlements.WithLabels(OutcomeOf(decision), decision.Deposit == DepositDisposition.ToRenter ? "to_renter" : "withheld",
            decision.Rent == RentDisposition.ToLeaser ? "to_leaser" : "back_to_renter").Inc();
    }

    /// <summary>Counts a refused or undelivered m_final.</summary>
    public void SettlementFailed(string reason) => failures.WithLabels(reason).Inc();

    /// <summary>Counts a rating decision (accepted or rejected; pending ratings are not counted).</summary>
    public void RatingDecided(string rater, bool accepted, string reason) => ratings.WithLabels(rater, accepted ? "accepted" : "rejected", reason).Inc();

    /// <summary>Current value of <c>rpoi_settlements_total</c> for an outcome, summed over its deposit and rent labels (tests, dashboards).</summary>
    public double SettlementCount(string outcome) =>
        settlements.GetAllLabelValues().Where(l => l[0] == outcome).Sum(l => settlements.WithLabels(l).Value);

    /// <summary>Current value of <c>rpoi_ratings_total</c> for one label set.</summary>
    public double RatingCount(string rater, string result, string reason) => ratings.WithLabels(rater, result, reason).Value;
}
