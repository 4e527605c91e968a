using k8s;
using k8s.Models;

namespace Rpoi.Operator.CrdGeneration;

/// <summary>
/// Checks the rules of a structural schema that the API server enforces on apiextensions.k8s.io/v1
/// CRDs, so a bad schema fails here rather than at <c>kubectl apply</c>: every node has a type, arrays
/// have items, properties and additionalProperties are not mixed, required and list-map keys name
/// declared properties, metadata says no more than its type, and no forbidden keyword is used.
/// </summary>
public static class StructuralSchema
{
    /// <summary>Every violation, as "path: problem"; empty when the schema is structural.</summary>
    public static IReadOnlyList<string> Check(V1JSONSchemaProps root)
    {
        var problems = new List<string>();
        Visit(root, "openAPIV3Schema", problems);
        if (root.Properties?.TryGetValue("metadata", out var metadata) == true &&
            (metadata.Properties is { Count: > 0 } || metadata.XKubernetesValidations is { Count: > 0 }))
        {
            problems.Add("openAPIV3Schema.properties.metadata: only 'type: object' is allowed at the root metadata");
        }

        return problems;
    }

    /// <summary>Every node without a description, as paths.</summary>
    public static IReadOnlyList<string> MissingDescriptions(V1JSONSchemaProps root)
    {
        var missing = new List<string>();
        void Walk(V1JSONSchemaProps node, string path, bool isRootMetaField)
        {
            if (!isRootMetaField && string.IsNullOrWhiteSpace(node.Description))
            {
                missing.Add(path);
            }

            foreach (var (name, child) in node.Properties ?? new Dictionary<string, V1JSONSchemaProps>())
            {
                Walk(child, $"{path}.{name}", false);
            }

            // Items of a list are described by the list's own description when they are scalars.
            if (AsSchema(node.Items) is { Type: "object" } items)
            {
                Walk(items, path + "[]", false);
            }
        }

        Walk(root, "", false);
        return missing;
    }

    private static void Visit(V1JSONSchemaProps node, string path, List<string> problems)
    {
        if (string.IsNullOrEmpty(node.Type) && node.XKubernetesIntOrString != true)
        {
            problems.Add($"{path}: has no type");
        }

        if (node.RefProperty is not null || node.Definitions is not null || node.Dependencies is not null ||
            node.PatternProperties is not null || node.Id is not null || node.Schema is not null)
        {
            problems.Add($"{path}: uses a keyword a structural schema forbids ($ref, definitions, dependencies, patternProperties, id, $schema)");
        }

        if (node.Properties is { Count: > 0 } && node.AdditionalProperties is not null and not false)
        {
            problems.Add($"{path}: has both properties and additionalProperties");
        }

        if (node.Type == "array")
        {
            if (AsSchema(node.Items) is not { } items)
            {
                problems.Add($"{path}: is an array without a single items schema");
            }
            else
            {
                Visit(items, path + ".items", problems);
                if (node.XKubernetesListType == "map")
                {
                    foreach (var key in node.XKubernetesListMapKeys ?? [])
                    {
                        if (items.Required?.Contains(key) != true)
                        {
                            problems.Add($"{path}: list-map key '{key}' must be a required property of the items");
                        }
                    }
                }
            }
        }

        foreach (var required in node.Required ?? [])
        {
            if (node.Properties?.ContainsKey(required) != true)
            {
                problems.Add($"{path}: required '{required}' is not a declared property");
            }
        }

        foreach (var (name, child) in node.Properties ?? new Dictionary<string, V1JSONSchemaProps>())
        {
            Visit(child, $"{path}.properties.{name}", problems);
        }
    }

    // The model types items as object: a schema we built is a V1JSONSchemaProps, one loaded from YAML
    // is a plain map. A JSON array (tuple items) is not structural and stays null.
    private static V1JSONSchemaProps? AsSchema(object? items) => items switch
    {
        null => null,
        V1JSONSchemaProps schema => schema,
        System.Collections.IList => null,
        _ => KubernetesJson.Deserialize<V1JSONSchemaProps>(KubernetesJson.Serialize(items)),
    };
}
