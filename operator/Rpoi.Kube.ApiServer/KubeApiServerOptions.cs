namespace Rpoi.Kube.ApiServer;

/// <summary>Settings of a <see cref="KubeApiServer"/>; the defaults suit tests.</summary>
public sealed record KubeApiServerOptions
{
    /// <summary>Loopback port; 0 (the default) picks a free one, see <see cref="KubeApiServer.Url"/>.</summary>
    public int Port { get; init; }

    /// <summary>Clock for timestamps, ages, bookmarks, watch timeouts and injected latency.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// How often a watch with <c>allowWatchBookmarks=true</c> gets a BOOKMARK (the real server: about a minute). Such a
    /// watch also gets one 2 s before its deadline, as on the real server.
    /// </summary>
    public TimeSpan BookmarkInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// kube-apiserver's <c>--min-request-timeout</c> (default 1800 s): a watch that sends no <c>timeoutSeconds</c> ends
    /// after a random time in [MinRequestTimeout, 2 × MinRequestTimeout] on <see cref="TimeProvider"/>, as on the real
    /// server; one that sends it ends after that many seconds. <see cref="TimeSpan.Zero"/> keeps watches without
    /// <c>timeoutSeconds</c> open until the client leaves (no real server does that).
    /// </summary>
    public TimeSpan MinRequestTimeout { get; init; } = TimeSpan.FromSeconds(1800);

    /// <summary>Events kept for watch resumption; a watch from an older resourceVersion gets 410 Gone.</summary>
    public int WatchHistorySize { get; init; } = 10_000;

    /// <summary>Events queued per watcher before a slow watcher is dropped (its stream is closed).</summary>
    public int WatchQueueCapacity { get; init; } = 1_000;

    /// <summary><c>gitVersion</c> answered on <c>/version</c> (the kubectl dispatcher picks a client near it).</summary>
    public string GitVersion { get; init; } = "v1.32.0";

    /// <summary>When true (the default), namespaced objects can only be created in an existing namespace.</summary>
    public bool RequireNamespaces { get; init; } = true;

    /// <summary>Namespaces that exist at start.</summary>
    public IReadOnlyList<string> InitialNamespaces { get; init; } = ["default", "kube-system", "kube-public", "kube-node-lease"];

    /// <summary>
    /// Authentication hook: gets the bearer token (null when none was sent) and returns false to answer 401.
    /// Null (the default) accepts every request.
    /// </summary>
    public Func<string?, bool>? Authenticate { get; init; }

    /// <summary>
    /// When true, absent fields of custom resources get their schema <c>default:</c> on create and update, as on a
    /// real API server. False (the default) keeps the earlier behaviour (no defaulting) for suites written against it.
    /// </summary>
    public bool ApplySchemaDefaults { get; init; }

    /// <summary>
    /// A snapshot written by <see cref="KubeApiServer.SaveSnapshotAsync"/> to start from: every object comes back with
    /// its uid, resourceVersion, timestamps, generation, finalizers and status, CRDs included, and resourceVersions
    /// continue from the snapshot's. <see cref="InitialNamespaces"/> missing from it are created. A missing, corrupt or
    /// foreign file fails <see cref="KubeApiServer.StartAsync"/> with a <see cref="SnapshotException"/>. Null (the
    /// default) starts empty.
    /// </summary>
    public string? RestoreFrom { get; init; }

    /// <summary>Bearer token written into kubeconfigs.</summary>
    public string Token { get; init; } = "test-token";
}
