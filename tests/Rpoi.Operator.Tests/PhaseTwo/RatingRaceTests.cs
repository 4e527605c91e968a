using k8s;
using System.Text.Json.Nodes;
using k8s.Models;
using Microsoft.Extensions.Time.Testing;
using Rpoi.Kube.Controllers;
using Rpoi.Kube.Events;
using Rpoi.Kube.Informers;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseTwo;
using RatingResource = Rpoi.Operator.Entities.Rating;

namespace Rpoi.Operator.Tests.PhaseTwo;

/// <summary>
/// A rating decided at the edge of the window and a settlement that starts at the same moment must agree on what
/// m_final carries: a Rating whose status says accepted is in the settlement, and one that is not in it is refused.
/// The chaos run (seed 1001, PostgreSQL) found a lease settled as unrated while its renter's Rating said accepted:
/// the rating was checked against a Lease read before the settlement wrote Settling, and the settling replica's cache
/// did not hold the rating yet. These tests drive the two reconcilers by hand in the orders that made that possible.
/// </summary>
public sealed class RatingRaceTests
{
    [Fact]
    public async Task A_rating_checked_against_a_stale_lease_after_the_settlement_began_is_refused_not_accepted()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        var lease = await env.ReturnedLeaseAsync("race", ratingWindow: TimeSpan.FromMinutes(10));
        await env.ApplyAsync(PhaseTwoEnvironment.RenterRatingResource("race-renter", "race", env.SignRenterRating(lease, 5)));
        var world = await World.SnapshotAsync(env);

        // The settling side: the window closed, its cache has not seen the rating decided yet.
        env.Time.Advance(TimeSpan.FromMinutes(10));
        await world.Step(env.Time).ReconcileAsync((await env.GetLeaseAsync("race"))!, CancellationToken.None);

        // The rating side: its cache still shows the Lease waiting, its clock a second before the deadline.
        var result = await world.Ratings(env.Time.GetUtcNow() - TimeSpan.FromSeconds(1)).ReconcileAsync((await env.GetRatingAsync("race-renter"))!, CancellationToken.None);

        Assert.IsType<ReconcileResult.Success>(result);
        var rating = await env.GetRatingAsync("race-renter");
        var settled = await env.GetLeaseAsync("race");
        Assert.False(settled!.Status!.Settlement!.RenterRated);
        Assert.False(rating!.Status!.Accepted);
        Assert.Equal(PhaseTwoReasons.WindowClosed, rating.Status.Reason);
        Assert.Null(settled.Status.AcceptedRatings);
        Assert.Equal(lease.Deposit, await env.WithheldAsync(lease.H));
    }

    [Fact]
    public async Task Settling_written_between_the_rating_check_and_its_record_makes_the_record_fail_and_the_rating_is_refused()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        var lease = await env.ReturnedLeaseAsync("race", ratingWindow: TimeSpan.FromMinutes(10));
        await env.ApplyAsync(PhaseTwoEnvironment.RenterRatingResource("race-renter", "race", env.SignRenterRating(lease, 5)));
        var world = await World.SnapshotAsync(env);
        var ratingClock = env.Time.GetUtcNow() + TimeSpan.FromMinutes(10) - TimeSpan.FromSeconds(1);
        env.Time.Advance(TimeSpan.FromMinutes(10));

        // The settlement runs right after the rating side read the Lease (AwaitingRatings) and before it writes.
        var settlementRan = false;
        var leases = new BeforeStatusPatch<Lease>(world.LeaseClient, async () =>
        {
            if (!settlementRan)
            {
                settlementRan = true;
                await world.Step(env.Time).ReconcileAsync((await env.GetLeaseAsync("race"))!, CancellationToken.None);
            }
        });
        var reconciler = world.Ratings(ratingClock, leases);
        var first = await reconciler.ReconcileAsync((await env.GetRatingAsync("race-renter"))!, CancellationToken.None);
        Assert.True(settlementRan, "the rating was accepted without recording it on the Lease first");
        Assert.IsType<ReconcileResult.Retry>(first);
        Assert.Null((await env.GetRatingAsync("race-renter"))!.Status?.Accepted);

        // Decided again, against the Lease that is now Settled.
        await reconciler.ReconcileAsync((await env.GetRatingAsync("race-renter"))!, CancellationToken.None);
        var rating = await env.GetRatingAsync("race-renter");
        var settled = await env.GetLeaseAsync("race");
        Assert.False(settled!.Status!.Settlement!.RenterRated);
        Assert.False(rating!.Status!.Accepted);
        Assert.Equal(PhaseTwoReasons.WindowClosed, rating.Status.Reason);
    }

    [Fact]
    public async Task A_rating_recorded_before_the_settlement_is_carried_even_when_the_settling_cache_never_saw_it()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        var lease = await env.ReturnedLeaseAsync("race", ratingWindow: TimeSpan.FromMinutes(10));
        // The settling replica's caches are taken before the rating exists (a fresh leader whose watch lags).
        var blind = await World.SnapshotAsync(env);
        await env.ApplyAsync(PhaseTwoEnvironment.RenterRatingResource("race-renter", "race", env.SignRenterRating(lease, 4)));
        var seeing = await World.SnapshotAsync(env);

        await seeing.Ratings(env.Time.GetUtcNow()).ReconcileAsync((await env.GetRatingAsync("race-renter"))!, CancellationToken.None);
        var accepted = await env.GetRatingAsync("race-renter");
        Assert.True(accepted!.Status!.Accepted);
        Assert.Equal("race-renter", (await env.GetLeaseAsync("race"))!.Status!.AcceptedRatings!.Renter);

        env.Time.Advance(TimeSpan.FromMinutes(10));
        await blind.Step(env.Time).ReconcileAsync((await env.GetLeaseAsync("race"))!, CancellationToken.None);
        var settled = await env.GetLeaseAsync("race");
        Assert.Equal(LeasePhase.Settled, settled!.Status!.Phase);
        Assert.True(settled.Status.Settlement!.RenterRated);
        Assert.Equal(DepositOutcome.ReturnedToRenter, settled.Status.Settlement.Deposit);
        Assert.Equal(0, await env.WithheldAsync(lease.H));
    }

    [Fact]
    public async Task Killed_after_recording_the_rating_on_the_lease_the_rating_is_accepted_after_the_window_closed()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        var lease = await env.ReturnedLeaseAsync("race", ratingWindow: TimeSpan.FromMinutes(10));
        await env.ApplyAsync(PhaseTwoEnvironment.RenterRatingResource("race-renter", "race", env.SignRenterRating(lease, 3)));
        var world = await World.SnapshotAsync(env);

        // The Rating's status write never happens (the process died right after the Lease record).
        var dying = world.Ratings(env.Time.GetUtcNow(), ratings: new BeforeStatusPatch<RatingResource>(world.RatingClient,
            () => throw new IOException("the operator process died before writing the Rating's status")));
        await Assert.ThrowsAsync<IOException>(() => dying.ReconcileAsync(world.RatingCache.Get(new ObjectKey(PhaseTwoEnvironment.Namespace, "race-renter"))!, CancellationToken.None));
        Assert.Null((await env.GetRatingAsync("race-renter"))!.Status?.Accepted);
        Assert.Equal("race-renter", (await env.GetLeaseAsync("race"))!.Status!.AcceptedRatings!.Renter);

        // After the deadline, a restarted replica (stale caches) settles with the rating and then marks it accepted.
        env.Time.Advance(TimeSpan.FromMinutes(11));
        await world.Step(env.Time).ReconcileAsync((await env.GetLeaseAsync("race"))!, CancellationToken.None);
        await world.Ratings(env.Time.GetUtcNow()).ReconcileAsync((await env.GetRatingAsync("race-renter"))!, CancellationToken.None);
        var settled = await env.GetLeaseAsync("race");
        var rating = await env.GetRatingAsync("race-renter");
        Assert.True(settled!.Status!.Settlement!.RenterRated);
        Assert.True(rating!.Status!.Accepted);
        Assert.Contains("status.acceptedRatings.renter", rating.Status.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_second_rating_of_a_side_is_refused_by_the_lease_record_even_when_the_cache_missed_the_first()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        await env.ReturnedLeaseAsync("race", ratingWindow: TimeSpan.FromMinutes(10));
        var blind = await World.SnapshotAsync(env);
        await env.ApplyAsync(PhaseTwoEnvironment.LeaserRatingResource("race-leaser-a", "race", 5));
        await env.ApplyAsync(PhaseTwoEnvironment.LeaserRatingResource("race-leaser-b", "race", 1));
        var seeing = await World.SnapshotAsync(env);

        // a is accepted by a replica that sees both; b is then decided by one whose caches saw neither rating.
        await seeing.Ratings(env.Time.GetUtcNow()).ReconcileAsync((await env.GetRatingAsync("race-leaser-a"))!, CancellationToken.None);
        await blind.Ratings(env.Time.GetUtcNow()).ReconcileAsync((await env.GetRatingAsync("race-leaser-b"))!, CancellationToken.None);

        Assert.True((await env.GetRatingAsync("race-leaser-a"))!.Status!.Accepted);
        var b = await env.GetRatingAsync("race-leaser-b");
        Assert.False(b!.Status!.Accepted);
        Assert.Equal(PhaseTwoReasons.Duplicate, b.Status.Reason);
        Assert.Equal("race-leaser-a", (await env.GetLeaseAsync("race"))!.Status!.AcceptedRatings!.Leaser);
    }

    [Fact]
    public async Task A_rating_accepted_by_an_operator_version_without_the_lease_record_is_still_carried_after_an_upgrade()
    {
        await using var env = await PhaseTwoEnvironment.StartAsync();
        var lease = await env.ReturnedLeaseAsync("old", ratingWindow: TimeSpan.FromMinutes(10));
        await env.ApplyAsync(PhaseTwoEnvironment.RenterRatingResource("old-renter", "old", env.SignRenterRating(lease, 5)));
        // What the previous version left: the Rating's status says accepted, the Lease names nothing.
        var accepted = new JsonObject { ["status"] = new JsonObject { ["accepted"] = true, ["reason"] = PhaseTwoReasons.Accepted, ["message"] = "accepted by the previous version" } };
        await env.Client.CustomObjects.PatchNamespacedCustomObjectStatusAsync(new V1Patch(accepted.ToJsonString(), V1Patch.PatchType.MergePatch),
            Lease.Group, Lease.Version, PhaseTwoEnvironment.Namespace, RatingResource.Plural, "old-renter");
        var world = await World.SnapshotAsync(env);

        env.Time.Advance(TimeSpan.FromMinutes(10));
        await world.Step(env.Time).ReconcileAsync((await env.GetLeaseAsync("old"))!, CancellationToken.None);
        var settled = await env.GetLeaseAsync("old");
        Assert.Null(settled!.Status!.AcceptedRatings);
        Assert.True(settled.Status.Settlement!.RenterRated);
        Assert.Equal(0, await env.WithheldAsync(lease.H));
    }

    /// <summary>Caches filled from the API server once and then frozen, as a replica whose watches lag sees them.</summary>
    private sealed class World
    {
        private readonly PhaseTwoEnvironment env;
        private readonly Store<Lease> leaseCache;

        private World(PhaseTwoEnvironment env, Store<Lease> leaseCache, Store<RatingResource> ratingCache)
        {
            this.env = env;
            this.leaseCache = leaseCache;
            RatingCache = ratingCache;
            LeaseClient = ResourceClients.Custom<Lease>(env.Client, PhaseTwoController.LeaseResource);
            RatingClient = ResourceClients.Custom<RatingResource>(env.Client, PhaseTwoController.RatingResource);
        }

        public IResourceClient<Lease> LeaseClient { get; }

        public IResourceClient<RatingResource> RatingClient { get; }

        public Store<RatingResource> RatingCache { get; }

        public static async Task<World> SnapshotAsync(PhaseTwoEnvironment env)
        {
            var leases = await FrozenAsync(ResourceClients.Custom<Lease>(env.Client, PhaseTwoController.LeaseResource), _ => { });
            var ratings = await FrozenAsync(ResourceClients.Custom<RatingResource>(env.Client, PhaseTwoController.RatingResource), RatingIndexes.AddTo);
            return new World(env, leases, ratings);
        }

        public SettlementStep Step(TimeProvider time) =>
            new(new SettlementDependencies(LeaseClient, RatingClient, RatingCache, env.Escrow, NoEvents.Instance, new PhaseTwoMetrics(Prometheus.Metrics.NewCustomRegistry()), env.Options, time));

        public RatingReconciler Ratings(DateTimeOffset now, IResourceClient<Lease>? leases = null, IResourceClient<RatingResource>? ratings = null) =>
            new(new RatingReconcilerDependencies(ratings ?? RatingClient, leases ?? LeaseClient, RatingCache, leaseCache, NoEvents.Instance,
                new PhaseTwoMetrics(Prometheus.Metrics.NewCustomRegistry()), env.Options, new FakeTimeProvider(now)));

        private static async Task<Store<T>> FrozenAsync<T>(IResourceClient<T> client, Action<Store<T>> index)
            where T : class, IKubernetesObject<V1ObjectMeta>
        {
            var informer = new Informer<T>(client);
            index(informer.Store);
            using var stop = new CancellationTokenSource();
            var run = informer.RunAsync(stop.Token);
            await informer.WaitForSyncAsync(CancellationToken.None);
            await stop.CancelAsync();
            try
            {
                await run;
            }
            catch (OperationCanceledException)
            {
                // Stopped on purpose: the store keeps what the list gave.
            }

            return informer.Store;
        }
    }

    /// <summary>Passes every call through, but runs <c>before</c> ahead of each status patch (it may throw).</summary>
    private sealed class BeforeStatusPatch<T>(IResourceClient<T> inner, Func<Task> before) : IResourceClient<T>
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        public string Resource => inner.Resource;

        public Task<ResourceList<T>> ListAsync(CancellationToken cancellationToken) => inner.ListAsync(cancellationToken);

        public IAsyncEnumerable<(WatchEventType Type, T Object)> WatchAsync(string resourceVersion, int timeoutSeconds, Action<Exception> onError, CancellationToken cancellationToken) =>
            inner.WatchAsync(resourceVersion, timeoutSeconds, onError, cancellationToken);

        public Task<T?> GetAsync(ObjectKey key, CancellationToken cancellationToken) => inner.GetAsync(key, cancellationToken);

        public Task<T> PatchAsync(ObjectKey key, V1Patch patch, CancellationToken cancellationToken) => inner.PatchAsync(key, patch, cancellationToken);

        public async Task<T> PatchStatusAsync(ObjectKey key, V1Patch patch, CancellationToken cancellationToken)
        {
            await before();
            return await inner.PatchStatusAsync(key, patch, cancellationToken);
        }
    }

    private sealed class NoEvents : IEventRecorder
    {
        public static NoEvents Instance { get; } = new();

        public Task RecordAsync(IKubernetesObject<V1ObjectMeta> regarding, string type, string reason, string action, string? note, CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
