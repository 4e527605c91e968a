using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Rpoi.Deploy.Tests;

/// <summary>The observability and image assets: Argo CD health check, Grafana dashboard, Dockerfiles.</summary>
public sealed partial class AssetTests
{
    [Fact]
    public void Argo_cd_configmap_patch_embeds_the_same_lua()
    {
        var lua = File.ReadAllText(Path.Combine(Tools.Root, "config", "argocd", "lease-health.lua"));
        var patch = File.ReadAllText(Path.Combine(Tools.Root, "config", "argocd", "argocd-cm-patch.yaml"));
        var embedded = patch[(patch.IndexOf("rpoi.io_Lease: |\n", StringComparison.Ordinal) + "rpoi.io_Lease: |\n".Length)..];
        var unindented = string.Join('\n', embedded.Split('\n').Select(l => l.Length >= 4 ? l[4..] : l.TrimStart()));
        Assert.Equal(lua.TrimEnd(), unindented.TrimEnd());
        foreach (var phase in new[] { "Active", "Settled", "Failed", "AwaitingRatings" })
        {
            Assert.Contains($"\"{phase}\"", lua, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Grafana_dashboard_queries_only_documented_metrics()
    {
        var dashboard = JsonNode.Parse(File.ReadAllText(Path.Combine(Tools.Root, "config", "grafana", "rpoi-operator.json")))!;
        var install = File.ReadAllText(Path.Combine(Tools.Root, "docs", "install.md"));
        var exprs = dashboard["panels"]!.AsArray().SelectMany(p => p!["targets"]!.AsArray()).Select(t => t!["expr"]!.GetValue<string>()).ToList();
        Assert.NotEmpty(exprs);
        var metrics = exprs.SelectMany(e => MetricName().Matches(e).Select(m => m.Value))
            .Select(m => Regex.Replace(m, "_(bucket|sum|count)$", ""))
            .Distinct().ToList();
        Assert.NotEmpty(metrics);
        Assert.All(metrics, m => Assert.Contains($"`{m}`", install, StringComparison.Ordinal));
    }

    [Fact]
    public void Alerts_query_only_documented_metrics()
    {
        var install = File.ReadAllText(Path.Combine(Tools.Root, "docs", "install.md"));
        var rule = Chart.Render("metrics.prometheusRule.enabled=true").OfType<CustomObject>().Single(o => o.Kind == "PrometheusRule");
        var metrics = MetricName().Matches(k8s.KubernetesJson.Serialize(rule.Spec)).Select(m => m.Value).Distinct().ToList();
        Assert.NotEmpty(metrics);
        Assert.All(metrics, m => Assert.Contains($"`{m}`", install, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("operator/Rpoi.Operator/Dockerfile", "Rpoi.Operator.dll")]
    [InlineData("operator/Rpoi.Escrow/Dockerfile", "Rpoi.Escrow.dll")]
    public void Dockerfiles_are_multi_stage_and_non_root(string path, string entry)
    {
        var lines = File.ReadAllLines(Path.Combine(Tools.Root, path)).Where(l => !l.StartsWith('#')).ToList();
        Assert.Equal(2, lines.Count(l => l.StartsWith("FROM ", StringComparison.Ordinal)));
        Assert.Contains(lines, l => l.StartsWith("COPY --from=build", StringComparison.Ordinal));
        var lastUser = lines.Last(l => l.StartsWith("USER ", StringComparison.Ordinal));
        Assert.Equal("USER 65532:65532", lastUser);
        Assert.Contains(entry, lines.Last(l => l.StartsWith("ENTRYPOINT", StringComparison.Ordinal)), StringComparison.Ordinal);
    }

    [GeneratedRegex(@"\b(rpoi|controller_runtime|workqueue)_[a-z_]+")]
    private static partial Regex MetricName();
}
