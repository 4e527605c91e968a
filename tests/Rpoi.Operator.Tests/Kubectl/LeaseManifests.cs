using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Rpoi.Operator.Tests.Support;
using Rpoi.Protocol;
using Rpoi.Protocol.Messages;
using Rpoi.Tests.Shared;

namespace Rpoi.Operator.Tests.Kubectl;

/// <summary>A renter's signed request and the Lease / Rating YAML that carries it, as a user would write them.</summary>
internal sealed class LeaseManifests
{
    public const string Group = "rpoi.io";
    public const string Version = "v1alpha1";
    public const string Accelerator = "tpu-v5-lite-podslice";

    public static readonly TrackedResource Leases = new(Group, Version, "leases");
    public static readonly TrackedResource Ratings = new(Group, Version, "ratings");

    public LeaseManifests(string @namespace, string name, int chips = 8)
    {
        Namespace = @namespace;
        Name = name;
        var m = Requests.New(Parties.Renter.Identity, Parties.Leaser.Identity.Address, Parties.Escrow.Identity.Address, Accelerator, "2x4",
            chips, 3600, DateTimeOffset.UtcNow, new Money("1500000", "uusd"), new Money("9000000", "uusd"), new LeaseRef(@namespace, name));
        Signed = RpoiEquations.SignRequest(m, Parties.Renter);
    }

    public TestParties Parties { get; } = new();

    public string Namespace { get; }

    public string Name { get; }

    public Signed<LeaseRequest> Signed { get; }

    /// <summary>The Lease as YAML; the signed request goes in as the JSON the renter's tool printed (JSON is YAML).</summary>
    public string LeaseYaml(string? requestJson = null) => $"""
        apiVersion: rpoi.io/v1alpha1
        kind: Lease
        metadata:
          name: {Name}
          namespace: {Namespace}
        spec:
          request: {requestJson ?? Signed.ToJson()}

        """;

    /// <summary>The signed request with one payload field replaced (the signature no longer matches; the schema is checked first).</summary>
    public string RequestWith(string field, JsonNode value)
    {
        var request = JsonNode.Parse(Signed.ToJson())!.AsObject();
        request["payload"]![field] = value;
        return request.ToJsonString();
    }

    public string RatingYaml(string name, string rater, int score) => $"""
        apiVersion: rpoi.io/v1alpha1
        kind: Rating
        metadata:
          name: {name}
          namespace: {Namespace}
        spec:
          leaseRef:
            name: {Name}
          rater: {rater}
          score: {score}

        """;

    /// <summary>Writes status as the operator would: phase, the display copies and one Ready condition.</summary>
    public Task SetStatusAsync(Kubernetes client, string phase, string ready) =>
        client.CustomObjects.PatchNamespacedCustomObjectStatusAsync<JsonElement>(
            new V1Patch(JsonSerializer.Serialize(new
            {
                status = new
                {
                    phase,
                    chips = Signed.Payload.Chips,
                    accelerator = Accelerator,
                    renter = Parties.Renter.Identity.Address,
                    transactionHash = RpoiEquations.TransactionHashOf(Signed).Hex,
                    conditions = new[]
                    {
                        new { type = "Ready", status = ready, reason = ready == "True" ? "NodesReady" : "Allocating", message = "set by the test", lastTransitionTime = "2026-01-01T00:00:00Z" },
                    },
                },
            }), V1Patch.PatchType.MergePatch),
            Group, Version, Namespace, "leases", Name);
}
