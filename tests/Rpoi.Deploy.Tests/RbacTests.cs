using k8s.Models;

namespace Rpoi.Deploy.Tests;

/// <summary>The least-privilege rules of issue 8, checked on both the chart and the kustomize output.</summary>
public sealed class RbacTests
{
    public static TheoryData<string> Sources => ["helm", "kustomize"];

    private static Manifests Render(string source) => source == "helm" ? Chart.Render() : Kustomize.Default;

    /// <summary>Rules granted to the operator's ServiceAccount cluster-wide (through ClusterRoleBindings).</summary>
    private static List<V1PolicyRule> ClusterRules(Manifests m)
    {
        var bound = m.OfType<V1ClusterRoleBinding>()
            .Where(b => b.Subjects.Any(s => s.Kind == "ServiceAccount" && s.Name == "rpoi-operator"))
            .Select(b => b.RoleRef.Name)
            .ToHashSet();
        Assert.NotEmpty(bound);
        return m.OfType<V1ClusterRole>().Where(r => bound.Contains(r.Metadata.Name)).SelectMany(r => r.Rules).ToList();
    }

    private static List<V1PolicyRule> NamespaceRules(Manifests m)
    {
        var bound = m.OfType<V1RoleBinding>()
            .Where(b => b.Subjects.Any(s => s.Kind == "ServiceAccount" && s.Name == "rpoi-operator"))
            .Select(b => (b.RoleRef.Kind, b.RoleRef.Name))
            .ToList();
        Assert.All(bound, b => Assert.Equal("Role", b.Kind));
        return m.OfType<V1Role>().Where(r => bound.Contains(("Role", r.Metadata.Name)) && r.Metadata.NamespaceProperty == Chart.Namespace)
            .SelectMany(r => r.Rules).ToList();
    }

    private static bool Grants(IEnumerable<V1PolicyRule> rules, string group, string resource, string verb) =>
        rules.Any(r => (r.ApiGroups ?? []).Any(g => g == group || g == "*") &&
                       (r.Resources ?? []).Any(x => x == resource || x == "*") &&
                       r.Verbs.Any(v => v == verb || v == "*"));

    [Theory]
    [MemberData(nameof(Sources))]
    public void No_cluster_wide_secret_reads(string source)
    {
        var rules = ClusterRules(Render(source));
        foreach (var verb in new[] { "get", "list", "watch" })
        {
            Assert.False(Grants(rules, "", "secrets", verb), $"cluster-wide secrets {verb} is granted ({source})");
        }
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void No_wildcards_anywhere_in_the_operator_rules(string source)
    {
        var m = Render(source);
        foreach (var rule in ClusterRules(m).Concat(NamespaceRules(m)))
        {
            Assert.DoesNotContain("*", rule.Verbs);
            Assert.DoesNotContain("*", rule.Resources);
            Assert.DoesNotContain("*", rule.ApiGroups);
            Assert.DoesNotContain("escalate", rule.Verbs);
            Assert.DoesNotContain("impersonate", rule.Verbs);
        }
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void Operator_gets_what_the_protocol_needs(string source)
    {
        var m = Render(source);
        var cluster = ClusterRules(m);
        Assert.True(Grants(cluster, "rpoi.io", "leases", "watch"));
        Assert.True(Grants(cluster, "rpoi.io", "ratings", "watch"));
        Assert.True(Grants(cluster, "rpoi.io", "leases/status", "patch"));
        Assert.True(Grants(cluster, "rpoi.io", "ratings/status", "patch"));
        foreach (var verb in new[] { "get", "list", "watch", "patch" })
        {
            Assert.True(Grants(cluster, "", "nodes", verb), $"nodes {verb}");
        }

        Assert.False(Grants(cluster, "", "nodes", "delete"));
        foreach (var verb in new[] { "create", "update", "delete" })
        {
            Assert.True(Grants(cluster, "", "secrets", verb), $"secrets {verb}");
        }

        Assert.True(Grants(cluster, "", "serviceaccounts", "create"));
        Assert.True(Grants(cluster, "", "serviceaccounts", "delete"));
        Assert.False(Grants(cluster, "rbac.authorization.k8s.io", "roles", "create"), "no Role per lease: a RoleBinding to the lease-user ClusterRole");

        Assert.True(Grants(cluster, "rbac.authorization.k8s.io", "rolebindings", "create"));
        Assert.False(Grants(cluster, "rbac.authorization.k8s.io", "roles", "get"));
        Assert.True(Grants(cluster, "", "serviceaccounts/token", "create"));
        Assert.True(Grants(cluster, "events.k8s.io", "events", "create"));
        Assert.False(Grants(cluster, "", "pods", "create"));
        Assert.False(Grants(cluster, "coordination.k8s.io", "leases", "update"));

        var bind = Assert.Single(cluster, r => r.Verbs.Contains("bind"));
        Assert.Equal(["rpoi-operator-lease-user"], bind.ResourceNames);

        var own = NamespaceRules(m);
        Assert.False(Grants(own, "", "secrets", "get"), "β's key is mounted: the operator reads no Secret through the API, not even in its namespace");
        Assert.True(Grants(own, "coordination.k8s.io", "leases", "update"), "leader election");
        Assert.True(Grants(own, "", "configmaps", "update"), "the discovery ConfigMap");
        Assert.False(Grants(cluster, "", "configmaps", "get"), "configmaps only in the operator's namespace");
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void Lease_tokens_get_pods_in_their_namespace_through_a_bindable_cluster_role(string source)
    {
        var m = Render(source);
        var leaseUser = m.Single<V1ClusterRole>("rpoi-operator-lease-user").Rules;
        Assert.True(Grants(leaseUser, "", "pods", "create"));
        Assert.True(Grants(leaseUser, "", "pods/exec", "create"));
        Assert.True(Grants(leaseUser, "", "pods/log", "get"));
        // Exactly the rules the operator documents for lease tokens (PhaseOne/Grant/LeaseAccess.Rules).
        Assert.Equal(
            Rpoi.Operator.PhaseOne.Grant.LeaseAccess.Rules.Select(r => k8s.KubernetesJson.Serialize(r)),
            leaseUser.Select(r => k8s.KubernetesJson.Serialize(r)));
        Assert.False(Grants(leaseUser, "", "secrets", "get"), "a lease token never reads Secrets");
        Assert.False(Grants(leaseUser, "", "nodes", "get"));
        // The operator holds none of these rights itself: it may only bind the role.
        Assert.False(Grants(ClusterRules(m), "", "pods", "create"));
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void Discovery_is_readable_by_name_only(string source)
    {
        var m = Render(source);
        var rule = Assert.Single(m.Single<V1Role>("rpoi-operator-discovery-reader").Rules);
        Assert.Equal(["configmaps"], rule.Resources);
        Assert.Equal(["rpoi-discovery"], rule.ResourceNames);
        Assert.Equal(["get"], rule.Verbs);
        var binding = m.Single<V1RoleBinding>("rpoi-operator-discovery-reader");
        Assert.Equal(("Group", "system:authenticated"), (binding.Subjects.Single().Kind, binding.Subjects.Single().Name));
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void Sample_renter_role_reads_leases_ratings_and_secrets_but_not_nodes(string source)
    {
        var renter = Render(source).Single<V1ClusterRole>("rpoi-operator-renter").Rules;
        Assert.True(Grants(renter, "rpoi.io", "leases", "create"));
        Assert.True(Grants(renter, "rpoi.io", "ratings", "create"));
        Assert.True(Grants(renter, "", "secrets", "get"));
        Assert.False(Grants(renter, "", "nodes", "get"));
        Assert.False(Grants(renter, "rpoi.io", "leases/status", "update"), "only the operator writes status");

        var platform = Render(source).Single<V1ClusterRole>("rpoi-operator-platform-admin").Rules;
        Assert.True(Grants(platform, "", "nodes", "list"));
        Assert.False(Grants(platform, "", "secrets", "get"), "platform teams do not read renters' grants");
    }
}
