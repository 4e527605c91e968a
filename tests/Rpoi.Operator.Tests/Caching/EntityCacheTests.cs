using k8s;
using k8s.Models;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Operator.Tests.Support;
using Rpoi.Protocol;

namespace Rpoi.Operator.Tests.Caching;

/// <summary>
/// EntityCache.Trim drops from a cached Lease or Rating what no reconciler reads (labels, owner references, other tools'
/// annotations) and nothing it does read: the spec and status come out byte for byte, the signed request gives the same
/// H, the nonce index the same nonce, and strings common to many leases are one shared copy.
/// </summary>
public sealed class EntityCacheTests
{
    private readonly TestParties parties = new();

    private Lease Whole(string name)
    {
        var lease = LeaseBuilder.For(parties.Renter).In("team-a", name).To(parties.Leaser, parties.Escrow).WithFinalizer().Build();
        lease.Metadata.Labels = new Dictionary<string, string> { ["app.kubernetes.io/part-of"] = "training", ["team"] = "a" };
        lease.Metadata.Annotations = new Dictionary<string, string>
        {
            [LeaseReconciler.GrantDigestAnnotation] = new string('a', 64),
            ["argocd.argoproj.io/tracking-id"] = "x:rpoi.io/Lease:team-a/" + name,
        };
        lease.Metadata.OwnerReferences = [new V1OwnerReference { ApiVersion = "v1", Kind = "ConfigMap", Name = "owner", Uid = "u" }];
        lease.Metadata.ResourceVersion = "7";
        lease.Status = new LeaseStatus
        {
            Phase = LeasePhase.Active,
            Accelerator = LeaseBuilder.V5e,
            Topology = "2x2",
            Renter = parties.Renter.Identity.Address,
            Nodes = ["gke-n-1"],
            Conditions = [new V1Condition { Type = LeaseConditions.Verified, Status = "True", Reason = "Verified", Message = "ok", LastTransitionTime = DateTime.UtcNow }],
        };
        return lease;
    }

    // As the informer gets it: read from JSON.
    private static T Read<T>(T obj) => KubernetesJson.Deserialize<T>(KubernetesJson.Serialize(obj));

    [Fact]
    public void A_trimmed_lease_keeps_spec_status_finalizers_and_rpoi_annotations_and_drops_the_rest()
    {
        var whole = Whole("train-1");
        var trimmed = EntityCache.Trim(Read(whole));

        Assert.Equal(KubernetesJson.Serialize(whole.Spec), KubernetesJson.Serialize(trimmed.Spec));
        Assert.Equal(KubernetesJson.Serialize(whole.Status), KubernetesJson.Serialize(trimmed.Status));
        Assert.Equal(whole.Metadata.Finalizers, trimmed.Metadata.Finalizers);
        Assert.Equal(("team-a", "train-1", "7"), (trimmed.Metadata.NamespaceProperty, trimmed.Metadata.Name, trimmed.Metadata.ResourceVersion));
        Assert.Equal([LeaseReconciler.GrantDigestAnnotation], trimmed.Metadata.Annotations.Keys);
        Assert.Null(trimmed.Metadata.Labels);
        Assert.Null(trimmed.Metadata.OwnerReferences);
    }

    [Fact]
    public void The_trimmed_request_verifies_to_the_same_H_and_nonce()
    {
        var whole = Whole("train-2");
        var trimmed = EntityCache.Trim(Read(whole));

        var h = RpoiEquations.TransactionHashOf(LeaseVerification.Parse(whole.Spec.Request).Value).Hex;
        Assert.Equal(h, RpoiEquations.TransactionHashOf(LeaseVerification.Parse(trimmed.Spec.Request).Value).Hex);
        var nonce = Assert.Single(LeaseNonces.NonceOf(trimmed));
        Assert.Equal(whole.Spec.Request.Payload["nonce"]!.GetValue<string>(), nonce);
    }

    [Fact]
    public void A_cached_request_keeps_its_payload_as_json_and_reads_verifies_and_serializes_the_same()
    {
        var whole = Whole("train-5");
        var read = Read(whole);
        var before = KubernetesJson.Serialize(read.Spec);
        var trimmed = EntityCache.Trim(read);

        // Kept as UTF-8 JSON, not a tree (BENCHMARKS.md "memcache"): each read parses a fresh object from it.
        Assert.False(trimmed.Spec.Request.CompactPayload.IsEmpty);
        Assert.NotSame(trimmed.Spec.Request.Payload, trimmed.Spec.Request.Payload);
        Assert.Equal(before, KubernetesJson.Serialize(trimmed.Spec));
        Assert.Equal(whole.Spec.Request.Payload["nonce"]!.GetValue<string>(), trimmed.Spec.Request.Payload["nonce"]!.GetValue<string>());
        Assert.True(RpoiEquations.VerifyRequest(LeaseVerification.Parse(trimmed.Spec.Request).Value).TryGetValue(out _));
        // Setting a payload replaces the kept JSON.
        trimmed.Spec.Request.Payload = new System.Text.Json.Nodes.JsonObject { ["nonce"] = "n" };
        Assert.True(trimmed.Spec.Request.CompactPayload.IsEmpty);
        Assert.Equal("n", Assert.Single(LeaseNonces.NonceOf(trimmed)));
    }

    [Fact]
    public void Strings_many_leases_share_are_one_copy()
    {
        var a = EntityCache.Trim(Read(Whole("train-3")));
        var b = EntityCache.Trim(Read(Whole("train-4")));

        Assert.Same(a.Status!.Accelerator, b.Status!.Accelerator);
        Assert.Same(a.Status.Renter, b.Status.Renter);
        Assert.Same(a.Status.Nodes![0], b.Status.Nodes![0]);
        Assert.Same(a.Status.Conditions![0].Reason, b.Status.Conditions![0].Reason);
        Assert.Same(a.Spec.Request.Signer, b.Spec.Request.Signer);
    }

    [Fact]
    public void A_trimmed_rating_keeps_its_spec_and_status()
    {
        var rating = new Rating
        {
            Metadata = new V1ObjectMeta { Name = "r-1", NamespaceProperty = "team-a", Labels = new Dictionary<string, string> { ["x"] = "y" } },
            Spec = new RatingSpec { LeaseRef = new LeaseReference { Name = "train-1" }, Rater = Rater.Renter, Score = 5, Comment = "fine" },
            Status = new RatingStatus { Accepted = true, Reason = "Verified", Message = "ok" },
        };
        var trimmed = EntityCache.Trim(Read(rating));

        Assert.Equal(KubernetesJson.Serialize(rating.Spec), KubernetesJson.Serialize(trimmed.Spec));
        Assert.Equal(KubernetesJson.Serialize(rating.Status), KubernetesJson.Serialize(trimmed.Status));
        Assert.Null(trimmed.Metadata.Labels);
    }
}
