using System.Text.RegularExpressions;
using k8s.Models;

namespace Rpoi.Deploy.Tests;

/// <summary>
/// Every Kubernetes API call the operator makes (read from operator/Rpoi.Operator and operator/Rpoi.Kube), as a table
/// of (call, API group, resource, verb, scope), checked against the rendered RBAC: each row must be allowed, and the
/// table must cover every call in the code, so a new call without its RBAC rule fails here rather than in a cluster.
/// </summary>
public sealed partial class OperatorApiCallsTests
{
    /// <summary>Where a call lands: any namespace or cluster-scoped (the ClusterRole), or the operator's own namespace.</summary>
    public enum Scope
    {
        Cluster,
        OwnNamespace,
    }

    /// <summary>One API request the operator makes.</summary>
    /// <param name="Call">How the code makes it: a KubernetesClient method, a ResourceClients factory, or a library type.</param>
    /// <param name="Group">API group ("" = core).</param>
    /// <param name="Resource">Resource (or resource/subresource).</param>
    /// <param name="Verb">RBAC verb.</param>
    /// <param name="Scope">Where it lands.</param>
    /// <param name="ResourceName">The one object RBAC may be limited to, if any.</param>
    /// <param name="Where">The code that makes it.</param>
    public sealed record ApiCall(string Call, string Group, string Resource, string Verb, Scope Scope, string? ResourceName, string Where);

    /// <summary>Derived by reading the code (grep CoreV1., CustomObjects., RbacAuthorizationV1., CoordinationV1., EventsV1., ResourceClients., LeaseLock).</summary>
    public static IReadOnlyList<ApiCall> Calls { get; } =
    [
        // Leases and Ratings through ResourceClients.Custom<T>: informers (list, watch), fresh reads (get), finalizers
        // (JSON/merge patch of metadata), status (merge patch of /status; the grant's record lives there).
        new("ResourceClients.Custom<Lease>", "rpoi.io", "leases", "list", Scope.Cluster, null, "Rpoi.Kube informer (PhaseOneController, PhaseTwoController)"),
        new("ResourceClients.Custom<Lease>", "rpoi.io", "leases", "watch", Scope.Cluster, null, "Rpoi.Kube informer"),
        new("ResourceClients.Custom<Lease>", "rpoi.io", "leases", "get", Scope.Cluster, null, "LeaseReconciler.FinalizeAsync and before issuing a grant (fresh read)"),
        new("ResourceClients.Custom<Lease>", "rpoi.io", "leases", "patch", Scope.Cluster, null, "Finalizers.AddAsync/RemoveAsync"),
        new("ResourceClients.Custom<Lease>", "rpoi.io", "leases/status", "patch", Scope.Cluster, null, "LeaseStatusWriter, phase II settlement"),
        new("ResourceClients.Custom<Rating>", "rpoi.io", "ratings", "list", Scope.Cluster, null, "Rpoi.Kube informer (PhaseTwoController)"),
        new("ResourceClients.Custom<Rating>", "rpoi.io", "ratings", "watch", Scope.Cluster, null, "Rpoi.Kube informer"),
        new("ResourceClients.Custom<Rating>", "rpoi.io", "ratings", "get", Scope.Cluster, null, "SettlementStep (fresh read)"),
        new("ResourceClients.Custom<Rating>", "rpoi.io", "ratings/status", "patch", Scope.Cluster, null, "RatingReconciler (StatusUpdates)"),

        // TPU nodes.
        new("ResourceClients.Nodes", "", "nodes", "list", Scope.Cluster, null, "Rpoi.Kube informer (PhaseOneController)"),
        new("ResourceClients.Nodes", "", "nodes", "watch", Scope.Cluster, null, "Rpoi.Kube informer"),
        new("CoreV1.ListNodeAsync", "", "nodes", "list", Scope.Cluster, null, "GkeTpuProvider"),
        new("CoreV1.ReadNodeAsync", "", "nodes", "get", Scope.Cluster, null, "GkeTpuProvider"),
        new("CoreV1.PatchNodeAsync", "", "nodes", "patch", Scope.Cluster, null, "GkeTpuProvider (claim, release)"),

        // Per-lease objects in lease namespaces: written, never read.
        new("CoreV1.CreateNamespacedSecretAsync", "", "secrets", "create", Scope.Cluster, null, "GrantIssuer"),
        new("CoreV1.ReplaceNamespacedSecretAsync", "", "secrets", "update", Scope.Cluster, null, "GrantIssuer (stale Secret, unconditional PUT)"),
        new("CoreV1.DeleteNamespacedSecretAsync", "", "secrets", "delete", Scope.Cluster, null, "GrantIssuer (return)"),
        new("CoreV1.CreateNamespacedServiceAccountAsync", "", "serviceaccounts", "create", Scope.Cluster, null, "LeaseAccess"),
        new("CoreV1.DeleteNamespacedServiceAccountAsync", "", "serviceaccounts", "delete", Scope.Cluster, null, "LeaseAccess (return)"),
        new("CoreV1.CreateNamespacedServiceAccountTokenAsync", "", "serviceaccounts/token", "create", Scope.Cluster, null, "LeaseAccess (TokenRequest)"),
        new("RbacAuthorizationV1.CreateNamespacedRoleBindingAsync", "rbac.authorization.k8s.io", "rolebindings", "create", Scope.Cluster, null, "LeaseAccess"),
        // Creating a RoleBinding to a ClusterRole needs bind on that ClusterRole (else escalation is refused).
        new("RbacAuthorizationV1.CreateNamespacedRoleBindingAsync", "rbac.authorization.k8s.io", "clusterroles", "bind", Scope.Cluster, "rpoi-operator-lease-user", "LeaseAccess"),
        new("RbacAuthorizationV1.DeleteNamespacedRoleBindingAsync", "rbac.authorization.k8s.io", "rolebindings", "delete", Scope.Cluster, null, "LeaseAccess (return)"),

        // Events on Leases and Ratings.
        new("EventsV1.CreateNamespacedEventAsync", "events.k8s.io", "events", "create", Scope.Cluster, null, "Rpoi.Kube KubeEventRecorder"),
        new("EventsV1.PatchNamespacedEventAsync", "events.k8s.io", "events", "patch", Scope.Cluster, null, "Rpoi.Kube KubeEventRecorder (series)"),

        // The operator's own namespace.
        new("LeaseLock", "coordination.k8s.io", "leases", "get", Scope.OwnNamespace, null, "Rpoi.Kube LeaderElection (KubernetesClient LeaseLock)"),
        new("LeaseLock", "coordination.k8s.io", "leases", "create", Scope.OwnNamespace, null, "Rpoi.Kube LeaderElection"),
        new("LeaseLock", "coordination.k8s.io", "leases", "update", Scope.OwnNamespace, null, "Rpoi.Kube LeaderElection (renew, release)"),
        new("CoreV1.ReadNamespacedConfigMapAsync", "", "configmaps", "get", Scope.OwnNamespace, null, "DiscoveryPublisher"),
        new("CoreV1.CreateNamespacedConfigMapAsync", "", "configmaps", "create", Scope.OwnNamespace, null, "DiscoveryPublisher"),
        new("CoreV1.ReplaceNamespacedConfigMapAsync", "", "configmaps", "update", Scope.OwnNamespace, null, "DiscoveryPublisher"),
    ];

    public static TheoryData<string> Sources => ["helm", "kustomize"];

    private static Manifests Render(string source) => source == "helm" ? Chart.Render() : Kustomize.Default;

    [Fact]
    public void The_table_covers_every_api_call_in_the_operator_code()
    {
        var known = Calls.Select(c => c.Call).ToHashSet(StringComparer.Ordinal);
        var found = new List<string>();
        foreach (var directory in new[] { "operator/Rpoi.Operator", "operator/Rpoi.Kube" })
        {
            foreach (var file in Directory.EnumerateFiles(Path.Combine(Tools.Root, directory), "*.cs", SearchOption.AllDirectories))
            {
                var relative = Path.GetRelativePath(Tools.Root, file).Replace('\\', '/');
                // Build output, and ResourceClients itself: its calls run only through the factories, which the table lists.
                if (relative.Contains("/obj/", StringComparison.Ordinal) || relative.Contains("/bin/", StringComparison.Ordinal)
                    || relative.EndsWith("Informers/ResourceClients.cs", StringComparison.Ordinal))
                {
                    continue;
                }

                var text = File.ReadAllText(file);
                found.AddRange(ClientCall().Matches(text).Select(m => $"{m.Value} ({relative})"));
                found.AddRange(Factory().Matches(text).Select(m => $"{m.Value} ({relative})"));
                found.AddRange(LibraryLock().Matches(text).Select(_ => $"LeaseLock ({relative})"));
            }
        }

        Assert.Contains(found, f => f.StartsWith("CoreV1.CreateNamespacedSecretAsync", StringComparison.Ordinal));
        var missing = found.Where(f => !known.Contains(f[..f.IndexOf(' ', StringComparison.Ordinal)])).ToList();
        Assert.True(missing.Count == 0, "API calls missing from OperatorApiCallsTests.Calls (add them with their RBAC verb): " + string.Join(", ", missing));
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void Every_call_is_allowed_by_the_rendered_rbac(string source)
    {
        var m = Render(source);
        var cluster = Rbac.ClusterRules(m);
        var own = Rbac.NamespaceRules(m);
        var refused = Calls
            .Where(c => !(Rbac.Allows(cluster, c.Group, c.Resource, c.Verb, c.ResourceName)
                          || (c.Scope == Scope.OwnNamespace && Rbac.Allows(own, c.Group, c.Resource, c.Verb, c.ResourceName))))
            .Select(c => $"{c.Verb} {c.Group}/{c.Resource} ({c.Scope}) by {c.Call} in {c.Where}")
            .ToList();
        Assert.True(refused.Count == 0, $"{source}: the rendered RBAC refuses: " + string.Join("; ", refused));
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void Rbac_grants_nothing_the_operator_does_not_call_on_secrets_and_rbac(string source)
    {
        var m = Render(source);
        var cluster = Rbac.ClusterRules(m);
        var own = Rbac.NamespaceRules(m);
        foreach (var verb in new[] { "get", "list", "watch" })
        {
            Assert.False(Rbac.Allows(cluster, "", "secrets", verb, null), $"{source}: cluster-wide secrets {verb}");
            Assert.DoesNotContain(Calls, c => c.Resource == "secrets" && c.Verb == verb);
        }

        // Sensitive resources: every verb granted on them is one the table calls (no "just in case" rights).
        foreach (var (group, resource) in new[] { ("", "secrets"), ("", "serviceaccounts"), ("rbac.authorization.k8s.io", "rolebindings"), ("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "clusterroles") })
        {
            var granted = cluster.Concat(own)
                .Where(r => r.ApiGroups.Contains(group) && r.Resources.Contains(resource))
                .SelectMany(r => r.Verbs)
                .ToHashSet(StringComparer.Ordinal);
            var called = Calls.Where(c => c.Group == group && c.Resource == resource).Select(c => c.Verb).ToHashSet(StringComparer.Ordinal);
            Assert.True(granted.SetEquals(called), $"{source}: {group}/{resource} granted [{string.Join(", ", granted.Order())}] but called [{string.Join(", ", called.Order())}]");
        }
    }

    [Fact]
    public void The_bind_row_names_the_chart_s_lease_user_cluster_role() =>
        Assert.Equal(Rpoi.Operator.PhaseOne.Grant.LeaseAccess.DefaultClusterRole, Calls.Single(c => c.Verb == "bind").ResourceName);

    [GeneratedRegex(@"\b(CoreV1|CustomObjects|RbacAuthorizationV1|CoordinationV1|EventsV1|AppsV1|BatchV1|ApiextensionsV1|AuthorizationV1|AuthenticationV1|NetworkingV1|PolicyV1|StorageV1|AdmissionregistrationV1|CertificatesV1)\.\w+")]
    private static partial Regex ClientCall();

    [GeneratedRegex(@"\bResourceClients\.\w+(<\w+>)?(?=\()")]
    private static partial Regex Factory();

    [GeneratedRegex(@"\bnew LeaseLock\(")]
    private static partial Regex LibraryLock();
}

/// <summary>The operator's rules as rendered: cluster-wide (ClusterRoleBindings) and in its own namespace (RoleBindings).</summary>
internal static class Rbac
{
    public static List<V1PolicyRule> ClusterRules(Manifests m)
    {
        var bound = m.OfType<V1ClusterRoleBinding>()
            .Where(b => b.Subjects.Any(s => s.Kind == "ServiceAccount" && s.Name == "rpoi-operator"))
            .Select(b => b.RoleRef.Name)
            .ToHashSet(StringComparer.Ordinal);
        Assert.NotEmpty(bound);
        return m.OfType<V1ClusterRole>().Where(r => bound.Contains(r.Metadata.Name)).SelectMany(r => r.Rules).ToList();
    }

    public static List<V1PolicyRule> NamespaceRules(Manifests m)
    {
        var bound = m.OfType<V1RoleBinding>()
            .Where(b => b.Metadata.NamespaceProperty == Chart.Namespace && b.Subjects.Any(s => s.Kind == "ServiceAccount" && s.Name == "rpoi-operator"))
            .Select(b => b.RoleRef.Name)
            .ToHashSet(StringComparer.Ordinal);
        return m.OfType<V1Role>().Where(r => r.Metadata.NamespaceProperty == Chart.Namespace && bound.Contains(r.Metadata.Name)).SelectMany(r => r.Rules).ToList();
    }

    /// <summary>Whether a request is allowed, honouring resourceNames (a rule limited to names allows only those).</summary>
    public static bool Allows(IEnumerable<V1PolicyRule> rules, string group, string resource, string verb, string? resourceName) =>
        rules.Any(r => (r.ApiGroups ?? []).Any(g => g == group || g == "*")
                       && (r.Resources ?? []).Any(x => x == resource || x == "*")
                       && r.Verbs.Any(v => v == verb || v == "*")
                       && (r.ResourceNames is not { Count: > 0 } names || (resourceName is not null && names.Contains(resourceName))));
}
