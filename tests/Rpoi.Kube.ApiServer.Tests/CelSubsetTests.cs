using System.Text.Json.Nodes;

namespace Rpoi.Kube.ApiServer.Tests;

/// <summary>The CEL subset and structural defaulting of the schema validator, on the rule shapes the real CRDs use.</summary>
public sealed class CelSubsetTests
{
    private static readonly JsonObject Schema = JsonNode.Parse("""
        {"type":"object","properties":{"spec":{
          "type":"object",
          "x-kubernetes-validations":[
            {"rule":"self.rater != 'Renter' || has(self.signed)","message":"signed is required when rater is Renter","fieldPath":".signed"},
            {"rule":"!has(oldSelf.done) || !oldSelf.done || (has(self.done) && self.done)","message":"done cannot be withdrawn","fieldPath":".done"}
          ],
          "properties":{
            "rater":{"type":"string"},
            "signed":{"type":"string"},
            "done":{"type":"boolean","default":false},
            "window":{"type":"integer","default":259200},
            "score":{"type":"integer","x-kubernetes-validations":[{"rule":"self >= 1 && self <= 5","message":"score must be between 1 and 5"}]}
          }}}}
        """)!.AsObject();

    private static List<StatusCause> Validate(string spec, string? oldSpec = null)
    {
        var obj = JsonNode.Parse($$"""{"spec":{{spec}}}""")!.AsObject();
        var old = oldSpec is null ? null : JsonNode.Parse($$"""{"spec":{{oldSpec}}}""")!.AsObject();
        return SchemaValidator.Validate(obj, Schema, old).Causes;
    }

    [Theory]
    [InlineData("""{"rater":"Leaser","score":3}""")]
    [InlineData("""{"rater":"Renter","signed":"sig","score":5}""")]
    [InlineData("""{"rater":"Renter","signed":"sig","score":1}""")]
    public void Valid_objects_pass(string spec) => Assert.Empty(Validate(spec));

    [Fact]
    public void Or_with_has_reports_at_the_rule_field_path()
    {
        var cause = Assert.Single(Validate("""{"rater":"Renter","score":3}"""));
        Assert.Equal("spec.signed", cause.Field);
        Assert.Contains("signed is required when rater is Renter", cause.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    public void And_range_is_enforced(int score)
    {
        var cause = Assert.Single(Validate($$"""{"rater":"Leaser","score":{{score}}}"""));
        Assert.Equal("spec.score", cause.Field);
        Assert.Contains("score must be between 1 and 5", cause.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Transition_rule_with_negation_runs_only_on_updates()
    {
        Assert.Empty(Validate("""{"rater":"Leaser","done":true}"""));
        Assert.Empty(Validate("""{"rater":"Leaser","done":true}""", """{"rater":"Leaser","done":false}"""));
        var cause = Assert.Single(Validate("""{"rater":"Leaser","done":false}""", """{"rater":"Leaser","done":true}"""));
        Assert.Equal("spec.done", cause.Field);
        Assert.Contains("done cannot be withdrawn", cause.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Absent_fields_get_their_defaults_and_present_ones_are_kept()
    {
        var obj = JsonNode.Parse("""{"spec":{"rater":"Leaser","window":60}}""")!.AsObject();
        Assert.Empty(SchemaValidator.Validate(obj, Schema, null, applyDefaults: true).Causes);
        Assert.False(obj["spec"]!["done"]!.GetValue<bool>());
        Assert.Equal(60, obj["spec"]!["window"]!.GetValue<int>());
    }

    [Fact]
    public void Defaults_are_off_unless_asked_for()
    {
        var obj = JsonNode.Parse("""{"spec":{"rater":"Leaser"}}""")!.AsObject();
        Assert.Empty(SchemaValidator.Validate(obj, Schema, null).Causes);
        Assert.Null(obj["spec"]!["window"]);
    }

    [Theory]
    [InlineData("self == oldSelf", false)]
    [InlineData("self.a != 'x' || has(self.b)", false)]
    [InlineData("!has(oldSelf.a) || (has(self.a) && self.a)", false)]
    [InlineData("self.size() > 0", true)]
    [InlineData("self.all(x, x > 0)", true)]
    [InlineData("self.a ||", true)]
    public void Rules_outside_the_subset_are_recognised(string rule, bool unsupported) =>
        Assert.Equal(unsupported, CelSubset.Unsupported(rule));
}
