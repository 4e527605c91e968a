using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;
using RatingResource = Rpoi.Operator.Entities.Rating;

namespace Rpoi.Chaos;

/// <summary>How a lease ends: returned by the renter, run out, or cancelled before it was ever Active.</summary>
public enum LeaseEnding
{
    Return,
    Expire,
    Cancel,
}

/// <summary>Which ratings the two sides post after the return.</summary>
public enum RatingPlan
{
    Both,
    RenterOnly,
    LeaserOnly,
    None,
}

/// <summary>One lease's seeded plan.</summary>
public sealed record LeasePlan(string Name, LeaseEnding Ending, RatingPlan Ratings, long Deposit, long Rent, long DurationSeconds, long RatingWindowSeconds)
{
    /// <summary>
    /// The lease that holds the one node of the queued shape from before the first lease until after the last, so the
    /// cancelled leases wait in the queue (room that can be met later) instead of failing as impossible requests.
    /// </summary>
    public static LeasePlan Blocker { get; } = new("chaos-blocker", LeaseEnding.Return, RatingPlan.Both, 1000, 1000, 3600, 120);

    /// <summary>Draws <paramref name="count"/> plans from <paramref name="random"/>.</summary>
    public static IReadOnlyList<LeasePlan> Draw(Random random, int count)
    {
        var plans = new List<LeasePlan>(count);
        for (var i = 0; i < count; i++)
        {
            var roll = random.Next(100);
            var ending = roll < 15 ? LeaseEnding.Cancel : roll < 55 ? LeaseEnding.Return : LeaseEnding.Expire;
            var ratings = (RatingPlan)random.Next(4);
            // Both rated settles as soon as both are accepted; otherwise the lease waits out its window, so keep it short.
            var window = ratings == RatingPlan.Both ? 120 : random.Next(3, 7);
            var duration = ending == LeaseEnding.Expire ? random.Next(2, 6) : 600;
            plans.Add(new LeasePlan($"chaos-{i:D4}", ending, ratings, random.Next(1, 100) * 1000L, random.Next(1, 100) * 1000L, duration, window));
        }

        return plans;
    }
}

/// <summary>What the renter simulator saw of one lease; the checks compare it with π and the cluster.</summary>
public sealed class LeaseOutcome(LeasePlan plan, Signed<LeaseRequest> request)
{
    public LeasePlan Plan { get; } = plan;

    public Signed<LeaseRequest> Request { get; } = request;

    public TransactionHash H { get; } = RpoiEquations.TransactionHashOf(request);

    public Lease? Final { get; set; }

    public bool RenterRatingPosted { get; set; }

    public bool LeaserRatingPosted { get; set; }

    public bool? RenterRatingAccepted { get; set; }

    public bool? LeaserRatingAccepted { get; set; }

    /// <summary>The step that did not finish in time, or null.</summary>
    public string? Stuck { get; set; }

    /// <summary>The lease had σ (it was Active at some point).</summary>
    public bool Served => Final?.Status?.GrantDigest is not null || Final?.Status?.ActiveSince is not null;
}

/// <summary>
/// The renter R: signs each lease request with its own key (equation 3), commits it as a Lease, returns or cancels
/// it, signs its rating E(m'') over the σ digest the Lease records (equation 18), and posts the platform team's
/// leaser rating, all through the API server as <c>kubectl rpoi</c> would.
/// </summary>
internal sealed class Renter(IKubernetes client, PartyKeyPair renter, string leaserAddress, string escrowAddress, string ns, TimeSpan stepTimeout)
{
    public const string ServedAccelerator = "tpu-v5-lite-podslice";

    // One node of this shape exists and the blocker lease holds it for the whole run, so a lease asking for it stays
    // queued (it could be served later, so it is not refused as impossible) until it is cancelled.
    public const string QueuedAccelerator = "tpu-v6e-slice";

    public Signed<LeaseRequest> Sign(LeasePlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var now = DateTimeOffset.UtcNow;
        var m = new LeaseRequest(
            MessageKinds.Request,
            renter.Identity.ToPublicKeys(),
            leaserAddress,
            escrowAddress,
            plan.Ending == LeaseEnding.Cancel || plan == LeasePlan.Blocker ? QueuedAccelerator : ServedAccelerator,
            "2x2",
            4,
            plan.DurationSeconds,
            new DateTimeOffset(now.UtcTicks - (now.UtcTicks % TimeSpan.TicksPerSecond), TimeSpan.Zero),
            Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)),
            new Money(plan.Deposit.ToString(CultureInfo.InvariantCulture), "uusd"),
            new Money(plan.Rent.ToString(CultureInfo.InvariantCulture), "uusd"),
            new LeaseRef(ns, plan.Name));
        return RpoiEquations.SignRequest(m, renter);
    }

    /// <summary>Drives one lease to a terminal phase (or records where it got stuck).</summary>
    /// <param name="outcome">The lease's plan and what is seen of it.</param>
    /// <param name="returnAfter">For a returned lease: return it only once this completes (the blocker waits for the run).</param>
    /// <param name="ct">Cancels the run.</param>
    public async Task RunAsync(LeaseOutcome outcome, CancellationToken ct, Task? returnAfter = null)
    {
        var plan = outcome.Plan;
        await Api.CreateAsync(client, LeaseObject(plan, outcome.Request), ns, Lease.Plural, ct).ConfigureAwait(false);
        Lease? lease;
        if (plan.Ending == LeaseEnding.Cancel)
        {
            // Cancel once π holds the pledge and the lease waits in the queue, so the never-served refund is exercised.
            lease = await WaitAsync(outcome, "pledged and queued", l => IsTerminal(l) || HasCondition(l, LeaseConditions.Pledged), ct).ConfigureAwait(false);
            if (lease is null)
            {
                return;
            }

            await Api.RequestReturnAsync(client, ns, plan.Name, ct).ConfigureAwait(false);
        }
        else
        {
            lease = await WaitAsync(outcome, "Active", l => IsTerminal(l) || l.Status?.ActiveSince is not null, ct).ConfigureAwait(false);
            if (lease is null)
            {
                return;
            }

            if (plan.Ending == LeaseEnding.Return)
            {
                if (returnAfter is not null)
                {
                    await returnAfter.ConfigureAwait(false);
                }

                await Api.RequestReturnAsync(client, ns, plan.Name, ct).ConfigureAwait(false);
            }

            lease = await WaitAsync(outcome, "returned", l => IsTerminal(l) || l.Status?.Phase is LeasePhase.AwaitingRatings or LeasePhase.Settling, ct).ConfigureAwait(false);
            if (lease is null)
            {
                return;
            }

            if (lease.Status?.Phase == LeasePhase.AwaitingRatings && lease.Status.GrantDigest is { } digest)
            {
                await RateAsync(outcome, digest, ct).ConfigureAwait(false);
            }
        }

        outcome.Final = await WaitAsync(outcome, "Settled or Failed", IsTerminal, ct).ConfigureAwait(false);
        // The Lease records an accepted rating before the Rating's status says so, so a Lease can be Settled a moment
        // before its Ratings are marked: wait for each posted Rating's decision rather than read a half-written pair.
        outcome.RenterRatingAccepted = outcome.RenterRatingPosted ? await DecisionAsync(outcome, plan.Name + "-renter", ct).ConfigureAwait(false) : null;
        outcome.LeaserRatingAccepted = outcome.LeaserRatingPosted ? await DecisionAsync(outcome, plan.Name + "-leaser", ct).ConfigureAwait(false) : null;
    }

    private async Task<bool?> DecisionAsync(LeaseOutcome outcome, string rating, CancellationToken ct)
    {
        var deadline = DateTimeOffset.UtcNow + stepTimeout;
        bool? accepted = null;
        while (DateTimeOffset.UtcNow < deadline)
        {
            accepted = (await Api.GetRatingAsync(client, ns, rating, ct).ConfigureAwait(false))?.Status?.Accepted;
            if (accepted is not null)
            {
                return accepted;
            }

            await Task.Delay(250, ct).ConfigureAwait(false);
        }

        outcome.Stuck ??= $"Rating {rating} not decided within {stepTimeout.TotalSeconds:0} s of the lease ending";
        return accepted;
    }

    public static bool IsTerminal(Lease lease) => lease.Status?.Phase is LeasePhase.Settled or LeasePhase.Failed;

    private static bool HasCondition(Lease lease, string type) => lease.Status?.Conditions?.Any(c => c.Type == type && c.Status == "True") == true;

    private async Task RateAsync(LeaseOutcome outcome, string digest, CancellationToken ct)
    {
        var plan = outcome.Plan;
        if (plan.Ratings is RatingPlan.Both or RatingPlan.RenterOnly)
        {
            var signed = RpoiEquations.SignRenterRating(outcome.Request, digest, new Protocol.Messages.Rating(5, "chaos", DateTimeOffset.UtcNow), renter);
            var envelope = JsonNode.Parse(signed.ToJson())!.AsObject();
            var rating = new RatingResource
            {
                Metadata = new V1ObjectMeta { Name = plan.Name + "-renter", NamespaceProperty = ns },
                Spec = new RatingSpec
                {
                    LeaseRef = new LeaseReference { Name = plan.Name },
                    Rater = Rater.Renter,
                    Score = 5,
                    Comment = "chaos",
                    SignedRating = new SignedRatingMessage
                    {
                        Payload = (JsonObject)envelope["payload"]!.DeepClone(),
                        Signer = envelope["signer"]!.GetValue<string>(),
                        Sig = envelope["sig"]!.GetValue<string>(),
                    },
                },
            };
            await Api.CreateAsync(client, rating, ns, RatingResource.Plural, ct).ConfigureAwait(false);
            outcome.RenterRatingPosted = true;
        }

        if (plan.Ratings is RatingPlan.Both or RatingPlan.LeaserOnly)
        {
            var rating = new RatingResource
            {
                Metadata = new V1ObjectMeta { Name = plan.Name + "-leaser", NamespaceProperty = ns },
                Spec = new RatingSpec { LeaseRef = new LeaseReference { Name = plan.Name }, Rater = Rater.Leaser, Score = 4, Comment = "chaos" },
            };
            await Api.CreateAsync(client, rating, ns, RatingResource.Plural, ct).ConfigureAwait(false);
            outcome.LeaserRatingPosted = true;
        }
    }

    private async Task<Lease?> WaitAsync(LeaseOutcome outcome, string step, Func<Lease, bool> done, CancellationToken ct)
    {
        var deadline = DateTimeOffset.UtcNow + stepTimeout;
        Lease? last = null;
        while (DateTimeOffset.UtcNow < deadline)
        {
            last = await Api.GetLeaseAsync(client, ns, outcome.Plan.Name, ct).ConfigureAwait(false);
            if (last is not null && done(last))
            {
                return last;
            }

            await Task.Delay(250, ct).ConfigureAwait(false);
        }

        outcome.Final = last;
        outcome.Stuck = $"{step} not reached within {stepTimeout.TotalSeconds:0} s (phase {last?.Status?.Phase?.ToString() ?? "none"})";
        return null;
    }

    private Lease LeaseObject(LeasePlan plan, Signed<LeaseRequest> request)
    {
        var envelope = JsonNode.Parse(request.ToJson())!.AsObject();
        return new Lease
        {
            Metadata = new V1ObjectMeta { Name = plan.Name, NamespaceProperty = ns, Finalizers = [LeaseConditions.Finalizer] },
            Spec = new LeaseSpec
            {
                Request = new SignedLeaseRequest
                {
                    Payload = (JsonObject)envelope["payload"]!.DeepClone(),
                    Signer = envelope["signer"]!.GetValue<string>(),
                    Sig = envelope["sig"]!.GetValue<string>(),
                },
                RatingWindowSeconds = plan.RatingWindowSeconds,
            },
        };
    }
}
