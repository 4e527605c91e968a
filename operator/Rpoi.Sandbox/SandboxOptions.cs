namespace Rpoi.Sandbox;

/// <summary>How to run the local sandbox.</summary>
public sealed record SandboxOptions
{
    /// <summary>Where keys, the kubeconfig, π's SQLite ledger, the API objects and the state file live (default <c>./.rpoi/sandbox</c>).</summary>
    public required string Directory { get; init; }

    /// <summary>The API server's port on 127.0.0.1 (0: any free port; the kubeconfig is rewritten at every start).</summary>
    public int ApiPort { get; init; }

    /// <summary>π's port on 127.0.0.1 (0: any free port; discovery is rewritten at every start).</summary>
    public int EscrowPort { get; init; }

    /// <summary>The clock for every part.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>The namespace the demo renter works in.</summary>
    public string RenterNamespace { get; init; } = "team-a";

    /// <summary>The namespace the operator runs in (and publishes discovery to).</summary>
    public string OperatorNamespace { get; init; } = Operator.Discovery.DiscoveryDocument.DefaultNamespace;

    /// <summary>What π credits the demo renter with, once (idempotent across restarts).</summary>
    public long RenterFunding { get; init; } = 100_000_000;

    /// <summary>The denomination of every sandbox amount.</summary>
    public string Denom { get; init; } = "uusd";

    /// <summary>How often discovery's free capacity is refreshed.</summary>
    public TimeSpan DiscoveryRefresh { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How often the API server's objects are saved to <see cref="Sandbox.SnapshotFile"/> while the sandbox runs, when
    /// something changed since the last save (crash safety; a clean stop always saves). Zero or less: only at stop.
    /// </summary>
    public TimeSpan SaveInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The simulated node pools.</summary>
    public IReadOnlyList<SimulatedNodePool> NodePools { get; init; } = SandboxNodes.DefaultPools;
}
