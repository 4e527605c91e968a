using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Rpoi.Kube.ApiServer;
using Rpoi.Tests.Shared;
using KubectlRunner = Rpoi.Tests.Shared.Kubectl;

namespace Rpoi.Operator.Tests.Crds;

/// <summary>
/// Every checked-in CRD passes the CRD validation of a real API server, as the test server implements it from
/// k8s.io/apiextensions-apiserver (CrdValidation), and real kubectl installs both copies. A real server refused the
/// CRDs once for a description under metadata: the same CRD with that line put back is refused here too.
/// </summary>
public sealed class CrdApiServerRulesTests
{
    private static readonly string[] Directories = ["crds", "charts/rpoi-operator/crds"];

    public static TheoryData<string> CrdFiles() => [.. Files()];

    private static IEnumerable<string> Files() =>
        Directories.SelectMany(d => Directory.GetFiles(Path.Combine(RepositoryRoot.Path, d), "*.yaml"))
            .Where(f => !f.EndsWith("kustomization.yaml", StringComparison.Ordinal))
            .Select(f => Path.GetRelativePath(RepositoryRoot.Path, f))
            .Order(StringComparer.Ordinal);

    public static IEnumerable<object[]> Binaries() => KubectlRunner.Binaries();

    private static JsonObject Load(string file)
    {
        var crd = KubernetesYaml.Deserialize<V1CustomResourceDefinition>(File.ReadAllText(Path.Combine(RepositoryRoot.Path, file)));
        return JsonNode.Parse(KubernetesJson.Serialize(crd))!.AsObject();
    }

    [Fact]
    public void Both_directories_hold_the_two_crds()
    {
        Assert.Equal(
            ["charts/rpoi-operator/crds/rpoi.io_leases.yaml", "charts/rpoi-operator/crds/rpoi.io_ratings.yaml", "crds/rpoi.io_leases.yaml", "crds/rpoi.io_ratings.yaml"],
            Files());
    }

    [Theory]
    [MemberData(nameof(CrdFiles))]
    public async Task Every_checked_in_crd_is_accepted_by_the_real_servers_crd_validation(string file)
    {
        await using var server = await KubeApiServer.StartAsync();
        var crd = Load(file);

        var served = server.RegisterCustomResourceDefinition(crd.ToJsonString());

        var plural = crd["spec"]!["names"]!["plural"]!.GetValue<string>();
        Assert.Equal([("rpoi.io", "v1alpha1", plural)], served.Select(t => (t.Group, t.Version, t.Plural)));
        Assert.Null(crd["spec"]!["versions"]![0]!["schema"]!["openAPIV3Schema"]!["properties"]!["metadata"]!["description"]);
    }

    [Theory]
    [MemberData(nameof(CrdFiles))]
    public async Task The_same_crd_with_a_description_under_metadata_is_refused_as_the_real_server_refused_it(string file)
    {
        await using var server = await KubeApiServer.StartAsync();
        var crd = Load(file);
        crd["spec"]!["versions"]![0]!["schema"]!["openAPIV3Schema"]!["properties"]!["metadata"]!["description"] = "Standard object metadata.";

        var refused = Assert.Throws<ApiException>(() => server.RegisterCustomResourceDefinition(crd.ToJsonString()));

        Assert.Equal((422, "Invalid"), (refused.Code, refused.Reason));
        var cause = Assert.Single(refused.Causes);
        Assert.Equal(("FieldValueForbidden", "spec.validation.openAPIV3Schema.properties[metadata]"), (cause.Reason, cause.Field));
        Assert.Equal(
            $"CustomResourceDefinition.apiextensions.k8s.io \"{crd["metadata"]!["name"]}\" is invalid: spec.validation.openAPIV3Schema.properties[metadata]: " +
            "Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified",
            refused.Message);
    }

    [Theory]
    [MemberData(nameof(Binaries))]
    public async Task Kubectl_installs_both_copies_and_shows_the_real_refusal_of_a_bad_one(string binary)
    {
        await using var server = await KubeApiServer.StartAsync();
        using var kubectl = new KubectlRunner(binary, server);
        var timeout = TimeSpan.FromSeconds(60);

        // crds/ is a kustomize base (it holds kustomization.yaml); the chart's copy is a plain directory.
        var kustomized = KubectlAssert.Succeeded(await kubectl.RunAsync(timeout, "apply", "-k", Path.Combine(RepositoryRoot.Path, "crds")));
        KubectlAssert.Contains("customresourcedefinition.apiextensions.k8s.io/leases.rpoi.io created", kustomized);
        KubectlAssert.Contains("customresourcedefinition.apiextensions.k8s.io/ratings.rpoi.io created", kustomized);
        var chart = KubectlAssert.Succeeded(await kubectl.RunAsync(timeout, "apply", "-f", Path.Combine(RepositoryRoot.Path, "charts/rpoi-operator/crds")));
        KubectlAssert.Contains("customresourcedefinition.apiextensions.k8s.io/leases.rpoi.io unchanged", chart);
        KubectlAssert.Contains("customresourcedefinition.apiextensions.k8s.io/ratings.rpoi.io unchanged", chart);

        var bad = File.ReadAllText(Path.Combine(RepositoryRoot.Path, "crds/rpoi.io_ratings.yaml"))
            .Replace("name: ratings.rpoi.io", "name: badratings.rpoi.io", StringComparison.Ordinal)
            .Replace("plural: ratings", "plural: badratings", StringComparison.Ordinal)
            .Replace("kind: Rating", "kind: BadRating", StringComparison.Ordinal)
            .Replace("listKind: RatingList", "listKind: BadRatingList", StringComparison.Ordinal)
            .Replace("singular: rating", "singular: badrating", StringComparison.Ordinal)
            .Replace("- tpurating", "- tpubadrating", StringComparison.Ordinal)
            .Replace("          metadata:\n            type: object", "          metadata:\n            description: Standard object metadata.\n            type: object", StringComparison.Ordinal);
        Assert.Contains("description: Standard object metadata.", bad, StringComparison.Ordinal);
        var refused = await kubectl.RunAsync(timeout, "apply", "-f", kubectl.WriteFile("bad.yaml", bad));

        Assert.NotEqual(0, refused.ExitCode);
        KubectlAssert.Contains("The CustomResourceDefinition \"badratings.rpoi.io\" is invalid", refused);
        KubectlAssert.Contains(
            "spec.validation.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified",
            refused);
    }
}
