using System.Text.Json.Nodes;

namespace Rpoi.Kube.ApiServer.Tests;

/// <summary>
/// The schema and CEL error messages are the real server's, word for word: kube-openapi's messages
/// (pkg/validation/errors/schema.go) as apiextensions-apiserver turns them into field errors, printed by
/// apimachinery's field.Error.Error(); CEL errors carry the type of the rule's schema as the value; CEL does not
/// run when a blocking schema error was found (pkg/registry/customresource/strategy.go hasBlockingErr).
/// </summary>
public sealed class ValidationMessageTests
{
    private static readonly JsonObject Schema = JsonNode.Parse("""
        {"type":"object",
         "x-kubernetes-validations":[{"rule":"self.spec.a != 'root'","message":"a must not be root"}],
         "properties":{"spec":{
          "type":"object",
          "x-kubernetes-validations":[
            {"rule":"self.a != 'x' || has(self.b)","message":"b is required when a is x"},
            {"rule":"self.a != 'forbidden'","message":"a is forbidden","reason":"FieldValueForbidden","fieldPath":".a"}
          ],
          "properties":{
            "a":{"type":"string","pattern":"^[a-z]*$","maxLength":10,"minLength":1},
            "b":{"type":"string"},
            "mode":{"type":"string","enum":["fast","slow"]},
            "level":{"type":"integer","enum":[1,2]},
            "chips":{"type":"integer","minimum":1},
            "window":{"type":"integer","maximum":31536000},
            "ratio":{"type":"number","exclusiveMaximum":true,"maximum":0.5},
            "port":{"x-kubernetes-int-or-string":true},
            "when":{"type":"string","format":"date-time"},
            "tags":{"type":"array","minItems":1,"maxItems":2,"items":{"type":"string"}},
            "score":{"type":"integer","x-kubernetes-validations":[{"rule":"self <= 5","message":"score must be at most 5"}]}
          }}}}
        """)!.AsObject();

    private static List<string> Messages(string spec)
    {
        var obj = JsonNode.Parse($$"""{"spec":{{spec}}}""")!.AsObject();
        return [.. SchemaValidator.Validate(obj, Schema, null).Causes.Select(c => c.Message)];
    }

    [Theory]
    [InlineData("""{"a":"ok","chips":0}""", "spec.chips: Invalid value: 0: spec.chips in body should be greater than or equal to 1")]
    [InlineData("""{"a":"ok","window":31536001}""", "spec.window: Invalid value: 31536001: spec.window in body should be less than or equal to 3.1536e+07")]
    [InlineData("""{"a":"ok","ratio":0.5}""", "spec.ratio: Invalid value: 0.5: spec.ratio in body should be less than 0.5")]
    [InlineData("""{"a":"A1"}""", "spec.a: Invalid value: \"A1\": spec.a in body should match '^[a-z]*$'")]
    [InlineData("""{"a":""}""", "spec.a: Invalid value: \"\": spec.a in body should be at least 1 chars long")]
    [InlineData("""{"a":"ok","tags":[]}""", "spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items")]
    public void Non_blocking_schema_errors_read_as_on_a_real_server_and_CEL_still_runs(string spec, string expected) =>
        Assert.Equal([expected], Messages(spec));

    [Theory]
    [InlineData("""{"a":"ok","mode":"medium"}""", "spec.mode: Unsupported value: \"medium\": supported values: \"fast\", \"slow\"")]
    [InlineData("""{"a":"ok","level":3}""", "spec.level: Unsupported value: 3: supported values: \"1\", \"2\"")]
    [InlineData("""{"a":"abcdefghijk"}""", "spec.a: Too long: may not be more than 10 bytes")]
    [InlineData("""{"a":"ok","tags":["a","b","c"]}""", "spec.tags: Too many: 3: must have at most 2 items")]
    [InlineData("""{"a":"ok","chips":"many"}""", "spec.chips: Invalid value: \"string\": spec.chips in body must be of type integer: \"string\"")]
    [InlineData("""{"a":"ok","when":"yesterday"}""", "spec.when: Invalid value: \"yesterday\": spec.when in body must be of type date-time: \"yesterday\"")]
    [InlineData("""{"a":"ok","port":true}""", "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\"")]
    public void Blocking_errors_stop_the_CEL_rules_with_the_real_notice(string spec, string expected) =>
        Assert.Equal([expected, "<nil>: Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"],
            Messages(spec));

    [Fact]
    public void CEL_errors_show_the_rule_schemas_type_and_its_path()
    {
        Assert.Equal(["spec: Invalid value: \"object\": b is required when a is x"], Messages("""{"a":"x"}"""));
        Assert.Equal(["spec.score: Invalid value: \"integer\": score must be at most 5"], Messages("""{"a":"ok","score":6}"""));
        Assert.Equal(["<nil>: Invalid value: \"object\": a must not be root"], Messages("""{"a":"root"}"""));
        Assert.Equal(["spec.a: Forbidden: a is forbidden"], Messages("""{"a":"forbidden"}"""));
    }

    [Fact]
    public void The_wire_cause_carries_the_message_without_the_field_as_kubectl_expects()
    {
        var type = new ResourceType { Group = "rpoi.io", Version = "v1alpha1", Plural = "leases", Singular = "lease", Kind = "Lease", Namespaced = true };
        var causes = SchemaValidator.Validate(JsonNode.Parse("""{"spec":{"a":"ok","chips":0}}""")!.AsObject(), Schema, null).Causes;
        var status = ApiException.Invalid(type, "zero", causes).ToStatus();
        Assert.Equal("Lease.rpoi.io \"zero\" is invalid: spec.chips: Invalid value: 0: spec.chips in body should be greater than or equal to 1", status["message"]!.GetValue<string>());
        var cause = status["details"]!["causes"]![0]!;
        Assert.Equal("spec.chips", cause["field"]!.GetValue<string>());
        Assert.Equal("Invalid value: 0: spec.chips in body should be greater than or equal to 1", cause["message"]!.GetValue<string>());
        Assert.Equal(("Lease", "rpoi.io", "zero"), (status["details"]!["kind"]!.GetValue<string>(), status["details"]!["group"]!.GetValue<string>(), status["details"]!["name"]!.GetValue<string>()));
    }

    [Theory]
    [InlineData(1, "1")]
    [InlineData(5, "5")]
    [InlineData(999999, "999999")]
    [InlineData(1000000, "1e+06")]
    [InlineData(31536000, "3.1536e+07")]
    [InlineData(0.5, "0.5")]
    [InlineData(0.0001, "0.0001")]
    [InlineData(0.00001, "1e-05")]
    [InlineData(-2.5, "-2.5")]
    public void Limits_print_as_Go_prints_a_float64(double value, string expected) =>
        Assert.Equal(expected, SchemaValidator.GoFloat(value));
}
