using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Rpoi.Kube.ApiServer;
using Rpoi.Sandbox;

namespace Rpoi.Deploy.Tests;

/// <summary>
/// Our own install against the local sandbox (started in-process, as <c>kubectl rpoi sandbox up</c> starts it):
/// real helm 4.1.4 installs and uninstalls charts/rpoi-operator, and real kubectl applies config/default with
/// <c>--dry-run=server</c>. Each test gets a fresh sandbox in its own directory.
/// </summary>
public sealed class SandboxInstallTests : IAsyncLifetime
{
    private const string KeepPolicy = "helm.sh/resource-policy";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "rpoi-sandbox-install-" + Guid.NewGuid().ToString("N")[..8]);
    private Sandbox.Sandbox _sandbox = null!;

    private KubeApiServer Api => _sandbox.Api;

    private string Kubeconfig => _sandbox.State.Kubeconfig;

    public async Task InitializeAsync()
    {
        using var startup = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        _sandbox = await Sandbox.Sandbox.StartAsync(new SandboxOptions { Directory = _dir }, TextWriter.Null, startup.Token);
    }

    public async Task DisposeAsync()
    {
        await _sandbox.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private string Helm(params string[] args) => Tools.RunOk(Tools.Helm, [.. args, "--kubeconfig", Kubeconfig]);

    /// <summary>The stored object a manifest describes, or null; the namespace defaults to the release's, as helm does.</summary>
    private JsonObject? Stored(IKubernetesObject<V1ObjectMeta> o) =>
        Api.GetObject(o.ApiVersion, o.Kind, o.Metadata.NamespaceProperty ?? Chart.Namespace, o.Metadata.Name);

    private static bool Kept(IKubernetesObject<V1ObjectMeta> o) =>
        o.Kind == "CustomResourceDefinition" || (o.Metadata.Annotations is { } a && a.TryGetValue(KeepPolicy, out var policy) && policy == "keep");

    /// <summary>Installs with the given values, checks every rendered object and the release are stored, uninstalls, checks they are gone.</summary>
    private void InstallAndUninstall(params string[] sets)
    {
        var rendered = Chart.Render(sets).Objects;
        Helm(["install", Chart.Release, Tools.ChartDir, "--namespace", Chart.Namespace, .. Chart.SetArgs(sets)]);

        var missing = rendered.Where(o => Stored(o) is null).Select(Manifests.Key).ToList();
        Assert.True(missing.Count == 0, $"rendered but not stored after helm install: {string.Join(", ", missing)}");
        var release = Api.GetObject("v1", "Secret", Chart.Namespace, $"sh.helm.release.v1.{Chart.Release}.v1");
        Assert.NotNull(release);
        Assert.Equal("helm", release["metadata"]!["labels"]!["owner"]!.GetValue<string>());
        var listed = JsonNode.Parse(Helm("list", "--namespace", Chart.Namespace, "--output", "json"))!.AsArray().Single()!;
        Assert.Equal((Chart.Release, "deployed", "1"),
            (listed["name"]!.GetValue<string>(), listed["status"]!.GetValue<string>(), listed["revision"]!.ToString()));

        Helm("uninstall", Chart.Release, "--namespace", Chart.Namespace);

        var left = rendered.Where(o => !Kept(o) && Stored(o) is not null).Select(Manifests.Key).ToList();
        Assert.True(left.Count == 0, $"still stored after helm uninstall: {string.Join(", ", left)}");
        var kept = rendered.Where(Kept).ToList();
        Assert.Contains(kept, o => o.Kind == "CustomResourceDefinition");
        Assert.All(kept, o => Assert.True(Stored(o) is not null, $"{Manifests.Key(o)} should be kept by helm uninstall"));
        Assert.Null(Api.GetObject("v1", "Secret", Chart.Namespace, $"sh.helm.release.v1.{Chart.Release}.v1"));
    }

    [Fact]
    public void Helm_installs_and_uninstalls_the_chart_with_default_values()
    {
        var rendered = Chart.Render();
        // The defaults include the kinds the test server once lacked: this install would fail without them.
        foreach (var kind in new[] { "NetworkPolicy", "PodDisruptionBudget", "PersistentVolumeClaim", "ValidatingAdmissionPolicy" })
        {
            Assert.True(rendered.Has(kind), $"the default render has no {kind}");
        }

        InstallAndUninstall();
    }

    [Fact]
    public void Helm_installs_and_uninstalls_the_chart_with_monitoring_on_once_the_Prometheus_Operator_CRDs_exist()
    {
        // What installing the Prometheus Operator brings that the chart needs: its two kinds (schemas left open).
        foreach (var (plural, kind) in new[] { ("servicemonitors", "ServiceMonitor"), ("prometheusrules", "PrometheusRule") })
        {
            Api.RegisterCustomResourceDefinition(new JsonObject
            {
                ["apiVersion"] = "apiextensions.k8s.io/v1",
                ["kind"] = "CustomResourceDefinition",
                ["metadata"] = new JsonObject { ["name"] = $"{plural}.monitoring.coreos.com" },
                ["spec"] = new JsonObject
                {
                    ["group"] = "monitoring.coreos.com",
                    ["scope"] = "Namespaced",
                    ["names"] = new JsonObject { ["plural"] = plural, ["singular"] = kind.ToLowerInvariant(), ["kind"] = kind, ["listKind"] = kind + "List" },
                    ["versions"] = new JsonArray(new JsonObject
                    {
                        ["name"] = "v1",
                        ["served"] = true,
                        ["storage"] = true,
                        ["schema"] = new JsonObject
                        {
                            ["openAPIV3Schema"] = new JsonObject
                            {
                                ["type"] = "object",
                                ["properties"] = new JsonObject { ["spec"] = new JsonObject { ["type"] = "object", ["x-kubernetes-preserve-unknown-fields"] = true } },
                            },
                        },
                    }),
                },
            }.ToJsonString());
        }

        string[] sets = ["metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true"];
        Assert.True(Chart.Render(sets).Has("ServiceMonitor") && Chart.Render(sets).Has("PrometheusRule"));
        InstallAndUninstall(sets);
    }

    [Fact]
    public void Kubectl_applies_config_default_with_server_dry_run_and_nothing_is_stored()
    {
        var rendered = Kustomize.Default.Objects;
        var before = rendered.ToDictionary(Manifests.Key, o => Stored(o)?["metadata"]?["resourceVersion"]?.GetValue<string>());
        Assert.Contains(before, b => b.Value is null); // most of config/default is new to the sandbox

        var runs = new List<(string Kubectl, string[] Args)>
        {
            (Tools.Kubectl, ["apply", "--dry-run=server", "-k", "config/default"]),
            (Tools.Kubectl, ["apply", "--server-side", "--dry-run=server", "-k", "config/default"]),
        };
        if (Kubectl132 is { } older)
        {
            runs.Add((older, ["apply", "--dry-run=server", "-k", "config/default"]));
        }

        foreach (var (kubectl, args) in runs)
        {
            var output = Tools.RunOk(kubectl, [.. args, "--kubeconfig", Kubeconfig]);
            foreach (var o in rendered)
            {
                Assert.Contains($"{o.Metadata.Name} ", output, StringComparison.Ordinal);
            }

            Assert.DoesNotContain(output.Split('\n', StringSplitOptions.RemoveEmptyEntries), line => !line.EndsWith("(server dry run)", StringComparison.Ordinal));
            var changed = rendered.Where(o => Stored(o)?["metadata"]?["resourceVersion"]?.GetValue<string>() != before[Manifests.Key(o)])
                .Select(Manifests.Key).ToList();
            Assert.True(changed.Count == 0, $"{Path.GetFileName(kubectl)} {string.Join(' ', args)} stored or changed: {string.Join(", ", changed)}");
        }
    }

    /// <summary>kubectl 1.32 when this machine has it ($RPOI_KUBECTL_132, else /usr/bin/kubectl); the 1.35 run is required.</summary>
    private static string? Kubectl132 =>
        new[] { Environment.GetEnvironmentVariable("RPOI_KUBECTL_132"), "/usr/bin/kubectl" }
            .FirstOrDefault(p => !string.IsNullOrEmpty(p) && File.Exists(p) && p != Tools.Kubectl);
}
