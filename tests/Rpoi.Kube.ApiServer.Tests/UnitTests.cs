using System.Text.Json.Nodes;
using Rpoi.Kube.ApiServer.Tests.Support;

namespace Rpoi.Kube.ApiServer.Tests;

/// <summary>The pure pieces: patches, selectors, JSONPath, ages, discovery and OpenAPI documents.</summary>
public sealed class UnitTests
{
    private static JsonNode J(string json) => JsonNode.Parse(json)!;

    [Fact]
    public void Merge_patch_follows_rfc_7386()
    {
        var result = Patches.MergePatch(J("""{"a":"b","c":{"d":"e","f":"g"},"l":[1,2]}"""), J("""{"a":"z","c":{"f":null},"l":[3]}"""));
        Assert.True(JsonNode.DeepEquals(J("""{"a":"z","c":{"d":"e"},"l":[3]}"""), result));
    }

    [Fact]
    public void Strategic_merge_patch_merges_lists_by_key_and_honours_directives()
    {
        var target = J("""{"spec":{"containers":[{"name":"a","image":"1"},{"name":"b","image":"1"}]},"metadata":{"finalizers":["x"]},"status":{"conditions":[{"type":"Ready","status":"False"}]}}""");
        var patch = J("""
            {"$setElementOrder/containers":[{"name":"a"},{"name":"b"}],
             "spec":{"containers":[{"name":"b","image":"2"},{"name":"c","image":"3"},{"name":"a","$patch":"delete"}]},
             "metadata":{"finalizers":["y"]},
             "status":{"conditions":[{"type":"Ready","status":"True"}]}}
            """);
        var result = Patches.StrategicMergePatch(target, patch)!;
        Assert.True(JsonNode.DeepEquals(J("""[{"name":"b","image":"2"},{"name":"c","image":"3"}]"""), result["spec"]!["containers"]), result.ToJsonString());
        Assert.True(JsonNode.DeepEquals(J("""["x","y"]"""), result["metadata"]!["finalizers"]));
        Assert.True(JsonNode.DeepEquals(J("""[{"type":"Ready","status":"True"}]"""), result["status"]!["conditions"]));
        Assert.Null(result["$setElementOrder/containers"]);
    }

    [Fact]
    public void Json_patch_applies_all_ops_or_fails_with_the_operation_named()
    {
        var doc = J("""{"a":{"b":[1,2,3]},"c":"d"}""");
        var result = Patches.ApplyJsonPatch(doc, J("""
            [{"op":"add","path":"/a/b/1","value":9},{"op":"remove","path":"/a/b/0"},{"op":"replace","path":"/c","value":"e"},
             {"op":"copy","from":"/c","path":"/f"},{"op":"move","from":"/f","path":"/g"},{"op":"add","path":"/a/b/-","value":4},
             {"op":"add","path":"/h~1i","value":true},{"op":"test","path":"/g","value":"e"}]
            """));
        Assert.True(JsonNode.DeepEquals(J("""{"a":{"b":[9,2,3,4]},"c":"e","g":"e","h/i":true}"""), result), result.ToJsonString());
        Assert.True(JsonNode.DeepEquals(J("""{"a":{"b":[1,2,3]},"c":"d"}"""), doc), "the input must not be changed");
        var e = Assert.Throws<ApiException>(() => Patches.ApplyJsonPatch(doc, J("""[{"op":"remove","path":"/nope"}]""")));
        Assert.Contains("/nope", e.Message, StringComparison.Ordinal);
        Assert.Throws<ApiException>(() => Patches.ApplyJsonPatch(doc, J("""[{"op":"explode","path":"/a"}]""")));
    }

    [Theory]
    [InlineData("app=x", true)]
    [InlineData("app==x", true)]
    [InlineData("app!=x", false)]
    [InlineData("app in (x, y)", true)]
    [InlineData("app notin (x)", false)]
    [InlineData("tier", true)]
    [InlineData("!tier", false)]
    [InlineData("!missing,app=x", true)]
    [InlineData("missing notin (a)", true)]
    public void Label_selectors(string selector, bool matches)
    {
        var obj = J("""{"metadata":{"labels":{"app":"x","tier":"web"}}}""").AsObject();
        Assert.Equal(matches, LabelSelector.Parse(selector).Matches(obj));
    }

    [Fact]
    public void Bad_selectors_are_400_with_the_problem_named()
    {
        var e = Assert.Throws<ApiException>(() => LabelSelector.Parse("app in x"));
        Assert.Equal(400, e.Code);
        Assert.Contains("labelSelector", e.Message, StringComparison.Ordinal);
        Assert.Equal(400, Assert.Throws<ApiException>(() => FieldSelector.Parse("metadata.name")).Code);
    }

    [Fact]
    public void Json_path_subset_for_printer_columns()
    {
        var obj = J("""{"spec":{"size":3,"parts":[{"n":"a"},{"n":"b"}]},"status":{"conditions":[{"type":"Other","status":"X"},{"type":"Ready","status":"True"}]}}""");
        Assert.Equal(3, JsonPath.Evaluate(obj, ".spec.size")!.GetValue<int>());
        Assert.Equal("b", JsonPath.Evaluate(obj, ".spec.parts[1].n")!.GetValue<string>());
        Assert.Equal("True", JsonPath.Evaluate(obj, ".status.conditions[?(@.type==\"Ready\")].status")!.GetValue<string>());
        Assert.Equal("True", JsonPath.Evaluate(obj, "{.status.conditions[?(@.type=='Ready')].status}")!.GetValue<string>());
        Assert.Null(JsonPath.Evaluate(obj, ".status.missing.deeper"));
    }

    [Theory]
    [InlineData(5, "5s")]
    [InlineData(119, "119s")]
    [InlineData(180, "3m")]
    [InlineData(7200, "2h")]
    [InlineData(4 * 86400, "4d")]
    public void Ages_are_formatted_like_the_real_server(int seconds, string expected) =>
        Assert.Equal(expected, Tables.Age(TimeSpan.FromSeconds(seconds)));

    [Fact]
    public void Openapi_document_carries_the_crd_schema_with_gvk_and_field_validation()
    {
        var registry = new ResourceRegistry();
        var crd = JsonNode.Parse(Widgets.CrdJson)!.AsObject();
        foreach (var t in ResourceRegistry.ParseCrd(crd))
        {
            registry.Add(t);
        }

        var doc = Discovery.OpenApiDocument(registry, "example.test", "v1");
        var schema = doc["components"]!["schemas"]!["test.example.v1.Widget"]!;
        Assert.Equal("Widget", schema["x-kubernetes-group-version-kind"]![0]!["kind"]!.GetValue<string>());
        Assert.Equal("Number of parts.", schema["properties"]!["spec"]!["properties"]!["size"]!["description"]!.GetValue<string>());
        var patch = doc["paths"]!["/apis/example.test/v1/namespaces/{namespace}/widgets/{name}"]!["patch"]!;
        Assert.Contains(patch["parameters"]!.AsArray(), p => p!["name"]!.GetValue<string>() == "fieldValidation");
        var index = Discovery.OpenApiIndex(registry);
        Assert.StartsWith("/openapi/v3/apis/example.test/v1?hash=", index["paths"]!["apis/example.test/v1"]!["serverRelativeURL"]!.GetValue<string>(), StringComparison.Ordinal);

        var list = Discovery.ResourceList(registry, "example.test", "v1");
        var names = list["resources"]!.AsArray().Select(r => r!["name"]!.GetValue<string>()).ToList();
        Assert.Equal(["widgets", "widgets/status"], names);
        Assert.Equal("wg", list["resources"]![0]!["shortNames"]![0]!.GetValue<string>());
    }

    [Fact]
    public void Versions_sort_ga_then_beta_then_alpha()
    {
        var versions = new[] { "v1alpha1", "v2beta1", "v1", "v1beta2", "v2" }.Order(VersionComparer.Instance).Reverse().ToArray();
        Assert.Equal(["v2", "v1", "v2beta1", "v1beta2", "v1alpha1"], versions);
    }
}
