using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using k8s;
using k8s.Models;
using Rpoi.Kube.ApiServer.Tests.Support;
using Rpoi.Tests.Shared;

namespace Rpoi.Kube.ApiServer.Tests;

/// <summary>
/// The real kubectl (1.32, and 1.35 when present) against the server: apply (client and server side),
/// get with printer columns, explain, wait, describe, delete through a finalizer, status patches.
/// </summary>
public sealed class KubectlTests
{
    private const string WidgetYaml = """
        apiVersion: example.test/v1
        kind: Widget
        metadata:
          name: w1
          namespace: default
        spec:
          size: 3
          mode: fast
        """;

    public static IEnumerable<object[]> Binaries() => Kubectl.Binaries();

    /// <summary>A server with the Widget CRD applied by kubectl itself, and one Widget.</summary>
    private static async Task<(KubeApiServer Server, Kubernetes Client, Kubectl Kubectl)> StartWithWidgetAsync(string binary)
    {
        var (server, client) = await TestServer.StartAsync(widgets: false);
        var kubectl = new Kubectl(binary, server);
        var crd = kubectl.WriteFile("crd.yaml", Dedent(Widgets.CrdYaml));
        KubectlAssert.Contains("customresourcedefinition.apiextensions.k8s.io/widgets.example.test created",
            KubectlAssert.Succeeded(await kubectl.RunAsync("apply", "-f", crd)));
        var widget = kubectl.WriteFile("widget.yaml", Dedent(WidgetYaml));
        KubectlAssert.Contains("widget.example.test/w1 created", KubectlAssert.Succeeded(await kubectl.RunAsync("apply", "-f", widget)));
        return (server, client, kubectl);
    }

    private static string Dedent(string yaml) => yaml + "\n";

    private static Task SetReadyAsync(Kubernetes client, string status) =>
        client.CustomObjects.PatchNamespacedCustomObjectStatusAsync<JsonElement>(
            new V1Patch(JsonSerializer.Serialize(new
            {
                status = new
                {
                    conditions = new[] { new { type = "Ready", status, reason = "Tested", message = "set by the test", lastTransitionTime = "2026-01-01T00:00:00Z" } },
                },
            }), V1Patch.PatchType.MergePatch),
            Widgets.Group, Widgets.Version, "default", Widgets.Plural, "w1");

    [Theory]
    [MemberData(nameof(Binaries))]
    public async Task Apply_then_get_shows_the_printer_columns(string binary)
    {
        var (server, client, kubectl) = await StartWithWidgetAsync(binary);
        await using var _ = server;
        using var __ = client;
        using var ___ = kubectl;

        await SetReadyAsync(client, "True");
        var get = KubectlAssert.Succeeded(await kubectl.RunAsync("get", "widgets"));
        Assert.Matches(new Regex(@"^NAME\s+SIZE\s+MODE\s+READY\s+AGE\s*$", RegexOptions.Multiline), get.Stdout);
        Assert.Matches(new Regex(@"^w1\s+3\s+fast\s+True\s+\d+s\s*$", RegexOptions.Multiline), get.Stdout);

        // Re-apply a changed file: client-side apply patches with the last-applied annotation.
        var changed = kubectl.WriteFile("widget2.yaml", Dedent(WidgetYaml.Replace("size: 3", "size: 5", StringComparison.Ordinal)));
        KubectlAssert.Contains("widget.example.test/w1 configured", KubectlAssert.Succeeded(await kubectl.RunAsync("apply", "-f", changed)));
        var stored = server.GetObject("example.test/v1", "Widget", "default", "w1")!;
        Assert.Equal(5, stored["spec"]!["size"]!.GetValue<int>());
        Assert.Equal(2, stored["metadata"]!["generation"]!.GetValue<long>());
        Assert.NotNull(stored["metadata"]!["annotations"]!["kubectl.kubernetes.io/last-applied-configuration"]);

        // Short name and category resolve through discovery.
        KubectlAssert.Contains("w1", KubectlAssert.Succeeded(await kubectl.RunAsync("get", "wg", "-o", "name")));
        var byCategory = KubectlAssert.Succeeded(await kubectl.RunAsync("get", "examples"));
        Assert.Matches(new Regex(@"^(widget\.example\.test/)?w1\s+5\s+fast", RegexOptions.Multiline), byCategory.Stdout);
    }

    [Theory]
    [MemberData(nameof(Binaries))]
    public async Task Server_side_apply_creates_and_updates(string binary)
    {
        var (server, client, kubectl) = await StartWithWidgetAsync(binary);
        await using var _ = server;
        using var __ = client;
        using var ___ = kubectl;

        var other = kubectl.WriteFile("w2.yaml", Dedent(WidgetYaml.Replace("name: w1", "name: w2", StringComparison.Ordinal)));
        KubectlAssert.Contains("widget.example.test/w2 serverside-applied", KubectlAssert.Succeeded(await kubectl.RunAsync("apply", "--server-side", "-f", other)));
        var resized = kubectl.WriteFile("w2b.yaml", Dedent(WidgetYaml.Replace("name: w1", "name: w2", StringComparison.Ordinal).Replace("size: 3", "size: 7", StringComparison.Ordinal)));
        KubectlAssert.Succeeded(await kubectl.RunAsync("apply", "--server-side", "-f", resized));
        Assert.Equal(7, server.GetObject("example.test/v1", "Widget", "default", "w2")!["spec"]!["size"]!.GetValue<int>());
        Assert.Contains(server.Requests, r => r.Method == "PATCH" && r.ContentType == "application/apply-patch+yaml" && r.StatusCode == 201);
    }

    [Theory]
    [MemberData(nameof(Binaries))]
    public async Task Apply_with_an_unknown_field_fails_naming_it(string binary)
    {
        var (server, client, kubectl) = await StartWithWidgetAsync(binary);
        await using var _ = server;
        using var __ = client;
        using var ___ = kubectl;

        var bad = kubectl.WriteFile("bad.yaml", Dedent(WidgetYaml.Replace("name: w1", "name: bad", StringComparison.Ordinal) + "\n  colour: red"));
        var result = await kubectl.RunAsync("apply", "-f", bad);
        Assert.NotEqual(0, result.ExitCode);
        KubectlAssert.Contains("error when creating \"" + bad + "\": Widget in version \"v1\" cannot be handled as a Widget: strict decoding error: unknown field \"spec.colour\"", result);

        var tooBig = kubectl.WriteFile("big.yaml", Dedent(WidgetYaml.Replace("name: w1", "name: big", StringComparison.Ordinal).Replace("size: 3", "size: 1000", StringComparison.Ordinal)));
        var invalid = await kubectl.RunAsync("apply", "-f", tooBig);
        Assert.NotEqual(0, invalid.ExitCode);
        // kubectl prints the Invalid Status as 'The <kind> "<name>" is invalid: ' plus each cause as 'field: message'.
        KubectlAssert.Contains("The Widget \"big\" is invalid: spec.size: Invalid value: 1000: spec.size in body should be less than or equal to 100", invalid);
    }

    [Theory]
    [MemberData(nameof(Binaries))]
    public async Task Explain_shows_the_crd_schema(string binary)
    {
        var (server, client, kubectl) = await StartWithWidgetAsync(binary);
        await using var _ = server;
        using var __ = client;
        using var ___ = kubectl;

        var result = KubectlAssert.Succeeded(await kubectl.RunAsync("explain", "widgets.spec"));
        KubectlAssert.Contains("Desired state of the widget.", result);
        KubectlAssert.Contains("Number of parts.", result);
        KubectlAssert.Contains("size", result);
    }

    [Theory]
    [MemberData(nameof(Binaries))]
    public async Task Wait_returns_once_a_status_patch_sets_Ready(string binary)
    {
        var (server, client, kubectl) = await StartWithWidgetAsync(binary);
        await using var _ = server;
        using var __ = client;
        using var ___ = kubectl;

        await SetReadyAsync(client, "False");
        var wait = kubectl.RunAsync("wait", "--for=condition=Ready", "--timeout=20s", "widget/w1");
        // Flip the condition only once kubectl is watching, so the watch (not the first GET) must deliver it.
        await Eventually.HoldsAsync(() => server.OpenWatches > 0 || wait.IsCompleted, TimeSpan.FromSeconds(20));
        if (wait.IsCompleted)
        {
            Assert.Fail($"kubectl wait ended before the condition was set:\n{await wait}");
        }

        await SetReadyAsync(client, "True");
        var result = KubectlAssert.Succeeded(await wait);
        KubectlAssert.Contains("widget.example.test/w1 condition met", result);
    }

    [Theory]
    [MemberData(nameof(Binaries))]
    public async Task Describe_prints_spec_status_and_events(string binary)
    {
        var (server, client, kubectl) = await StartWithWidgetAsync(binary);
        await using var _ = server;
        using var __ = client;
        using var ___ = kubectl;

        await SetReadyAsync(client, "True");
        var widget = server.GetObject("example.test/v1", "Widget", "default", "w1")!;
        await client.CoreV1.CreateNamespacedEventAsync(new Corev1Event
        {
            Metadata = new V1ObjectMeta { Name = "w1.1" },
            InvolvedObject = new V1ObjectReference
            {
                ApiVersion = "example.test/v1",
                Kind = "Widget",
                Name = "w1",
                NamespaceProperty = "default",
                Uid = widget["metadata"]!["uid"]!.GetValue<string>(),
            },
            Reason = "Assembled",
            Message = "all parts in place",
            Type = "Normal",
            Count = 1,
            FirstTimestamp = DateTime.UtcNow,
            LastTimestamp = DateTime.UtcNow,
            Source = new V1EventSource { Component = "widget-controller" },
        }, "default");

        var result = KubectlAssert.Succeeded(await kubectl.RunAsync("describe", "widget", "w1"));
        KubectlAssert.Contains("Size:", result);
        KubectlAssert.Contains("Type:                  Ready", result);
        KubectlAssert.Contains("Assembled", result);
        KubectlAssert.Contains("all parts in place", result);
    }

    [Theory]
    [MemberData(nameof(Binaries))]
    public async Task Delete_waits_for_the_finalizer_to_be_removed(string binary)
    {
        var (server, client, kubectl) = await StartWithWidgetAsync(binary);
        await using var _ = server;
        using var __ = client;
        using var ___ = kubectl;

        KubectlAssert.Succeeded(await kubectl.RunAsync("patch", "widget", "w1", "--type=merge", "-p", """{"metadata":{"finalizers":["example.test/hold"]}}"""));
        var delete = kubectl.RunAsync("delete", "widget", "w1", "--timeout=20s");
        await Eventually.HoldsAsync(() => server.GetObject("example.test/v1", "Widget", "default", "w1")?["metadata"]?["deletionTimestamp"] is not null || delete.IsCompleted,
            TimeSpan.FromSeconds(20));
        await Eventually.HoldsAsync(() => server.OpenWatches > 0 || delete.IsCompleted, TimeSpan.FromSeconds(20));
        if (delete.IsCompleted)
        {
            Assert.Fail($"kubectl delete returned while the finalizer held the object:\n{await delete}");
        }


        await client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(new V1Patch("""{"metadata":{"finalizers":null}}""", V1Patch.PatchType.MergePatch),
            Widgets.Group, Widgets.Version, "default", Widgets.Plural, "w1");
        var result = KubectlAssert.Succeeded(await delete);
        KubectlAssert.Contains("\"w1\" deleted", result);
        Assert.Null(server.GetObject("example.test/v1", "Widget", "default", "w1"));
    }

    [Theory]
    [MemberData(nameof(Binaries))]
    public async Task Patch_status_subresource_changes_only_status(string binary)
    {
        var (server, client, kubectl) = await StartWithWidgetAsync(binary);
        await using var _ = server;
        using var __ = client;
        using var ___ = kubectl;

        var result = await kubectl.RunAsync("patch", "widget", "w1", "--subresource=status", "--type=merge",
            "-p", """{"status":{"observedGeneration":1},"spec":{"size":99}}""");
        KubectlAssert.Succeeded(result);
        var stored = server.GetObject("example.test/v1", "Widget", "default", "w1")!;
        Assert.Equal(1, stored["status"]!["observedGeneration"]!.GetValue<int>());
        Assert.Equal(3, stored["spec"]!["size"]!.GetValue<int>());
        Assert.Equal(1, stored["metadata"]!["generation"]!.GetValue<long>());
        Assert.Contains(server.Requests, r => r.Method == "PATCH" && r.Path.EndsWith("/widgets/w1/status", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Binaries))]
    public async Task Built_in_kinds_work_with_kubectl(string binary)
    {
        var (server, client) = await TestServer.StartAsync(widgets: false);
        await using var _ = server;
        using var __ = client;
        using var kubectl = new Kubectl(binary, server);

        KubectlAssert.Succeeded(await kubectl.RunAsync("create", "namespace", "team"));
        KubectlAssert.Succeeded(await kubectl.RunAsync("-n", "team", "create", "secret", "generic", "s1", "--from-literal=a=b"));
        KubectlAssert.Succeeded(await kubectl.RunAsync("-n", "team", "label", "secret", "s1", "app=x"));
        var get = KubectlAssert.Succeeded(await kubectl.RunAsync("-n", "team", "get", "secrets", "-l", "app=x", "-o", "jsonpath={.items[*].metadata.name}"));
        Assert.Equal("s1", get.Stdout.Trim());
        var cm = kubectl.WriteFile("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c1\n  namespace: team\ndata:\n  k: v1\n");
        KubectlAssert.Succeeded(await kubectl.RunAsync("apply", "-f", cm));
        var cm2 = kubectl.WriteFile("cm2.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c1\n  namespace: team\ndata:\n  k: v2\n");
        KubectlAssert.Contains("configmap/c1 configured", KubectlAssert.Succeeded(await kubectl.RunAsync("apply", "-f", cm2)));
        Assert.Equal("v2", (await client.CoreV1.ReadNamespacedConfigMapAsync("c1", "team")).Data["k"]);
        KubectlAssert.Succeeded(await kubectl.RunAsync("delete", "namespace", "team", "--timeout=20s"));
        Assert.DoesNotContain((await client.CoreV1.ListNamespaceAsync()).Items, n => n.Metadata.Name == "team");
    }

    [Theory]
    [MemberData(nameof(Binaries))]
    public async Task Get_watch_prints_rows_with_printer_columns(string binary)
    {
        var (server, client, kubectl) = await StartWithWidgetAsync(binary);
        await using var _ = server;
        using var __ = client;
        using var ___ = kubectl;

        var lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var watch = kubectl.RunAsync(TimeSpan.FromSeconds(60), lines, "get", "widgets", "-w");
        await Eventually.HoldsAsync(() => server.OpenWatches > 0 || watch.IsCompleted, TimeSpan.FromSeconds(20));
        await client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(new V1Patch("""{"spec":{"size":9}}""", V1Patch.PatchType.MergePatch),
            Widgets.Group, Widgets.Version, "default", Widgets.Plural, "w1");

        // Cut only once kubectl printed the new row: a cut drops events still queued for the stream.
        await Eventually.HoldsAsync(() => lines.Any(l => Regex.IsMatch(l, @"^w1\s+9\s+fast")) || watch.IsCompleted, TimeSpan.FromSeconds(20),
            "kubectl get -w prints the updated row");

        // kubectl get -w ends when the server closes the watch.
        await Eventually.HoldsAsync(() =>
        {
            server.Faults.CutWatches();
            return watch.IsCompleted;
        }, TimeSpan.FromSeconds(20));
        var result = await watch;
        Assert.Matches(new Regex(@"^w1\s+3\s+fast", RegexOptions.Multiline), result.Stdout);
        Assert.Matches(new Regex(@"^w1\s+9\s+fast", RegexOptions.Multiline), result.Stdout);
    }

    [Theory]
    [MemberData(nameof(Binaries))]
    public async Task Discovery_lists_the_crd_and_it_is_established(string binary)
    {
        var (server, client, kubectl) = await StartWithWidgetAsync(binary);
        await using var _ = server;
        using var __ = client;
        using var ___ = kubectl;

        var resources = KubectlAssert.Succeeded(await kubectl.RunAsync("api-resources", "--api-group=example.test"));
        Assert.Matches(new Regex(@"^widgets\s+wg\s+example\.test/v1\s+true\s+Widget", RegexOptions.Multiline), resources.Stdout);
        KubectlAssert.Contains("condition met",
            KubectlAssert.Succeeded(await kubectl.RunAsync("wait", "--for=condition=Established", "--timeout=20s", "crd/widgets.example.test")));
        var version = KubectlAssert.Succeeded(await kubectl.RunAsync("version", "-o", "json"));
        KubectlAssert.Contains("\"gitVersion\": \"v1.32.0\"", version);
    }
}

