using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Rpoi.Escrow;
using Rpoi.Escrow.Client;
using Rpoi.Escrow.Storage;
using Rpoi.Kube.ApiServer;
using Rpoi.Kube.Controllers;
using Rpoi.Kube.Hosting;
using Rpoi.Kube.Informers;
using Rpoi.Operator.Entities;
using Rpoi.Operator.Hosting;
using Rpoi.Operator.PhaseOne.Grant;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Operator.PhaseTwo;
using Rpoi.Operator.Tests.Support;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;
using RatingResource = Rpoi.Operator.Entities.Rating;

namespace Rpoi.Operator.Tests.PhaseTwo;

/// <summary>A returned lease as phase I leaves it: its signed request, H, and the digest of the σ it received.</summary>
public sealed record ReturnedLease(string Name, Signed<LeaseRequest> Request, TransactionHash H, string GrantDigest, long Deposit, long Rent);

/// <summary>
/// One phase II test's world: the in-memory API server with the RPOI CRDs, the real escrow service π on SQLite
/// behind Kestrel on loopback, the three parties, one fake clock shared by all of them, and the operator (phase II
/// controllers, optionally phase I too), which can be stopped and started to test restarts.
/// </summary>
public sealed class PhaseTwoEnvironment : IAsyncDisposable
{
    /// <summary>The namespace tests put leases and ratings in.</summary>
    public const string Namespace = "team-a";

    /// <summary>The renter's starting balance on π.</summary>
    public const long RenterFunds = 100_000_000;

    private const string AdminToken = "phase-two-admin";

    private readonly OperatorReplicas<OperatorControllers> replicas;
    private readonly WebApplication escrowApp;
    private readonly IEscrowStore store;
    private readonly string databasePath;
    private readonly HttpClient http = new();

    private PhaseTwoEnvironment(KubeApiServer server, Kubernetes client, FakeTimeProvider time, TestParties parties, WebApplication escrowApp, IEscrowStore store, string databasePath, Uri escrowAddress)
    {
        Server = server;
        Client = client;
        Time = time;
        Parties = parties;
        replicas = new OperatorReplicas<OperatorControllers>(server, time);
        this.escrowApp = escrowApp;
        this.store = store;
        this.databasePath = databasePath;
        EscrowAddress = escrowAddress;
        Admin = EscrowClientFor(EscrowCredentials.Admin(AdminToken));
        Escrow = EscrowClientFor(EscrowCredentials.Leaser(parties.Leaser));
        Anyone = EscrowClientFor(EscrowCredentials.None);
    }

    /// <summary>The API server.</summary>
    public KubeApiServer Server { get; }

    /// <summary>A client for the test's own reads and writes.</summary>
    public Kubernetes Client { get; }

    /// <summary>The clock of the API server, π and the operator.</summary>
    public FakeTimeProvider Time { get; }

    /// <summary>R, β, π.</summary>
    public TestParties Parties { get; }

    /// <summary>π's base address.</summary>
    public Uri EscrowAddress { get; }

    /// <summary>π as the admin (funding, adjudication).</summary>
    public IEscrowClient Admin { get; }

    /// <summary>π as the operator β sees it.</summary>
    public IEscrowClient Escrow { get; }

    /// <summary>π without credentials (reads, the renter's own claim).</summary>
    public IEscrowClient Anyone { get; }

    /// <summary>The running operator's phase II, if any.</summary>
    public PhaseTwoController? Operator => replicas.Running.LastOrDefault()?.PhaseTwo;

    /// <summary>The running operator's phase I controller, when it was started with phase I.</summary>
    public PhaseOneController? PhaseOneOperator => replicas.Running.LastOrDefault()?.PhaseOne;

    /// <summary>The running operator's test-only finalizer controller, when it was started with the settlement finalizer.</summary>
    public Controller<Lease>? FinalizingController => replicas.Running.LastOrDefault()?.Finalizing;

    /// <summary>β's phase II options.</summary>
    public PhaseTwoOptions Options => new()
    {
        Leaser = Parties.Leaser,
        EscrowAddress = Parties.Escrow.Identity.Address,
        DefaultRatingWindow = TimeSpan.FromHours(72),
        RefusedRetryDelay = TimeSpan.FromMinutes(5),
    };

    /// <summary>
    /// Starts the API server with the CRDs and the test namespace, and π on a fresh SQLite file (or, with
    /// <paramref name="postgres"/>, a fresh schema of the PostgreSQL in <c>RPOI_TEST_POSTGRES</c>), and funds the renter.
    /// </summary>
    public static async Task<PhaseTwoEnvironment> StartAsync(bool postgres = false)
    {
        var time = new FakeTimeProvider(new DateTimeOffset(DateTimeOffset.UtcNow.UtcTicks - (DateTimeOffset.UtcNow.UtcTicks % TimeSpan.TicksPerSecond), TimeSpan.Zero));
        var server = await KubeApiServer.StartAsync(new KubeApiServerOptions { TimeProvider = time, BookmarkInterval = TimeSpan.FromSeconds(5) });
        var client = new Kubernetes(new KubernetesClientConfiguration { Host = server.Url, AccessToken = server.Options.Token });
        foreach (var file in Directory.GetFiles(RepoPaths.Crds, "rpoi.io_*.yaml"))
        {
            var crd = KubernetesYaml.Deserialize<V1CustomResourceDefinition>(await File.ReadAllTextAsync(file));
            await client.ApiextensionsV1.CreateCustomResourceDefinitionAsync(crd);
        }

        await client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = Namespace } });

        var parties = new TestParties();
        var databasePath = Path.Combine(Path.GetTempPath(), $"rpoi-phase-two-{Guid.NewGuid():N}.db");
        IEscrowStore escrowStore = postgres ? new PostgresEscrowStore(PostgresConnection()) : new SqliteEscrowStore(databasePath);
        await escrowStore.InitializeAsync();
        var parts = new EscrowHostParts(escrowStore, parties.Escrow, time, [parties.Leaser.Identity], Encoding.UTF8.GetBytes(AdminToken));
        var app = EscrowHost.Build(new EscrowOptions { RatingWindow = TimeSpan.FromHours(72), ClaimGrace = TimeSpan.FromHours(24) }, parts, "http://127.0.0.1:0");
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        var env = new PhaseTwoEnvironment(server, client, time, parties, app, escrowStore, databasePath, new Uri(address + "/"));
        await env.Admin.DepositAsync(new DepositRequest("fund-renter", parties.Renter.Identity.Address, Uusd(RenterFunds)));
        return env;
    }

    private static string PostgresConnection()
    {
        // Like the escrow suite: unset fails with the fix rather than passing quietly on SQLite alone.
        var baseConnection = Environment.GetEnvironmentVariable("RPOI_TEST_POSTGRES");
        if (string.IsNullOrWhiteSpace(baseConnection))
        {
            throw new InvalidOperationException("RPOI_TEST_POSTGRES is not set, so the PostgreSQL variant cannot run; run 'bash .ci/install-tools && source .ci/env' (it starts PostgreSQL and sets RPOI_TEST_POSTGRES)");
        }

        return new Npgsql.NpgsqlConnectionStringBuilder(baseConnection) { SearchPath = "operator_test_" + Guid.NewGuid().ToString("N"), Pooling = true, MaxPoolSize = 10 }.ToString();
    }

    /// <summary>A client of π with <paramref name="credentials"/> on the shared clock (one attempt: tests drive retries).</summary>
    public IEscrowClient EscrowClientFor(EscrowCredentials credentials) =>
        new EscrowClient(http, new EscrowClientOptions { BaseAddress = EscrowAddress, Credentials = credentials, Time = Time, MaxAttempts = 1 });

    /// <summary>
    /// Starts an operator replica in the background: phase II, and phase I too when <paramref name="withPhaseOne"/>.
    /// <paramref name="escrow"/> replaces β's client of π (to inject a crash). <paramref name="withSettlementFinalizer"/>
    /// runs <see cref="SettlementFinalizer"/> as the only Lease finalizer (without phase I); with phase I, the phase I
    /// finalizer hands off to it as the operator host wires it.
    /// </summary>
    public async Task<PhaseTwoController> StartOperatorAsync(IEscrowClient? escrow = null, bool withPhaseOne = false, bool withSettlementFinalizer = false)
    {
        var pi = escrow ?? Escrow;
        var started = await replicas.StartAsync(
            (operatorClient, builder) => Register(operatorClient, builder, pi, withPhaseOne, withSettlementFinalizer),
            c => c.PhaseTwo.RatingController.Queue is not null && c.PhaseTwo.SettlementController.Queue is not null && (c.PhaseOne is null || c.PhaseOne.Controller.Queue is not null),
            "the operator's informers synced and its controllers started");
        return started.PhaseTwo;
    }

    /// <summary>The finalizer name the test-only finalizer controller uses.</summary>
    public const string TestFinalizer = "rpoi.io/test-settlement";

    /// <summary>Stops every operator replica (a crash or a rollout, from the cluster's point of view).</summary>
    public Task StopOperatorAsync() => replicas.StopAllAsync();

    /// <summary>
    /// Creates a Lease in the state phase I leaves it after the return: request signed now, pledge held on π (ρ + ω
    /// debited from R), nodes released, phase AwaitingRatings with the rating deadline set, and the digest of the σ it
    /// received in <c>status.grantDigest</c> (or, with <paramref name="legacyDigest"/>, only in the
    /// <c>rpoi.io/grant-digest</c> annotation, as operator versions before status.grantDigest left it).
    /// </summary>
    public async Task<ReturnedLease> ReturnedLeaseAsync(string name, TimeSpan? ratingWindow = null, long deposit = 1_000_000, long rent = 500_000, string? extraFinalizer = null, bool pledge = true, bool everActive = true, bool legacyDigest = false)
    {
        var window = ratingWindow ?? TimeSpan.FromHours(1);
        var builder = LeaseBuilder.For(Parties.Renter).In(Namespace, name).To(Parties.Leaser, Parties.Escrow).SignedAt(Time.GetUtcNow())
            .Amounts(deposit.ToString(CultureInfo.InvariantCulture), rent.ToString(CultureInfo.InvariantCulture)).RatingWindow(window);
        var request = builder.BuildRequest();
        var h = RpoiEquations.TransactionHashOf(request);
        var digest = RpoiEquations.GrantDigest(GrantFor(name));
        var lease = builder.Build(request);
        // The legacy annotation is set at creation rather than added later, so the operator's cache can never show a
        // rating a version of the Lease without it.
        if (everActive && legacyDigest)
        {
            lease.Metadata.Annotations = new Dictionary<string, string> { [LeaseReconciler.GrantDigestAnnotation] = digest };
        }

        if (extraFinalizer is not null)
        {
            lease.Metadata.Finalizers = [extraFinalizer];
        }

        await Client.CustomObjects.CreateNamespacedCustomObjectAsync(lease, Lease.Group, Lease.Version, Namespace, Lease.Plural);
        if (pledge)
        {
            Assert.Equal("Held", (await Escrow.PledgeAsync(request)).State);
        }

        var now = Time.GetUtcNow();
        var status = new LeaseStatus
        {
            Phase = LeasePhase.AwaitingRatings,
            TransactionHash = h.Hex,
            Renter = Parties.Renter.Identity.Address,
            Chips = request.Payload.Chips,
            Accelerator = request.Payload.Accelerator,
            Topology = request.Payload.Topology,
            ActiveSince = everActive ? (now - TimeSpan.FromHours(1)).UtcDateTime : null,
            ExpiresAt = everActive ? now.UtcDateTime : null,
            // A lease returned before it was ever Active has no σ, so no digest.
            GrantDigest = everActive && !legacyDigest ? digest : null,
            ReturnedAt = now.UtcDateTime,
            RatingDeadline = (now + window).UtcDateTime,
            Conditions =
            [
                new V1Condition { Type = LeaseConditions.Verified, Status = "True", Reason = LeaseConditions.Succeeded, Message = "verified", LastTransitionTime = now.UtcDateTime },
                new V1Condition { Type = LeaseConditions.Pledged, Status = "True", Reason = LeaseConditions.Succeeded, Message = "held", LastTransitionTime = now.UtcDateTime },
            ],
        };
        var patch = new JsonObject { ["status"] = JsonNode.Parse(KubernetesJson.Serialize(status)) };
        await Client.CustomObjects.PatchNamespacedCustomObjectStatusAsync(new V1Patch(patch.ToJsonString(), V1Patch.PatchType.MergePatch), Lease.Group, Lease.Version, Namespace, Lease.Plural, name);
        return new ReturnedLease(name, request, h, digest, deposit, rent);
    }

    /// <summary>The σ a returned test lease "received" (its digest is what R rates against).</summary>
    public static AccessGrant GrantFor(string leaseName)
    {
        using var template = JsonDocument.Parse("{\"spec\":{}}");
        return new AccessGrant([$"{leaseName}-node-0"], "pool-a", LeaseBuilder.V5e, "2x2", new Dictionary<string, string> { ["cloud.google.com/gke-nodepool"] = "pool-a" },
            new Toleration("rpoi.io/lease", "Equal", Namespace, "NoSchedule"), "apiVersion: v1\nkind: Config\n", template.RootElement.Clone(),
            DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch.AddHours(1));
    }

    /// <summary>R's signed rating E(m'') of <paramref name="lease"/> (eq. 18), as <c>kubectl rpoi rate</c> makes it.</summary>
    public Signed<RenterRating> SignRenterRating(ReturnedLease lease, int score, string comment = "", string? digest = null, PartyKeyPair? signer = null) =>
        RpoiEquations.SignRenterRating(lease.Request, digest ?? lease.GrantDigest, new Protocol.Messages.Rating(score, comment, Time.GetUtcNow()), signer ?? Parties.Renter);

    /// <summary>A renter Rating resource carrying <paramref name="signed"/>; <paramref name="specScore"/> defaults to the signed score.</summary>
    public static RatingResource RenterRatingResource(string name, string leaseName, Signed<RenterRating> signed, long? specScore = null, Action<JsonObject>? tamper = null)
    {
        ArgumentNullException.ThrowIfNull(signed);
        var envelope = JsonNode.Parse(signed.ToJson())!.AsObject();
        var payload = (JsonObject)envelope["payload"]!.DeepClone();
        tamper?.Invoke(payload);
        return new RatingResource
        {
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = Namespace },
            Spec = new RatingSpec
            {
                LeaseRef = new LeaseReference { Name = leaseName },
                Rater = Rater.Renter,
                Score = specScore ?? signed.Payload.Rating.Score,
                Comment = signed.Payload.Rating.Comment.Length == 0 ? null : signed.Payload.Rating.Comment,
                SignedRating = new SignedRatingMessage
                {
                    Payload = payload,
                    Signer = envelope["signer"]!.GetValue<string>(),
                    Sig = envelope["sig"]!.GetValue<string>(),
                },
            },
        };
    }

    /// <summary>A leaser Rating resource (score and comment from the platform team; the operator signs Ra_β).</summary>
    public static RatingResource LeaserRatingResource(string name, string leaseName, int score, string? comment = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = Namespace },
        Spec = new RatingSpec { LeaseRef = new LeaseReference { Name = leaseName }, Rater = Rater.Leaser, Score = score, Comment = comment },
    };

    /// <summary>Creates a Rating.</summary>
    public async Task ApplyAsync(RatingResource rating)
    {
        ArgumentNullException.ThrowIfNull(rating);
        await Client.CustomObjects.CreateNamespacedCustomObjectAsync(rating, Lease.Group, Lease.Version, Namespace, RatingResource.Plural);
    }

    /// <summary>Reads a Rating, or null.</summary>
    public async Task<RatingResource?> GetRatingAsync(string name)
    {
        try
        {
            return await Client.CustomObjects.GetNamespacedCustomObjectAsync<RatingResource>(Lease.Group, Lease.Version, Namespace, RatingResource.Plural, name);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Waits until the Rating is decided (accepted or rejected) and returns it.</summary>
    public Task<RatingResource> WaitForDecisionAsync(string name) =>
        Eventually.ReturnsAsync(() => GetRatingAsync(name), r => r.Status?.Accepted is not null, $"Rating {name} is decided", Time);

    /// <summary>Reads a Lease, or null.</summary>
    public async Task<Lease?> GetLeaseAsync(string name)
    {
        try
        {
            return await Client.CustomObjects.GetNamespacedCustomObjectAsync<Lease>(Lease.Group, Lease.Version, Namespace, Lease.Plural, name);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Waits until the Lease reaches <paramref name="phase"/> and returns it.</summary>
    public Task<Lease> WaitForPhaseAsync(string name, LeasePhase phase) =>
        Eventually.ReturnsAsync(() => GetLeaseAsync(name), l => l.Status?.Phase == phase, $"Lease {name} reaches phase {phase}", Time);

    /// <summary>Free uusd balance of an address on π.</summary>
    public async Task<long> BalanceAsync(string address)
    {
        var account = await Anyone.GetAccountAsync(address);
        var uusd = account.Balances.SingleOrDefault(b => b.Denom == "uusd");
        return uusd is null ? 0 : long.Parse(uusd.Amount, CultureInfo.InvariantCulture);
    }

    /// <summary>What π withholds under H (0 when nothing).</summary>
    public async Task<long> WithheldAsync(TransactionHash h)
    {
        var withheld = await Anyone.GetWithheldAsync();
        return withheld.Where(w => w.H == h.Hex && w.State == "Withheld").Sum(w => long.Parse(w.Amount.Amount, CultureInfo.InvariantCulture));
    }

    /// <summary>π's audit: the chain is intact and balances + held + withheld = deposits; returns the audit.</summary>
    public async Task<LedgerAudit> AuditAsync()
    {
        var audit = await Anyone.VerifyLedgerAsync();
        Assert.True(audit.Ok, string.Join("; ", audit.Problems));
        var uusd = Assert.Single(audit.Totals, t => t.Denom == "uusd");
        Assert.Equal(
            long.Parse(uusd.Deposits, CultureInfo.InvariantCulture),
            long.Parse(uusd.Balances, CultureInfo.InvariantCulture) + long.Parse(uusd.Held, CultureInfo.InvariantCulture) + long.Parse(uusd.Withheld, CultureInfo.InvariantCulture));
        return audit;
    }

    /// <summary>Every ledger entry recorded under H.</summary>
    public async Task<IReadOnlyList<LedgerEntryView>> LedgerEntriesAsync(TransactionHash h)
    {
        var entries = new List<LedgerEntryView>();
        long after = 0;
        while (true)
        {
            var page = await Anyone.GetLedgerAsync(after, 100);
            entries.AddRange(page.Entries.Where(e => e.H == h.Hex));
            if (page.Next is not { } next)
            {
                return entries;
            }

            after = next;
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await StopOperatorAsync();
        Client.Dispose();
        await Server.DisposeAsync();
        http.Dispose();
        await escrowApp.StopAsync();
        await escrowApp.DisposeAsync();
        await store.DisposeAsync();
        foreach (var suffix in new[] { string.Empty, "-wal", "-shm" })
        {
            File.Delete(databasePath + suffix);
        }
    }

    /// <summary>Registers one replica's controllers as <see cref="StartOperatorAsync"/> describes.</summary>
    private OperatorControllers Register(Kubernetes operatorClient, OperatorHostBuilder builder, IEscrowClient pi, bool withPhaseOne, bool withSettlementFinalizer)
    {
        PhaseOneController? phaseOne = null;
        if (withPhaseOne)
        {
            phaseOne = PhaseOneController.Register(builder, new PhaseOneOptions
            {
                Leaser = Parties.Leaser,
                EscrowAddress = Parties.Escrow.Identity.Address,
                Cluster = new ClusterEndpointOptions(Server.Url, null),
            }, pi);
        }

        // Stands in for the phase I finalizer's hand-off: a Lease controller whose only job is the settlement finalizer.
        // Its informer is the shared Lease cache, so it gets the cache's trim first, as phase I gives it.
        builder.TransformCached<Lease>(EntityCache.Trim);
        var finalizing = withSettlementFinalizer
            ? builder.AddController("test-lease-finalizer", ResourceClients.Custom<Lease>(operatorClient, PhaseTwoController.LeaseResource), new IgnoreLeases())
            : null;
        var phaseTwo = PhaseTwoController.Register(builder, Options, pi, finalizingController: finalizing ?? phaseOne?.Controller);
        finalizing?.AddFinalizer(TestFinalizer, new SettlementFinalizer(phaseTwo.Step));
        if (phaseOne is not null)
        {
            // As the operator host wires it: the phase I finalizer hands returned Leases to phase II.
            phaseOne.Reconciler.SettlementFinalizer = new SettlementFinalizer(phaseTwo.Step);
        }

        return new OperatorControllers(phaseTwo, phaseOne, finalizing);
    }

    private static EscrowAmount Uusd(long amount) => new(amount.ToString(CultureInfo.InvariantCulture), "uusd");

    /// <summary>What one operator replica runs: phase II, and phase I or the test finalizer controller when asked for.</summary>
    private sealed record OperatorControllers(PhaseTwoController PhaseTwo, PhaseOneController? PhaseOne, Controller<Lease>? Finalizing);

    /// <summary>A reconciler that does nothing: the test finalizer controller only finalizes.</summary>
    private sealed class IgnoreLeases : IReconciler<Lease>
    {
        public Task<ReconcileResult> ReconcileAsync(Lease entity, CancellationToken cancellationToken) => Task.FromResult(ReconcileResult.Done);
    }
}
