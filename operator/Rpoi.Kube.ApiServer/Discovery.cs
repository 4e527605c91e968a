using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace Rpoi.Kube.ApiServer;

/// <summary>Discovery documents (<c>/version</c>, <c>/api</c>, <c>/apis</c>, resource lists) and OpenAPI v3.</summary>
internal static class Discovery
{
    private static readonly string[] ResourceVerbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

    public static JsonObject Version(string gitVersion)
    {
        var parts = gitVersion.TrimStart('v').Split('.');
        return new JsonObject
        {
            ["major"] = parts.Length > 0 ? parts[0] : "1",
            ["minor"] = parts.Length > 1 ? parts[1] : "0",
            ["gitVersion"] = gitVersion,
            ["gitCommit"] = "0000000000000000000000000000000000000000",
            ["gitTreeState"] = "clean",
            ["buildDate"] = "2026-01-01T00:00:00Z",
            ["goVersion"] = "go1.23.0",
            ["compiler"] = "gc",
            ["platform"] = "linux/amd64",
        };
    }

    public static JsonObject CoreVersions(string hostPort) => new()
    {
        ["kind"] = "APIVersions",
        ["versions"] = new JsonArray("v1"),
        ["serverAddressByClientCIDRs"] = new JsonArray(new JsonObject { ["clientCIDR"] = "0.0.0.0/0", ["serverAddress"] = hostPort }),
    };

    public static JsonObject Groups(ResourceRegistry registry)
    {
        var groups = new JsonArray();
        foreach (var (group, versions) in registry.Groups())
        {
            groups.Add(Group(group, versions));
        }

        return new JsonObject { ["kind"] = "APIGroupList", ["apiVersion"] = "v1", ["groups"] = groups };
    }

    public static JsonObject Group(string group, IReadOnlyList<string> versions)
    {
        JsonObject Gv(string v) => new() { ["groupVersion"] = $"{group}/{v}", ["version"] = v };
        return new JsonObject
        {
            ["kind"] = "APIGroup",
            ["apiVersion"] = "v1",
            ["name"] = group,
            ["versions"] = new JsonArray(versions.Select(v => (JsonNode)Gv(v)).ToArray()),
            ["preferredVersion"] = Gv(versions[0]),
        };
    }

    public static JsonObject ResourceList(ResourceRegistry registry, string group, string version)
    {
        var resources = new JsonArray();
        foreach (var t in registry.ForGroupVersion(group, version))
        {
            var r = new JsonObject
            {
                ["name"] = t.Plural,
                ["singularName"] = t.Singular,
                ["namespaced"] = t.Namespaced,
                ["kind"] = t.Kind,
                ["verbs"] = new JsonArray(ResourceVerbs.Select(v => (JsonNode)v).ToArray()),
            };
            if (t.ShortNames.Count > 0)
            {
                r["shortNames"] = new JsonArray(t.ShortNames.Select(s => (JsonNode)s).ToArray());
            }

            if (t.Categories.Count > 0)
            {
                r["categories"] = new JsonArray(t.Categories.Select(s => (JsonNode)s).ToArray());
            }

            resources.Add(r);
            if (t.HasStatus)
            {
                resources.Add(Sub(t, "status", t.Kind, ["get", "patch", "update"]));
            }

            foreach (var sub in t.ExtraSubresources)
            {
                resources.Add(sub == "token"
                    ? Sub(t, sub, "TokenRequest", ["create"], "authentication.k8s.io", "v1")
                    : Sub(t, sub, t.Kind, ["get", "patch", "update"]));
            }
        }

        return new JsonObject
        {
            ["kind"] = "APIResourceList",
            ["apiVersion"] = "v1",
            ["groupVersion"] = group.Length == 0 ? version : $"{group}/{version}",
            ["resources"] = resources,
        };

        static JsonObject Sub(ResourceType t, string sub, string kind, string[] verbs, string? group = null, string? version = null)
        {
            var o = new JsonObject
            {
                ["name"] = $"{t.Plural}/{sub}",
                ["singularName"] = "",
                ["namespaced"] = t.Namespaced,
                ["kind"] = kind,
                ["verbs"] = new JsonArray(verbs.Select(v => (JsonNode)v).ToArray()),
            };
            if (group is not null)
            {
                o["group"] = group;
                o["version"] = version;
            }

            return o;
        }
    }

    /// <summary>The <c>/openapi/v3</c> index: one entry per group-version, with a content hash so clients re-fetch on change.</summary>
    public static JsonObject OpenApiIndex(ResourceRegistry registry)
    {
        var paths = new JsonObject();
        foreach (var (group, version) in registry.All.Select(t => (t.Group, t.Version)).Distinct().OrderBy(x => x.Group).ThenBy(x => x.Version))
        {
            var key = group.Length == 0 ? $"api/{version}" : $"apis/{group}/{version}";
            var hash = Convert.ToHexString(SHA256.HashData(Json.Serialize(OpenApiDocument(registry, group, version))))[..32];
            paths[key] = new JsonObject { ["serverRelativeURL"] = $"/openapi/v3/{key}?hash={hash}" };
        }

        return new JsonObject { ["paths"] = paths };
    }

    /// <summary>
    /// One group-version's OpenAPI v3 document: a schema per kind (the CRD schema for custom resources) carrying
    /// <c>x-kubernetes-group-version-kind</c>, and PATCH operations that declare the <c>fieldValidation</c> parameter,
    /// which kubectl checks before it relies on server-side field validation.
    /// </summary>
    public static JsonObject OpenApiDocument(ResourceRegistry registry, string group, string version)
    {
        var schemas = new JsonObject();
        var paths = new JsonObject();
        foreach (var t in registry.ForGroupVersion(group, version))
        {
            var gvk = new JsonObject { ["group"] = group, ["version"] = version, ["kind"] = t.Kind };
            var schema = t.Schema is not null
                ? (JsonObject)t.Schema.DeepClone()
                : new JsonObject
                {
                    ["type"] = "object",
                    ["description"] = $"{t.Kind} ({t.ApiVersion}); the test server does not publish the schema of built-in kinds.",
                    ["x-kubernetes-preserve-unknown-fields"] = true,
                };
            if (schema["properties"] is not JsonObject props)
            {
                props = new JsonObject();
                schema["properties"] = props;
            }

            // As apiextensions-apiserver publishes a CRD: TypeMeta's apiVersion and kind replace the schema's own,
            // and metadata refers to ObjectMeta (the CRD schema may say no more than type: object there).
            props["apiVersion"] = OpenApiMeta.ApiVersion();
            props["kind"] = OpenApiMeta.Kind();
            props["metadata"] = OpenApiMeta.Metadata();
            schema["x-kubernetes-group-version-kind"] = new JsonArray(gvk.DeepClone());
            var schemaName = SchemaName(t);
            schemas[schemaName] = schema;

            var basePath = (group.Length == 0 ? $"/api/{version}" : $"/apis/{group}/{version}") +
                           (t.Namespaced ? "/namespaces/{namespace}" : "") + $"/{t.Plural}/{{name}}";
            paths[basePath] = Operations(gvk, schemaName);
            if (t.HasStatus)
            {
                paths[basePath + "/status"] = Operations(gvk, schemaName);
            }
        }

        OpenApiMeta.AddComponents(schemas);
        return new JsonObject
        {
            ["openapi"] = "3.0.0",
            ["info"] = new JsonObject { ["title"] = "Kubernetes", ["version"] = "v1.32.0" },
            ["paths"] = paths,
            ["components"] = new JsonObject { ["schemas"] = schemas },
        };

        static JsonObject Operations(JsonObject gvk, string schemaName)
        {
            JsonObject Op(string id) => new()
            {
                ["operationId"] = id,
                ["x-kubernetes-group-version-kind"] = gvk.DeepClone(),
                ["parameters"] = new JsonArray(
                    new JsonObject { ["name"] = "fieldValidation", ["in"] = "query", ["schema"] = new JsonObject { ["type"] = "string" } },
                    new JsonObject { ["name"] = "fieldManager", ["in"] = "query", ["schema"] = new JsonObject { ["type"] = "string" } },
                    new JsonObject { ["name"] = "dryRun", ["in"] = "query", ["schema"] = new JsonObject { ["type"] = "string" } }),
                ["responses"] = new JsonObject
                {
                    ["200"] = new JsonObject
                    {
                        ["description"] = "OK",
                        ["content"] = new JsonObject
                        {
                            ["application/json"] = new JsonObject
                            {
                                ["schema"] = new JsonObject { ["$ref"] = $"#/components/schemas/{schemaName}" },
                            },
                        },
                    },
                },
            };
            return new JsonObject { ["get"] = Op("read"), ["put"] = Op("replace"), ["patch"] = Op("patch") };
        }
    }

    /// <summary>
    /// <c>/openapi/v2</c> as JSON: a Swagger 2.0 document with a definition per served kind (named as in v3, carrying
    /// <c>x-kubernetes-group-version-kind</c>) and, per object path, get/put/patch/delete operations with
    /// <c>x-kubernetes-action</c> and the dryRun/fieldManager/fieldValidation parameters, which kubectl's v2 query
    /// parameter check reads. The protobuf form is not served (see docs/testing.md).
    /// </summary>
    public static JsonObject OpenApiV2(ResourceRegistry registry)
    {
        var definitions = new JsonObject();
        var paths = new JsonObject();
        foreach (var (group, version) in registry.All.Select(t => (t.Group, t.Version)).Distinct().OrderBy(x => x.Group, StringComparer.Ordinal).ThenBy(x => x.Version, StringComparer.Ordinal))
        {
            var v3 = OpenApiDocument(registry, group, version);
            foreach (var (name, schema) in (JsonObject)v3["components"]!["schemas"]!)
            {
                definitions[name] = ToV2Schema(schema!);
            }

            foreach (var t in registry.ForGroupVersion(group, version))
            {
                var gvk = new JsonObject { ["group"] = group, ["version"] = version, ["kind"] = t.Kind };
                var basePath = (group.Length == 0 ? $"/api/{version}" : $"/apis/{group}/{version}") +
                               (t.Namespaced ? "/namespaces/{namespace}" : "") + $"/{t.Plural}/{{name}}";
                paths[basePath] = V2Operations(gvk, SchemaName(t), t.Kind);
                if (t.HasStatus)
                {
                    paths[basePath + "/status"] = V2Operations(gvk, SchemaName(t), t.Kind + "Status");
                }
            }
        }

        return new JsonObject
        {
            ["swagger"] = "2.0",
            ["info"] = new JsonObject { ["title"] = "Kubernetes", ["version"] = "v1.32.0" },
            ["paths"] = paths,
            ["definitions"] = definitions,
        };

        static JsonObject V2Operations(JsonObject gvk, string schemaName, string idSuffix)
        {
            JsonObject Op(string verb, string action) => new()
            {
                ["operationId"] = verb + idSuffix,
                ["x-kubernetes-action"] = action,
                ["x-kubernetes-group-version-kind"] = gvk.DeepClone(),
                ["parameters"] = new JsonArray(
                    new JsonObject { ["name"] = "dryRun", ["in"] = "query", ["type"] = "string", ["uniqueItems"] = true },
                    new JsonObject { ["name"] = "fieldManager", ["in"] = "query", ["type"] = "string", ["uniqueItems"] = true },
                    new JsonObject { ["name"] = "fieldValidation", ["in"] = "query", ["type"] = "string", ["uniqueItems"] = true }),
                ["responses"] = new JsonObject
                {
                    ["200"] = new JsonObject { ["description"] = "OK", ["schema"] = new JsonObject { ["$ref"] = $"#/definitions/{schemaName}" } },
                },
            };
            return new JsonObject
            {
                ["get"] = Op("read", "get"),
                ["put"] = Op("replace", "put"),
                ["patch"] = Op("patch", "patch"),
                ["delete"] = Op("delete", "delete"),
            };
        }
    }

    /// <summary>
    /// A v3 schema in the Swagger 2.0 subset, as apiextensions-apiserver does for CRDs
    /// (pkg/controller/openapi/v2/conversion.go): v2 has no nullable, oneOf, anyOf or not, so they are dropped.
    /// </summary>
    private const string V3RefPrefix = "#/components/schemas/";

    private static JsonNode ToV2Schema(JsonNode node)
    {
        if (node is not JsonObject obj)
        {
            return node.DeepClone();
        }

        var copy = new JsonObject();
        foreach (var (key, value) in obj)
        {
            if (key is "nullable" or "oneOf" or "anyOf" or "not")
            {
                continue;
            }

            copy[key] = key switch
            {
                "properties" when value is JsonObject props => new JsonObject(props.Select(p => KeyValuePair.Create(p.Key, p.Value is null ? null : ToV2Schema(p.Value)))),
                "items" or "additionalProperties" when value is JsonObject sub => ToV2Schema(sub),
                "allOf" when value is JsonArray all => new JsonArray(all.Select(x => x is null ? null : ToV2Schema(x)).ToArray()),

                // v3 points into components/schemas; the same schemas live under definitions in v2.
                "$ref" when value?.GetValue<string>() is { } target && target.StartsWith(V3RefPrefix, StringComparison.Ordinal) =>
                    JsonValue.Create("#/definitions/" + target[V3RefPrefix.Length..]),
                _ => value?.DeepClone(),
            };
        }

        return copy;
    }

    /// <summary>Schema name as the real server writes it: reversed group, version, kind (io.k8s.api.core.v1.Secret for core).</summary>
    public static string SchemaName(ResourceType t)
    {
        // Built-in kinds are named by their Go package (k8s.io/api/<group>/<version>): the group's first label.
        var group = t.Group.Length == 0 ? "io.k8s.api.core"
            : t.Group == "apiextensions.k8s.io" ? "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions"
            : !t.IsCustom ? "io.k8s.api." + t.Group.Split('.')[0]
            : string.Join('.', t.Group.Split('.').Reverse());
        return $"{group}.{t.Version}.{t.Kind}";
    }
}
