using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Rpoi.Escrow.Client;
using Rpoi.Kube.ApiServer;
using Rpoi.Kube.Hosting;
using Rpoi.Kube.Informers;
using Rpoi.Operator.Entities;
using Rpoi.Operator.Hosting;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Operator.PhaseOne.Grant;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;
using Rpoi.Tests.Shared;

namespace Rpoi.Benchmarks;

/// <summary>
/// RPOI phase I under load (issue 5): N Leases applied at once against the in-memory API server with N simulated
/// single-host v5e 2x2 TPU nodes, the operator (phase I controller on the Rpoi.Kube host) running in-process on the
/// real clock with the real π (Rpoi.Escrow on a fresh SQLite file, over HTTP; <c>--escrow memory</c> keeps the older
/// in-memory π, <see cref="InMemoryEscrow"/>). Reports create → Active latency, the operator's API
/// writes per lease by verb/resource (from a counting handler on the operator's own client, because the server's
/// request log keeps only the last 10,000 requests), and the requests the operator sends while idle, counted both by
/// that handler and from the server's request log over a measured window.
/// Run: <c>dotnet run -c Release --project tests/Rpoi.Benchmarks -- phase-one [leases] [workers,workers] [idleSeconds] [limitMinutes] [burst|kubectl] [bare] [split]</c>:
/// <c>burst</c> (default) sends every create at once through the API, <c>kubectl</c> applies one file holding them all
/// with <c>kubectl apply -f</c>; <c>bare</c> leaves the finalizer out of the manifests (the operator then adds it);
/// <c>split</c> runs the API server in a child process (<see cref="PhaseOneServer"/>) instead of in this one, and each
/// round then reports this process's CPU (operator and benchmark client) and the API server's CPU apart, and the
/// requests by verb/resource from the server's request log (every client). The words after the 4th argument may come
/// in any order. Each worker setting is a round in the same process (and the same child), so the first round also pays
/// for JIT compilation. Example: <c>... -- phase-one 1000 16,8,4,4,8,16 1 5 split</c>. Flags (PhaseOneFlags.cs):
/// <c>--rate N --duration S</c> (steady arrivals), <c>--raw-writes N</c> (the floor's write count),
/// <c>--kubeconfig FILE [--fake-nodes]</c> (any cluster), <c>--escrow sqlite|memory</c>.
/// </summary>
internal static class PhaseOneBenchmark
{
    private const string Ns = "team-a";
    private const string Accelerator = "tpu-v5-lite-podslice";
    private const string Topology = "2x2";
    private const int ChipsPerHost = 4;
    private static readonly CustomResource LeaseResource = new(Lease.Group, Lease.Version, Lease.Plural);
    private static readonly System.Text.Json.JsonSerializerOptions Relaxed = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    internal static int Positive(string text, string what, int min = 1) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min
            ? n
            : throw new ArgumentException($"{what} must be a whole number of at least {min}, not '{text}'");

    public static async Task<int> RunAsync(string[] all)
    {
        var (flags, args) = PhaseOneFlags.Parse(all);
        var leases = args.Length > 0 ? Positive(args[0], "leases (1st argument)") : 1000;
        var idle = TimeSpan.FromSeconds(args.Length > 2 ? Positive(args[2], "idleSeconds (3rd argument)", min: 0) : 20);
        var workerSettings = args.Length > 1
            ? args[1].Split(',').Select(w => Positive(w, "workers (2nd argument, e.g. 4,4,8)")).ToArray()
            : [new OperatorSettings().Workers, 16];
        var limit = TimeSpan.FromMinutes(args.Length > 3 ? Positive(args[3], "limitMinutes (4th argument)") : 5);
        var apply = "burst";

        // Lease manifests from 'kubectl rpoi request' carry the operator's finalizer; 'bare' leaves it to the operator.
        var withFinalizer = true;
        var split = false;
        foreach (var word in args.Skip(4))
        {
            switch (word)
            {
                case "burst" or "kubectl":
                    apply = word;
                    break;
                case "bare" or "finalizer":
                    withFinalizer = word == "finalizer";
                    break;
                case "split" or "inprocess":
                    split = word == "split";
                    break;
                default:
                    throw new ArgumentException($"after [leases] [workers,workers] [idleSeconds] [limitMinutes] come words: 'burst' (all creates at once through the API, the default) or 'kubectl' (one 'kubectl apply -f' of a file holding them all); "
                        + $"'finalizer' (the default) or 'bare' (manifests without the finalizer); 'inprocess' (the default) or 'split' (the API server in a child process, CPU measured per side); not '{word}'; {PhaseOneFlags.Usage}");
            }
        }

        if (split && flags.Kubeconfig is not null)
        {
            throw new ArgumentException("'split' starts an in-repo API server in a child process; with --kubeconfig the API server is the cluster's, so leave 'split' out");
        }

        var target = flags.Kubeconfig is null ? (split ? "API server in a child process" : "API server in this process") : $"the cluster of {flags.Kubeconfig}{(flags.FakeNodes ? ", fake nodes made by the benchmark" : ", its own v5e 2x2 nodes")}";
        Console.WriteLine($"phase I benchmark: {leases} leases, {leases} v5e {Topology} nodes, idle window {idle.TotalSeconds:0} s, workers {string.Join(", ", workerSettings)}, "
            + $"applied by {(apply == "burst" ? "concurrent API creates" : "one kubectl apply -f")}, {(withFinalizer ? "manifests with the finalizer (as kubectl rpoi request writes them)" : "bare manifests (the operator adds the finalizer)")}, "
            + $"{target}{(flags.WriteLatencyMs is { } ms ? $", each API write delayed {ms} ms" : string.Empty)}, π: {flags.Escrow}; {Environment.ProcessorCount} cores, load average {LoadAverage()}, {DateTime.UtcNow:u}");
        await using var child = split ? ApiServerProcess.Start() : null;
        if (child is not null)
        {
            Console.WriteLine($"API server process: pid {child.Id}, started by {Environment.ProcessPath}; this process is pid {Environment.ProcessId}");
        }

        var ok = true;
        var rounds = new List<RoundResult>();
        for (var r = 0; r < workerSettings.Length; r++)
        {
            // Round 1 of a process pays for JIT compilation (operator, client, server): it is the cold round; the others are warm.
            var result = await RunOnceAsync(new Round(leases, workerSettings[r], idle, limit, apply == "kubectl", withFinalizer, child, flags, r == 0 ? "cold" : "warm", null, r + 1));
            ok &= result.Finished;
            rounds.Add(result);
        }

        if (flags.Duration is { } seconds)
        {
            // Capacity: leases per second the last burst round brought to Active; the steady round arrives at half of it unless told.
            var capacity = rounds[^1].LeasesPerSecond;
            var rate = flags.Rate ?? capacity / 2;
            var count = Math.Max(1, (int)Math.Round(rate * seconds));
            Console.WriteLine();
            Console.WriteLine($"steady round: {rate:0.0} leases/s for {seconds} s = {count} leases ({(flags.Rate is null ? "50%" : $"{rate / capacity:P0}")} of the {capacity:0.0} leases/s the last burst round reached)");
            var steady = await RunOnceAsync(new Round(count, workerSettings[^1], idle, limit, false, withFinalizer, child, flags, "warm", rate, rounds.Count + 1));
            ok &= steady.Finished;
            rounds.Add(steady);
        }

        Console.WriteLine();
        // CPU per lease in the table too (issue 14 item 2 compares it across sizes and runs; the per-round lines above scroll away).
        var cpuColumns = child is null ? "process CPU/lease (ms) |" : "this process CPU/lease (ms) | API server CPU/lease (ms) |";
        Console.WriteLine($"| round | leases | arrival | last Active (ms) | p50 (ms) | p99 (ms) | raw writes/s | writes/lease | API floor (ms) | ratio to floor | {cpuColumns}");
        Console.WriteLine($"| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |{(child is null ? string.Empty : " ---: |")}");
        foreach (var x in rounds)
        {
            var cpuCells = FormattableString.Invariant($"{x.CpuPerLeaseMs:0.00} |{(x.ServerCpuPerLeaseMs is { } s ? $" {s:0.00} |" : string.Empty)}");
            Console.WriteLine(FormattableString.Invariant($"| {x.Number} ({x.Temperature}) | {x.Leases} | {x.Arrival} | {x.WallMs:0} | {x.P50:0} | {x.P99:0} | {x.RawWritesPerSecond:0} | {x.WritesPerLease:0.00} | {x.FloorMs:0} | {(x.Arrival == "burst" ? $"{x.WallMs / x.FloorMs:0.00}" : "n/a")} | {cpuCells}"));
        }

        // Goals (issue 14): burst <= 2x the API floor, cold and warm; steady arrivals at 50% of capacity p99 <= 250 ms.
        foreach (var x in rounds)
        {
            Console.WriteLine(x.Arrival == "burst"
                ? $"goal round {x.Number} ({x.Temperature} burst): {x.WallMs / x.FloorMs:0.00}x the floor, goal <= 2x: {(x.Finished && x.WallMs <= 2 * x.FloorMs ? "MET" : "NOT MET")}"
                : $"goal round {x.Number} (steady): p99 {x.P99:0} ms, goal <= 250 ms: {(x.Finished && x.P99 <= 250 ? "MET" : "NOT MET")}");
        }

        return ok ? 0 : 1;
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";

    /// <summary>One round's settings: a burst (<paramref name="Rate"/> null) or steady arrivals at <paramref name="Rate"/> leases/s.</summary>
    private sealed record Round(int Count, int Workers, TimeSpan Idle, TimeSpan Limit, bool ByKubectl, bool WithFinalizer, ApiServerProcess? Child, PhaseOneFlags Flags, string Temperature, double? Rate, int Number);

    /// <summary>A round's figures for the summary table.</summary>
    /// <param name="CpuPerLeaseMs">This process's CPU per lease until all Active (operator, π, client; the API server too unless split).</param>
    /// <param name="ServerCpuPerLeaseMs">The split mode's API server process CPU per lease over the same window; null when not split.</param>
    private sealed record RoundResult(int Number, string Temperature, int Leases, string Arrival, bool Finished, double WallMs, double P50, double P99, double RawWritesPerSecond, double WritesPerLease, double FloorMs, double CpuPerLeaseMs, double? ServerCpuPerLeaseMs)
    {
        public double LeasesPerSecond => Leases / (WallMs / 1000);
    }

    private static async Task<RoundResult> RunOnceAsync(Round round)
    {
        var (count, workers, idle, limit, byKubectl, withFinalizer, child, flags, _, rate, number) = round;
        var runId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));

        // Against a cluster the round works in a namespace of its own (and fake nodes of its own, when asked) and removes them afterwards.
        var ns = flags.Kubeconfig is null ? Ns : $"rpoi-bench-{runId}";
        await using var server = await RoundServer.StartAsync(child, flags.Kubeconfig, flags.WriteLatencyMs);
        using var client = new Kubernetes(server.Config());
        var made = new Made(ns, flags.Kubeconfig is not null);
        try
        {
            return await RunOnceInAsync(round, runId, ns, server, client, made);
        }
        finally
        {
            if (made.Cleanup)
            {
                await CleanUpAsync(client, made);
            }
        }
    }

    /// <summary>What a round made on a cluster, so that it can remove exactly that.</summary>
    private sealed class Made(string ns, bool cleanup)
    {
        public string Namespace { get; } = ns;

        public bool Cleanup { get; } = cleanup;

        public bool MadeNamespace { get; set; }

        public ConcurrentBag<string> Nodes { get; } = [];
    }

    private static async Task CleanUpAsync(Kubernetes client, Made made)
    {
        var clock = Stopwatch.StartNew();
        if (made.MadeNamespace)
        {
            // Phase II owns the finalizer (it settles on delete); the benchmark's leases were never used, so it takes the finalizer off itself.
            var list = await client.CustomObjects.ListNamespacedCustomObjectAsync<System.Text.Json.JsonElement>(Lease.Group, Lease.Version, made.Namespace, Lease.Plural);
            var names = list.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("metadata").GetProperty("name").GetString()!).ToList();
            await Parallel.ForEachAsync(names, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (name, ct) =>
            {
                await client.CustomObjects.PatchNamespacedCustomObjectAsync(new V1Patch("{\"metadata\":{\"finalizers\":null}}", V1Patch.PatchType.MergePatch), Lease.Group, Lease.Version, made.Namespace, Lease.Plural, name, cancellationToken: ct);
                await IgnoreNotFound(client.CustomObjects.DeleteNamespacedCustomObjectAsync(Lease.Group, Lease.Version, made.Namespace, Lease.Plural, name, cancellationToken: ct));
            });

            // Nodes of the cluster's own that the operator claimed for these leases get their marks taken off.
            var claimed = await client.CoreV1.ListNodeAsync(labelSelector: $"{TpuLabels.LeaseNamespaceLabel}={made.Namespace}");
            foreach (var node in claimed.Items.Where(n => !made.Nodes.Contains(n.Metadata.Name)))
            {
                var kept = node.Spec?.Taints?.Where(t => t.Key != TpuLabels.LeaseTaintKey).ToList() ?? [];
                var body = new JsonObject
                {
                    ["metadata"] = new JsonObject
                    {
                        ["labels"] = new JsonObject { [TpuLabels.LeaseNamespaceLabel] = null, [TpuLabels.LeaseNameLabel] = null },
                        ["annotations"] = new JsonObject { [TpuLabels.LeaseUidAnnotation] = null, [TpuLabels.ClaimedAtAnnotation] = null },
                    },
                    ["spec"] = new JsonObject { ["taints"] = kept.Count == 0 ? null : JsonNode.Parse(KubernetesJson.Serialize(kept)) },
                };
                await client.CoreV1.PatchNodeAsync(new V1Patch(body.ToJsonString(), V1Patch.PatchType.MergePatch), node.Metadata.Name);
            }

            await IgnoreNotFound(client.CoreV1.DeleteNamespaceAsync(made.Namespace));
        }

        await Parallel.ForEachAsync(made.Nodes, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (name, ct) => await IgnoreNotFound(client.CoreV1.DeleteNodeAsync(name, cancellationToken: ct)));
        Console.WriteLine($"cleanup: namespace {made.Namespace}{(made.MadeNamespace ? " deleted" : " (not made)")}, {made.Nodes.Count} fake nodes deleted, in {clock.ElapsedMilliseconds} ms");
    }

    private static async Task IgnoreNotFound(Task task)
    {
        try
        {
            await task;
        }
        catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
        }
    }

    /// <summary>
    /// The API server's raw write ceiling, measured in the round: <paramref name="n"/> creates of ConfigMaps as large as
    /// a Lease, 16 at a time (as many as the burst's client keeps busy per core here), with the operator running. The
    /// API floor of a burst is its writes ÷ this rate.
    /// </summary>
    private static async Task<double> RawWriteCeilingAsync(Kubernetes client, string ns, int n, int bytes, string runId)
    {
        var data = new string('x', bytes);
        var names = new ConcurrentBag<string>();
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, n), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
        {
            var name = $"raw-write-{runId}-{i:D5}";
            await client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = name }, Data = new Dictionary<string, string> { ["payload"] = data } }, ns, cancellationToken: ct);
            names.Add(name);
        });
        var perSecond = n / clock.Elapsed.TotalSeconds;
        await Parallel.ForEachAsync(names, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (name, ct) => await IgnoreNotFound(client.CoreV1.DeleteNamespacedConfigMapAsync(name, ns, cancellationToken: ct)));
        return perSecond;
    }

    private static async Task<RoundResult> RunOnceInAsync(Round round, string runId, string ns, RoundServer server, Kubernetes client, Made made)
    {
        var (count, workers, idle, limit, byKubectl, withFinalizer, child, flags, temperature, rate, number) = round;
        var onCluster = flags.Kubeconfig is not null;
        if (onCluster)
        {
            try
            {
                await client.ApiextensionsV1.ReadCustomResourceDefinitionAsync($"{Lease.Plural}.{Lease.Group}");
            }
            catch (k8s.Autorest.HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.NotFound)
            {
                throw new ArgumentException($"--kubeconfig: the cluster has no CRD {Lease.Plural}.{Lease.Group}; install the CRDs first (kubectl apply -f crds/ or the Helm chart)");
            }
        }
        else
        {
            var crdFile = Path.Combine(FindRoot(), "crds", "rpoi.io_leases.yaml");
            await client.ApiextensionsV1.CreateCustomResourceDefinitionAsync(KubernetesYaml.Deserialize<V1CustomResourceDefinition>(await File.ReadAllTextAsync(crdFile)));
        }

        await client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = ns } });
        made.MadeNamespace = true;
        var setupCpu = Process.GetCurrentProcess().TotalProcessorTime;
        var setupChildCpu = child?.TotalProcessorTime;
        var setupClock = Stopwatch.StartNew();
        if (!onCluster || flags.FakeNodes)
        {
            var prefix = onCluster ? $"rpoi-bench-{runId}" : "gke-bench";
            await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
            {
                made.Nodes.Add($"{prefix}-{i:D4}");
                await CreateNodeAsync(client, prefix, i, ct);
            });
            if (!onCluster)
            {
                made.Nodes.Clear();
            }
        }
        else
        {
            var own = await client.CoreV1.ListNodeAsync(labelSelector: $"{TpuLabels.Accelerator}={Accelerator},{TpuLabels.Topology}={Topology}");
            if (own.Items.Count < count)
            {
                throw new ArgumentException($"--kubeconfig: the cluster has {own.Items.Count} nodes labelled {Accelerator} {Topology}, fewer than the {count} leases; ask for fewer leases or pass --fake-nodes");
            }
        }

        var setupCpuPerNode = (Process.GetCurrentProcess().TotalProcessorTime - setupCpu).TotalMilliseconds / count;
        Console.WriteLine(child is null
            ? $"setup: {count} node creates in {setupClock.ElapsedMilliseconds} ms, {setupCpuPerNode:0.000} ms CPU per node create (server and client, no watchers yet)"
            : $"setup: {count} node creates in {setupClock.ElapsedMilliseconds} ms, CPU per node create {setupCpuPerNode:0.000} ms in the client (this process) and "
                + $"{(child.TotalProcessorTime - setupChildCpu!.Value).TotalMilliseconds / count:0.000} ms in the API server process (no watchers yet)");

        var renter = PartyKeyPair.Generate(PartyRole.Renter);
        var leaser = PartyKeyPair.Generate(PartyRole.Leaser);
        var escrowKeys = PartyKeyPair.Generate(PartyRole.Escrow);
        await using var escrow = await BenchEscrow.StartAsync(flags.Escrow, escrowKeys, leaser, renter, count);
        Console.WriteLine($"π: {escrow.Describe}");

        // The operator talks through its own client, whose handler counts every request it sends.
        var counter = new CountingHandler();
        using var operatorClient = new Kubernetes(server.Config(), counter);
        var builder = new OperatorHostBuilder(operatorClient, Prometheus.Metrics.NewCustomRegistry(), TimeProvider.System);
        var options = new PhaseOneOptions { Leaser = leaser, EscrowAddress = escrowKeys.Identity.Address, Cluster = new ClusterEndpointOptions(server.Url, null) };
        var controller = PhaseOneController.Register(builder, options, escrow.Client, workers: workers);
        var host = builder.Build();
        using var stop = new CancellationTokenSource();
        var hostTask = Task.Run(() => host.RunAsync(stop.Token));

        // The benchmark's own watch sees each lease turn Active (a watch, so it adds no polling load).
        var sent = new long[count];
        var active = new ConcurrentDictionary<string, long>(StringComparer.Ordinal);
        var allActive = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var watcher = new Informer<Lease>(ResourceClients.Custom<Lease>(client, LeaseResource, ns));
        var added = new ConcurrentDictionary<string, long>(StringComparer.Ordinal);
        void Seen(Lease l)
        {
            added.TryAdd(l.Metadata.Name, Stopwatch.GetTimestamp());
            if (l.Status?.Phase == LeasePhase.Active && active.TryAdd(l.Metadata.Name, Stopwatch.GetTimestamp()) && active.Count == count)
            {
                allActive.TrySetResult();
            }
        }

        watcher.AddEventHandler(new ResourceEventHandler<Lease>((l, _) => Seen(l), (_, l) => Seen(l)));
        var watcherTask = Task.Run(() => watcher.RunAsync(stop.Token));
        var ready = Stopwatch.StartNew();
        while (!(host.IsReady && controller.Controller.Queue is not null && watcher.HasSynced))
        {
            if (ready.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new TimeoutException("the operator's informers did not sync within 30 s");
            }

            await Task.Delay(20);
        }

        // Signed just before the burst so the request's age window holds; signing is not part of the measurement.
        var objects = Enumerable.Range(0, count)
            .Select(i => BuildLease(renter, leaser, escrowKeys, $"lease-{i:D4}", withFinalizer, ns: ns))
            .Select(l => flags.PlainLeases ? l : AsUsersWriteIt(l))
            .ToArray();
        var leaseBytes = KubernetesJson.Serialize(objects[0]).Length;
        // The client escapes each quote inside the annotation as \u0022; the API server (Go's encoding/json, and the test
        // server) stores and watches out the object with \" instead, which is the size a cache on a real cluster holds.
        var storedBytes = System.Text.Encoding.UTF8.GetByteCount(JsonNode.Parse(KubernetesJson.Serialize(objects[0]))!.ToJsonString(Relaxed));
        Console.WriteLine($"lease size: {storedBytes} bytes of JSON as the API server stores it ({leaseBytes} as this client sends it), spec {KubernetesJson.Serialize(objects[0].Spec).Length} bytes"
            + (flags.PlainLeases ? " (--plain-leases: the signed request alone)" : ", with team/GitOps labels and kubectl's last-applied annotation"));
        string? manifest = null;
        string? kubeconfig = null;
        if (byKubectl)
        {
            var dir = Directory.CreateTempSubdirectory("rpoi-bench-").FullName;
            kubeconfig = await server.WriteKubeconfigAsync(Path.Combine(dir, "kubeconfig"), ns);
            manifest = Path.Combine(dir, "leases.yaml");
            await File.WriteAllTextAsync(manifest, string.Join("\n", objects.Select(o => KubernetesJson.Serialize(o))));
        }

        var before = counter.Snapshot();
        var serverMark = child is null ? null : await server.MarkAsync();
        var childGcBefore = child is null ? null : await child.GcCountsAsync();
        var childCpuBefore = child?.TotalProcessorTime;
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        int[] gcBefore = [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)];
        var start = Stopwatch.GetTimestamp();
        var startedAt = DateTime.UtcNow;
        if (byKubectl)
        {
            // One 'kubectl apply -f' of a file with every Lease (a stream of JSON objects, which kubectl reads like YAML documents), as a platform team or a pipeline would apply them. kubectl
            // sends them one after another, so each lease's clock starts when the benchmark's watch first sees it.
            await RunKubectlAsync(kubeconfig!, "apply", "-f", manifest!);
        }
        else if (rate is { } perSecond)
        {
            // Steady arrivals: lease i is created at start + i/rate (not after the previous create returns, so a slow answer does not slow the arrivals).
            var creates = new List<Task>(count);
            for (var i = 0; i < count; i++)
            {
                var due = TimeSpan.FromSeconds(i / perSecond) - Stopwatch.GetElapsedTime(start);
                if (due > TimeSpan.Zero)
                {
                    await Task.Delay(due);
                }

                var k = i;
                creates.Add(Task.Run(async () =>
                {
                    sent[k] = Stopwatch.GetTimestamp();
                    await client.CustomObjects.CreateNamespacedCustomObjectAsync(objects[k], Lease.Group, Lease.Version, ns, Lease.Plural);
                }));
            }

            await Task.WhenAll(creates);
        }
        else
        {
            await Task.WhenAll(objects.Select(async (lease, i) =>
            {
                sent[i] = Stopwatch.GetTimestamp();
                await client.CustomObjects.CreateNamespacedCustomObjectAsync(lease, Lease.Group, Lease.Version, ns, Lease.Plural);
            }));
        }

        var appliedIn = Stopwatch.GetElapsedTime(start);
        var (finished, listedWall) = await WaitForActiveAsync(allActive.Task, active, count, limit, start, startedAt, client, ns, watcher);
        var wall = listedWall ?? Stopwatch.GetElapsedTime(start);
        if (!finished)
        {
            PrintStragglers(watcher.Store.List(), active, count);
        }

        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
        var childCpu = child?.TotalProcessorTime - childCpuBefore;
        var gcs = string.Join("/", Enumerable.Range(0, 3).Select(g => GC.CollectionCount(g) - gcBefore[g]));
        var during = counter.Snapshot().Skip(before.Count).ToList();
        var serverDuring = serverMark is null ? null : await server.SinceAsync(serverMark);
        var childGcs = child is null ? null : string.Join("/", (await child.GcCountsAsync()).Select((n, g) => n - childGcBefore![g]));

        // Let stragglers (events written after the status) land, then measure an idle window on both sides of the wire.
        await Task.Delay(TimeSpan.FromSeconds(2));
        var settled = counter.Snapshot();
        var toSettle = settled.Skip(before.Count).ToList();
        var serverSettled = serverMark is null ? null : await server.SinceAsync(serverMark);
        var serverBefore = await server.MarkAsync();
        var idleStart = counter.Snapshot().Count;
        var idleClock = Stopwatch.StartNew();
        await Task.Delay(idle);
        var idleElapsed = idleClock.Elapsed;
        var idleRequests = counter.Snapshot().Skip(idleStart).ToList();
        var serverIdle = serverBefore is null ? null : await server.SinceAsync(serverBefore);

        // The floor, measured on the same server in the same round, after the burst so that the cold round's operator
        // is measured cold while the server's ceiling is not made to look low by its own first requests.
        var rawWrites = flags.RawWrites ?? Math.Max(500, count);
        var ceiling = await RawWriteCeilingAsync(client, ns, rawWrites, leaseBytes, runId);
        var writesPerLease = 1 + ((double)during.Count(c => c.IsWrite) / count);
        var floorMs = count * writesPerLease / ceiling * 1000;

        var latencies = Enumerable.Range(0, count)
            .Where(i => active.ContainsKey($"lease-{i:D4}"))
            .Select(i => Stopwatch.GetElapsedTime(byKubectl ? added[$"lease-{i:D4}"] : sent[i], active[$"lease-{i:D4}"]).TotalMilliseconds)
            .Order()
            .ToArray();
        Console.WriteLine();
        Console.WriteLine($"== round {number} ({temperature}{(rate is null ? string.Empty : $", steady {rate:0.0}/s")}), workers {workers}: {active.Count}/{count} Active{(finished ? string.Empty : $" (TIMED OUT after {limit.TotalMinutes:0} min)")}, {(byKubectl ? "kubectl apply took" : "creates sent in")} {appliedIn.TotalMilliseconds:0} ms, last Active after {wall.TotalMilliseconds:0} ms; load average {LoadAverage()}");
        if (latencies.Length > 0)
        {
            Console.WriteLine($"{(byKubectl ? "first seen by watch" : "create sent")} -> Active: p50 {Percentile(latencies, 0.50):0} ms, p90 {Percentile(latencies, 0.90):0} ms, p99 {Percentile(latencies, 0.99):0} ms, max {latencies[^1]:0} ms");
        }

        Console.WriteLine($"API floor: raw write ceiling {ceiling:0} writes/s ({rawWrites} ConfigMap creates of {leaseBytes} bytes, 16 at a time) × {writesPerLease:0.00} writes per lease (1 create + the operator's until all Active) "
            + $"× {count} leases = {floorMs:0} ms; {(rate is null ? $"last Active after {wall.TotalMilliseconds / floorMs:0.00}× the floor" : "steady arrivals: the floor is for scale, the goal is on p99")}");

        if (childCpu is not { } serverCpu)
        {
            Console.WriteLine($"process CPU (API server, operator, benchmark client) until all Active: {cpu.TotalSeconds:0.00} s = {cpu / wall:0.00} cores of {Environment.ProcessorCount}, {cpu.TotalMilliseconds / count:0.00} ms per lease; GCs gen0/1/2 {gcs}, {(GCSettings.IsServerGC ? "server" : "workstation")} GC");
        }
        else
        {
            // Both read over the same window; kubectl (its own process) is in neither.
            Console.WriteLine($"this process's CPU (operator, benchmark client) until all Active: {cpu.TotalSeconds:0.00} s = {cpu / wall:0.00} cores of {Environment.ProcessorCount}, {cpu.TotalMilliseconds / count:0.00} ms per lease; GCs gen0/1/2 {gcs}, {(GCSettings.IsServerGC ? "server" : "workstation")} GC");
            Console.WriteLine($"API server process CPU until all Active: {serverCpu.TotalSeconds:0.00} s = {serverCpu / wall:0.00} cores, {serverCpu.TotalMilliseconds / count:0.00} ms per lease; GCs gen0/1/2 {childGcs}");
            Console.WriteLine($"CPU per lease split: this process {cpu.TotalMilliseconds / count:0.00} ms + API server {serverCpu.TotalMilliseconds / count:0.00} ms = {(cpu + serverCpu).TotalMilliseconds / count:0.00} ms; "
                + $"this process's share {cpu / (cpu + serverCpu):P0}");
        }

        Console.WriteLine($"escrow: {escrow.Summary()}; {controller.Controller.ReconcileCount} Lease reconciles ({(double)controller.Controller.ReconcileCount / count:0.00} per lease)");
        Report("operator requests until all Active", during, count);
        Report("operator requests including 2 s settle", toSettle, count);
        if (serverDuring is not null && serverSettled is not null)
        {
            Report($"API server log (every client: operator, benchmark{(byKubectl ? ", kubectl" : string.Empty)}) until all Active", serverDuring.Select(Classify).ToList(), count);
            Report("API server log including 2 s settle", serverSettled.Select(Classify).ToList(), count);
        }

        var perMinute = 60 / idleElapsed.TotalSeconds;
        var idleNonWatch = idleRequests.Count(r => r.Verb != "watch");
        var serverIdleNonWatch = serverIdle?.Count(r => !r.Query.Contains("watch=true", StringComparison.OrdinalIgnoreCase));
        Console.WriteLine($"idle {idleElapsed.TotalSeconds:0.0} s: operator sent {idleNonWatch} non-watch requests ({idleNonWatch * perMinute:0.0}/min) and {idleRequests.Count - idleNonWatch} watch requests; "
            + (serverIdle is null ? "(the cluster's request log is not readable from here)" : $"the server logged {serverIdleNonWatch} non-watch ({serverIdleNonWatch * perMinute:0.0}/min) of {serverIdle.Count} requests"));
        foreach (var group in idleRequests.GroupBy(r => $"{r.Verb} {r.Resource}").OrderByDescending(g => g.Count()))
        {
            Console.WriteLine($"  idle: {group.Key} x{group.Count()}");
        }

        await stop.CancelAsync();
        await Quietly(hostTask);
        await Quietly(watcherTask);
        return new RoundResult(number, temperature, count, rate is null ? (byKubectl ? "kubectl" : "burst") : FormattableString.Invariant($"steady {rate:0.0}/s"), finished, wall.TotalMilliseconds,
            latencies.Length > 0 ? Percentile(latencies, 0.50) : double.NaN, latencies.Length > 0 ? Percentile(latencies, 0.99) : double.NaN, ceiling, writesPerLease, floorMs,
            cpu.TotalMilliseconds / count, childCpu?.TotalMilliseconds / count);
    }

    /// <summary>
    /// Waits until the benchmark's watch has seen every lease Active. If the watch goes quiet for 20 s short of that (seen
    /// at 10,000 leases: the server had them all Active while this watch stopped delivering), the leases are listed once:
    /// when the list shows all Active, the round ends at the last <c>status.activeSince</c> (whole seconds) instead of
    /// waiting out the limit, and says so.
    /// </summary>
    private static async Task<(bool Finished, TimeSpan? ListedWall)> WaitForActiveAsync(
        Task allActive, ConcurrentDictionary<string, long> active, int count, TimeSpan limit, long start, DateTime startedAt, Kubernetes client, string ns, Informer<Lease> watcher)
    {
        var quietFor = TimeSpan.FromSeconds(20);
        var lastCount = -1;
        var lastChange = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(start) < limit)
        {
            if (await Task.WhenAny(allActive, Task.Delay(TimeSpan.FromSeconds(1))) == allActive)
            {
                return (true, null);
            }

            if (active.Count != lastCount)
            {
                (lastCount, lastChange) = (active.Count, Stopwatch.GetTimestamp());
                continue;
            }

            if (Stopwatch.GetElapsedTime(lastChange) < quietFor)
            {
                continue;
            }

            var listed = await client.CustomObjects.ListNamespacedCustomObjectAsync<System.Text.Json.JsonElement>(Lease.Group, Lease.Version, ns, Lease.Plural);
            var since = new List<DateTime>();
            foreach (var item in listed.GetProperty("items").EnumerateArray())
            {
                if (item.TryGetProperty("status", out var st) && st.TryGetProperty("phase", out var phase) && phase.GetString() == "Active"
                    && st.TryGetProperty("activeSince", out var at) && at.GetDateTime() is var t)
                {
                    since.Add(t.ToUniversalTime());
                }
            }

            Console.WriteLine($"the benchmark's watch saw {active.Count}/{count} Active and nothing new for {quietFor.TotalSeconds:0} s; a list shows {since.Count} Active");
            // What the informer itself did, so a stalled stream can be told from a handler that missed events.
            var cachedActive = watcher.Store.List().Count(l => l.Status?.Phase == LeasePhase.Active);
            Console.WriteLine($"  its informer: {watcher.ListCount} lists, {watcher.WatchCount} watches opened, {watcher.WatchEndCount} ended normally, {watcher.FailureCount} failures, resumes from resourceVersion {watcher.LastResourceVersion}, {cachedActive} Active in its cache");
            if (since.Count == count)
            {
                var end = since.Max() - startedAt;
                Console.WriteLine($"WATCH STALLED: ending the round at the last status.activeSince, {end.TotalMilliseconds:0} ms after the first create (whole seconds; the CPU figures below run to now and overstate)");
                return (true, end);
            }

            lastChange = Stopwatch.GetTimestamp();
        }

        return (allActive.IsCompleted, null);
    }

    /// <summary>On a timeout: the leases that are not Active (as the benchmark's watch last saw them), so a stall can be told from slowness.</summary>
    private static void PrintStragglers(IReadOnlyList<Lease> seen, ConcurrentDictionary<string, long> active, int count)
    {
        const int Shown = 20;
        var stragglers = seen.Where(l => !active.ContainsKey(l.Metadata.Name)).OrderBy(l => l.Metadata.Name, StringComparer.Ordinal).ToList();
        Console.WriteLine($"stragglers: {count - active.Count} leases not Active, {count - seen.Count} never seen by the watch; "
            + $"by phase: {string.Join(", ", stragglers.GroupBy(l => l.Status?.Phase?.ToString() ?? "(none)").Select(g => $"{g.Key} {g.Count()}"))}");
        foreach (var l in stragglers.Take(Shown))
        {
            var last = l.Status?.Conditions?.OrderBy(c => c.LastTransitionTime).LastOrDefault();
            Console.WriteLine($"  {l.Metadata.Name}: phase {l.Status?.Phase?.ToString() ?? "(none)"}, queue position {l.Status?.QueuePosition?.ToString(CultureInfo.InvariantCulture) ?? "-"}, "
                + $"last condition {(last is null ? "(none)" : $"{last.Type}={last.Status} {last.Reason}: {last.Message}")}");
        }

        if (stragglers.Count > Shown)
        {
            Console.WriteLine($"  ... and {stragglers.Count - Shown} more");
        }
    }

    private static void Report(string title, List<Call> calls, int count)
    {
        var writes = calls.Where(c => c.IsWrite).ToList();
        var events = writes.Count(c => c.Resource == "events");
        Console.WriteLine($"{title}: {calls.Count} requests, {writes.Count} writes = {(double)writes.Count / count:0.00}/lease "
            + $"({(double)(writes.Count - events) / count:0.00}/lease without events, {(double)events / count:0.00} events/lease), "
            + $"{calls.Count(c => !c.IsWrite)} reads, {calls.Count(c => c.Status >= 400)} answered >= 400");
        foreach (var group in calls.GroupBy(c => $"{c.Verb} {c.Resource}").OrderByDescending(g => g.Count()))
        {
            var failed = group.Count(c => c.Status >= 400);
            var codes = failed == 0 ? string.Empty : " (" + string.Join(", ", group.Where(c => c.Status >= 400).GroupBy(c => c.Status).Select(g => $"{g.Count()}x{g.Key}")) + ")";
            Console.WriteLine($"  {group.Key,-34} {group.Count(),6}  {(double)group.Count() / count,5:0.00}/lease{codes}");
        }
    }

    private static double Percentile(double[] sorted, double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

    /// <summary>
    /// The server's log keeps the last 10,000 requests, so entries new since <paramref name="before"/> are found by
    /// aligning the old tail inside the new log rather than by index.
    /// </summary>
    private static List<RecordedRequest> NewSince(IReadOnlyList<RecordedRequest> before, IReadOnlyList<RecordedRequest> after)
    {
        const int Probe = 50;
        var tail = before.Skip(Math.Max(0, before.Count - Probe)).ToArray();
        for (var end = after.Count; end >= tail.Length; end--)
        {
            if (Enumerable.Range(0, tail.Length).All(k => after[end - tail.Length + k] == tail[k]))
            {
                return after.Skip(end).ToList();
            }
        }

        throw new InvalidOperationException("the server's request log rolled over during the idle window; shorten the window");
    }

    private static async Task Quietly(Task task)
    {
        try
        {
            await task;
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static async Task CreateNodeAsync(Kubernetes client, string prefix, int i, CancellationToken ct)
    {
        var name = $"{prefix}-{i:D4}";
        var pool = $"{prefix}-pool-{i:D4}";
        var node = new V1Node
        {
            Metadata = new V1ObjectMeta
            {
                Name = name,
                Labels = new Dictionary<string, string>
                {
                    [TpuLabels.Accelerator] = Accelerator,
                    [TpuLabels.Topology] = Topology,
                    [TpuLabels.NodePool] = pool,
                    ["kubernetes.io/hostname"] = name,
                },
            },
            Spec = new V1NodeSpec { Taints = [new V1Taint { Key = TpuLabels.GkeTpuTaintKey, Value = TpuLabels.GkeTpuTaintValue, Effect = TpuLabels.NoSchedule }] },
            Status = NodeStatus(),
        };
        var created = await client.CoreV1.CreateNodeAsync(node, cancellationToken: ct);
        if (created.Status?.Allocatable?.ContainsKey(TpuLabels.TpuResource) != true)
        {
            // Like a real API server, the test server may ignore status on create: the kubelet's part is a status write.
            created.Status = NodeStatus();
            await client.CoreV1.ReplaceNodeStatusAsync(created, name, cancellationToken: ct);
        }
    }

    private static V1NodeStatus NodeStatus() => new()
    {
        Capacity = new Dictionary<string, ResourceQuantity> { [TpuLabels.TpuResource] = new(ChipsPerHost.ToString(CultureInfo.InvariantCulture)) },
        Allocatable = new Dictionary<string, ResourceQuantity> { [TpuLabels.TpuResource] = new(ChipsPerHost.ToString(CultureInfo.InvariantCulture)) },
        Conditions = [new V1NodeCondition { Type = "Ready", Status = "True" }],
    };

    /// <summary>
    /// CPU of this process's exited and reaped children (kubectl; the split mode's API server is still running), from
    /// cutime and cstime in /proc/self/stat (clock ticks of 1/100 s, Linux's fixed USER_HZ); null where there is no /proc.
    /// </summary>
    private static TimeSpan? ReapedChildrenCpu()
    {
        const string Stat = "/proc/self/stat";
        if (!File.Exists(Stat))
        {
            return null;
        }

        // Fields after the command name (which may hold spaces) start at field 3 (state); cutime and cstime are fields 16 and 17.
        var text = File.ReadAllText(Stat);
        var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[13], CultureInfo.InvariantCulture) + long.Parse(fields[14], CultureInfo.InvariantCulture);
        return TimeSpan.FromMilliseconds(ticks * 10);
    }

    private static async Task RunKubectlAsync(string kubeconfig, params string[] args)
    {
        var binary = Environment.GetEnvironmentVariable("RPOI_KUBECTL_135") is { Length: > 0 } newer && File.Exists(newer) ? newer : "kubectl";
        var info = new ProcessStartInfo(binary) { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add("--kubeconfig");
        info.ArgumentList.Add(kubeconfig);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        var reapedBefore = ReapedChildrenCpu();
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {binary}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var lines = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var cpu = ReapedChildrenCpu() - reapedBefore;
        Console.WriteLine($"{binary} {string.Join(' ', args)}: exit {process.ExitCode}, {lines.Length} lines of output"
            + (cpu is { } used ? $", {used.TotalSeconds:0.00} s CPU in kubectl itself (in none of the CPU figures below)" : string.Empty));
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"kubectl failed: {await stderr}");
        }
    }

    /// <summary>A Lease as <c>kubectl rpoi request</c> writes it, signed by <paramref name="renter"/> (ρ 1000000, ω 500000 uusd, 1 h).</summary>
    internal static Lease BuildLease(PartyKeyPair renter, PartyKeyPair leaser, PartyKeyPair escrow, string name, bool withFinalizer,
        string ns = Ns, string accelerator = Accelerator, string topology = Topology, int chips = ChipsPerHost, int seconds = 3600)
    {
        var now = DateTimeOffset.UtcNow;
        var m = new LeaseRequest(
            MessageKinds.Request,
            renter.Identity.ToPublicKeys(),
            leaser.Identity.Address,
            escrow.Identity.Address,
            accelerator,
            topology,
            chips,
            seconds,
            new DateTimeOffset(now.UtcTicks - (now.UtcTicks % TimeSpan.TicksPerSecond), TimeSpan.Zero),
            Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)),
            new Money("1000000", "uusd"),
            new Money("500000", "uusd"),
            new LeaseRef(ns, name));
        var envelope = JsonNode.Parse(RpoiEquations.SignRequest(m, renter).ToJson())!.AsObject();
        return new Lease
        {
            ApiVersion = $"{Lease.Group}/{Lease.Version}",
            Kind = "Lease",
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, Finalizers = withFinalizer ? [LeaseConditions.Finalizer] : null },
            Spec = new LeaseSpec
            {
                Request = new SignedLeaseRequest
                {
                    Payload = (JsonObject)envelope["payload"]!.DeepClone(),
                    Signer = envelope["signer"]!.GetValue<string>(),
                    Sig = envelope["sig"]!.GetValue<string>(),
                },
            },
        };
    }

    /// <summary>
    /// The Lease as users' manifests make it: team and GitOps labels, and the last-applied-configuration annotation that a
    /// client-side <c>kubectl apply</c> adds (the manifest itself, once more, as a JSON string). 1–2 KiB, like the objects an
    /// informer caches on a real cluster, where the bare signed request is ~860 B.
    /// </summary>
    internal static Lease AsUsersWriteIt(Lease lease)
    {
        var meta = lease.Metadata;
        // Kept to what fits 1–2 KiB: the annotation repeats the whole manifest, so every label is paid twice.
        meta.Labels = new Dictionary<string, string>
        {
            ["team"] = "vision",
            ["argocd.argoproj.io/instance"] = $"{meta.NamespaceProperty}-tpu",
        };
        var applied = new Lease { ApiVersion = lease.ApiVersion, Kind = lease.Kind, Metadata = new V1ObjectMeta { Name = meta.Name, NamespaceProperty = meta.NamespaceProperty, Labels = meta.Labels, Finalizers = meta.Finalizers }, Spec = lease.Spec };
        meta.Annotations = new Dictionary<string, string> { ["kubectl.kubernetes.io/last-applied-configuration"] = KubernetesJson.Serialize(applied) + "\n" };
        return lease;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Rpoi.Operator.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"Rpoi.Operator.sln not found above {AppContext.BaseDirectory}; run the benchmark from the repository");
    }

    /// <summary>One request the operator sent: Kubernetes verb, resource (with subresource), answer.</summary>
    private sealed record Call(string Verb, string Resource, int Status)
    {
        public bool IsWrite => Verb is "create" or "update" or "patch" or "delete" or "deletecollection";
    }

    /// <summary>Counts every request on the operator's client by verb and resource.</summary>
    private sealed class CountingHandler : DelegatingHandler
    {
        private readonly ConcurrentQueue<Call> calls = new();

        public List<Call> Snapshot() => [.. calls];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            calls.Enqueue(Classify(request, (int)response.StatusCode));
            return response;
        }

        private static Call Classify(HttpRequestMessage request, int status) =>
            PhaseOneBenchmark.Classify(request.Method.Method, request.RequestUri!.AbsolutePath, request.RequestUri.Query, status);
    }

    private static Call Classify(RecordedRequest request) => Classify(request.Method, request.Path, request.Query, request.StatusCode);

    private static Call Classify(string method, string path, string query, int status)
    {
        var segments = path.Trim('/').Split('/');

        // /api/v1/... or /apis/<group>/<version>/...
        var rest = segments[0] == "api" && segments.Length > 2 ? segments[2..] : segments[0] == "apis" && segments.Length > 3 ? segments[3..] : [];
        if (rest.Length > 2 && rest[0] == "namespaces")
        {
            rest = rest[2..];
        }

        var resource = rest.Length switch
        {
            0 => path,
            1 or 2 => rest[0],
            _ => $"{rest[0]}/{rest[2]}",
        };
        var named = rest.Length >= 2;
        var verb = method switch
        {
            "POST" => "create",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => named ? "delete" : "deletecollection",
            _ when query.Contains("watch=true", StringComparison.OrdinalIgnoreCase) || query.Contains("watch=1", StringComparison.Ordinal) => "watch",
            _ => named ? "get" : "list",
        };
        return new Call(verb, resource, status);
    }

    /// <summary>A position in the request log of a round's API server: the log itself in-process, an index in the child.</summary>
    private sealed record RequestMark(IReadOnlyList<RecordedRequest>? Log, int Index);

    /// <summary>The API server of one round: in this process, or a fresh server in the <c>split</c> mode's child process.</summary>
    private sealed class RoundServer : IAsyncDisposable
    {
        private readonly KubeApiServer? local;
        private readonly ApiServerProcess? child;
        private readonly string? kubeconfig;

        private RoundServer(KubeApiServer? local, ApiServerProcess? child, string? kubeconfig, string url, string? token)
        {
            this.local = local;
            this.child = child;
            this.kubeconfig = kubeconfig;
            Url = url;
            Token = token;
        }

        public string Url { get; }

        public string? Token { get; }

        public static async Task<RoundServer> StartAsync(ApiServerProcess? child, string? kubeconfig, int? writeLatencyMs)
        {
            if (kubeconfig is not null)
            {
                var config = KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig);
                return new RoundServer(null, null, kubeconfig, config.Host, null);
            }

            if (child is not null)
            {
                var (url, token) = await child.StartServerAsync(writeLatencyMs);
                return new RoundServer(null, child, null, url, token);
            }

            var server = await KubeApiServer.StartAsync(PhaseOneServer.ServerOptions());
            if (writeLatencyMs is { } ms)
            {
                PhaseOneServer.DelayWrites(server, TimeSpan.FromMilliseconds(ms));
            }

            return new RoundServer(server, null, null, server.Url, server.Options.Token);
        }

        /// <summary>A fresh client configuration for this server (each client gets its own).</summary>
        public KubernetesClientConfiguration Config() => kubeconfig is not null
            ? KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig)
            : new KubernetesClientConfiguration { Host = Url, AccessToken = Token };

        public async Task<string> WriteKubeconfigAsync(string path, string @namespace)
        {
            if (kubeconfig is not null)
            {
                return kubeconfig;
            }

            if (local is not null)
            {
                return local.WriteKubeconfig(path, @namespace);
            }

            await child!.WriteKubeconfigAsync(path, @namespace);
            return path;
        }

        /// <summary>A position in the server's request log; null on a cluster, whose log is not readable from here.</summary>
        public async Task<RequestMark?> MarkAsync() => local is not null ? new RequestMark(local.Requests, 0) : child is not null ? new RequestMark(null, await child.CountAsync()) : null;

        public async Task<List<RecordedRequest>> SinceAsync(RequestMark mark) =>
            local is not null ? NewSince(mark.Log!, local.Requests) : await child!.RequestsAsync(mark.Index, await child.CountAsync());

        public async ValueTask DisposeAsync()
        {
            if (local is not null)
            {
                await local.DisposeAsync();
            }
            else if (child is not null)
            {
                await child.StopServerAsync();
            }
        }
    }
}
