using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Rpoi.Kube.ApiServer.Tests.Support;

namespace Rpoi.Kube.ApiServer.Tests;

/// <summary>
/// <c>/openapi/v2</c> and the built-in kinds our chart and config/ install (NetworkPolicy, PodDisruptionBudget,
/// PersistentVolumeClaim), as discovery and OpenAPI show them.
/// </summary>
public sealed class OpenApiV2Tests : IAsyncLifetime
{
    private KubeApiServer _server = null!;
    private readonly HttpClient _http = new();

    public async Task InitializeAsync()
    {
        (_server, var client) = await TestServer.StartAsync();
        client.Dispose();
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "test-token");
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
    }

    private async Task<(HttpStatusCode Code, string Body, HttpResponseMessage Response)> GetAsync(string path, string? accept)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, _server.Url + path);
        if (accept is not null)
        {
            request.Headers.TryAddWithoutValidation("Accept", accept);
        }

        var response = await _http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("application/json")]
    [InlineData("application/json, */*")]
    public async Task The_v2_document_has_a_definition_and_patch_operation_per_kind(string? accept)
    {
        var (code, body, response) = await GetAsync("/openapi/v2", accept);
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var doc = JsonNode.Parse(body)!.AsObject();
        Assert.Equal("2.0", doc["swagger"]!.GetValue<string>());

        var widget = doc["definitions"]!["test.example.v1.Widget"]!;
        Assert.Equal("Widget", widget["x-kubernetes-group-version-kind"]![0]!["kind"]!.GetValue<string>());
        Assert.Equal(100, widget["properties"]!["spec"]!["properties"]!["size"]!["maximum"]!.GetValue<int>());
        foreach (var kind in new[] { "NetworkPolicy", "PodDisruptionBudget", "PersistentVolumeClaim" })
        {
            Assert.Contains(doc["definitions"]!.AsObject(), d => d.Value?["x-kubernetes-group-version-kind"]?[0]?["kind"]?.GetValue<string>() == kind);
        }

        // Shared schemas such as ObjectMeta are referenced the v2 way, and every reference resolves.
        Assert.Equal("#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", widget["properties"]!["metadata"]!["$ref"]?.GetValue<string>() ?? widget["properties"]!["metadata"]!["allOf"]?[0]?["$ref"]?.GetValue<string>());
        foreach (var target in Refs(doc))
        {
            Assert.StartsWith("#/definitions/", target, StringComparison.Ordinal);
            Assert.NotNull(doc["definitions"]![target["#/definitions/".Length..]]);
        }

        var patch = doc["paths"]!["/apis/example.test/v1/namespaces/{namespace}/widgets/{name}"]!["patch"]!;
        Assert.Equal("patch", patch["x-kubernetes-action"]!.GetValue<string>());
        Assert.Contains(patch["parameters"]!.AsArray(), p => p!["name"]!.GetValue<string>() == "fieldValidation");
        Assert.Contains(doc["paths"]!.AsObject(), p => p.Key == "/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/{name}/status");
    }

    [Fact]
    public async Task Crd_schemas_lose_what_Swagger_2_cannot_say_and_keep_properties_of_any_name()
    {
        _server.RegisterCustomResourceDefinition("""
            {"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"gizmos.example.test"},
             "spec":{"group":"example.test","scope":"Namespaced","names":{"plural":"gizmos","singular":"gizmo","kind":"Gizmo","listKind":"GizmoList"},
              "versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"type":"object","properties":{
                "spec":{"type":"object","properties":{
                  "note":{"type":"string","nullable":true},
                  "not":{"type":"string"},
                  "amount":{"x-kubernetes-int-or-string":true,"anyOf":[{"type":"integer"},{"type":"string"}]}}}}}}}]}}
            """);

        var (code, body, _) = await GetAsync("/openapi/v2", "application/json");
        Assert.Equal(HttpStatusCode.OK, code);
        var spec = JsonNode.Parse(body)!["definitions"]!["test.example.v1.Gizmo"]!["properties"]!["spec"]!["properties"]!.AsObject();
        Assert.Equal(["note", "not", "amount"], spec.Select(p => p.Key));
        Assert.Equal("""{"type":"string"}""", spec["note"]!.ToJsonString());
        Assert.Equal("""{"x-kubernetes-int-or-string":true}""", spec["amount"]!.ToJsonString());
    }

    [Fact]
    public async Task A_protobuf_only_Accept_gets_406_as_from_kube_openapi()
    {
        var (code, body, response) = await GetAsync("/openapi/v2", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf");
        Assert.Equal(HttpStatusCode.NotAcceptable, code);
        Assert.Equal("", body);
        Assert.Contains("Accept", response.Headers.Vary);
    }

    [Theory]
    [InlineData("/apis/networking.k8s.io/v1", "networkpolicies", "NetworkPolicy", "netpol", false)]
    [InlineData("/apis/policy/v1", "poddisruptionbudgets", "PodDisruptionBudget", "pdb", true)]
    [InlineData("/api/v1", "persistentvolumeclaims", "PersistentVolumeClaim", "pvc", true)]
    public async Task The_kinds_our_install_creates_are_in_discovery(string groupVersion, string plural, string kind, string shortName, bool status)
    {
        var (code, body, _) = await GetAsync(groupVersion, "application/json");
        Assert.Equal(HttpStatusCode.OK, code);
        var resources = JsonNode.Parse(body)!["resources"]!.AsArray();
        var resource = resources.Single(r => r!["name"]!.GetValue<string>() == plural)!;
        Assert.Equal(kind, resource["kind"]!.GetValue<string>());
        Assert.True(resource["namespaced"]!.GetValue<bool>());
        Assert.Equal([shortName], resource["shortNames"]!.AsArray().Select(s => s!.GetValue<string>()));
        Assert.Equal(["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            resource["verbs"]!.AsArray().Select(v => v!.GetValue<string>()));
        Assert.Equal(status, resources.Any(r => r!["name"]!.GetValue<string>() == plural + "/status"));
    }

    private static IEnumerable<string> Refs(JsonNode? node) => node switch
    {
        JsonObject o => o.SelectMany(p => p.Key == "$ref" && p.Value is JsonValue v ? [v.GetValue<string>()] : Refs(p.Value)),
        JsonArray a => a.SelectMany(Refs),
        _ => [],
    };
}
