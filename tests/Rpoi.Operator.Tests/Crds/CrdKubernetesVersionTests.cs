using YamlDotNet.RepresentationModel;

namespace Rpoi.Operator.Tests.Crds;

/// <summary>
/// The checked-in CRDs load on Kubernetes 1.25, the first release with CEL validation on by default:
/// every <c>x-kubernetes-validations</c> rule uses only <c>rule</c> and <c>message</c>. <c>fieldPath</c> and
/// <c>reason</c> (1.28), <c>messageExpression</c> (1.27) and <c>optionalOldSelf</c> (1.29) are refused by an
/// older API server's strict field validation, so the whole CRD would fail to apply.
/// </summary>
public sealed class CrdKubernetesVersionTests
{
    private static readonly string[] Directories = ["crds", "charts/rpoi-operator/crds"];

    // What a 1.25 API server knows of a ValidationRule.
    private static readonly HashSet<string> Known125 = ["rule", "message"];

    public static TheoryData<string> CrdFiles()
    {
        var data = new TheoryData<string>();
        foreach (var directory in Directories)
        {
            foreach (var file in Directory.GetFiles(Path.Combine(RepositoryRoot.Path, directory), "rpoi.io_*.yaml").Order(StringComparer.Ordinal))
            {
                data.Add(Path.GetRelativePath(RepositoryRoot.Path, file));
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(CrdFiles))]
    public void Validation_rules_use_no_field_newer_than_kubernetes_1_25(string file)
    {
        var rules = new List<(string Path, YamlMappingNode Rule)>();
        foreach (var document in Load(file))
        {
            Collect(document.RootNode, "", rules);
        }

        Assert.NotEmpty(rules); // the CRDs do have CEL rules: the walk must have found them
        var newer = rules
            .SelectMany(r => r.Rule.Children.Keys.OfType<YamlScalarNode>()
                .Where(k => !Known125.Contains(k.Value!))
                .Select(k => $"{r.Path}.{k.Value}"))
            .ToList();
        Assert.True(newer.Count == 0,
            $"{file} uses validation-rule fields Kubernetes 1.25 does not know (name the field in the message instead):\n  " +
            string.Join("\n  ", newer));
        Assert.All(rules, r => Assert.True(r.Rule.Children.ContainsKey("message"), $"{r.Path} has no message naming the field"));
    }

    [Fact]
    public void The_walk_finds_a_newer_field_when_there_is_one()
    {
        // Guards the test above against walking past the rules: the same walk on a 1.28-style rule.
        var yaml = new YamlStream();
        yaml.Load(new StringReader("""
            spec:
              x-kubernetes-validations:
              - rule: self.a == 1
                message: spec.a must be 1
                fieldPath: .a
            """));
        var rules = new List<(string Path, YamlMappingNode Rule)>();
        Collect(yaml.Documents[0].RootNode, "", rules);
        var rule = Assert.Single(rules);
        Assert.Contains(rule.Rule.Children.Keys.OfType<YamlScalarNode>(), k => k.Value == "fieldPath");
    }

    private static IList<YamlDocument> Load(string file)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(Path.Combine(RepositoryRoot.Path, file));
        stream.Load(reader);
        return stream.Documents;
    }

    private static void Collect(YamlNode node, string path, List<(string, YamlMappingNode)> rules)
    {
        switch (node)
        {
            case YamlMappingNode mapping:
                foreach (var (key, value) in mapping.Children)
                {
                    var name = (key as YamlScalarNode)?.Value ?? "?";
                    var childPath = path.Length == 0 ? name : $"{path}.{name}";
                    if (name == "x-kubernetes-validations" && value is YamlSequenceNode list)
                    {
                        var i = 0;
                        foreach (var rule in list.Children.OfType<YamlMappingNode>())
                        {
                            rules.Add(($"{childPath}[{i++}]", rule));
                        }
                    }
                    else
                    {
                        Collect(value, childPath, rules);
                    }
                }

                break;
            case YamlSequenceNode sequence:
                var index = 0;
                foreach (var child in sequence.Children)
                {
                    Collect(child, $"{path}[{index++}]", rules);
                }

                break;
        }
    }
}
