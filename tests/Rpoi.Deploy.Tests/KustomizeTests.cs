using System.Text.Json.Nodes;
using k8s.Models;

namespace Rpoi.Deploy.Tests;

public sealed class KustomizeTests
{
    [Fact]
    public void Default_overlay_renders_into_rpoi_system()
    {
        var m = Kustomize.Default;
        Assert.Equal("rpoi-system", m.Single<V1Namespace>("rpoi-system").Metadata.Name);
        Assert.Equal(2, m.OfType<V1CustomResourceDefinition>().Count());
        foreach (var o in m.Objects.Where(o => o.Kind is "Deployment" or "ServiceAccount" or "Role" or "RoleBinding" or "Service"))
        {
            Assert.Equal("rpoi-system", o.Metadata.NamespaceProperty);
        }
    }

    [Fact]
    public void Chart_and_kustomize_render_the_same_objects()
    {
        var helm = Chart.Render().Objects.ToDictionary(Manifests.Key);
        var kustomize = Kustomize.Default.Objects.Where(o => o.Kind != "Namespace").ToDictionary(Manifests.Key);

        Assert.Equal(helm.Keys.Order(StringComparer.Ordinal), kustomize.Keys.Order(StringComparer.Ordinal));
        var different = helm.Keys
            .Where(k => !JsonNode.DeepEquals(Manifests.Comparable(helm[k]), Manifests.Comparable(kustomize[k])))
            .ToList();
        Assert.True(different.Count == 0,
            "config/ and charts/rpoi-operator (default values) disagree on: " + string.Join(", ", different) +
            ". Change both together (config/README.md).");
    }

    [Fact]
    public void Prometheus_base_matches_the_chart_with_monitoring_on()
    {
        var helm = Chart.Render("metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true")
            .OfType<CustomObject>().ToDictionary(Manifests.Key);
        var kustomize = Kustomize.Render("config/prometheus").Objects.ToDictionary(Manifests.Key);

        Assert.Equal(helm.Keys.Order(StringComparer.Ordinal), kustomize.Keys.Order(StringComparer.Ordinal));
        Assert.All(helm.Keys, k => Assert.True(JsonNode.DeepEquals(Manifests.Comparable(helm[k]), Manifests.Comparable(kustomize[k])), k));
    }

    [Fact]
    public void Samples_base_renders()
    {
        var result = Tools.Run(Tools.Kubectl, "kustomize", Path.Combine(Tools.Root, "config", "samples"));
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.True(File.Exists(Path.Combine(Tools.Root, "config", "samples", "README.md")));
    }
}
