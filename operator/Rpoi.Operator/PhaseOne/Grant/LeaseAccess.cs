using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Rpoi.Operator.PhaseOne.Allocation;

namespace Rpoi.Operator.PhaseOne.Grant;

/// <summary>Where the renter's kubeconfig points: the cluster's API server as the renter reaches it.</summary>
/// <param name="Server">API server URL written into every kubeconfig, e.g. <c>https://34.1.2.3</c>.</param>
/// <param name="CertificateAuthorityData">Base64 PEM of the cluster CA, or null to rely on the system trust store.</param>
public sealed record ClusterEndpointOptions(string Server, string? CertificateAuthorityData);

/// <summary>The Kubernetes credentials in a grant: a token scoped to one lease's namespace, and a kubeconfig using it.</summary>
/// <param name="ServiceAccountName">The lease's ServiceAccount.</param>
/// <param name="Token">The short-lived token from the TokenRequest API.</param>
/// <param name="TokenExpiresAt">When the API server stops accepting the token.</param>
/// <param name="Kubeconfig">A kubeconfig (JSON, which kubectl reads as YAML) with the token and the lease's namespace.</param>
public sealed record LeaseCredentials(string ServiceAccountName, string Token, DateTimeOffset TokenExpiresAt, string Kubeconfig);

/// <summary>
/// Creates and deletes the per-lease ServiceAccount <c>rpoi-&lt;lease&gt;</c> and a RoleBinding in the lease's namespace
/// that binds it to the shipped lease-user ClusterRole (pods, logs, exec), and asks the TokenRequest API for a token
/// that expires with the lease. Deleting the ServiceAccount revokes every token issued for it, which is how a return
/// takes access away.
/// </summary>
/// <remarks>
/// Why a ClusterRole and not a Role per lease: RBAC refuses to let the operator create a Role granting rights it does
/// not hold itself (pods/exec, ...) unless it has <c>escalate</c>. Binding an existing ClusterRole needs only <c>bind</c>
/// on that one ClusterRole, and a RoleBinding grants a ClusterRole's rules within the RoleBinding's namespace only, so
/// the renter's token still works in the lease's namespace alone.
/// </remarks>
public sealed class LeaseAccess
{
    /// <summary>The API server refuses TokenRequest expirations under 10 minutes.</summary>
    public static readonly TimeSpan MinimumTokenLifetime = TimeSpan.FromMinutes(10);

    /// <summary>Default name of the lease-user ClusterRole (the Helm chart's <c>&lt;fullname&gt;-lease-user</c> for release <c>rpoi-operator</c>).</summary>
    public const string DefaultClusterRole = "rpoi-operator-lease-user";

    private readonly IKubernetes client;
    private readonly TimeProvider time;

    /// <summary>Creates the provisioner.</summary>
    /// <param name="client">The API client.</param>
    /// <param name="time">The clock (token lifetimes).</param>
    /// <param name="clusterRole">The lease-user ClusterRole each lease's ServiceAccount is bound to.</param>
    public LeaseAccess(IKubernetes client, TimeProvider time, string clusterRole = DefaultClusterRole)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(clusterRole);
        this.client = client;
        this.time = time;
        ClusterRole = clusterRole;
    }

    /// <summary>The lease-user ClusterRole each lease's ServiceAccount is bound to.</summary>
    public string ClusterRole { get; }

    /// <summary>The name of the lease's ServiceAccount and RoleBinding.</summary>
    public static string AccessName(string leaseName) => $"rpoi-{leaseName}";

    /// <summary>
    /// What the lease-user ClusterRole must allow (the Helm chart and <c>config/rbac</c> ship exactly these rules; a
    /// deploy test compares them). Bound by a RoleBinding, they apply in the lease's namespace only.
    /// </summary>
    public static IList<V1PolicyRule> Rules { get; } =
    [
        new() { ApiGroups = [""], Resources = ["pods"], Verbs = ["get", "list", "watch", "create", "update", "patch", "delete"] },
        new() { ApiGroups = [""], Resources = ["pods/log"], Verbs = ["get", "list", "watch"] },
        new() { ApiGroups = [""], Resources = ["pods/exec", "pods/attach", "pods/portforward"], Verbs = ["get", "create"] },
        new() { ApiGroups = [""], Resources = ["events"], Verbs = ["get", "list", "watch"] },

        // A multi-host slice runs one pod per host: an indexed Job (or a JobSet) and the headless Service the hosts
        // find each other by (what `kubectl rpoi access --pod-template-out` writes).
        new() { ApiGroups = [""], Resources = ["services"], Verbs = ["get", "list", "watch", "create", "update", "patch", "delete"] },
        new() { ApiGroups = ["batch"], Resources = ["jobs"], Verbs = ["get", "list", "watch", "create", "update", "patch", "delete"] },
        new() { ApiGroups = ["jobset.x-k8s.io"], Resources = ["jobsets"], Verbs = ["get", "list", "watch", "create", "update", "patch", "delete"] },
    ];

    /// <summary>
    /// Makes sure the ServiceAccount and the RoleBinding to <see cref="ClusterRole"/> exist (each owned by the Lease so
    /// that garbage collection removes them with it), then issues a fresh token valid until <paramref name="validUntil"/>.
    /// Only creates are used (a 409 means "already there"), so the operator never needs to read these objects.
    /// </summary>
    public async Task<LeaseCredentials> IssueAsync(LeaseIdentity lease, V1OwnerReference owner, DateTimeOffset validUntil, ClusterEndpointOptions endpoint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(endpoint);
        var name = AccessName(lease.Name);
        var meta = Meta(lease, name, owner);
        var binding = new V1RoleBinding
        {
            Metadata = Meta(lease, name, owner),
            RoleRef = new V1RoleRef { ApiGroup = "rbac.authorization.k8s.io", Kind = "ClusterRole", Name = ClusterRole },
            Subjects = [new Rbacv1Subject { Kind = "ServiceAccount", Name = name, NamespaceProperty = lease.Namespace }],
        };
        // Neither needs the other (a RoleBinding may name a ServiceAccount that does not exist yet), so both are sent at
        // once: one round trip less on the way to Active. The token needs the ServiceAccount, so it waits for both.
        await Task.WhenAll(
            CreateIfMissingAsync(() => client.CoreV1.CreateNamespacedServiceAccountAsync(new V1ServiceAccount { Metadata = meta, AutomountServiceAccountToken = false }, lease.Namespace, cancellationToken: cancellationToken)),
            CreateIfMissingAsync(() => client.RbacAuthorizationV1.CreateNamespacedRoleBindingAsync(binding, lease.Namespace, cancellationToken: cancellationToken))).ConfigureAwait(false);

        var lifetime = validUntil - time.GetUtcNow();
        if (lifetime < MinimumTokenLifetime)
        {
            lifetime = MinimumTokenLifetime;
        }

        var request = new Authenticationv1TokenRequest
        {
            Spec = new V1TokenRequestSpec { ExpirationSeconds = (long)Math.Ceiling(lifetime.TotalSeconds), Audiences = [] },
        };
        var issued = await client.CoreV1.CreateNamespacedServiceAccountTokenAsync(request, name, lease.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
        var token = issued.Status?.Token;
        if (string.IsNullOrEmpty(token))
        {
            throw new InvalidOperationException($"the TokenRequest API returned no token for serviceaccount {lease.Namespace}/{name}");
        }

        var expires = issued.Status!.ExpirationTimestamp is { } t ? new DateTimeOffset(DateTime.SpecifyKind(t, DateTimeKind.Utc)) : time.GetUtcNow() + lifetime;
        return new LeaseCredentials(name, token, expires, Kubeconfig(endpoint, lease, token));
    }

    /// <summary>Deletes the RoleBinding and ServiceAccount (revoking the tokens). Missing objects are fine.</summary>
    public async Task RevokeAsync(LeaseIdentity lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        var name = AccessName(lease.Name);
        await DeleteIfPresentAsync(() => client.RbacAuthorizationV1.DeleteNamespacedRoleBindingAsync(name, lease.Namespace, cancellationToken: cancellationToken)).ConfigureAwait(false);
        await DeleteIfPresentAsync(() => client.CoreV1.DeleteNamespacedServiceAccountAsync(name, lease.Namespace, cancellationToken: cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>A kubeconfig for the renter: one cluster, one user with the token, one context in the lease's namespace.</summary>
    public static string Kubeconfig(ClusterEndpointOptions endpoint, LeaseIdentity lease, string token)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(lease);
        var contextName = $"rpoi-{lease.Namespace}-{lease.Name}";
        var cluster = new JsonObject { ["server"] = endpoint.Server };
        if (!string.IsNullOrEmpty(endpoint.CertificateAuthorityData))
        {
            cluster["certificate-authority-data"] = endpoint.CertificateAuthorityData;
        }

        var config = new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Config",
            ["clusters"] = new JsonArray(new JsonObject { ["name"] = contextName, ["cluster"] = cluster }),
            ["users"] = new JsonArray(new JsonObject { ["name"] = contextName, ["user"] = new JsonObject { ["token"] = token } }),
            ["contexts"] = new JsonArray(new JsonObject
            {
                ["name"] = contextName,
                ["context"] = new JsonObject { ["cluster"] = contextName, ["user"] = contextName, ["namespace"] = lease.Namespace },
            }),
            ["current-context"] = contextName,
        };
        return config.ToJsonString(IndentedJson);
    }

    private static readonly JsonSerializerOptions IndentedJson = new() { WriteIndented = true };

    private static V1ObjectMeta Meta(LeaseIdentity lease, string name, V1OwnerReference owner) => new()
    {
        Name = name,
        NamespaceProperty = lease.Namespace,
        Labels = new Dictionary<string, string>
        {
            [TpuLabels.LeaseNameLabel] = lease.Name,
            ["app.kubernetes.io/managed-by"] = "rpoi-operator",
        },
        OwnerReferences = [owner],
    };

    private static async Task CreateIfMissingAsync<T>(Func<Task<T>> create)
    {
        try
        {
            await create().ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            // Already there from an earlier reconcile (restart after a partial grant): same name, same owner.
        }
    }

    private static async Task DeleteIfPresentAsync<T>(Func<Task<T>> delete)
    {
        try
        {
            await delete().ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
        }
    }
}
