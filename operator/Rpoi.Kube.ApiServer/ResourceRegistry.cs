using System.Collections.Immutable;
using System.Text.Json.Nodes;

namespace Rpoi.Kube.ApiServer;

/// <summary>
/// The set of served resource types. Reads take an immutable snapshot so request handling never locks;
/// CRD registration replaces the snapshot.
/// </summary>
internal sealed class ResourceRegistry
{
    private readonly Lock _gate = new();
    private ImmutableDictionary<(string Group, string Version, string Plural), ResourceType> _types =
        ImmutableDictionary<(string, string, string), ResourceType>.Empty;

    public ResourceRegistry()
    {
        foreach (var type in BuiltIns())
        {
            Add(type);
        }
    }

    public IEnumerable<ResourceType> All => _types.Values;

    public ResourceType? Find(string group, string version, string plural) =>
        _types.TryGetValue((group, version, plural), out var type) ? type : null;

    /// <summary>The served version of a group and kind that an object's apiVersion names.</summary>
    public ResourceType? FindByKind(string apiVersion, string kind)
    {
        var slash = apiVersion.IndexOf('/', StringComparison.Ordinal);
        var group = slash < 0 ? "" : apiVersion[..slash];
        var version = slash < 0 ? apiVersion : apiVersion[(slash + 1)..];
        return _types.Values.FirstOrDefault(t => t.Group == group && t.Version == version && t.Kind == kind);
    }

    public IEnumerable<ResourceType> ForGroupVersion(string group, string version) =>
        _types.Values.Where(t => t.Group == group && t.Version == version).OrderBy(t => t.Plural, StringComparer.Ordinal);

    public bool HasGroupVersion(string group, string version) =>
        _types.Keys.Any(k => k.Group == group && k.Version == version);

    /// <summary>Groups (except core) with their versions, preferred (first registered, highest) version first.</summary>
    public IReadOnlyList<(string Group, IReadOnlyList<string> Versions)> Groups() =>
        _types.Keys.Where(k => k.Group.Length > 0)
            .GroupBy(k => k.Group)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => (g.Key, (IReadOnlyList<string>)g.Select(k => k.Version).Distinct().OrderByDescending(v => v, VersionComparer.Instance).ToList()))
            .ToList();

    public void Add(ResourceType type)
    {
        lock (_gate)
        {
            _types = _types.SetItem((type.Group, type.Version, type.Plural), type);
        }
    }

    /// <summary>Replaces every version of a CRD's group/plural with the given set (empty = unregister).</summary>
    public void ReplaceCustom(string group, string plural, IReadOnlyList<ResourceType> types)
    {
        lock (_gate)
        {
            var builder = _types.ToBuilder();
            foreach (var key in builder.Keys.Where(k => k.Group == group && k.Plural == plural).ToList())
            {
                builder.Remove(key);
            }

            foreach (var type in types)
            {
                builder[(type.Group, type.Version, type.Plural)] = type;
            }

            _types = builder.ToImmutable();
        }
    }

    private static IEnumerable<ResourceType> BuiltIns()
    {
        static ResourceType T(string group, string plural, string kind, bool namespaced, string[]? shortNames = null,
            bool status = false, string[]? extra = null, string version = "v1") => new()
            {
                Group = group,
                Version = version,
                Plural = plural,
                Singular = kind.ToLowerInvariant(),
                Kind = kind,
                Namespaced = namespaced,
                ShortNames = shortNames ?? [],
                HasStatus = status,
                ExtraSubresources = extra ?? [],
            };

        yield return T("", "namespaces", "Namespace", false, ["ns"], status: true);
        yield return T("", "nodes", "Node", false, ["no"], status: true);
        yield return T("", "secrets", "Secret", true);
        yield return T("", "serviceaccounts", "ServiceAccount", true, ["sa"], extra: ["token"]);
        yield return T("", "configmaps", "ConfigMap", true, ["cm"]);
        yield return T("", "pods", "Pod", true, ["po"], status: true) with { Categories = ["all"] };
        yield return T("", "services", "Service", true, ["svc"], status: true) with { Categories = ["all"] };
        yield return T("", "persistentvolumeclaims", "PersistentVolumeClaim", true, ["pvc"], status: true);
        // One resource, two representations, as on a real server: events.k8s.io/v1 is served from the core/v1 storage.
        yield return T("", "events", "Event", true, ["ev"]) with { FieldLabels = EventRepresentations.CoreLabels };
        yield return T(EventRepresentations.EventsGroup, "events", "Event", true, ["ev"]) with
        {
            Conversion = EventRepresentations.EventsV1Conversion,
            FieldLabels = EventRepresentations.EventsV1Labels,
        };
        yield return T("apps", "deployments", "Deployment", true, ["deploy"], status: true) with { Categories = ["all"] };
        // Stored only (no Job controller): lets `kubectl apply --dry-run=server` check a multi-host slice's indexed Job.
        yield return T("batch", "jobs", "Job", true, status: true) with { Categories = ["all"] };
        yield return T("rbac.authorization.k8s.io", "roles", "Role", true);
        yield return T("rbac.authorization.k8s.io", "rolebindings", "RoleBinding", true);
        yield return T("rbac.authorization.k8s.io", "clusterroles", "ClusterRole", false);
        yield return T("rbac.authorization.k8s.io", "clusterrolebindings", "ClusterRoleBinding", false);
        yield return T("coordination.k8s.io", "leases", "Lease", true);
        // Kinds our chart and config/ install (NetworkPolicy has had no status subresource since 1.27).
        yield return T("networking.k8s.io", "networkpolicies", "NetworkPolicy", true, ["netpol"]);
        yield return T("policy", "poddisruptionbudgets", "PodDisruptionBudget", true, ["pdb"], status: true);
        yield return T("admissionregistration.k8s.io", "validatingadmissionpolicies", "ValidatingAdmissionPolicy", false, status: true);
        yield return T("admissionregistration.k8s.io", "validatingadmissionpolicybindings", "ValidatingAdmissionPolicyBinding", false);
        yield return T("apiextensions.k8s.io", "customresourcedefinitions", "CustomResourceDefinition", false, ["crd", "crds"], status: true);
    }

    /// <summary>
    /// Reads a CustomResourceDefinition object into the resource types it serves, after the checks a real API server
    /// makes (<see cref="CrdValidation"/>); a CRD it would refuse throws the same 422 Invalid.
    /// </summary>
    /// <param name="crd">The CRD as sent.</param>
    /// <param name="old">The stored CRD when this is an update (group and plural are then immutable), else null.</param>
    public static IReadOnlyList<ResourceType> ParseCrd(JsonObject crd, JsonObject? old = null)
    {
        CrdValidation.EnsureValid(crd, old);
        var spec = (JsonObject)crd["spec"]!;
        var group = Json.GetString(spec["group"])!;
        var names = (JsonObject)spec["names"]!;
        var plural = Json.GetString(names["plural"])!;
        var kind = Json.GetString(names["kind"])!;
        var scope = Json.GetString(spec["scope"])!;
        var versions = (JsonArray)spec["versions"]!;
        var result = new List<ResourceType>();
        foreach (var v in versions.OfType<JsonObject>())
        {
            if (v["served"]?.GetValue<bool>() != true)
            {
                continue;
            }

            var schema = v["schema"]?["openAPIV3Schema"] as JsonObject;
            var columns = new List<PrinterColumn>();
            if (v["additionalPrinterColumns"] is JsonArray cols)
            {
                foreach (var c in cols.OfType<JsonObject>())
                {
                    columns.Add(new PrinterColumn(
                        c["name"]?.GetValue<string>() ?? "",
                        c["type"]?.GetValue<string>() ?? "string",
                        c["jsonPath"]?.GetValue<string>() ?? "",
                        c["description"]?.GetValue<string>() ?? "",
                        c["priority"]?.GetValue<int>() ?? 0,
                        c["format"]?.GetValue<string>() ?? ""));
                }
            }

            result.Add(new ResourceType
            {
                Group = group,
                Version = Json.GetString(v["name"])!,
                Plural = plural,
                Singular = Json.GetString(names["singular"]) is { Length: > 0 } singular ? singular : kind.ToLowerInvariant(),
                Kind = kind,
                Namespaced = scope == "Namespaced",
                ShortNames = Strings(names["shortNames"]),
                Categories = Strings(names["categories"]),
                HasStatus = v["subresources"]?["status"] is not null,
                PrinterColumns = columns,
                Schema = (JsonObject?)schema?.DeepClone(),
                IsCustom = true,
            });
        }

        return result;

        static IReadOnlyList<string> Strings(JsonNode? node) =>
            node is JsonArray a ? a.Select(x => x?.GetValue<string>() ?? "").Where(x => x.Length > 0).ToList() : [];
    }
}

/// <summary>Orders Kubernetes versions: v2 &gt; v1 &gt; v1beta2 &gt; v1beta1 &gt; v1alpha1.</summary>
internal sealed class VersionComparer : IComparer<string>
{
    public static readonly VersionComparer Instance = new();

    public int Compare(string? x, string? y) => Rank(x ?? "").CompareTo(Rank(y ?? ""));

    private static (int Stability, int Major, int Minor) Rank(string v)
    {
        var m = System.Text.RegularExpressions.Regex.Match(v, "^v(\\d+)(?:(alpha|beta)(\\d+))?$");
        if (!m.Success)
        {
            return (-1, 0, 0); // not a Kubernetes version: sort last
        }

        var stability = m.Groups[2].Value switch { "alpha" => 0, "beta" => 1, _ => 2 };
        return (stability, int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture),
            m.Groups[3].Success && m.Groups[3].Length > 0 ? int.Parse(m.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture) : 0);
    }
}
