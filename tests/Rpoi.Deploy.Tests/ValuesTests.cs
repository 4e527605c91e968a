using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Rpoi.Deploy.Tests;

public sealed partial class ValuesTests
{
    [Theory]
    [InlineData("operator.replicaCount=0", "/operator/replicaCount")]
    [InlineData("operator.replicaCount=two", "/operator/replicaCount")]
    [InlineData("operator.image.pullPolicy=Sometimes", "/operator/image/pullPolicy")]
    [InlineData("operator.image.digest=latest", "/operator/image/digest")]
    [InlineData("operator.clusterServer=34.1.2.3", "/operator/clusterServer")]
    [InlineData("operator.clusterCaFile=ca.crt", "/operator/clusterCaFile")]
    [InlineData("operator.workers=0", "/operator/workers")]
    [InlineData("operator.leaderElection.enabled=false", "/operator/leaderElection/enabled")]
    [InlineData("operator.leaderElection.leaseDurationSeconds=2", "/operator/leaderElection/leaseDurationSeconds")]
    [InlineData("operator.leaderElection.leaseDurationSeconds=601", "/operator/leaderElection/leaseDurationSeconds")]
    [InlineData("operator.leaderElection.leaseDurationSeconds=15s", "/operator/leaderElection/leaseDurationSeconds")]
    [InlineData("operator.escrowUrl=escrow:8080", "/operator/escrowUrl")]
    [InlineData("operator.leaserKeys.existingSecret=", "/operator/leaserKeys/existingSecret")]
    [InlineData("operator.metricsPort=70000", "/operator/metricsPort")]
    [InlineData("operator.leaseTaintKey=x", "additional properties 'leaseTaintKey'")]
    [InlineData("escrow.storage.type=mysql", "/escrow/storage/type")]
    [InlineData("escrow.replicaCount=2", "/escrow/replicaCount")]
    [InlineData("escrow.storage.type=postgres", "/escrow/storage/postgres/existingSecret")]
    [InlineData("admission.validationActions={Block}", "/admission/validationActions/0")]
    [InlineData("admission.failurePolicy=Maybe", "/admission/failurePolicy")]
    [InlineData("metrics.serviceMonitor.interval=soon", "/metrics/serviceMonitor/interval")]
    [InlineData("replicaCount=2", "additional properties 'replicaCount'")]
    [InlineData("operator.leaserKey=x", "additional properties 'leaserKey'")]
    public void Schema_rejects_bad_values_and_names_the_field(string set, string field)
    {
        var result = Chart.TryRender(set);

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("values don't meet the specifications of the schema", result.Stderr, StringComparison.Ordinal);
        Assert.Contains(field, result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void An_external_escrow_needs_its_url()
    {
        var result = Chart.TryRender("escrow.enabled=false");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("operator.escrowUrl is required when escrow.enabled is false", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_value_is_documented_in_values_yaml()
    {
        var lines = File.ReadAllLines(Path.Combine(Tools.ChartDir, "values.yaml"));
        var undocumented = new List<string>();
        var path = new List<(int Indent, string Key)>();
        var listIndent = -1;
        for (var i = 0; i < lines.Length; i++)
        {
            var item = ListItem().Match(lines[i]);
            if (item.Success)
            {
                // The keys of a list item are data of the documented list, not values of their own.
                listIndent = item.Groups["indent"].Length;
                continue;
            }

            var match = KeyLine().Match(lines[i]);
            if (!match.Success)
            {
                continue;
            }

            var indent = match.Groups["indent"].Length;
            if (indent > listIndent && listIndent >= 0)
            {
                continue;
            }

            listIndent = -1;
            path.RemoveAll(p => p.Indent >= indent);
            var key = match.Groups["key"].Value;
            var isLeaf = match.Groups["value"].Value.Trim().Length > 0;
            path.Add((indent, key));

            // Leaves need a comment right above them; resources are Kubernetes' own fields.
            if (isLeaf && path.All(p => p.Key != "resources") && (i == 0 || !lines[i - 1].TrimStart().StartsWith('#')))
            {
                undocumented.Add(string.Join('.', path.Select(p => p.Key)));
            }
        }

        Assert.True(undocumented.Count == 0, "Document these values with a comment above them: " + string.Join(", ", undocumented));
    }

    [Fact]
    public void Schema_describes_every_top_level_section_and_forbids_unknown_keys()
    {
        var schema = JsonNode.Parse(File.ReadAllText(Path.Combine(Tools.ChartDir, "values.schema.json")))!;
        Assert.False(schema["additionalProperties"]!.GetValue<bool>());
        foreach (var section in new[] { "operator", "serviceAccount", "rbac", "admission", "escrow", "metrics", "networkPolicy" })
        {
            Assert.False(schema["properties"]![section]!["additionalProperties"]!.GetValue<bool>(), section);
        }
    }

    [GeneratedRegex(@"^(?<indent>\s*)(?<key>[A-Za-z][A-Za-z0-9]*):(?<value>.*)$")]
    private static partial Regex KeyLine();

    [GeneratedRegex(@"^(?<indent>\s*)- ")]
    private static partial Regex ListItem();
}
