using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;
using Rpoi.Kube.ApiServer;
using Rpoi.Kube.Controllers;
using Rpoi.Kube.Informers;

namespace Rpoi.Benchmarks;

/// <summary>
/// Operator runtime throughput: the test API server replays one recorded history of watch events to
/// (1) a bare HTTP line counter, (2) KubernetesClient's watch decoder and (3) informer → queue →
/// no-op reconciler. Replay (watching from a resourceVersion before the writes) takes the writers
/// out of the measurement, so the figures are what each consumer can absorb.
/// Run: <c>dotnet run -c Release --project tests/Rpoi.Benchmarks -- runtime [objects] [updatesPerObject] [rounds]</c>.
/// </summary>
internal static class RuntimeBenchmark
{
    private const string Ns = "default";
    private static readonly CustomResource Resource = new("bench.example.test", "v1", "gadgets");

    private const string Crd = """
        {
          "apiVersion": "apiextensions.k8s.io/v1",
          "kind": "CustomResourceDefinition",
          "metadata": { "name": "gadgets.bench.example.test" },
          "spec": {
            "group": "bench.example.test",
            "scope": "Namespaced",
            "names": { "plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList" },
            "versions": [{ "name": "v1", "served": true, "storage": true,
              "schema": { "openAPIV3Schema": { "type": "object", "properties": {
                "spec": { "type": "object", "properties": { "n": { "type": "integer" }, "pad": { "type": "string" } } } } } } }]
          }
        }
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        var objects = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 1000;
        var updates = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 9;
        var rounds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 5;
        var total = objects * (1 + updates);

        await using var server = await KubeApiServer.StartAsync(new KubeApiServerOptions
        {
            WatchHistorySize = total + 10,
            WatchQueueCapacity = total + 10,
            BookmarkInterval = TimeSpan.FromSeconds(30),
        });
        server.RegisterCustomResourceDefinition(Crd);
        using var client = new Kubernetes(new KubernetesClientConfiguration { Host = server.Url, AccessToken = server.Options.Token });
        var startRv = server.ResourceVersion.ToString(CultureInfo.InvariantCulture);

        var write = Stopwatch.StartNew();
        await WriteHistoryAsync(server, objects, updates);
        write.Stop();
        Console.WriteLine($"runtime benchmark: {objects} objects x (1 create + {updates} updates) = {total} watch events, {rounds} rounds after a warm-up, {Environment.ProcessorCount} cores");
        Console.WriteLine($"writes (16 concurrent HTTP clients): {total / write.Elapsed.TotalSeconds,10:N0} writes/s");

        var bare = new List<double>();
        var decoded = new List<double>();
        var pipeline = new List<double>();
        var reconciles = new List<long>();
        var bareCpu = new List<double>();
        var decodedCpu = new List<double>();
        var pipelineCpu = new List<double>();
        // Round 0 is a warm-up (JIT, connection pools) and is not reported.
        for (var round = 0; round <= rounds; round++)
        {
            if (round == 0)
            {
                await BareWatchAsync(server, startRv, total);
                await ClientWatchAsync(client, startRv, total);
                await PipelineAsync(client, startRv, total, objects, updates);
                continue;
            }

            bare.Add(await Measure(() => BareWatchAsync(server, startRv, total), bareCpu));
            decoded.Add(await Measure(() => ClientWatchAsync(client, startRv, total), decodedCpu));
            long count = 0;
            pipeline.Add(await Measure(
                async () =>
                {
                    (var seconds, count) = await PipelineAsync(client, startRv, total, objects, updates);
                    return seconds;
                },
                pipelineCpu));
            reconciles.Add(count);
        }

        Report("bare watch (HTTP lines)", total, bare, bareCpu);
        Report("KubernetesClient watch (decoded)", total, decoded, decodedCpu);
        Report("informer -> queue -> no-op reconcile", total, pipeline, pipelineCpu);
        Console.WriteLine($"reconciles per round (dedup of {total} events over {objects} keys): {string.Join(", ", reconciles)}");
        return 0;
    }

    // Process CPU (server + consumer share one process) is steadier than wall time on a shared machine.
    private static async Task<double> Measure(Func<Task<double>> run, List<double> cpuSeconds)
    {
        var before = Process.GetCurrentProcess().TotalProcessorTime;
        var wall = await run();
        cpuSeconds.Add((Process.GetCurrentProcess().TotalProcessorTime - before).TotalSeconds);
        return wall;
    }

    private static void Report(string name, int events, List<double> seconds, List<double> cpuSeconds)
    {
        var median = seconds.Order().ElementAt(seconds.Count / 2);
        var best = seconds.Min();
        var cpu = cpuSeconds.Order().ElementAt(cpuSeconds.Count / 2);
        Console.WriteLine($"{name,-38} median {events / median,9:N0} events/s, best {events / best,9:N0} events/s, CPU {cpu * 1e6 / events,5:N1} us/event (rounds {string.Join(", ", seconds.Select(s => (s * 1000).ToString("N0", CultureInfo.InvariantCulture)))} ms)");
    }

    private static async Task WriteHistoryAsync(KubeApiServer server, int objects, int updates)
    {
        using var http = new HttpClient { BaseAddress = new Uri(server.Url) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", server.Options.Token);
        var pad = new string('x', 200);
        var next = -1;
        var writers = Enumerable.Range(0, 16).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < objects)
            {
                var body = $$$"""{"apiVersion":"bench.example.test/v1","kind":"Gadget","metadata":{"name":"g{{{i}}}","namespace":"{{{Ns}}}"},"spec":{"n":0,"pad":"{{{pad}}}"}}""";
                using (var created = await http.PostAsync(new Uri($"/apis/bench.example.test/v1/namespaces/{Ns}/gadgets", UriKind.Relative), new StringContent(body, Encoding.UTF8, "application/json")))
                {
                    created.EnsureSuccessStatusCode();
                }

                for (var u = 1; u <= updates; u++)
                {
                    using var content = new StringContent($$$"""{"spec":{"n":{{{u}}}}}""", Encoding.UTF8, "application/merge-patch+json");
                    using var patched = await http.PatchAsync(new Uri($"/apis/bench.example.test/v1/namespaces/{Ns}/gadgets/g{i}", UriKind.Relative), content);
                    patched.EnsureSuccessStatusCode();
                }
            }
        });
        await Task.WhenAll(writers);
    }

    private static async Task<double> BareWatchAsync(KubeApiServer server, string fromRv, int total)
    {
        using var http = new HttpClient { BaseAddress = new Uri(server.Url), Timeout = Timeout.InfiniteTimeSpan };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", server.Options.Token);
        var sw = Stopwatch.StartNew();
        using var response = await http.GetAsync(
            new Uri($"/apis/bench.example.test/v1/namespaces/{Ns}/gadgets?watch=true&resourceVersion={fromRv}", UriKind.Relative),
            HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var seen = 0;
        while (seen < total && await reader.ReadLineAsync() is { } line)
        {
            if (!line.Contains("\"BOOKMARK\"", StringComparison.Ordinal))
            {
                seen++;
            }
        }

        return seen == total ? sw.Elapsed.TotalSeconds : throw new InvalidOperationException($"bare watch ended after {seen} of {total} events");
    }

    private static async Task<double> ClientWatchAsync(Kubernetes client, string fromRv, int total)
    {
        using var cts = new CancellationTokenSource();
        var sw = Stopwatch.StartNew();
        var seen = 0;
        await foreach (var (type, _) in client.CustomObjects.WatchListNamespacedCustomObjectAsync(Resource.Group, Resource.Version, Ns, Resource.Plural, resourceVersion: fromRv, cancellationToken: cts.Token))
        {
            if (type != WatchEventType.Bookmark && ++seen == total)
            {
                break;
            }
        }

        return seen == total ? sw.Elapsed.TotalSeconds : throw new InvalidOperationException($"client watch ended after {seen} of {total} events");
    }

    private static async Task<(double Seconds, long Reconciles)> PipelineAsync(Kubernetes client, string fromRv, int total, int objects, int updates)
    {
        var resource = new ReplayFrom<Gadget>(ResourceClients.Custom<Gadget>(client, Resource, Ns), fromRv);
        var informer = new Informer<Gadget>(resource);
        long events = 0;
        informer.AddEventHandler(new ResourceEventHandler<Gadget>((_, _) => Interlocked.Increment(ref events), (_, _) => Interlocked.Increment(ref events), _ => Interlocked.Increment(ref events)));
        var reconciler = new NoOp(updates);
        var controller = new Controller<Gadget>("bench", informer, resource, reconciler, new ControllerOptions { Workers = 2 });
        using var stop = new CancellationTokenSource();
        var sw = Stopwatch.StartNew();
        var informerRun = informer.RunAsync(stop.Token);
        var controllerRun = controller.RunAsync(stop.Token);

        // Done when every event reached the handlers and every key's last state was reconciled.
        while (Interlocked.Read(ref events) < total || reconciler.Final < objects || controller.Queue is not { Count: 0, InFlight: 0 })
        {
            await Task.Delay(1);
        }

        var elapsed = sw.Elapsed.TotalSeconds;
        await stop.CancelAsync();
        await Task.WhenAll(informerRun, controllerRun);
        return (elapsed, controller.ReconcileCount);
    }

    /// <summary>Lists nothing at <paramref name="rv"/>, so the informer's watch replays the recorded history.</summary>
    private sealed class ReplayFrom<T>(IResourceClient<T> inner, string rv) : IResourceClient<T>
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        public string Resource => inner.Resource;

        public Task<ResourceList<T>> ListAsync(CancellationToken cancellationToken) => Task.FromResult(new ResourceList<T>([], rv));

        public IAsyncEnumerable<(WatchEventType Type, T Object)> WatchAsync(string resourceVersion, int timeoutSeconds, Action<Exception> onError, CancellationToken cancellationToken) =>
            inner.WatchAsync(resourceVersion, timeoutSeconds, onError, cancellationToken);

        public Task<T?> GetAsync(ObjectKey key, CancellationToken cancellationToken) => inner.GetAsync(key, cancellationToken);

        public Task<T> PatchAsync(ObjectKey key, V1Patch patch, CancellationToken cancellationToken) => inner.PatchAsync(key, patch, cancellationToken);

        public Task<T> PatchStatusAsync(ObjectKey key, V1Patch patch, CancellationToken cancellationToken) => inner.PatchStatusAsync(key, patch, cancellationToken);
    }

    /// <summary>Does nothing but note which keys were reconciled in their final state.</summary>
    private sealed class NoOp(int finalN) : IReconciler<Gadget>
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _final = new();

        public int Final => _final.Count;

        public Task<ReconcileResult> ReconcileAsync(Gadget entity, CancellationToken cancellationToken)
        {
            if (entity.Spec.N == finalN)
            {
                _final.TryAdd(entity.Metadata.Name, true);
            }

            return Task.FromResult(ReconcileResult.Done);
        }
    }

    private sealed class Gadget : IKubernetesObject<V1ObjectMeta>
    {
        [JsonPropertyName("apiVersion")]
        public string ApiVersion { get; set; } = "bench.example.test/v1";

        [JsonPropertyName("kind")]
        public string Kind { get; set; } = "Gadget";

        [JsonPropertyName("metadata")]
        public V1ObjectMeta Metadata { get; set; } = new();

        [JsonPropertyName("spec")]
        public GadgetSpec Spec { get; set; } = new();
    }

    private sealed class GadgetSpec
    {
        [JsonPropertyName("n")]
        public int N { get; set; }

        [JsonPropertyName("pad")]
        public string? Pad { get; set; }
    }
}
