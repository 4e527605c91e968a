using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Rpoi.Kube.ApiServer.Tests.Support;

namespace Rpoi.Kube.ApiServer.Tests;

/// <summary>
/// CRDs a real API server (v1.32) refuses are refused here with its status, field paths and wording, taken from
/// k8s.io/apiextensions-apiserver pkg/apis/apiextensions/validation/validation.go and pkg/apiserver/schema.
/// </summary>
public sealed class CrdValidationTests
{
    private const string Name = "things.example.test";
    private const string Root = "spec.validation.openAPIV3Schema";
    private const string SpecPath = Root + ".properties[spec]";

    /// <summary>A CRD the real server accepts; each case breaks one thing in a copy.</summary>
    private static JsonObject Valid() => JsonNode.Parse("""
        {
          "apiVersion": "apiextensions.k8s.io/v1",
          "kind": "CustomResourceDefinition",
          "metadata": { "name": "things.example.test" },
          "spec": {
            "group": "example.test",
            "scope": "Namespaced",
            "names": { "plural": "things", "singular": "thing", "kind": "Thing", "listKind": "ThingList", "shortNames": ["th"] },
            "versions": [{
              "name": "v1", "served": true, "storage": true,
              "subresources": { "status": {} },
              "additionalPrinterColumns": [{ "name": "Size", "type": "integer", "jsonPath": ".spec.size" }],
              "schema": { "openAPIV3Schema": {
                "type": "object",
                "description": "A thing.",
                "properties": {
                  "apiVersion": { "type": "string" },
                  "kind": { "type": "string" },
                  "metadata": { "type": "object" },
                  "spec": {
                    "type": "object",
                    "x-kubernetes-validations": [{ "rule": "self.size >= 0", "message": "size is not negative" }],
                    "properties": {
                      "size": { "type": "integer", "default": 1 },
                      "labels": { "type": "object", "additionalProperties": { "type": "string" } },
                      "list": { "type": "array", "items": { "type": "string" } }
                    }
                  },
                  "status": {
                    "type": "object",
                    "properties": {
                      "conditions": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["type"],
                        "items": { "type": "object", "required": ["type"], "properties": { "type": { "type": "string" }, "status": { "type": "string" } } }
                      }
                    }
                  }
                }
              } }
            }]
          }
        }
        """)!.AsObject();

    private static JsonObject Schema(JsonObject crd) => crd["spec"]!["versions"]![0]!["schema"]!["openAPIV3Schema"]!.AsObject();

    private static JsonObject Prop(JsonObject crd, string name) => Schema(crd)["properties"]![name]!.AsObject();

    private static JsonObject SpecProp(JsonObject crd, string name) => Prop(crd, "spec")["properties"]![name]!.AsObject();

    /// <summary>Each case: what to break, then the one error (path: body) the real server answers.</summary>
    public static TheoryData<string, string, string, string> Refused() => new()
    {
        {
            "description under metadata", "FieldValueForbidden", Root + ".properties[metadata]",
            "Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"
        },
        {
            "metadata with other properties", "FieldValueForbidden", Root + ".properties[metadata]",
            "Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"
        },
        { "metadata not an object", "FieldValueInvalid", Root + ".properties[metadata].type", "Invalid value: \"string\": must be object" },
        { "default under metadata", "FieldValueForbidden", Root + ".properties[metadata].default", "Forbidden: must not be set in top-level metadata" },
        { "property next to additionalProperties", "FieldValueForbidden", SpecPath + ".properties[labels].additionalProperties", "Forbidden: additionalProperties and properties are mutual exclusive" },
        { "untyped node", "FieldValueRequired", SpecPath + ".properties[size].type", "Required value: must not be empty for specified object fields" },
        { "untyped array items", "FieldValueRequired", SpecPath + ".properties[list].items.type", "Required value: must not be empty for specified array items" },
        { "array without items", "FieldValueRequired", SpecPath + ".properties[list].items", "Required value: must be specified" },
        { "type under anyOf", "FieldValueForbidden", SpecPath + ".properties[size].anyOf[0].type", "Forbidden: must be empty to be structural" },
        { "metadata under allOf", "FieldValueForbidden", SpecPath + ".allOf[0].properties[metadata]", "Forbidden: must not be specified in a nested context" },
        { "unknown type", "FieldValueNotSupported", SpecPath + ".properties[size].type", "Unsupported value: \"int\": supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\"" },
        { "preserve-unknown-fields false", "FieldValueInvalid", SpecPath + ".x-kubernetes-preserve-unknown-fields", "Invalid value: false: must be true or undefined" },
        { "int-or-string with preserve-unknown-fields", "FieldValueInvalid", SpecPath + ".properties[size].x-kubernetes-preserve-unknown-fields", "Invalid value: true: must be false if x-kubernetes-int-or-string is true" },
        { "embedded resource without properties", "FieldValueRequired", SpecPath + ".properties[labels].properties", "Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields" },
        { "uniqueItems", "FieldValueForbidden", SpecPath + ".properties[list].uniqueItems", "Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic" },
        // NewStructural refuses it too, but that error is shown only when nothing else is wrong.
        { "$ref", "FieldValueForbidden", SpecPath + ".properties[size].$ref", "Forbidden: $ref is not supported" },
        { "list-map key not required", "FieldValueRequired", Root + ".properties[status].properties[conditions].items.properties[type].default", "Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property" },
        { "list-map key not a property", "FieldValueInvalid", Root + ".properties[status].properties[conditions].x-kubernetes-list-map-keys", "Invalid value: []string{\"name\"}: entries must all be names of item properties" },
        { "list-map keys without list-type", "FieldValueRequired", SpecPath + ".properties[list].x-kubernetes-list-type", "Required value: must be map if x-kubernetes-list-map-keys is non-empty" },
        { "unknown list-type", "FieldValueNotSupported", SpecPath + ".properties[list].x-kubernetes-list-type", "Unsupported value: \"sett\": supported values: \"atomic\", \"set\", \"map\"" },
        { "default of the wrong type", "FieldValueTypeInvalid", SpecPath + ".properties[size].default", "must be of type integer" },
        { "default with an unknown field", "FieldValueInvalid", SpecPath + ".properties[labels].default", "Invalid value: map[string]interface {}{\"b\":\"x\"}: must not have unknown fields" },
        { "CEL rule naming an undefined field", "FieldValueInvalid", SpecPath + ".x-kubernetes-validations[0].rule", "Invalid value: apiextensions.ValidationRule{Rule:\"self.nosuch >= 0\", Message:\"size is not negative\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:5: undefined field 'nosuch'\n | self.nosuch >= 0\n | ....^" },
        { "CEL rule without text", "FieldValueRequired", SpecPath + ".x-kubernetes-validations[0].rule", "Required value: rule is not specified" },
        { "CEL reason unknown", "FieldValueNotSupported", SpecPath + ".x-kubernetes-validations[0].reason", "Unsupported value: \"Bad\": supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\"" },
        { "oldSelf in items of an atomic list", "FieldValueInvalid", SpecPath + ".properties[list].items.x-kubernetes-validations[0].rule", "Invalid value: \"self == oldSelf\": oldSelf cannot be used on the uncorrelatable portion of the schema within " + SpecPath + ".properties[list]" },
        { "invalid pattern", "FieldValueInvalid", SpecPath + ".properties[size].pattern", "Invalid value: \"(?=a)\": must be a valid regular expression, but isn't: error parsing regexp: invalid or unsupported Perl syntax: `(?=`" },
        { "name is not plural.group", "FieldValueInvalid", "metadata.name", "Invalid value: \"wrong.example.test\": must be spec.names.plural+\".\"+spec.group" },
        { "group without a dot", "FieldValueInvalid", "spec.group", "Invalid value: \"example\": should be a domain with at least one dot" },
        { "unknown scope", "FieldValueNotSupported", "spec.scope", "Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\"" },
        { "upper-case short name", "FieldValueInvalid", "spec.names.shortNames[0]", "Invalid value: \"Th\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')" },
        { "kind equal to listKind", "FieldValueInvalid", "spec.names.listKind", "Invalid value: \"Thing\": kind and listKind may not be the same" },
        { "bad category", "FieldValueInvalid", "spec.names.categories[0]", "Invalid value: \"all_things\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')" },
        { "no schema", "FieldValueRequired", "spec.versions[0].schema.openAPIV3Schema", "Required value: schemas are required" },
        { "bad printer column type", "FieldValueInvalid", "spec.additionalPrinterColumns[0].type", "Invalid value: \"int\": must be one of boolean,date,integer,number,string" },
        { "printer column without jsonPath", "FieldValueRequired", "spec.additionalPrinterColumns[0].JSONPath", "Required value" },
        { "printer column path not starting with a dot", "FieldValueInvalid", "spec.additionalPrinterColumns[0].JSONPath", "Invalid value: \"spec.size\": must be a simple json path starting with ." },
        { "bad printer column format", "FieldValueInvalid", "spec.additionalPrinterColumns[0].format", "Invalid value: \"percent\": must be one of byte,date,date-time,double,float,int32,int64,password" },
        { "scale path outside spec", "FieldValueInvalid", "spec.subresources.scale.specReplicasPath", "Invalid value: \".status.replicas\": should be a json path under .spec" },
        { "status root with nullable", "FieldValueForbidden", Root + ".nullable", "Forbidden: nullable cannot be true at the root" },
        { "protected group without approval", "FieldValueRequired", "metadata.annotations[api-approved.kubernetes.io]", "Required value: protected groups must have approval annotation \"api-approved.kubernetes.io\", see https://github.com/kubernetes/enhancements/pull/1111" },
        { "preserveUnknownFields true", "FieldValueInvalid", "spec.preserveUnknownFields", "Invalid value: true: cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead" },
        { "webhook conversion without a client config", "FieldValueRequired", "spec.conversion.webhookClientConfig", "Required value: required when strategy is set to Webhook" },
    };

    private static void Break(string what, JsonObject crd)
    {
        var spec = crd["spec"]!.AsObject();
        var version = spec["versions"]![0]!.AsObject();
        switch (what)
        {
            case "description under metadata": Prop(crd, "metadata")["description"] = "Standard object metadata."; break;
            case "metadata with other properties": Prop(crd, "metadata")["properties"] = new JsonObject { ["labels"] = new JsonObject { ["type"] = "object" } }; break;
            case "metadata not an object": Prop(crd, "metadata")["type"] = "string"; break;
            case "default under metadata": Prop(crd, "metadata")["default"] = new JsonObject(); break;
            case "property next to additionalProperties": SpecProp(crd, "labels")["properties"] = new JsonObject { ["a"] = new JsonObject { ["type"] = "string" } }; break;
            case "untyped node": SpecProp(crd, "size").Remove("type"); SpecProp(crd, "size").Remove("default"); break;
            case "untyped array items": SpecProp(crd, "list")["items"]!.AsObject().Remove("type"); break;
            case "array without items": SpecProp(crd, "list").Remove("items"); break;
            case "type under anyOf": SpecProp(crd, "size")["anyOf"] = new JsonArray(new JsonObject { ["type"] = "integer", ["minimum"] = 0 }); break;
            case "metadata under allOf": Prop(crd, "spec")["allOf"] = new JsonArray(new JsonObject { ["properties"] = new JsonObject { ["metadata"] = new JsonObject() } }); break;
            case "unknown type": SpecProp(crd, "size")["type"] = "int"; SpecProp(crd, "size").Remove("default"); break;
            case "preserve-unknown-fields false": Prop(crd, "spec")["x-kubernetes-preserve-unknown-fields"] = false; break;
            case "int-or-string with preserve-unknown-fields":
                SpecProp(crd, "size").Remove("type");
                SpecProp(crd, "size").Remove("default");
                SpecProp(crd, "size")["x-kubernetes-int-or-string"] = true;
                SpecProp(crd, "size")["x-kubernetes-preserve-unknown-fields"] = true;
                break;
            case "embedded resource without properties":
                SpecProp(crd, "labels").Remove("additionalProperties");
                SpecProp(crd, "labels")["x-kubernetes-embedded-resource"] = true;
                break;
            case "uniqueItems": SpecProp(crd, "list")["uniqueItems"] = true; break;
            case "$ref": SpecProp(crd, "size")["$ref"] = "#/definitions/size"; break;
            case "list-map key not required": Prop(crd, "status")["properties"]!["conditions"]!["items"]!.AsObject().Remove("required"); break;
            case "list-map key not a property": Prop(crd, "status")["properties"]!["conditions"]!["x-kubernetes-list-map-keys"] = new JsonArray("name"); break;
            case "list-map keys without list-type": SpecProp(crd, "list")["x-kubernetes-list-map-keys"] = new JsonArray("name"); break;
            case "unknown list-type": SpecProp(crd, "list")["x-kubernetes-list-type"] = "sett"; break;
            case "default of the wrong type": SpecProp(crd, "size")["default"] = "x"; break;
            case "default with an unknown field": SpecProp(crd, "labels").Remove("additionalProperties"); SpecProp(crd, "labels")["properties"] = new JsonObject { ["a"] = new JsonObject { ["type"] = "string" } }; SpecProp(crd, "labels")["default"] = new JsonObject { ["b"] = "x" }; break;
            case "CEL rule naming an undefined field": Prop(crd, "spec")["x-kubernetes-validations"]![0]!["rule"] = "self.nosuch >= 0"; break;
            case "CEL rule without text": Prop(crd, "spec")["x-kubernetes-validations"]![0]!["rule"] = " "; break;
            case "CEL reason unknown": Prop(crd, "spec")["x-kubernetes-validations"]![0]!["reason"] = "Bad"; break;
            case "oldSelf in items of an atomic list": SpecProp(crd, "list")["items"]!["x-kubernetes-validations"] = new JsonArray(new JsonObject { ["rule"] = "self == oldSelf" }); break;
            case "invalid pattern": SpecProp(crd, "size")["type"] = "string"; SpecProp(crd, "size").Remove("default"); SpecProp(crd, "size")["pattern"] = "(?=a)"; break;
            case "name is not plural.group": crd["metadata"]!["name"] = "wrong.example.test"; break;
            case "group without a dot": spec["group"] = "example"; crd["metadata"]!["name"] = "things.example"; break;
            case "unknown scope": spec["scope"] = "Global"; break;
            case "upper-case short name": spec["names"]!["shortNames"] = new JsonArray("Th"); break;
            case "kind equal to listKind": spec["names"]!["listKind"] = "Thing"; break;
            case "bad category": spec["names"]!["categories"] = new JsonArray("all_things"); break;
            case "no schema": version.Remove("schema"); break;
            case "bad printer column type": version["additionalPrinterColumns"]![0]!["type"] = "int"; break;
            case "printer column without jsonPath": version["additionalPrinterColumns"]![0]!.AsObject().Remove("jsonPath"); break;
            case "printer column path not starting with a dot": version["additionalPrinterColumns"]![0]!["jsonPath"] = "spec.size"; break;
            case "bad printer column format": version["additionalPrinterColumns"]![0]!["format"] = "percent"; break;
            case "scale path outside spec": version["subresources"]!["scale"] = new JsonObject { ["specReplicasPath"] = ".status.replicas", ["statusReplicasPath"] = ".status.replicas" }; break;
            case "status root with nullable": version.Remove("subresources"); Schema(crd)["nullable"] = true; break;
            case "protected group without approval": spec["group"] = "example.k8s.io"; crd["metadata"]!["name"] = "things.example.k8s.io"; break;
            case "preserveUnknownFields true": spec["preserveUnknownFields"] = true; SpecProp(crd, "size").Remove("default"); break;
            case "webhook conversion without a client config": spec["conversion"] = new JsonObject { ["strategy"] = "Webhook", ["webhook"] = new JsonObject { ["conversionReviewVersions"] = new JsonArray("v1") } }; break;
            default: throw new ArgumentException("no such case: " + what, nameof(what));
        }
    }

    [Fact]
    public void The_base_crd_and_the_test_widgets_are_accepted()
    {
        Assert.Empty(CrdValidation.Validate(Valid(), null));
        Assert.Empty(CrdValidation.Validate(JsonNode.Parse(Widgets.CrdJson)!.AsObject(), null));
    }

    [Theory]
    [MemberData(nameof(Refused))]
    public void A_crd_the_real_server_refuses_is_refused_with_its_field_and_message(string what, string reason, string field, string body)
    {
        var crd = Valid();
        Break(what, crd);

        var errors = CrdValidation.Validate(crd, null);

        var error = Assert.Single(errors);
        Assert.Equal(field, error.Field);
        Assert.Equal(reason, error.Type);
        if (reason == "FieldValueTypeInvalid")
        {
            // The body comes from the schema validator of custom resources (SchemaValidator), moved under ".default".
            Assert.Contains(body, error.Body, StringComparison.Ordinal);
        }
        else
        {
            Assert.Equal(body, error.Body);
        }
    }

    [Fact]
    public async Task A_refused_crd_is_answered_422_with_the_real_status_and_every_cause()
    {
        await using var server = await KubeApiServer.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.Url) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "test-token");
        var crd = Valid();
        Prop(crd, "metadata")["description"] = "Standard object metadata.";
        version(crd)["additionalPrinterColumns"]![0]!["type"] = "int";

        using var response = await http.PostAsync("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            new StringContent(crd.ToJsonString(), Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var status = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("Invalid", status["reason"]!.GetValue<string>());
        Assert.Equal(422, status["code"]!.GetValue<int>());
        Assert.Equal(
            $"CustomResourceDefinition.apiextensions.k8s.io \"{Name}\" is invalid: [" +
            "spec.validation.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified, " +
            "spec.additionalPrinterColumns[0].type: Invalid value: \"int\": must be one of boolean,date,integer,number,string]",
            status["message"]!.GetValue<string>());
        var details = status["details"]!;
        Assert.Equal((Name, "apiextensions.k8s.io", "CustomResourceDefinition"),
            (details["name"]!.GetValue<string>(), details["group"]!.GetValue<string>(), details["kind"]!.GetValue<string>()));
        var causes = details["causes"]!.AsArray().Select(c => (c!["reason"]!.GetValue<string>(), c["field"]!.GetValue<string>(), c["message"]!.GetValue<string>())).ToList();
        Assert.Equal(
            [
                ("FieldValueForbidden", "spec.validation.openAPIV3Schema.properties[metadata]", "Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"),
                ("FieldValueInvalid", "spec.additionalPrinterColumns[0].type", "Invalid value: \"int\": must be one of boolean,date,integer,number,string"),
            ],
            causes);
        Assert.DoesNotContain(server.ResourceTypes, t => t.Plural == "things"); // nothing was registered

        static JsonObject version(JsonObject crd) => crd["spec"]!["versions"]![0]!.AsObject();
    }

    [Fact]
    public async Task The_register_helper_and_updates_are_refused_too()
    {
        await using var server = await KubeApiServer.StartAsync();
        var bad = Valid();
        Prop(bad, "metadata")["description"] = "Standard object metadata.";
        var refused = Assert.Throws<ApiException>(() => server.RegisterCustomResourceDefinition(bad.ToJsonString()));
        Assert.Equal((422, "Invalid"), (refused.Code, refused.Reason));
        Assert.Equal("spec.validation.openAPIV3Schema.properties[metadata]", Assert.Single(refused.Causes).Field);

        server.RegisterCustomResourceDefinition(Valid().ToJsonString());
        using var http = new HttpClient { BaseAddress = new Uri(server.Url) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "test-token");
        using var patch = new HttpRequestMessage(HttpMethod.Patch, $"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{Name}")
        {
            Content = new StringContent("""{"spec":{"group":"other.test"}}""", Encoding.UTF8, "application/merge-patch+json"),
        };
        using var response = await http.SendAsync(patch);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var status = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;

        // Not also "metadata.name must be spec.names.plural+"."+spec.group": an update does not check the name.
        Assert.Equal($"CustomResourceDefinition.apiextensions.k8s.io \"{Name}\" is invalid: spec.group: Invalid value: \"other.test\": field is immutable",
            status["message"]!.GetValue<string>());
        var cause = Assert.Single(status["details"]!["causes"]!.AsArray())!;
        Assert.Equal("spec.group", cause["field"]!.GetValue<string>());
    }

    [Fact]
    public void Two_storage_versions_are_refused_with_the_versions_and_the_stored_version()
    {
        var crd = Valid();
        var second = crd["spec"]!["versions"]![0]!.DeepClone().AsObject();
        second["name"] = "v2";
        crd["spec"]!["versions"]!.AsArray().Add(second);

        var errors = CrdValidation.Validate(crd, null);

        Assert.Equal(["spec.versions", "status.storedVersions"], errors.Select(e => e.Field));
        Assert.StartsWith("Invalid value: []apiextensions.CustomResourceDefinitionVersion{apiextensions.CustomResourceDefinitionVersion{Name:\"v1\", Served:true, Storage:true,", errors[0].Body, StringComparison.Ordinal);
        Assert.EndsWith(": must have exactly one version marked as storage version", errors[0].Body, StringComparison.Ordinal);
        Assert.Equal("Invalid value: []string{\"v1\"}: must have the storage version v2", errors[1].Body);
    }

    [Fact]
    public async Task A_stored_version_cannot_leave_spec_versions_but_a_served_one_can()
    {
        await using var server = await KubeApiServer.StartAsync();
        var crd = Valid();
        var v2 = crd["spec"]!["versions"]![0]!.DeepClone().AsObject();
        v2["name"] = "v2";
        v2["storage"] = false;
        crd["spec"]!["versions"]!.AsArray().Add(v2);
        server.RegisterCustomResourceDefinition(crd.ToJsonString());
        Assert.Equal(["v1"], CrdValidation.Strings(server.GetObject("apiextensions.k8s.io/v1", "CustomResourceDefinition", null, Name)!["status"]!["storedVersions"]));

        server.RegisterCustomResourceDefinition(Valid().ToJsonString()); // v2 was only served: it may go
        var onlyV2 = Valid();
        onlyV2["spec"]!["versions"]![0]!["name"] = "v2";
        var refused = Assert.Throws<ApiException>(() => server.RegisterCustomResourceDefinition(onlyV2.ToJsonString()));

        var cause = Assert.Single(refused.Causes);
        Assert.Equal(("status.storedVersions[0]", "Invalid value: \"v1\": must appear in spec.versions"), (cause.Field, cause.Message));
    }

    [Fact]
    public void Versions_with_different_schemas_are_checked_under_their_own_paths()
    {
        var crd = Valid();
        var second = crd["spec"]!["versions"]![0]!.DeepClone().AsObject();
        second["name"] = "v2";
        second["storage"] = false;
        second["schema"]!["openAPIV3Schema"]!["properties"]!["metadata"]!["description"] = "meta";
        crd["spec"]!["versions"]!.AsArray().Add(second);

        var error = Assert.Single(CrdValidation.Validate(crd, null));

        Assert.Equal("spec.versions[1].schema.openAPIV3Schema.properties[metadata]", error.Field);
    }

    [Fact]
    public async Task A_rule_outside_the_cel_subset_is_accepted_with_a_warning_that_it_is_not_compiled()
    {
        await using var server = await KubeApiServer.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.Url) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "test-token");
        var crd = Valid();
        Prop(crd, "spec")["x-kubernetes-validations"]![0]!["rule"] = "self.list.all(x, x.size() < 10)";

        using var response = await http.PostAsync("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            new StringContent(crd.ToJsonString(), Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var warning = Assert.Single(response.Headers.GetValues("Warning"));
        Assert.Contains("x-kubernetes-validations[0].rule: the test server does not compile or enforce", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void Rules_may_read_metadata_and_name_fields_by_path()
    {
        var crd = Valid();
        Schema(crd)["x-kubernetes-validations"] = new JsonArray(new JsonObject { ["rule"] = "self.metadata.name != 'forbidden'", ["message"] = "name" });
        Prop(crd, "spec")["x-kubernetes-validations"]![0]!["fieldPath"] = ".labels['a.b']";
        SpecProp(crd, "list")["x-kubernetes-validations"] = new JsonArray(new JsonObject { ["rule"] = "self[0] != ''", ["fieldPath"] = "[0]", ["message"] = "first" });

        var errors = CrdValidation.Validate(crd, null);

        Assert.Equal([SpecPath + ".properties[list].x-kubernetes-validations[0].fieldPath"], errors.Select(e => e.Field));
        Assert.Equal("Invalid value: \"[0]\": fieldPath must be a valid path", errors[0].Body);
    }

    [Fact]
    public void Metadata_may_restrict_name_and_generateName()
    {
        var crd = Valid();
        Prop(crd, "metadata")["properties"] = new JsonObject
        {
            ["name"] = new JsonObject { ["type"] = "string", ["maxLength"] = 20 },
            ["generateName"] = new JsonObject { ["type"] = "string" },
        };

        Assert.Empty(CrdValidation.Validate(crd, null));
    }

    [Fact]
    public void Errors_of_one_schema_are_sorted_by_their_text_and_the_message_lists_each_once()
    {
        var crd = Valid();
        SpecProp(crd, "size").Remove("type");
        SpecProp(crd, "size").Remove("default");
        SpecProp(crd, "list").Remove("items");

        var errors = CrdValidation.Validate(crd, null);
        var refusal = CrdValidation.Refusal(Name, [.. errors, errors[0]]);

        Assert.Equal([SpecPath + ".properties[list].items", SpecPath + ".properties[size].type"], errors.Select(e => e.Field));
        Assert.Equal(3, refusal.Causes.Count);
        Assert.Equal($"CustomResourceDefinition.apiextensions.k8s.io \"{Name}\" is invalid: [{errors[0].Error}, {errors[1].Error}]", refusal.Message);
    }
}
