namespace Rpoi.Chaos;

/// <summary>Where π keeps its ledger in a chaos run.</summary>
public enum ChaosStore
{
    /// <summary>A SQLite file in the run's directory.</summary>
    Sqlite,

    /// <summary>A fresh schema of the PostgreSQL in <c>RPOI_TEST_POSTGRES</c>.</summary>
    Postgres,
}

/// <summary>
/// One chaos run. The seed fixes every lease's plan (how it ends, which ratings it gets, amounts, durations) and the
/// sequence of faults and kills; the moments they hit are tied to the run's progress (leases started), not to a clock.
/// </summary>
public sealed record ChaosOptions
{
    public int Seed { get; init; } = 1;

    public int Leases { get; init; } = 100;

    /// <summary>SIGKILLs of an operator replica (each restarted at once).</summary>
    public int Kills { get; init; } = 10;

    /// <summary>SIGKILLs of π (each restarted on the same database); at least one.</summary>
    public int EscrowRestarts { get; init; } = 1;

    public ChaosStore Store { get; init; } = ChaosStore.Sqlite;

    /// <summary>Leases the renter simulator drives at once (more than the nodes hold, so some queue).</summary>
    public int Concurrency { get; init; } = 24;

    /// <summary>Single-host v5e 2x2 TPU nodes (4 chips each; every served lease takes one).</summary>
    public int Nodes { get; init; } = 12;

    /// <summary>
    /// The operator's <c>--leader-election-lease-duration</c> in seconds: how long the standby waits for a killed leader.
    /// 15 is the operator's default; the CI run uses 4 to stay within a few minutes.
    /// </summary>
    public int LeaderLeaseSeconds { get; init; } = 15;

    /// <summary>
    /// Run against the cluster of this kubeconfig instead of the in-process API test server (<c>RPOI_TEST_KUBECONFIG</c>
    /// or <c>--kubeconfig</c>): no server-side faults or watch cuts; operator kills and π restarts still apply.
    /// </summary>
    public string? Kubeconfig { get; init; }

    /// <summary>Keep π's PostgreSQL schema after a passing run (a failed run always keeps it); its name is printed.</summary>
    public bool Keep { get; init; }

    /// <summary>Inject API errors (409/429/500) and cut watches (off against a real cluster).</summary>
    public bool ApiFaults { get; init; } = true;

    /// <summary>How long one lease step (e.g. reaching Active) may take before the lease counts as stuck.</summary>
    public TimeSpan StepTimeout { get; init; } = TimeSpan.FromMinutes(4);

    /// <summary>
    /// Test hook, run after the last lease and before the end checks: breaks the world on purpose (with the harness's
    /// API client, π's admin client and the renter's address) so a test can show the checks catch it.
    /// </summary>
    public Func<k8s.IKubernetes, Rpoi.Escrow.Client.IEscrowClient, string, Task>? Sabotage { get; init; }

    /// <summary>Progress and failures go here.</summary>
    public TextWriter Log { get; init; } = TextWriter.Null;
}
