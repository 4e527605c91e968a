using System.Diagnostics;
using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Time.Testing;
using Rpoi.Kube.ApiServer.Tests.Support;

namespace Rpoi.Kube.ApiServer.Tests;

/// <summary>Fault injection and the authentication hook.</summary>
public sealed class FaultInjectionTests
{
    private static V1ConfigMap Map(string name) => new() { Metadata = new V1ObjectMeta { Name = name } };

    [Theory]
    [InlineData(409, "Conflict")]
    [InlineData(429, "TooManyRequests")]
    [InlineData(500, "InternalError")]
    public async Task Fail_next_fails_exactly_the_matching_requests(int code, string reason)
    {
        var (server, client) = await TestServer.StartAsync(widgets: false);
        await using var _ = server;
        using var __ = client;

        server.Faults.FailNext(2, code, verb: "create", resource: "configmaps");
        // Another verb and another resource are not affected.
        await client.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "s" } }, "default");
        await client.CoreV1.ListNamespacedConfigMapAsync("default");
        for (var i = 0; i < 2; i++)
        {
            var e = await Assert.ThrowsAsync<HttpOperationException>(() => client.CoreV1.CreateNamespacedConfigMapAsync(Map("c"), "default"));
            Assert.Equal(code, (int)e.Response.StatusCode);
            Assert.Contains($"\"reason\":\"{reason}\"", e.Response.Content, StringComparison.Ordinal);
        }

        Assert.Equal("c", (await client.CoreV1.CreateNamespacedConfigMapAsync(Map("c"), "default")).Metadata.Name);
        // Only the two failures that were answered are counted.
        Assert.Equal(new Dictionary<int, int> { [code] = 2 }, server.Faults.Injected);
    }

    [Fact]
    public async Task Subresource_faults_match_plural_slash_subresource()
    {
        var (server, client) = await TestServer.StartAsync();
        await using var _ = server;
        using var __ = client;
        await client.CustomObjects.CreateNamespacedCustomObjectAsync<System.Text.Json.JsonElement>(Widgets.New("w", 1), Widgets.Group, Widgets.Version, "default", Widgets.Plural);
        server.Faults.FailNext(1, 500, resource: "widgets/status");
        var patch = new V1Patch("""{"status":{"observedGeneration":1}}""", V1Patch.PatchType.MergePatch);
        await client.CustomObjects.PatchNamespacedCustomObjectAsync<System.Text.Json.JsonElement>(new V1Patch("""{"spec":{"size":2}}""", V1Patch.PatchType.MergePatch),
            Widgets.Group, Widgets.Version, "default", Widgets.Plural, "w");
        await Assert.ThrowsAsync<HttpOperationException>(() => client.CustomObjects.PatchNamespacedCustomObjectStatusAsync<System.Text.Json.JsonElement>(
            patch, Widgets.Group, Widgets.Version, "default", Widgets.Plural, "w"));
        await client.CustomObjects.PatchNamespacedCustomObjectStatusAsync<System.Text.Json.JsonElement>(patch, Widgets.Group, Widgets.Version, "default", Widgets.Plural, "w");
    }

    [Fact]
    public async Task Latency_delays_matching_requests_on_the_server_clock()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var (server, client) = await TestServer.StartAsync(new KubeApiServerOptions { TimeProvider = clock }, widgets: false);
        await using var _ = server;
        using var __ = client;

        server.Faults.AddLatency(TimeSpan.FromSeconds(30), verb: "list", resource: "secrets");
        var list = client.CoreV1.ListNamespacedSecretAsync("default");
        // Other requests are not delayed while the list waits for the (fake) clock.
        await client.CoreV1.ListNamespacedConfigMapAsync("default");
        Assert.False(list.IsCompleted);
        await Eventually.HoldsAsync(() =>
        {
            clock.Advance(TimeSpan.FromSeconds(31));
            return list.IsCompleted;
        });
        Assert.Empty((await list).Items);
        server.Faults.Clear();
        var sw = Stopwatch.StartNew();
        await client.CoreV1.ListNamespacedSecretAsync("default");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Authentication_hook_rejects_with_401()
    {
        await using var server = await KubeApiServer.StartAsync(new KubeApiServerOptions { Authenticate = token => token == "good" });
        using var good = new Kubernetes(new KubernetesClientConfiguration { Host = server.Url, AccessToken = "good" });
        using var bad = new Kubernetes(new KubernetesClientConfiguration { Host = server.Url, AccessToken = "bad" });
        await good.CoreV1.ListNamespaceAsync();
        var e = await Assert.ThrowsAsync<HttpOperationException>(() => bad.CoreV1.ListNamespaceAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, e.Response.StatusCode);
    }

    [Fact]
    public async Task Kubeconfig_works_with_BuildConfigFromConfigFile()
    {
        await using var server = await KubeApiServer.StartAsync();
        var dir = Directory.CreateTempSubdirectory("kubeconfig-");
        try
        {
            var path = server.WriteKubeconfig(Path.Combine(dir.FullName, "config"));
            using var client = new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(path));
            var namespaces = await client.CoreV1.ListNamespaceAsync();
            Assert.Contains(namespaces.Items, n => n.Metadata.Name == "default");
            Assert.Contains(server.Requests, r => r.Path == "/api/v1/namespaces" && r.StatusCode == 200);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_request_is_logged_before_its_client_can_read_the_response()
    {
        // A watch's handler runs until the watch ends, which makes the order certain: the client holds the response
        // while the handler has not returned, and the request must already be in the log.
        await using var server = await KubeApiServer.StartAsync();
        using var http = new HttpClient();

        using var response = await http.GetAsync($"{server.Url}/api/v1/namespaces/default/configmaps?watch=true", HttpCompletionOption.ResponseHeadersRead);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, server.OpenWatches);
        Assert.Contains(server.Requests, r => r.Method == "GET" && r.Path == "/api/v1/namespaces/default/configmaps" && r.Query == "?watch=true" && r.StatusCode == 200);
    }

    [Fact]
    public void Fail_next_rejects_nonsense_arguments()
    {
        var faults = new FaultInjector(() => 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => faults.FailNext(0, 500));
        Assert.Throws<ArgumentOutOfRangeException>(() => faults.FailNext(1, 200));
    }
}
