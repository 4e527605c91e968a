using System.Diagnostics;
using k8s;
using Xunit.Abstractions;

namespace Rpoi.Chaos;

/// <summary>
/// The real-cluster mode (<c>RPOI_TEST_KUBECONFIG</c> / <c>--kubeconfig</c>), exercised against the API test server
/// started as a process of its own and reached only through a kubeconfig file: the harness takes the same code path as
/// against a real cluster (its own namespaces, Nodes and CRDs, no fault injector at hand).
/// </summary>
public sealed class RealClusterTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_run_through_a_kubeconfig_settles_exactly_once_without_server_faults_and_leaves_nothing_behind()
    {
        await using var api = await ApiProcess.StartAsync();
        var log = new StringWriter();
        var heartbeats = 0;
        var report = await ChaosRun.RunAsync(new ChaosOptions
        {
            Seed = 22,
            Leases = 20,
            Kills = 3,
            EscrowRestarts = 1,
            Nodes = 6,
            Concurrency = 10,
            LeaderLeaseSeconds = 4,
            Kubeconfig = api.Kubeconfig,
            Log = TextWriter.Synchronized(log),
            // Not sabotage: before the end checks, see that the harness kept its kubelet-less nodes Ready.
            Sabotage = async (kube, _, _) =>
            {
                var nodes = (await kube.CoreV1.ListNodeAsync(labelSelector: ChaosCluster.RunLabel)).Items;
                heartbeats = nodes.Count(n => n.Status?.Conditions?.Any(c => c is { Type: "Ready", Status: "True", Reason: "ChaosHeartbeat" }) == true);
            },
        });
        output.WriteLine(log.ToString());
        output.WriteLine(report.Summary());
        Assert.True(report.Problems.Count == 0, report.Summary());
        Assert.Equal(6 + 1, heartbeats);
        Assert.DoesNotContain("heartbeat", log.ToString(), StringComparison.Ordinal);
        Assert.Equal(20 + 1, report.Settled);
        Assert.Equal(3, report.OperatorKills);
        Assert.True(report.LeaderKills >= 1 && report.LeaderTransitions >= 1, report.Summary());
        Assert.Equal(1, report.EscrowRestarts);
        Assert.Equal(0, report.FaultsArmed);
        Assert.Equal(0, report.WatchesCut);
        Assert.Contains("No server-side fault injection and no watch cuts", log.ToString(), StringComparison.Ordinal);
        await AssertNothingLeftAsync(api, crdsBefore: 0, "after a passing run");
    }

    [Fact]
    public async Task A_run_that_fails_midway_still_deletes_its_nodes_namespaces_and_crds()
    {
        await using var api = await ApiProcess.StartAsync();
        var log = new StringWriter();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => ChaosRun.RunAsync(new ChaosOptions
        {
            Seed = 23,
            Leases = 2,
            Kills = 0,
            Nodes = 2,
            LeaderLeaseSeconds = 4,
            Kubeconfig = api.Kubeconfig,
            Log = TextWriter.Synchronized(log),
            Sabotage = (_, _, _) => throw new InvalidOperationException("sabotage: the run breaks before its end checks"),
        }));
        output.WriteLine(log.ToString());
        Assert.StartsWith("sabotage:", e.Message, StringComparison.Ordinal);
        Assert.Contains("[chaos] cleaned up run ", log.ToString(), StringComparison.Ordinal);
        await AssertNothingLeftAsync(api, crdsBefore: 0, "after a failed run");
    }

    [Fact]
    public async Task A_missing_unreachable_or_refused_kubeconfig_exits_2_naming_it_and_creates_nothing()
    {
        var dir = Directory.CreateTempSubdirectory("rpoi-chaos-badkube-").FullName;
        try
        {
            var missing = Path.Combine(dir, "missing.kubeconfig");
            var (code, stderr) = await ConsoleAsync("--kubeconfig", missing, "--leases", "2");
            Assert.Equal(2, code);
            Assert.Contains($"kubeconfig {missing}: no such file", stderr, StringComparison.Ordinal);

            var garbled = Path.Combine(dir, "garbled.kubeconfig");
            await File.WriteAllTextAsync(garbled, "clusters: [this is not: a kubeconfig");
            (code, stderr) = await ConsoleAsync("--kubeconfig", garbled);
            Assert.Equal(2, code);
            Assert.Contains($"kubeconfig {garbled} cannot be read", stderr, StringComparison.Ordinal);

            await using var api = await ApiProcess.StartAsync();
            var good = await File.ReadAllTextAsync(api.Kubeconfig);
            var unreachable = Path.Combine(dir, "unreachable.kubeconfig");
            await File.WriteAllTextAsync(unreachable, good.Replace(api.Url, "http://127.0.0.1:1", StringComparison.Ordinal));
            (code, stderr) = await ConsoleAsync("--kubeconfig", unreachable);
            Assert.Equal(2, code);
            Assert.Contains($"kubeconfig {unreachable}: the cluster at http://127.0.0.1:1 cannot be used", stderr, StringComparison.Ordinal);

            // Through the environment variable too; a token the server refuses is a 401 before anything is made.
            var refused = Path.Combine(dir, "refused.kubeconfig");
            await File.WriteAllTextAsync(refused, System.Text.RegularExpressions.Regex.Replace(good, "token: .*", "token: wrong"));
            (code, stderr) = await ConsoleAsync(new Dictionary<string, string> { ["RPOI_TEST_KUBECONFIG"] = refused }, "--leases", "2");
            Assert.Equal(2, code);
            Assert.Contains($"kubeconfig {refused}: the cluster at {api.Url} cannot be used (401 Unauthorized)", stderr, StringComparison.Ordinal);
            await AssertNothingLeftAsync(api, crdsBefore: 0, "after refused runs");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task AssertNothingLeftAsync(ApiProcess api, int crdsBefore, string when)
    {
        using var client = new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(api.Kubeconfig));
        var nodes = await client.CoreV1.ListNodeAsync();
        Assert.True(nodes.Items.Count == 0, $"{when}: nodes left: {string.Join(", ", nodes.Items.Select(n => n.Metadata.Name))}");
        var namespaces = (await client.CoreV1.ListNamespaceAsync()).Items.Select(n => n.Metadata.Name).ToList();
        Assert.Equal(["default", "kube-node-lease", "kube-public", "kube-system"], namespaces.Order(StringComparer.Ordinal));
        Assert.Equal(crdsBefore, (await client.ApiextensionsV1.ListCustomResourceDefinitionAsync()).Items.Count);
    }

    private static Task<(int Code, string Stderr)> ConsoleAsync(params string[] args) => ConsoleAsync(new Dictionary<string, string>(), args);

    /// <summary>Runs the console mode (this assembly, by the dotnet host) and returns its exit code and stderr.</summary>
    private static async Task<(int Code, string Stderr)> ConsoleAsync(Dictionary<string, string> env, params string[] args)
    {
        var info = new ProcessStartInfo(ApiProcess.DotnetHost()) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        info.ArgumentList.Add(typeof(ChaosRun).Assembly.Location);
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        info.Environment.Remove("RPOI_TEST_KUBECONFIG");
        foreach (var (k, v) in env)
        {
            info.Environment[k] = v;
        }

        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stderr + await stdout);
    }

    /// <summary>The API test server as a child process (<c>serve-api</c>), with the kubeconfig it wrote.</summary>
    private sealed class ApiProcess : IAsyncDisposable
    {
        private readonly Process process;
        private readonly string dir;

        private ApiProcess(Process process, string dir, string url)
        {
            this.process = process;
            this.dir = dir;
            Url = url;
        }

        public string Kubeconfig => Path.Combine(dir, "kubeconfig");

        public string Url { get; }

        public static async Task<ApiProcess> StartAsync()
        {
            var dir = Directory.CreateTempSubdirectory("rpoi-chaos-api-").FullName;
            var info = new ProcessStartInfo(DotnetHost()) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
            info.ArgumentList.Add(typeof(ChaosRun).Assembly.Location);
            info.ArgumentList.Add("serve-api");
            info.ArgumentList.Add(Path.Combine(dir, "kubeconfig"));
            var process = Process.Start(info)!;
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var line = await process.StandardOutput.ReadLineAsync(timeout.Token);
            Assert.True(line?.StartsWith("serving ", StringComparison.Ordinal) == true, $"serve-api printed '{line}' instead of 'serving <url>'");
            return new ApiProcess(process, dir, line!["serving ".Length..]);
        }

        public static string DotnetHost() =>
            Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

        public async ValueTask DisposeAsync()
        {
            // Closing stdin stops it; kill it if it does not.
            process.StandardInput.Close();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill();
            }

            process.Dispose();
            Directory.Delete(dir, recursive: true);
        }
    }
}
