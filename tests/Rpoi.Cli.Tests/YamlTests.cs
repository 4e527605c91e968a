using System.Text.Json.Nodes;
using CsCheck;
using Rpoi.Cli.Support;

namespace Rpoi.Cli.Tests;

public sealed class YamlTests
{
    [Theory]
    [InlineData("yes")]
    [InlineData("no")]
    [InlineData("on")]
    [InlineData("true")]
    [InlineData("null")]
    [InlineData("~")]
    [InlineData("")]
    [InlineData("1e5")]
    [InlineData("0x1F")]
    [InlineData("0b101")]
    [InlineData("1_000")]
    [InlineData("12:30")]
    [InlineData("2026-11-25")]
    [InlineData("2026-11-25T21:07:44Z")]
    [InlineData("1500000")]
    [InlineData("-3")]
    [InlineData("2x4")]
    [InlineData("a: b")]
    [InlineData("- item")]
    [InlineData("#comment")]
    [InlineData("trailing ")]
    [InlineData("multi\nline")]
    [InlineData("A7idBGJOix9tiw2WxGHIDQ==")]
    [InlineData("+eKew=")]
    [InlineData("ünïcode ρ ω")]
    [InlineData("'quoted'")]
    [InlineData("\"dq\"")]
    public void A_string_comes_back_as_the_same_string(string value)
    {
        var doc = new JsonObject { ["v"] = value, ["nested"] = new JsonObject { ["list"] = new JsonArray(value, 1, true) } };

        var back = Yaml.ReadAll(Yaml.Write(doc)).Single()!;

        Assert.Equal(doc.ToJsonString(), back.ToJsonString());
    }

    [Fact]
    public void Numbers_booleans_nulls_and_empty_containers_keep_their_types()
    {
        var doc = new JsonObject
        {
            ["chips"] = 8,
            ["durationSeconds"] = 3600L,
            ["flag"] = false,
            ["none"] = null,
            ["empty"] = new JsonObject(),
            ["list"] = new JsonArray(),
            ["nested"] = new JsonArray(new JsonArray(1, 2), new JsonObject { ["a"] = new JsonArray("x") }),
        };

        var back = Yaml.ReadAll(Yaml.Write(doc)).Single()!;

        Assert.Equal(doc.ToJsonString(), back.ToJsonString());
    }

    [Fact]
    public void Any_string_map_round_trips()
    {
        Gen.Dictionary(Gen.String[Gen.Char.AlphaNumeric, 1, 12], Gen.String)[0, 6].Sample(map =>
        {
            var doc = new JsonObject();
            foreach (var (k, v) in map)
            {
                doc[k] = v;
            }

            var back = Yaml.ReadAll(Yaml.Write(doc)).Single()!;
            Assert.Equal(doc.ToJsonString(), back.ToJsonString());
        }, iter: 300);
    }

    [Theory]
    [InlineData(".0")]
    [InlineData(".5e3")]
    [InlineData("1.")]
    [InlineData("-.5")]
    public void A_string_that_reads_as_a_yaml_float_is_quoted_and_stays_a_string(string value)
    {
        // Found by Any_string_map_round_trips (seed 7bpbmUpdZ_P2): ".0" was written plain and read back as a number.
        var doc = new JsonObject { ["v"] = value };
        var back = Yaml.ReadAll(Yaml.Write(doc)).Single()!;
        Assert.Equal(doc.ToJsonString(), back.ToJsonString());
    }

    [Theory]
    [InlineData("v: .5", "0.5")]
    [InlineData("v: +1.5", "1.5")]
    [InlineData("v: 1.", "1.0")]
    [InlineData("v: -.25e2", "-0.25e2")]
    [InlineData("v: 2.e3", "2.0e3")]
    public void A_yaml_float_that_json_spells_otherwise_reads_as_that_number(string yaml, string json)
    {
        var back = Yaml.ReadAll(yaml).Single()!;
        Assert.Equal(json, back["v"]!.ToJsonString());
    }

    [Fact]
    public void Bad_yaml_names_the_line()
    {
        var e = Assert.Throws<FormatException>(() => Yaml.ReadAll("a: b\n  c: d: e\n"));
        Assert.Contains("line 2", e.Message, StringComparison.Ordinal);
        Assert.Throws<FormatException>(() => Yaml.ReadAll("a: [1, 2\nb: c\n"));
    }
}
