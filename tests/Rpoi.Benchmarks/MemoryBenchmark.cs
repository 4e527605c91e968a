using System.Diagnostics;
using System.Globalization;
using System.Text;
using k8s;
using k8s.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Rpoi.Escrow;
using Rpoi.Escrow.Client;
using Rpoi.Escrow.Storage;
using Rpoi.Kube.ApiServer;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Protocol.Keys;

namespace Rpoi.Benchmarks;

/// <summary>
/// Issue 14 item 1: the resident memory of the shipped operator (Rpoi.Operator.dll run as its container runs it: phase I
/// and II, discovery, metrics) with N Active Leases and N Nodes in its caches. The operator is a child process, so its RSS
/// is its own: the API test server and π (Rpoi.Escrow on SQLite) run in this process. The Nodes look like GKE's
/// (labels, conditions, images, node info), the Leases are brought to Active by the operator itself through the real π.
/// Measured (VmRSS from /proc/&lt;pid&gt;/status, once the operator's CPU has been quiet for 3 s):
/// A. the operator with the N Nodes cached and no Lease; B. after all N Leases went Active; C. a fresh operator
/// process (restart) that lists everything into its caches; then C again with each GC setting of <see cref="Variants"/>.
/// Every measurement also asks the operator's /readyz: a row that is not ready is not a working operator (a heap limit
/// too small fails the informers' lists, which then retry quietly).
/// Run: <c>dotnet run -c Release --project tests/Rpoi.Benchmarks -- memory [leases] [dir] [variants] [runs]</c> (default
/// 10000, a temporary directory, every variant, one run each; variants: a comma-separated list of the keys of
/// <see cref="Variants"/> and <c>shipped</c>; the <c>dir…</c> variants run another build of the operator given with
/// <c>--operator-dir DIR</c>, e.g. a ReadyToRun publish or the code before a change, so both are measured in one run). With a
/// directory, the API objects and π's ledger are saved there after the burst; a later run with the same directory
/// restores them (24 h leases, still Active) and measures only the C rows, so a change can be measured in minutes.
/// </summary>
internal static class MemoryBenchmark
{
    private const string Ns = "team-a";
    private const string OperatorNs = "rpoi-system";

    /// <summary>
    /// Environment variables of each restart after the shipped one, by name (the 3rd argument picks them; "all" or none:
    /// every one). The heap limits are what the chart's <c>operator.gcHeapHardLimitPercent</c> gives under its
    /// <c>limits.memory</c> (.NET takes the percentage of the container's limit), written as bytes because this child
    /// process has no container limit.
    /// </summary>
    private static readonly (string Key, string Name, Dictionary<string, string> Env, bool Published)[] Variants =
    [
        ("defaults", ".NET's defaults (background GC on, no conserve-memory)", new() { ["DOTNET_gcConcurrent"] = "1", ["DOTNET_GCConserveMemory"] = "0" }, false),
        ("gen0", "shipped + DOTNET_GCgen0size=0x400000 (4 MiB gen0 budget)", new() { ["DOTNET_GCgen0size"] = "0x400000" }, false),
        ("h128", "shipped + DOTNET_GCHeapHardLimit=0x8000000 (128 MiB)", new() { ["DOTNET_GCHeapHardLimit"] = "0x8000000" }, false),
        ("h96", "shipped + DOTNET_GCHeapHardLimit=0x6000000 (96 MiB)", new() { ["DOTNET_GCHeapHardLimit"] = "0x6000000" }, false),
        ("h80", "shipped + DOTNET_GCHeapHardLimit=0x5000000 (80 MiB)", new() { ["DOTNET_GCHeapHardLimit"] = "0x5000000" }, false),
        ("h64", "shipped + DOTNET_GCHeapHardLimit=0x4000000 (64 MiB)", new() { ["DOTNET_GCHeapHardLimit"] = "0x4000000" }, false),
        ("h48", "shipped + DOTNET_GCHeapHardLimit=0x3000000 (48 MiB)", new() { ["DOTNET_GCHeapHardLimit"] = "0x3000000" }, false),
        ("chart", "as the chart ships it: 32 % of limits.memory 400Mi = DOTNET_GCHeapHardLimit=0x8000000 (128 MiB)", new() { ["DOTNET_GCHeapHardLimit"] = "0x8000000" }, false),
        ("server", "DOTNET_gcServer=1 (server GC)", new() { ["DOTNET_gcServer"] = "1" }, false),
        ("wx0", "shipped + DOTNET_EnableWriteXorExecute=0 (JIT code mapped once, not twice)", new() { ["DOTNET_EnableWriteXorExecute"] = "0" }, false),
        ("pgo0", "shipped + DOTNET_TieredPGO=0 (no instrumented tier)", new() { ["DOTNET_TieredPGO"] = "0" }, false),
        ("wx0h128", "shipped + DOTNET_EnableWriteXorExecute=0 + DOTNET_GCHeapHardLimit=0x8000000 (128 MiB)", new() { ["DOTNET_EnableWriteXorExecute"] = "0", ["DOTNET_GCHeapHardLimit"] = "0x8000000" }, false),
        ("tc0", "shipped + DOTNET_TieredCompilation=0 (every method JIT-compiled once, optimized)", new() { ["DOTNET_TieredCompilation"] = "0" }, false),
        ("qjfl0", "shipped + DOTNET_TC_QuickJitForLoops=0 (methods with loops optimized at once)", new() { ["DOTNET_TC_QuickJitForLoops"] = "0" }, false),
        ("tc0h128", "shipped + DOTNET_TieredCompilation=0 + DOTNET_GCHeapHardLimit=0x8000000 (128 MiB)", new() { ["DOTNET_TieredCompilation"] = "0", ["DOTNET_GCHeapHardLimit"] = "0x8000000" }, false),
        ("gen0max", "shipped + DOTNET_GCgen0MaxBudget=0x600000 (gen0 budget at most 6 MiB)", new() { ["DOTNET_GCgen0MaxBudget"] = "0x600000" }, false),
        ("gen0maxh128", "shipped + DOTNET_GCgen0MaxBudget=0x600000 + DOTNET_GCHeapHardLimit=0x8000000 (128 MiB)", new() { ["DOTNET_GCgen0MaxBudget"] = "0x600000", ["DOTNET_GCHeapHardLimit"] = "0x8000000" }, false),
        ("arena2", "shipped + MALLOC_ARENA_MAX=2 (glibc: two native heaps, not one per thread)", new() { ["MALLOC_ARENA_MAX"] = "2" }, false),
        // Another build of the operator (--operator-dir), e.g. published ReadyToRun, or the code before a change.
        ("dir", "the --operator-dir build, shipped runtimeconfig", new(), true),
        ("dirchart", "the --operator-dir build, the chart's 128 MiB heap limit", new() { ["DOTNET_GCHeapHardLimit"] = "0x8000000" }, true),
        ("dirtc0", "the --operator-dir build + DOTNET_TieredCompilation=0", new() { ["DOTNET_TieredCompilation"] = "0" }, true),
        ("dirnor2r", "the --operator-dir build + DOTNET_ReadyToRun=0 (precompiled code ignored, also the framework's)", new() { ["DOTNET_ReadyToRun"] = "0" }, true),
    ];

    public static async Task<int> RunAsync(string[] args)
    {
        // --operator-dir DIR (anywhere): the other build of the operator that the "dir…" variants run; the rest are positional.
        string? published = null;
        var at = Array.IndexOf(args, "--operator-dir");
        if (at >= 0)
        {
            published = at + 1 < args.Length ? Path.GetFullPath(args[at + 1]) : throw new ArgumentException("--operator-dir needs a directory: the output of 'dotnet publish operator/Rpoi.Operator -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true -o DIR'");
            if (!File.Exists(Path.Combine(published, "Rpoi.Operator.dll")))
            {
                throw new ArgumentException($"--operator-dir: {published} has no Rpoi.Operator.dll; publish the operator there first (dotnet publish operator/Rpoi.Operator -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true -o {published})");
            }

            args = [.. args[..at], .. args[(at + 2)..]];
        }

        if (args.FirstOrDefault(a => a.StartsWith("--", StringComparison.Ordinal)) is { } flag)
        {
            throw new ArgumentException($"unknown flag '{flag}'; the only flag is --operator-dir DIR, the rest are positional: [leases] [dir] [variants] [runs]");
        }

        var count = args.Length > 0 ? PhaseOneBenchmark.Positive(args[0], "leases (1st argument)") : 10_000;
        var keep = args.Length > 1 ? Path.GetFullPath(args[1]) : null;
        var picked = args.Length > 2 && args[2] != "all" ? args[2].Split(',', StringSplitOptions.RemoveEmptyEntries) : [.. Variants.Select(v => v.Key)];
        if (picked.FirstOrDefault(k => k != "shipped" && !Variants.Any(v => v.Key == k)) is { } unknown)
        {
            throw new ArgumentException($"variants (3rd argument): unknown '{unknown}'; use a comma-separated list of shipped,{string.Join(',', Variants.Select(v => v.Key))} or all");
        }

        if (published is null && picked.FirstOrDefault(k => Variants.Any(v => v.Key == k && v.Published)) is { } needsDir)
        {
            throw new ArgumentException($"variant '{needsDir}' runs another build of the operator: add --operator-dir DIR (dotnet publish operator/Rpoi.Operator -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true -o DIR)");
        }

        var repeat = args.Length > 3 ? PhaseOneBenchmark.Positive(args[3], "runs per variant (4th argument)") : 1;
        var dir = keep ?? Directory.CreateTempSubdirectory("rpoi-memory-").FullName;
        Directory.CreateDirectory(dir);
        var snapshot = Path.Combine(dir, "api-objects.json");
        var restored = keep is not null && File.Exists(snapshot);
        Console.WriteLine($"memory benchmark: {count} Leases, {count} GKE-like v5e 2x2 Nodes; operator = Rpoi.Operator.dll as a child process; {Environment.ProcessorCount} cores; {DateTime.UtcNow:u}");
        await using var api = await KubeApiServer.StartAsync(PhaseOneServer.ServerOptions() with
        {
            InitialNamespaces = ["default", "kube-system", "kube-public", "kube-node-lease", OperatorNs, Ns],
            RestoreFrom = restored ? snapshot : null,
        });
        foreach (var crd in Rpoi.Sandbox.Sandbox.LoadCrds())
        {
            api.RegisterCustomResourceDefinition(crd);
        }

        var kubeconfig = api.WriteKubeconfig(Path.Combine(dir, "kubeconfig"), Ns);
        using var client = new Kubernetes(new KubernetesClientConfiguration { Host = api.Url, AccessToken = api.Options.Token });
        var clock = Stopwatch.StartNew();
        if (restored)
        {
            Console.WriteLine($"setup: {api.RestoredObjects} API objects restored from {snapshot}");
        }

        // π on SQLite in this process, trusting β; the renter funded for every lease. Keys are kept with the snapshot.
        var leaser = Keys(Path.Combine(dir, "leaser.key"), PartyRole.Leaser);
        var escrowKeys = Keys(Path.Combine(dir, "escrow.key"), PartyRole.Escrow);
        var renter = Keys(Path.Combine(dir, "renter.key"), PartyRole.Renter);
        var store = new SqliteEscrowStore(Path.Combine(dir, "escrow.db"));
        await store.InitializeAsync(CancellationToken.None);
        await using var escrow = EscrowHost.Build(new EscrowOptions { Database = Path.Combine(dir, "escrow.db") },
            new EscrowHostParts(store, escrowKeys, TimeProvider.System, [leaser.Identity], Encoding.UTF8.GetBytes("memory-admin")), "http://127.0.0.1:0", b => b.Logging.ClearProviders());
        await escrow.StartAsync();
        var escrowUrl = escrow.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single() + "/";
        using var http = new HttpClient();
        var admin = new EscrowClient(http, new EscrowClientOptions { BaseAddress = new Uri(escrowUrl), Credentials = EscrowCredentials.Admin("memory-admin") });
        if (!restored)
        {
            await admin.DepositAsync(new DepositRequest("fund", renter.Identity.Address, new EscrowAmount((1_500_000L * count).ToString(CultureInfo.InvariantCulture), "uusd")));
        }

        string[] operatorArgs =
        [
            "run", "--leaser-key-file", Path.Combine(dir, "leaser.key"), "--escrow-url", escrowUrl, "--escrow-address", escrowKeys.Identity.Address,
            "--cluster-server", api.Url, "--kubeconfig", kubeconfig, "--namespace", OperatorNs, "--leader-election", "false", "--metrics-port", "0",
        ];
        var rows = new List<Row>();
        var all = new[] { (Key: "shipped", Name: "as shipped (Rpoi.Operator.runtimeconfig.json)", Env: new Dictionary<string, string>(), Published: false) }.Concat(Variants).ToList();
        string Build(bool isPublished) => isPublished ? published! : AppContext.BaseDirectory;

        if (!restored)
        {
            // Rows 0, A and B run with the first variant named (e.g. "chart" for the chart's heap limit).
            var first = all.First(v => v.Key == picked[0]);
            using (var empty = OperatorProcess.Start(Build(first.Published), operatorArgs, first.Env, dir))
            {
                await empty.QuietAsync();
                rows.Add(await empty.MeasureAsync($"0. nothing cached, {first.Name}"));
            }

            clock.Restart();
            await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) => await client.CoreV1.CreateNodeAsync(GkeNode(i), cancellationToken: ct));
            Console.WriteLine($"setup: {count} nodes in {clock.ElapsedMilliseconds} ms ({KubernetesJson.Serialize(GkeNode(0)).Length} bytes of JSON each)");
            using var op = OperatorProcess.Start(Build(first.Published), operatorArgs, first.Env, dir);
            await op.QuietAsync();
            rows.Add(await op.MeasureAsync($"A. nodes cached, no lease, {first.Name}"));

            clock.Restart();
            await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
                await client.CustomObjects.CreateNamespacedCustomObjectAsync(PhaseOneBenchmark.BuildLease(renter, leaser, escrowKeys, $"mem-{i:D5}", withFinalizer: true, ns: Ns, seconds: 86_400),
                    Lease.Group, Lease.Version, Ns, Lease.Plural, cancellationToken: ct));
            var active = 0;
            while (active < count)
            {
                op.ThrowIfExited();
                active = CountActive(api, count);
                if (clock.Elapsed > TimeSpan.FromMinutes(30))
                {
                    throw new TimeoutException($"{active}/{count} Active after 30 min");
                }

                await Task.Delay(5000);
            }

            Console.WriteLine($"all {count} Leases Active {clock.Elapsed.TotalSeconds:0} s after the first create (real π on SQLite)");
            await op.QuietAsync();
            rows.Add(await op.MeasureAsync($"B. after the burst, N Active, {first.Name}"));
        }

        if (keep is not null)
        {
            await api.SaveSnapshotAsync(snapshot);
        }

        var nowActive = CountActive(api, count);
        if (nowActive != count)
        {
            throw new InvalidOperationException($"{nowActive}/{count} Leases are Active before the restarts; start with an empty directory");
        }

        var restarts = picked.Select(k => all.First(v => v.Key == k));
        foreach (var (_, name, env, isPublished) in restarts)
        {
            for (var run = 1; run <= repeat; run++)
            {
                using var op = OperatorProcess.Start(Build(isPublished), operatorArgs, env, dir);
                try
                {
                    await op.QuietAsync();
                    rows.Add(await op.MeasureAsync($"C. restarted, {name}{(repeat > 1 ? $", run {run}" : "")}"));
                }
                catch (InvalidOperationException e)
                {
                    // A setting the operator cannot live with (a heap limit too small) is a result too.
                    rows.Add(new Row($"C. restarted, {name}: {e.Message.Split('\n')[0]}", 0, 0, 0, 0, false, ""));
                }
            }
        }

        Console.WriteLine();
        Console.WriteLine("| operator process | ready (/readyz) | RSS MB | anonymous MB | file-backed MB | peak RSS MB | RSS KB per lease (over A) | live heap MB (census) |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|");
        var a = rows.FirstOrDefault(r => r.What.StartsWith('A'))?.RssKb ?? 0;
        foreach (var r in rows)
        {
            Console.WriteLine($"| {r.What} | {(r.Ready ? "ready" : "**NOT ready**")} | {r.RssKb / 1024.0:0.0} | {r.AnonKb / 1024.0:0.0} | {r.FileKb / 1024.0:0.0} | {r.PeakKb / 1024.0:0.0} | {(r.What.StartsWith('A') || a == 0 ? "" : ((r.RssKb - a) / (double)count).ToString("0.00", CultureInfo.InvariantCulture))} | {(r.HeapBytes > 0 ? (r.HeapBytes / 1048576.0).ToString("0.0", CultureInfo.InvariantCulture) : "")} |");
        }

        Console.WriteLine();
        Console.WriteLine("largest mapped files of each process (RSS KB):");
        foreach (var r in rows.Where(r => r.Files.Length > 0))
        {
            Console.WriteLine($"- {r.What}: {r.Files}");
        }

        if (keep is null)
        {
            Directory.Delete(dir, recursive: true);
        }

        return 0;
    }

    private static PartyKeyPair Keys(string path, PartyRole role)
    {
        if (!File.Exists(path))
        {
            KeyFile.Save(path, PartyKeyPair.Generate(role), DateTimeOffset.UtcNow);
        }

        return KeyFile.Load(path).Value.Keys;
    }

    private static int CountActive(KubeApiServer api, int count) =>
        Enumerable.Range(0, count).Count(i => api.GetObject($"{Lease.Group}/{Lease.Version}", "Lease", Ns, $"mem-{i:D5}")?["status"]?["phase"]?.GetValue<string>() == "Active");

    /// <summary>A Node as GKE writes one: its labels, taint, capacity, conditions, addresses, node info and cached images.</summary>
    private static V1Node GkeNode(int i)
    {
        var name = $"gke-tpu-pool-{i / 64:D3}-{i:D5}";
        var labels = new Dictionary<string, string>
        {
            [TpuLabels.Accelerator] = "tpu-v5-lite-podslice",
            [TpuLabels.Topology] = "2x2",
            [TpuLabels.NodePool] = $"tpu-pool-{i:D5}",
            ["kubernetes.io/hostname"] = name,
            ["kubernetes.io/os"] = "linux",
            ["kubernetes.io/arch"] = "amd64",
            ["beta.kubernetes.io/os"] = "linux",
            ["beta.kubernetes.io/arch"] = "amd64",
            ["beta.kubernetes.io/instance-type"] = "ct5lp-hightpu-4t",
            ["node.kubernetes.io/instance-type"] = "ct5lp-hightpu-4t",
            ["cloud.google.com/gke-boot-disk"] = "pd-balanced",
            ["cloud.google.com/gke-container-runtime"] = "containerd",
            ["cloud.google.com/gke-cpu-scaling-level"] = "224",
            ["cloud.google.com/gke-logging-variant"] = "DEFAULT",
            ["cloud.google.com/gke-max-pods-per-node"] = "110",
            ["cloud.google.com/gke-nodepool"] = $"tpu-pool-{i:D5}",
            ["cloud.google.com/gke-os-distribution"] = "cos",
            ["cloud.google.com/gke-provisioning"] = "standard",
            ["cloud.google.com/gke-stack-type"] = "IPV4",
            ["cloud.google.com/machine-family"] = "ct5lp",
            ["cloud.google.com/private-node"] = "false",
            ["topology.gke.io/zone"] = "us-west4-a",
            ["topology.kubernetes.io/region"] = "us-west4",
            ["topology.kubernetes.io/zone"] = "us-west4-a",
            ["failure-domain.beta.kubernetes.io/region"] = "us-west4",
            ["failure-domain.beta.kubernetes.io/zone"] = "us-west4-a",
        };
        var resources = new Dictionary<string, ResourceQuantity>
        {
            [TpuLabels.TpuResource] = new("4"),
            ["cpu"] = new("224"),
            ["memory"] = new("198015032Ki"),
            ["pods"] = new("110"),
            ["ephemeral-storage"] = new("98831908Ki"),
            ["hugepages-1Gi"] = new("0"),
            ["hugepages-2Mi"] = new("0"),
        };
        string[] conditions = ["FrequentContainerdRestart", "FrequentDockerRestart", "FrequentKubeletRestart", "FrequentUnregisterNetDevice", "KernelDeadlock", "ReadonlyFilesystem", "CorruptDockerOverlay2", "NetworkUnavailable", "MemoryPressure", "DiskPressure", "PIDPressure", "Ready"];
        var now = DateTime.UtcNow;
        return new V1Node
        {
            Metadata = new V1ObjectMeta
            {
                Name = name,
                Labels = labels,
                Annotations = new Dictionary<string, string>
                {
                    ["container.googleapis.com/instance_id"] = (7_000_000_000_000_000_000UL + (ulong)i).ToString(CultureInfo.InvariantCulture),
                    ["csi.volume.kubernetes.io/nodeid"] = $"{{\"pd.csi.storage.gke.io\":\"projects/p/zones/us-west4-a/instances/{name}\"}}",
                    ["node.alpha.kubernetes.io/ttl"] = "0",
                    ["node.gke.io/last-applied-node-labels"] = string.Join(',', labels.Take(12).Select(kv => $"{kv.Key}={kv.Value}")),
                    ["volumes.kubernetes.io/controller-managed-attach-detach"] = "true",
                },
            },
            Spec = new V1NodeSpec
            {
                PodCIDR = $"10.{i / 256 % 256}.{i % 256}.0/24",
                ProviderID = $"gce://p/us-west4-a/{name}",
                Taints = [new V1Taint { Key = TpuLabels.GkeTpuTaintKey, Value = TpuLabels.GkeTpuTaintValue, Effect = TpuLabels.NoSchedule }],
            },
            Status = new V1NodeStatus
            {
                Capacity = resources,
                Allocatable = resources,
                Addresses = [new V1NodeAddress { Address = "10.0.0.1", Type = "InternalIP" }, new V1NodeAddress { Address = "34.1.2.3", Type = "ExternalIP" }, new V1NodeAddress { Address = name, Type = "Hostname" }],
                Conditions = [.. conditions.Select(c => new V1NodeCondition
                {
                    Type = c,
                    Status = c == "Ready" ? "True" : "False",
                    Reason = c == "Ready" ? "KubeletReady" : "No" + c,
                    Message = c == "Ready" ? "kubelet is posting ready status" : $"node is functioning properly ({c})",
                    LastHeartbeatTime = now,
                    LastTransitionTime = now,
                })],
                DaemonEndpoints = new V1NodeDaemonEndpoints { KubeletEndpoint = new V1DaemonEndpoint { Port = 10250 } },
                NodeInfo = new V1NodeSystemInfo
                {
                    Architecture = "amd64",
                    BootID = Guid.NewGuid().ToString(),
                    ContainerRuntimeVersion = "containerd://1.7.24",
                    KernelVersion = "6.1.112+",
                    KubeProxyVersion = "v1.32.2-gke.1182003",
                    KubeletVersion = "v1.32.2-gke.1182003",
                    MachineID = Guid.NewGuid().ToString("N"),
                    OperatingSystem = "linux",
                    OsImage = "Container-Optimized OS from Google",
                    SystemUUID = Guid.NewGuid().ToString(),
                },
                Images = [.. Enumerable.Range(0, 12).Select(k => new V1ContainerImage
                {
                    Names = [$"us-docker.pkg.dev/cloud-tpu-images/jax-ai-image/tpu@sha256:{k:x4}{new string('a', 60)}", $"us-docker.pkg.dev/cloud-tpu-images/jax-ai-image/tpu:2025-{k:D2}"],
                    SizeBytes = 1_000_000_000L + k,
                })],
            },
        };
    }

    /// <summary>One measurement: RSS and its parts (KB), whether /readyz said ready, and the largest mapped files.</summary>
    private sealed record Row(string What, long RssKb, long PeakKb, long AnonKb, long FileKb, bool Ready, string Files, long HeapBytes = 0);

    /// <summary>The shipped operator as a child process: <c>dotnet Rpoi.Operator.dll run …</c>, stopped with SIGTERM.</summary>
    private sealed class OperatorProcess : IDisposable
    {
        private readonly Process process;
        private readonly StringBuilder log = new();

        private OperatorProcess(Process process)
        {
            this.process = process;
        }

        /// <summary>The metrics/probe port given to the operator (<c>--metrics-port</c>), for /readyz.</summary>
        private int port;

        public static OperatorProcess Start(string build, string[] args, Dictionary<string, string> env, string dir)
        {
            var dll = Path.Combine(build, "Rpoi.Operator.dll");
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = dir };
            start.ArgumentList.Add(dll);
            var port = FreePort();
            for (var i = 0; i < args.Length; i++)
            {
                // The probe port is picked here, so /readyz can be asked.
                start.ArgumentList.Add(i > 0 && args[i - 1] == "--metrics-port" ? port.ToString(CultureInfo.InvariantCulture) : args[i]);
            }

            foreach (var (k, v) in env)
            {
                start.Environment[k] = v;
            }

            var op = new OperatorProcess(Process.Start(start)!) { port = port };
            op.process.OutputDataReceived += (_, e) => op.Append(e.Data);
            op.process.ErrorDataReceived += (_, e) => op.Append(e.Data);
            op.process.BeginOutputReadLine();
            op.process.BeginErrorReadLine();
            return op;
        }

        private void Append(string? line)
        {
            lock (log)
            {
                if (line is not null && log.Length < 20_000)
                {
                    log.AppendLine(line);
                }
            }
        }

        public void ThrowIfExited()
        {
            if (process.HasExited)
            {
                lock (log)
                {
                    throw new InvalidOperationException($"the operator exited with {process.ExitCode}:\n{log}");
                }
            }
        }

        private static int FreePort()
        {
            using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
            listener.Start();
            return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        }

        /// <summary>
        /// True when the operator's /readyz answers 200 (every informer has listed); asked for up to 60 s, since a first list
        /// that ran out of heap is retried after the informer's backoff and a 10,000-object relist (BENCHMARKS.md, the lead's
        /// re-runs on the merged build: with 10 s, such restarts read as not ready although they became ready).
        /// </summary>
        public async Task<bool> ReadyAsync()
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            for (var i = 0; i < 60; i++)
            {
                try
                {
                    using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/readyz"));
                    if (response.IsSuccessStatusCode)
                    {
                        return true;
                    }
                }
                catch (HttpRequestException)
                {
                }

                await Task.Delay(1000);
            }

            return false;
        }

        /// <summary>RSS, its anonymous and file-backed parts (smaps_rollup), peak, readiness and the five largest mapped files.</summary>
        public async Task<Row> MeasureAsync(string what)
        {
            var ready = await ReadyAsync();
            var rollup = Lines($"/proc/{process.Id}/smaps_rollup");
            long Field(string name) => long.Parse(rollup.Single(l => l.StartsWith(name + ":", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            var files = new Dictionary<string, long>();
            string? mapping = null;
            foreach (var line in Lines($"/proc/{process.Id}/smaps"))
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length >= 5 && parts[0].Contains('-', StringComparison.Ordinal) && !parts[0].EndsWith(':'))
                {
                    mapping = parts.Length >= 6 && parts[5].StartsWith('/') ? Path.GetFileName(parts[5]) : null;
                }
                else if (mapping is not null && parts.Length >= 2 && parts[0] == "Rss:")
                {
                    files[mapping] = files.GetValueOrDefault(mapping) + long.Parse(parts[1], CultureInfo.InvariantCulture);
                }
            }

            var top = string.Join(", ", files.OrderByDescending(f => f.Value).Take(5).Select(f => $"{f.Key} {f.Value}"));
            if (Environment.GetEnvironmentVariable("RPOI_MEMORY_SMAPS") is { Length: > 0 } smapsDir)
            {
                // Every mapping of the row, for a closer look at what the process is made of (docs: BENCHMARKS.md "memrt").
                Directory.CreateDirectory(smapsDir);
                var file = Path.Combine(smapsDir, $"smaps-{process.Id}.txt");
                await File.WriteAllLinesAsync(file, [$"# {what}", .. Lines($"/proc/{process.Id}/smaps")]);
                Console.WriteLine($"{what}: smaps in {file}");
            }

            lock (log)
            {
                // Lists that failed before the row was measured (each is retried with a fresh list): a ready row with retries
                // became ready only after one, e.g. an OutOfMemoryException under the heap limit.
                var retries = log.ToString().Split('\n').Count(l => l.Contains(" in a row)", StringComparison.Ordinal));
                if (retries > 0)
                {
                    top = $"{retries} list(s) failed and were retried before this row | " + top;
                }
            }

            if (!ready)
            {
                // Why not: the operator's own words (a failing list retried, an OutOfMemoryException) go with the row.
                lock (log)
                {
                    var why = log.ToString().Split('\n').Where(l => l.Contains("fail", StringComparison.OrdinalIgnoreCase) || l.Contains("Exception", StringComparison.Ordinal)).Take(3);
                    top = string.Join(" / ", why.Select(l => l.Trim())) + " | " + top;
                }
            }

            var rss = Field("Rss");
            var anon = Field("Anonymous");
            // Peak before the census: dotnet-gcdump's heap walk makes the process grow.
            var peak = PeakKb();
            var heap = 0L;
            if (Environment.GetEnvironmentVariable("RPOI_MEMORY_GCDUMP") is { Length: > 0 } gcdump)
            {
                // A heap census for the row (dotnet-gcdump forces a full GC, so only after RSS was read): see BENCHMARKS.md.
                var file = Path.Combine(Path.GetTempPath(), $"rpoi-memory-{process.Id}.gcdump");
                using var dump = Process.Start(gcdump, ["collect", "-p", process.Id.ToString(CultureInfo.InvariantCulture), "-o", file]);
                await dump.WaitForExitAsync();
                var report = new ProcessStartInfo(gcdump, ["report", file]) { RedirectStandardOutput = true };
                using var reader = Process.Start(report)!;
                var text = await reader.StandardOutput.ReadToEndAsync();
                await reader.WaitForExitAsync();
                await File.WriteAllTextAsync(file + ".txt", text);
                // "  106,811,269  GC Heap bytes": the live objects after the full GC the dump forces.
                heap = text.Split('\n').Where(l => l.Contains("GC Heap bytes", StringComparison.Ordinal))
                    .Select(l => long.Parse(l.Trim().Split(' ')[0], NumberStyles.AllowThousands, CultureInfo.InvariantCulture)).FirstOrDefault();
                Console.WriteLine($"{what}: heap census in {file} (report {file}.txt): {heap:N0} live bytes");
            }

            return new Row(what, rss, peak, anon, rss - anon, ready, top, heap);
        }

        private string[] Lines(string path)
        {
            try
            {
                return File.ReadAllLines(path);
            }
            catch (IOException)
            {
                // The process is gone: say so with its log.
                ThrowIfExited();
                throw;
            }
        }

        private string[] Status() => Lines($"/proc/{process.Id}/status");

        private long StatusKb(string field) =>
            long.Parse(Status().Single(l => l.StartsWith(field + ":", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);

        public long PeakKb() => StatusKb("VmHWM");

        /// <summary>utime + stime of the child in clock ticks (1/100 s).</summary>
        private long CpuTicks()
        {
            var stat = string.Join('\n', Lines($"/proc/{process.Id}/stat"));
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        }

        /// <summary>Waits until the operator has started and then used under 3% of a core for 3 s running (its caches are synced, its work done).</summary>
        public async Task QuietAsync()
        {
            var watch = Stopwatch.StartNew();
            await Task.Delay(2000);
            while (true)
            {
                ThrowIfExited();
                var before = CpuTicks();
                await Task.Delay(3000);
                if (CpuTicks() - before <= 9)
                {
                    return;
                }

                if (watch.Elapsed > TimeSpan.FromMinutes(20))
                {
                    throw new TimeoutException("the operator did not go quiet within 20 min");
                }
            }
        }

        public void Dispose()
        {
            if (!process.HasExited)
            {
                // SIGTERM, as the kubelet stops a container: the operator shuts down cleanly.
                using var kill = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]);
                kill.WaitForExit();
            }

            process.WaitForExit(30_000);
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            process.Dispose();
        }
    }
}
