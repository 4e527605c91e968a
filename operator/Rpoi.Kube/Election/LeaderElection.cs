using k8s;
using k8s.LeaderElection;
using k8s.LeaderElection.ResourceLock;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Rpoi.Kube.Election;

/// <summary>Leader election settings (client-go defaults: 15 s lease, 10 s renew deadline, 2 s retry).</summary>
public sealed record LeaderElectionOptions
{
    /// <summary>Name of the coordination.k8s.io Lease used as the lock.</summary>
    public required string LeaseName { get; init; }

    /// <summary>Namespace of the Lease.</summary>
    public required string Namespace { get; init; }

    /// <summary>This replica's identity (default: host name plus a random suffix).</summary>
    public string Identity { get; init; } = $"{Environment.MachineName}_{Guid.NewGuid():N}";

    /// <summary>How long a lease is valid without renewal; others wait this long before taking over.</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>How long the leader keeps trying to renew before it gives up leadership.</summary>
    public TimeSpan RenewDeadline { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Pause between acquire/renew attempts.</summary>
    public TimeSpan RetryPeriod { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Throws when the timings cannot work (client-go's checks).</summary>
    public void Validate()
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(LeaseName, nameof(LeaseName));
        ArgumentException.ThrowIfNullOrWhiteSpace(Namespace, nameof(Namespace));
        ArgumentException.ThrowIfNullOrWhiteSpace(Identity, nameof(Identity));
        if (LeaseDuration < TimeSpan.FromSeconds(1))
        {
            throw new ArgumentException("LeaseDuration must be at least 1 s (the Lease stores whole seconds).", nameof(LeaseDuration));
        }

        if (LeaseDuration <= RenewDeadline)
        {
            throw new ArgumentException("LeaseDuration must be greater than RenewDeadline.", nameof(LeaseDuration));
        }

        if (RenewDeadline <= RetryPeriod || RetryPeriod <= TimeSpan.Zero)
        {
            throw new ArgumentException("RenewDeadline must be greater than RetryPeriod, and RetryPeriod positive.", nameof(RenewDeadline));
        }
    }
}

/// <summary>
/// Runs work only while this replica holds the leader Lease, using KubernetesClient's
/// <see cref="LeaderElector"/> with a <see cref="LeaseLock"/>. When leadership is lost the work's token
/// is cancelled and awaited (in-flight reconciles finish); on shutdown the Lease is released so another
/// replica takes over at once instead of after the lease duration.
/// </summary>
public sealed class LeaderElectionRunner
{
    private readonly IKubernetes _client;
    private readonly LeaderElectionOptions _options;
    private readonly ILogger _log;
    private volatile bool _leading;

    /// <summary>Creates the runner.</summary>
    public LeaderElectionRunner(IKubernetes client, LeaderElectionOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _client = client;
        _options = options;
        _log = logger ?? NullLogger.Instance;
    }

    /// <summary>This replica's identity.</summary>
    public string Identity => _options.Identity;

    /// <summary>True while this replica leads.</summary>
    public bool IsLeader => _leading;

    /// <summary>
    /// Campaigns for leadership until <paramref name="cancellationToken"/> is cancelled, running
    /// <paramref name="whileLeading"/> during each term. A lost term is followed by a new campaign.
    /// </summary>
    public async Task RunAsync(Func<CancellationToken, Task> whileLeading, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(whileLeading);
        while (!cancellationToken.IsCancellationRequested)
        {
            var leaseLock = new LeaseLock(_client, _options.Namespace, _options.LeaseName, _options.Identity);
            using var elector = new LeaderElector(new LeaderElectionConfig(leaseLock)
            {
                LeaseDuration = _options.LeaseDuration,
                RenewDeadline = _options.RenewDeadline,
                RetryPeriod = _options.RetryPeriod,
            });
            using var term = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            Task? work = null;
            elector.OnStartedLeading += () =>
            {
                _leading = true;
                _log.LogInformation("{Identity} became leader of {Lease}", _options.Identity, _options.LeaseName);
                work = Task.Run(() => whileLeading(term.Token), CancellationToken.None);
            };
            elector.OnStoppedLeading += () =>
            {
                _leading = false;
                term.Cancel();
            };
            elector.OnError += e => _log.LogDebug(e, "Leader election of {Lease} hit an error", _options.LeaseName);

            try
            {
                await elector.RunUntilLeadershipLostAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
            }
#pragma warning disable CA1031 // A failed term is followed by a new campaign.
            catch (Exception e)
#pragma warning restore CA1031
            {
                _log.LogWarning(e, "Leader election of {Lease} failed; campaigning again", _options.LeaseName);
            }

            _leading = false;
            await term.CancelAsync().ConfigureAwait(false);
            if (work is not null)
            {
                try
                {
                    await work.ConfigureAwait(false);
                }
#pragma warning disable CA1031 // The work's failure ends the term; it must not skip the release below.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    _log.LogError(e, "Work of leader {Identity} failed", _options.Identity);
                }

                _log.LogInformation("{Identity} stopped leading {Lease}", _options.Identity, _options.LeaseName);
                await ReleaseAsync(leaseLock).ConfigureAwait(false);
            }
        }
    }

    private async Task ReleaseAsync(LeaseLock leaseLock)
    {
        try
        {
            using var timeout = new CancellationTokenSource(_options.RenewDeadline);
            var record = await leaseLock.GetAsync(timeout.Token).ConfigureAwait(false);
            if (record?.HolderIdentity != _options.Identity)
            {
                return;
            }

            // client-go's ReleaseOnCancel: an empty holder with a 1 s lease lets the next replica acquire at once.
            var now = DateTime.UtcNow;
            await leaseLock.UpdateAsync(
                new LeaderElectionRecord
                {
                    HolderIdentity = string.Empty,
                    LeaseDurationSeconds = 1,
                    AcquireTime = now,
                    RenewTime = now,
                    LeaderTransitions = record.LeaderTransitions,
                },
                timeout.Token).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // Release is best effort: the lease also expires by itself.
        catch (Exception e)
#pragma warning restore CA1031
        {
            _log.LogWarning(e, "Could not release lease {Lease}", _options.LeaseName);
        }
    }
}
