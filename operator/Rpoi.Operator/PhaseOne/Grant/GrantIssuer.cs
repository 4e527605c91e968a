using System.Globalization;
using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Operator.PhaseOne.Grant;

/// <summary>A grant written to the lease's access Secret.</summary>
/// <param name="SecretName">The Secret, in the Lease's namespace.</param>
/// <param name="GrantDigest">Hex SHA-256 of σ (what ratings refer to in phase II).</param>
/// <param name="ValidFrom">Start of the validity window (when the lease became active).</param>
/// <param name="ValidUntil">End of the validity window (the lease's expiry).</param>
public sealed record IssuedGrant(string SecretName, string GrantDigest, DateTimeOffset ValidFrom, DateTimeOffset ValidUntil);

/// <summary>
/// Builds the access grant σ(Mϕ → β) and delivers <c>Enc(m') = E_R(sign_β(m + σ))</c> (equation 3) to the Secret
/// <c>&lt;lease&gt;-access</c>: type <c>rpoi.io/access</c>, data key <c>access.rpoi</c>, annotations with H, the renter's
/// key id and the validity window, owned by the Lease so garbage collection removes it with the Lease.
/// </summary>
/// <remarks>
/// The operator never reads a Secret outside its own namespace (its RBAC allows only create, update and delete there):
/// the Secret is written with create, and on 409 replaced by an unconditional PUT. What a restart needs to find the
/// grant again (H, σ's digest, the validity window) is the Lease's own status (<see cref="Find"/>): the status write
/// that makes the Lease Active records <c>transactionHash</c>, <c>grantDigest</c>, <c>activeSince</c> and
/// <c>expiresAt</c>, so the grant costs no extra write of the Lease. A crash between the Secret write and that status
/// write re-issues the grant, and the new Secret replaces the old one.
/// </remarks>
public sealed class GrantIssuer
{
    /// <summary>Secret type of an access Secret.</summary>
    public const string SecretType = "rpoi.io/access";

    /// <summary>Data key holding the sealed grant (JSON of a sealed message).</summary>
    public const string DataKey = "access.rpoi";

    /// <summary>Annotation on the Secret: the transaction hash H the grant belongs to.</summary>
    public const string HashAnnotation = "rpoi.io/transaction-hash";

    /// <summary>Annotation: key id of the renter the grant is sealed to.</summary>
    public const string RenterKeyAnnotation = "rpoi.io/renter-key-id";

    /// <summary>Annotation: key id of β, who signed the grant.</summary>
    public const string LeaserKeyAnnotation = "rpoi.io/leaser-key-id";

    /// <summary>Annotation on the Secret: hex SHA-256 of σ (the Lease keeps it in <c>status.grantDigest</c>).</summary>
    public const string DigestAnnotation = "rpoi.io/grant-digest";

    /// <summary>Annotation on the Secret: start of validity, RFC 3339.</summary>
    public const string ValidFromAnnotation = "rpoi.io/valid-from";

    /// <summary>Annotation on the Secret: end of validity, RFC 3339.</summary>
    public const string ValidUntilAnnotation = "rpoi.io/valid-until";

    private readonly IKubernetes client;
    private readonly LeaseAccess access;

    /// <summary>Creates the issuer.</summary>
    public GrantIssuer(IKubernetes client, LeaseAccess access)
    {
        this.client = client;
        this.access = access;
    }

    /// <summary>The access Secret's name for a lease.</summary>
    public static string SecretName(string leaseName) => $"{leaseName}-access";

    /// <summary>
    /// The grant already delivered for H, read back from the Lease's stored status (written with phase Active), or null
    /// when the status records no grant or one for another H.
    /// </summary>
    public static IssuedGrant? Find(Lease lease, TransactionHash h)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(h);
        var status = lease.Status;
        if (status is null
            || status.TransactionHash != h.Hex
            || string.IsNullOrEmpty(status.GrantDigest)
            || status.ActiveSince is not { } validFrom
            || status.ExpiresAt is not { } validUntil)
        {
            return null;
        }

        return new IssuedGrant(SecretName(lease.Metadata.Name), status.GrantDigest, Utc(validFrom), Utc(validUntil));
    }

    /// <summary>
    /// Issues credentials valid until <paramref name="validUntil"/>, builds σ for <paramref name="claim"/>, signs it
    /// with β's key, seals it to R and writes the Secret (replacing a stale one of the same name).
    /// </summary>
    public async Task<IssuedGrant> IssueAsync(
        LeaseIdentity lease,
        V1OwnerReference owner,
        VerifiedRequest request,
        TpuClaim claim,
        DateTimeOffset validFrom,
        DateTimeOffset validUntil,
        PartyKeyPair leaser,
        ClusterEndpointOptions endpoint,
        string podImage,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(claim);
        ArgumentNullException.ThrowIfNull(leaser);
        var credentials = await access.IssueAsync(lease, owner, validUntil, endpoint, cancellationToken).ConfigureAwait(false);
        var chipsPerHost = claim.Nodes.Count == 0 ? 0 : claim.Chips / claim.Nodes.Count;
        var sigma = new AccessGrant(
            claim.Nodes,
            string.Join(",", claim.NodePools),
            claim.Shape.Accelerator,
            claim.Shape.Topology,
            PodPlacement.NodeSelector(lease, claim.Shape),
            PodPlacement.LeaseToleration(lease),
            credentials.Kubeconfig,
            PodPlacement.PodTemplate(lease, claim.Shape, chipsPerHost, podImage),
            validFrom,
            validUntil);
        var sealedGrant = RpoiEquations.SealGrant(request, sigma, leaser);
        var digest = RpoiEquations.GrantDigest(sigma);
        var name = SecretName(lease.Name);
        var secret = new V1Secret
        {
            Metadata = new V1ObjectMeta
            {
                Name = name,
                NamespaceProperty = lease.Namespace,
                Labels = new Dictionary<string, string>
                {
                    [TpuLabels.LeaseNameLabel] = lease.Name,
                    ["app.kubernetes.io/managed-by"] = "rpoi-operator",
                },
                Annotations = new Dictionary<string, string>
                {
                    [HashAnnotation] = request.H.Hex,
                    [RenterKeyAnnotation] = request.Renter.KeyId,
                    [LeaserKeyAnnotation] = leaser.Identity.KeyId,
                    [DigestAnnotation] = digest,
                    [ValidFromAnnotation] = FormatTime(validFrom),
                    [ValidUntilAnnotation] = FormatTime(validUntil),
                },
                OwnerReferences = [owner],
            },
            Type = SecretType,
            Data = new Dictionary<string, byte[]> { [DataKey] = sealedGrant.ToUtf8Bytes() },
        };

        try
        {
            await client.CoreV1.CreateNamespacedSecretAsync(secret, lease.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Conflict)
        {
            // A Secret of that name from an interrupted earlier attempt (or someone else's): ours replaces it wholesale.
            // No resourceVersion, so the PUT is unconditional and the operator never has to read the Secret.
            await client.CoreV1.ReplaceNamespacedSecretAsync(secret, name, lease.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        return new IssuedGrant(name, digest, validFrom, validUntil);
    }

    /// <summary>Deletes the access Secret (missing is fine).</summary>
    public async Task DeleteAsync(LeaseIdentity lease, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(lease);
        try
        {
            await client.CoreV1.DeleteNamespacedSecretAsync(SecretName(lease.Name), lease.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.NotFound)
        {
        }
    }

    /// <summary>RFC 3339 UTC with a Z, whole seconds.</summary>
    public static string FormatTime(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);

    // Status times are metav1.Time, always UTC on the wire, whatever DateTimeKind the deserialiser gave them.
    private static DateTimeOffset Utc(DateTime t) => new(DateTime.SpecifyKind(t, DateTimeKind.Utc));
}
