using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using NLua;

namespace Rpoi.Deploy.Tests;

/// <summary>
/// Runs config/argocd/lease-health.lua the way Argo CD does (a global <c>obj</c>, the script's return
/// value is the health), in a real Lua interpreter. The script uses only Lua 5.1 features, which is
/// what Argo CD's gopher-lua offers.
/// </summary>
public sealed class LeaseHealthCheckTests
{
    private static readonly string Script = File.ReadAllText(Path.Combine(Tools.Root, "config", "argocd", "lease-health.lua"));

    [Fact]
    public void A_lease_without_status_is_progressing() =>
        Assert.Equal(("Progressing", "Waiting for the operator"), Health("""{"metadata":{"generation":1},"spec":{}}"""));

    [Fact]
    public void An_active_lease_is_healthy_and_says_what_it_holds()
    {
        var (status, message) = Health("""
            {"metadata":{"generation":2},"status":{"phase":"Active","observedGeneration":2,"chips":8,"nodePool":"v5e-pool"}}
            """);
        Assert.Equal("Healthy", status);
        Assert.Equal("Active: 8 chips on v5e-pool", message);
    }

    [Fact]
    public void A_status_for_an_older_generation_is_not_trusted()
    {
        var (status, message) = Health("""{"metadata":{"generation":3},"status":{"phase":"Active","observedGeneration":2}}""");
        Assert.Equal("Progressing", status);
        Assert.Contains("latest spec", message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_failed_lease_is_degraded_with_the_ready_condition_message()
    {
        var (status, message) = Health("""
            {"metadata":{"generation":1},"status":{"phase":"Failed","observedGeneration":1,"conditions":[
              {"type":"Verified","status":"True","reason":"Ok","message":"fine"},
              {"type":"Ready","status":"False","reason":"BadSignature","message":"the request's signature does not verify"}]}}
            """);
        Assert.Equal("Degraded", status);
        Assert.Equal("Failed: the request's signature does not verify", message);
    }

    [Theory]
    [InlineData("Settled", "Healthy")]
    [InlineData("AwaitingRatings", "Healthy")]
    [InlineData("Pending", "Progressing")]
    [InlineData("Verified", "Progressing")]
    [InlineData("Returning", "Progressing")]
    [InlineData("Settling", "Progressing")]
    public void Every_phase_maps_to_a_health(string phase, string expected) =>
        Assert.Equal(expected, Health($$$"""{"metadata":{"generation":1},"status":{"phase":"{{{phase}}}","observedGeneration":1}}""").Status);

    [Fact]
    public void A_queued_lease_shows_its_position()
    {
        var (status, message) = Health("""{"metadata":{},"status":{"phase":"Allocating","queuePosition":3}}""");
        Assert.Equal("Progressing", status);
        Assert.Equal("Allocating (queue position 3)", message);
    }

    private static (string Status, string Message) Health(string leaseJson)
    {
        using var lua = new Lua();
        lua.DoString("obj = " + ToLua(JsonNode.Parse(leaseJson)));
        lua.DoString("result = (function()\n" + Script + "\nend)()");
        return ((string)lua["result.status"], (string)lua["result.message"]);
    }

    // A Lua table constructor for a JSON value, as Argo CD hands the object to the script.
    private static string ToLua(JsonNode? node) => node switch
    {
        null => "nil",
        JsonObject o => "{" + string.Join(", ", o.Select(p => $"[{Quote(p.Key)}] = {ToLua(p.Value)}")) + "}",
        JsonArray a => "{" + string.Join(", ", a.Select(ToLua)) + "}",
        JsonValue v when v.TryGetValue(out string? s) => Quote(s),
        JsonValue v when v.TryGetValue(out bool b) => b ? "true" : "false",
        JsonValue v => v.GetValue<double>().ToString(CultureInfo.InvariantCulture),
        _ => throw new ArgumentException($"no Lua form for {node.GetValueKind()}", nameof(node)),
    };

    private static string Quote(string s)
    {
        var text = new StringBuilder("\"");
        foreach (var c in s)
        {
            text.Append(c switch { '\\' => "\\\\", '"' => "\\\"", '\n' => "\\n", _ => c.ToString() });
        }

        return text.Append('"').ToString();
    }
}
