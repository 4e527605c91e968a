using System.Runtime.InteropServices;
using k8s;
using Microsoft.Extensions.Logging;
using Rpoi.Escrow.Client;
using Rpoi.Kube.Election;
using Rpoi.Kube.Hosting;
using Rpoi.Kube.Observability;
using Rpoi.Operator.Discovery;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Operator.PhaseOne.Grant;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Operator.PhaseTwo;
using Rpoi.Protocol.Keys;

namespace Rpoi.Operator.Hosting;

/// <summary>
/// The operator process: reads <see cref="OperatorSettings"/>, loads β's key, connects to the cluster and to π, and runs
/// the Rpoi.Kube host with the phase I Lease controller and phase II's rating and settlement controllers (and leader
/// election, metrics and probes) until stopped.
/// </summary>
public static class OperatorApp
{
    /// <summary>Exit code for bad settings (nothing was started).</summary>
    public const int BadSettings = 2;

    /// <summary>Exit code when start-up failed after the settings were valid (key file, π, cluster).</summary>
    public const int StartFailed = 1;

    // How often discovery retries fetching π's identity when π was down at start (the publisher's own refresh period).
    private static readonly TimeSpan DiscoveryRetry = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Runs until SIGTERM/SIGINT or <paramref name="cancellationToken"/>; returns the process exit code.
    /// <paramref name="started"/> is called once the host runs (tests read the metrics URL from it).
    /// </summary>
    public static async Task<int> RunAsync(string[] args, CancellationToken cancellationToken = default, Action<OperatorRuntime>? started = null)
    {
        var (settings, errors) = OperatorSettings.Load(args);
        if (settings is null)
        {
            foreach (var error in errors)
            {
                await Console.Error.WriteLineAsync($"rpoi-operator: {error}").ConfigureAwait(false);
            }

            return BadSettings;
        }

        using var loggerFactory = OperatorLogging.CreateFactory(settings.JsonLogs);
        var log = loggerFactory.CreateLogger("Rpoi.Operator");
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            stop.Cancel();
        });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c =>
        {
            c.Cancel = true;
            stop.Cancel();
        });

        var loaded = KeyFile.Load(settings.LeaserKeyFile);
        if (!loaded.TryGetValue(out var keyFile))
        {
            log.LogCritical("--leaser-key-file {Path}: {Message}", settings.LeaserKeyFile, loaded.Message);
            return StartFailed;
        }

        foreach (var warning in keyFile.Warnings)
        {
            log.LogWarning("--leaser-key-file {Path}: {Warning}", settings.LeaserKeyFile, warning);
        }

        var leaser = keyFile.Keys;
        var kubeConfig = settings.Kubeconfig is not null
            ? Kubeconfig.Load(settings.Kubeconfig)
            : KubernetesClientConfiguration.IsInCluster() ? KubernetesClientConfiguration.InClusterConfig() : KubernetesClientConfiguration.BuildDefaultConfig();
        using var client = new Kubernetes(kubeConfig);
        using var http = new HttpClient();
        var escrow = new EscrowClient(http, new EscrowClientOptions { BaseAddress = settings.EscrowUrl!, Credentials = EscrowCredentials.Leaser(leaser) });

        string escrowAddress;
        EscrowIdentity? escrowIdentity = null;
        try
        {
            var identity = await escrow.GetIdentityAsync(stop.Token).ConfigureAwait(false);
            escrowIdentity = identity;
            if (settings.EscrowAddress is { } pinned && pinned != identity.Address)
            {
                log.LogCritical("--escrow-address is {Pinned} but the escrow at {Url} is {Actual}; point --escrow-url at the right escrow or fix the address", pinned, settings.EscrowUrl, identity.Address);
                return StartFailed;
            }

            escrowAddress = identity.Address;
        }
        catch (Exception e) when (e is EscrowException or HttpRequestException && settings.EscrowAddress is not null)
        {
            // π may be down at start; with a pinned address the operator starts and pledges retry later.
            log.LogWarning("escrow at {Url} unreachable at start ({Message}); using --escrow-address {Address}", settings.EscrowUrl, e.Message, settings.EscrowAddress);
            escrowAddress = settings.EscrowAddress!;
        }
        catch (Exception e) when (e is EscrowException or HttpRequestException)
        {
            log.LogCritical("escrow at {Url} unreachable ({Message}); start it, or pass --escrow-address to start without it", settings.EscrowUrl, e.Message);
            return StartFailed;
        }

        var options = new PhaseOneOptions
        {
            Leaser = leaser,
            EscrowAddress = escrowAddress,
            Cluster = new ClusterEndpointOptions(
                settings.ClusterServer,
                settings.ClusterCaFile is null ? null : Convert.ToBase64String(await File.ReadAllBytesAsync(settings.ClusterCaFile, stop.Token).ConfigureAwait(false))),
            DefaultRatingWindow = settings.RatingWindow,
            PodImage = settings.PodImage ?? PodPlacement.DefaultImage,
            LeaseUserClusterRole = settings.LeaseUserClusterRole,
        };

        var builder = new OperatorHostBuilder(client, Prometheus.Metrics.NewCustomRegistry(), TimeProvider.System, loggerFactory)
        {
            // Lists in pages of 100, not client-go's 500: a page of whole GKE Nodes is read before it is trimmed, and under
            // the chart's heap limit that page is the peak of a restart (BENCHMARKS.md "Operator memory").
            ListPageSize = 100,
        };
        var phaseOne = PhaseOneController.Register(builder, options, escrow, workers: settings.Workers);
        // Phase II (ratings, settlement) runs in the same host; the phase I finalizer hands returned Leases to it.
        var phaseTwo = PhaseTwoController.Register(
            builder,
            new PhaseTwoOptions { Leaser = leaser, EscrowAddress = escrowAddress, DefaultRatingWindow = settings.RatingWindow },
            escrow,
            finalizingController: phaseOne.Controller);
        phaseOne.Reconciler.SettlementFinalizer = new SettlementFinalizer(phaseTwo.Step);
        if (settings.LeaderElection)
        {
            var lease = settings.LeaderElectionLeaseDuration;
            builder.WithLeaderElection(new LeaderElectionOptions
            {
                LeaseName = "rpoi-operator-leader",
                Namespace = settings.Namespace,
                LeaseDuration = lease,
                RenewDeadline = lease * 2 / 3,
                RetryPeriod = lease * 2 / 15,
            });
        }

        var host = builder.Build();
        Microsoft.AspNetCore.Builder.WebApplication? endpoints = null;
        if (settings.MetricsPort >= 0)
        {
            endpoints = await OperatorEndpoints.StartAsync(host.Metrics.Registry, () => host.IsReady, $"http://{settings.MetricsAddress}:{settings.MetricsPort}", stop.Token).ConfigureAwait(false);
        }

        // Discovery runs on every replica, not only the leader: it reads capacity from the API server (not from the
        // leader's cache), writes the ConfigMap only when its content changes, and a 409 between replicas just
        // converges on the next tick, so it stays published across leader fail-overs.
        var discovery = Task.Run(
            () => RunDiscoveryAsync(client, phaseOne.Tpus, escrow, escrowIdentity, leaser, escrowAddress, settings, loggerFactory, stop.Token),
            CancellationToken.None);

        log.LogInformation("rpoi-operator: leaser {Leaser} (key {KeyId}), escrow {Escrow}, cluster server for renters {Server}, leader election {Election}",
            leaser.Identity.Address, leaser.Identity.KeyId, escrowAddress, settings.ClusterServer, settings.LeaderElection ? "on" : "off");
        started?.Invoke(new OperatorRuntime(host, phaseOne, endpoints?.Urls.FirstOrDefault()));
        try
        {
            await host.RunAsync(stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await discovery.ConfigureAwait(false);
            if (endpoints is not null)
            {
                await endpoints.StopAsync(CancellationToken.None).ConfigureAwait(false);
                await endpoints.DisposeAsync().ConfigureAwait(false);
            }
        }

        log.LogInformation("rpoi-operator stopped");
        return 0;
    }

    /// <summary>
    /// Publishes the discovery ConfigMap (π's identity and public URL, β's identity, free capacity) until stopped.
    /// When π was unreachable at start its identity is fetched first, retried every refresh interval.
    /// </summary>
    private static async Task RunDiscoveryAsync(
        IKubernetes client, ITpuProvider tpus, EscrowClient escrow, EscrowIdentity? known, PartyKeyPair leaser, string escrowAddress,
        OperatorSettings settings, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var log = loggerFactory.CreateLogger<DiscoveryPublisher>();
        var refresh = DiscoveryRetry;
        PartyIdentity? escrowIdentity = null;
        while (escrowIdentity is null && !cancellationToken.IsCancellationRequested)
        {
            try
            {
                var id = known ?? await escrow.GetIdentityAsync(cancellationToken).ConfigureAwait(false);
                known = null;
                var parsed = PartyIdentity.FromBase64(id.SigningPublicKey, id.EncryptionPublicKey, PartyRole.Escrow);
                if (parsed.TryGetValue(out var identity) && identity.Address == escrowAddress)
                {
                    escrowIdentity = identity;
                    break;
                }

                log.LogError("discovery not published: the escrow at {Url} is {Actual}, not {Expected} ({Message}); retrying in {Interval}",
                    settings.EscrowUrl, id.Address, escrowAddress, parsed.Message, refresh);
            }
            catch (Exception e) when (e is EscrowException or HttpRequestException)
            {
                log.LogWarning("discovery not published yet: escrow at {Url} unreachable ({Message}); retrying in {Interval}", settings.EscrowUrl, e.Message, refresh);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }

            try
            {
                await Task.Delay(refresh, TimeProvider.System, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        if (escrowIdentity is null)
        {
            return;
        }

        var options = new DiscoveryOptions(leaser.Identity, escrowIdentity, settings.EscrowPublicUrl ?? settings.EscrowUrl!, settings.Namespace);
        try
        {
            await new DiscoveryPublisher(client, tpus, options, TimeProvider.System, log).RunAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped in the middle of a round.
        }
    }
}

/// <summary>What a running operator exposes to its caller.</summary>
/// <param name="Host">The Rpoi.Kube host.</param>
/// <param name="PhaseOne">The phase I controller.</param>
/// <param name="MetricsUrl">The bound metrics URL, or null when the endpoint is off.</param>
public sealed record OperatorRuntime(OperatorHost Host, PhaseOneController PhaseOne, string? MetricsUrl);
