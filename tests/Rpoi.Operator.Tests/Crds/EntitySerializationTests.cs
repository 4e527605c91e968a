using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Rpoi.Operator.CrdGeneration;
using Rpoi.Operator.Entities;

namespace Rpoi.Operator.Tests.Crds;

public sealed class EntitySerializationTests
{
    private const string LeaseJson = """
        {"apiVersion":"rpoi.io/v1alpha1","kind":"Lease","metadata":{"name":"train","namespace":"team-a"},
         "spec":{"request":{"payload":{"kind":"rpoi.request/v1","chips":8,"futureField":{"x":[1,2]},
           "deposit":{"amount":"1500000","denom":"uusd","memo":"kept"}},"signer":"k1","sig":"c2ln"},
           "ratingWindowSeconds":259200},
         "status":{"phase":"AwaitingRatings","chips":8,"settlement":{"deposit":"Withheld","rent":"PaidToLeaser"}}}
        """;

    [Fact]
    public void Unknown_payload_fields_survive_a_round_trip_through_the_entity()
    {
        var lease = KubernetesJson.Deserialize<Lease>(LeaseJson);

        var again = JsonNode.Parse(KubernetesJson.Serialize(lease))!;

        var original = JsonNode.Parse(LeaseJson)!["spec"]!["request"]!["payload"];
        Assert.True(JsonNode.DeepEquals(original, again["spec"]!["request"]!["payload"]));
        Assert.Equal("kept", lease.Spec.Request.Payload["deposit"]!["memo"]!.GetValue<string>());
    }

    [Fact]
    public void Enums_are_strings_and_absent_fields_are_not_written_as_null()
    {
        var lease = KubernetesJson.Deserialize<Lease>(LeaseJson);
        Assert.Equal(LeasePhase.AwaitingRatings, lease.Status!.Phase);
        Assert.Equal(DepositOutcome.Withheld, lease.Status.Settlement!.Deposit);

        var json = KubernetesJson.Serialize(new Rating
        {
            Metadata = new V1ObjectMeta { Name = "r", NamespaceProperty = "team-a" },
            Spec = new RatingSpec { LeaseRef = new LeaseReference { Name = "train" }, Rater = Rater.Leaser, Score = 4 },
        });

        var node = JsonNode.Parse(json)!;
        Assert.Equal("Leaser", node["spec"]!["rater"]!.GetValue<string>());
        Assert.Null(node["status"]);
        Assert.False(node["spec"]!.AsObject().ContainsKey("signedRating"));
    }

    [Fact]
    public void Entities_carry_their_group_version_kind()
    {
        var lease = new Lease();
        var rating = new Rating();
        Assert.Equal(("rpoi.io/v1alpha1", "Lease"), (lease.ApiVersion, lease.Kind));
        Assert.Equal(("rpoi.io/v1alpha1", "Rating"), (rating.ApiVersion, rating.Kind));
        // The runtime sees a status even before the operator wrote one.
        Assert.NotNull(((IStatus<LeaseStatus>)lease).Status);
    }

    [Fact]
    public void Xml_doc_summaries_are_flattened_to_plain_text()
    {
        var docs = XmlDocumentation.Parse("""
            <doc><members>
              <member name="T:A.B"><summary>
                Uses <c>kubectl</c> and
                <see cref="T:System.String"/> or <see langword="null"/>.
              </summary></member>
            </members></doc>
            """);

        Assert.Equal("Uses kubectl and String or null.", docs.Of(new FakeType("A.B")));
    }

    // A Type whose FullName is chosen by the test, so XmlDocumentation can be checked without real types.
    private sealed class FakeType(string fullName) : System.Reflection.TypeDelegator(typeof(object))
    {
        public override string FullName => fullName;
    }
}
