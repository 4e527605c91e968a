using System.Text.Json;
using System.Text.Json.Nodes;
using Rpoi.Cli.Support;
using Rpoi.Cli.Tests.Support;
using Rpoi.Protocol;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Cli.Tests;

/// <summary>The committed config/samples: signed by the identities they document, and valid against the CRDs with real kubectl.</summary>
public sealed class SamplesTests(ClusterFixture cluster) : IClassFixture<ClusterFixture>
{
    private static readonly string Samples = Path.Combine(Root(), "config", "samples");

    [Fact]
    public void The_sample_lease_and_rating_are_signed_by_the_documented_identities()
    {
        using var ids = JsonDocument.Parse(File.ReadAllText(Path.Combine(Samples, "identities.json")));
        PartyIdentity Id(string role) => PartyIdentity.FromJson(ids.RootElement.GetProperty(role).GetRawText()).Value;
        var lease = Yaml.ReadAll(File.ReadAllText(Path.Combine(Samples, "lease.yaml"))).Single()!;
        var em = Signed<LeaseRequest>.Parse(lease["spec"]!["request"]!.ToJsonString()).Value;

        // Signature, binding and parties; not the age: the sample is older than the replay window on purpose.
        var verified = RpoiEquations.VerifyRequest(em, Id("renter"));
        Assert.True(verified.IsOk, verified.Message);
        Assert.True(ProtocolChecks.LeaseBinding(em.Payload, (string)lease["metadata"]!["namespace"]!, (string)lease["metadata"]!["name"]!).IsOk);
        Assert.Equal((Id("leaser").Address, Id("escrow").Address), (em.Payload.Leaser, em.Payload.Escrow));
        // The metadata is what 'kubectl rpoi request' writes today (the operator's finalizer included), not a stale copy.
        var expected = Manifests.Lease(em, null)["metadata"];
        Assert.True(JsonNode.DeepEquals(expected, lease["metadata"]), $"config/samples/lease.yaml metadata is {lease["metadata"]!.ToJsonString()}, expected {expected!.ToJsonString()}; run config/samples/regenerate.sh");

        var rating = Yaml.ReadAll(File.ReadAllText(Path.Combine(Samples, "rating-renter.yaml"))).Single()!;
        var emm = Signed<RenterRating>.Parse(rating["spec"]!["signedRating"]!.ToJsonString()).Value;
        Assert.True(RpoiEquations.VerifyRenterRating(emm, em, null).IsOk);
        Assert.Equal((long)rating["spec"]!["score"]!, emm.Payload.Rating.Score);
    }

    [Fact]
    public void The_readme_documents_the_identities_that_signed_the_samples()
    {
        using var ids = JsonDocument.Parse(File.ReadAllText(Path.Combine(Samples, "identities.json")));
        var readme = File.ReadAllText(Path.Combine(Samples, "README.md"));
        foreach (var (role, label) in new[] { ("renter", "renter R"), ("leaser", "leaser β"), ("escrow", "escrow π") })
        {
            var id = ids.RootElement.GetProperty(role);
            Assert.Contains($"| {label} | `{id.GetProperty("address").GetString()}` | `{id.GetProperty("keyId").GetString()}` |", readme, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("lease.yaml")]
    [InlineData("rating-renter.yaml")]
    [InlineData("rating-leaser.yaml")]
    public async Task Kubectl_applies_the_sample_against_the_crd_schema(string file)
    {
        var home = Directory.CreateTempSubdirectory("rpoi-samples-").FullName;
        try
        {
            var result = await Processes.KubectlAsync(home, cluster.Kubeconfig, "apply", "--server-side", "-f", Path.Combine(Samples, file));

            Assert.True(result.ExitCode == 0, result.ToString());
        }
        finally
        {
            Directory.Delete(home, recursive: true);
        }
    }

    private static string Root()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Rpoi.Operator.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Rpoi.Operator.sln not found");
    }
}
