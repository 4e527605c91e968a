using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using k8s;
using k8s.Models;

namespace Rpoi.Operator.CrdGeneration;

/// <summary>
/// The rules a real API server (v1.32) enforces on the schema of an apiextensions.k8s.io/v1 CRD, checked at
/// generation so a bad schema fails here rather than at <c>kubectl apply</c>. Paths and wording follow the real
/// server's (k8s.io/apiextensions-apiserver pkg/apiserver/schema/validation.go and
/// pkg/apis/apiextensions/validation/validation.go); docs/crds.md lists each rule. Two rules are ours, stricter than
/// the server's: <c>required</c> names declared properties, and every rule has a message.
/// </summary>
public static partial class StructuralSchema
{
    private static readonly string[] OpenApiTypes = ["array", "boolean", "integer", "number", "object", "string"];

    // What the root of a schema may say when the status subresource is on (validation.go allowedFieldsAtRootSchema).
    private static readonly HashSet<string> AllowedAtStatusRoot =
    [
        "description", "type", "format", "title", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength",
        "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "multipleOf", "required", "items", "properties",
        "externalDocs", "example", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-validations",
    ];

    /// <summary>Every violation, as "path: problem"; empty when the real server would accept the schema.</summary>
    /// <param name="root">The openAPIV3Schema.</param>
    /// <param name="statusSubresource">Whether the version enables the status subresource (it restricts the root).</param>
    public static IReadOnlyList<string> Check(V1JSONSchemaProps root, bool statusSubresource = true)
    {
        ArgumentNullException.ThrowIfNull(root);
        var schema = JsonNode.Parse(KubernetesJson.Serialize(root))!.AsObject();
        var problems = new List<string>();
        const string path = "openAPIV3Schema";
        if (Str(schema, "type") != "object")
        {
            problems.Add($"{path}.type: must be object at the root");
        }

        if (statusSubresource && schema.Select(p => p.Key).FirstOrDefault(k => !AllowedAtStatusRoot.Contains(k)) is { } extra)
        {
            problems.Add($"{path}.{extra}: not allowed at the root of the schema when the status subresource is enabled");
        }

        if (schema["additionalProperties"] is not null)
        {
            problems.Add($"{path}.additionalProperties: must not be used at the root");
        }

        if (Props(schema)?["metadata"] is JsonObject metadata)
        {
            // Only type: object and restrictions of name and generateName: no description, default or rule.
            var said = metadata.Where(p => p.Key != "type" &&
                !(p.Key == "properties" && p.Value is JsonObject o && o.All(q => q.Key is "name" or "generateName"))).Select(p => p.Key).ToList();
            if (Str(metadata, "type") != "object")
            {
                problems.Add($"{path}.properties[metadata].type: must be object");
            }

            if (said.Count > 0)
            {
                problems.Add($"{path}.properties[metadata]: must not specify anything other than name and generateName, but it says {string.Join(", ", said)}");
            }
        }

        foreach (var meta in new[] { "apiVersion", "kind" })
        {
            if (Props(schema)?[meta] is JsonObject field && Str(field, "type") != "string")
            {
                problems.Add($"{path}.properties[{meta}].type: must be string");
            }
        }

        Visit(schema, path, problems, root: true, uncorrelatable: null);
        return problems;
    }

    /// <summary>Every node without a description, as paths; the root metadata is exempt (it may have none).</summary>
    public static IReadOnlyList<string> MissingDescriptions(V1JSONSchemaProps root)
    {
        var missing = new List<string>();
        void Walk(V1JSONSchemaProps node, string path, bool isRootMetadata)
        {
            if (!isRootMetadata && string.IsNullOrWhiteSpace(node.Description))
            {
                missing.Add(path);
            }

            foreach (var (name, child) in node.Properties ?? new Dictionary<string, V1JSONSchemaProps>())
            {
                Walk(child, $"{path}.{name}", path.Length == 0 && name == "metadata");
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

    private static void Visit(JsonObject node, string path, List<string> problems, bool root, string? uncorrelatable)
    {
        var type = Str(node, "type");
        var intOrString = Bool(node, "x-kubernetes-int-or-string");
        var preserve = Bool(node, "x-kubernetes-preserve-unknown-fields");
        if (type is null && !intOrString && !preserve)
        {
            problems.Add($"{path}: has no type");
        }
        else if (type is not null && !OpenApiTypes.Contains(type))
        {
            problems.Add($"{path}.type: '{type}' is not one of {string.Join(", ", OpenApiTypes)}");
        }

        foreach (var keyword in new[] { "$ref", "$schema", "id", "definitions", "dependencies", "patternProperties", "additionalItems" })
        {
            if (node[keyword] is not null)
            {
                problems.Add($"{path}: uses a keyword a structural schema forbids ({keyword})");
            }
        }

        foreach (var junctor in new[] { "allOf", "anyOf", "oneOf", "not" })
        {
            if (node[junctor] is not null)
            {
                problems.Add($"{path}.{junctor}: the generator emits no {junctor}; a structural schema restricts it to value validations");
            }
        }

        if (node["x-kubernetes-preserve-unknown-fields"]?.GetValueKind() == JsonValueKind.False)
        {
            problems.Add($"{path}.x-kubernetes-preserve-unknown-fields: must be true or undefined");
        }

        if (intOrString && preserve)
        {
            problems.Add($"{path}.x-kubernetes-preserve-unknown-fields: must be false if x-kubernetes-int-or-string is true");
        }

        if (Bool(node, "uniqueItems"))
        {
            problems.Add($"{path}.uniqueItems: cannot be true (the runtime complexity becomes quadratic)");
        }

        if (Bool(node, "nullable") && root)
        {
            problems.Add($"{path}.nullable: cannot be true at the root");
        }

        if (Props(node) is { Count: > 0 } && node["additionalProperties"] is { } additional &&
            (additional is JsonObject || additional.GetValueKind() == JsonValueKind.False))
        {
            problems.Add($"{path}: has both properties and additionalProperties");
        }

        if (Str(node, "pattern") is { } pattern && !IsRe2(pattern))
        {
            problems.Add($"{path}.pattern: '{pattern}' is not a regular expression Go (RE2) compiles");
        }

        foreach (var required in Strings(node["required"]))
        {
            if (Props(node)?.ContainsKey(required) != true)
            {
                problems.Add($"{path}: required '{required}' is not a declared property");
            }
        }

        if (node["default"] is { } value && !root && !DefaultFits(value, node))
        {
            problems.Add($"{path}.default: {value.ToJsonString()} is not a valid, pruned value of this schema");
        }

        Rules(node, path, problems, uncorrelatable);
        var listType = Str(node, "x-kubernetes-list-type");
        if (type == "array")
        {
            if (node["items"] is not JsonObject items)
            {
                problems.Add($"{path}: is an array without a single items schema");
            }
            else
            {
                ListMap(node, items, path, listType, problems);
                Visit(items, path + ".items", problems, false, listType == "map" ? uncorrelatable : uncorrelatable ?? path);
            }
        }
        else if (listType is not null || node["x-kubernetes-list-map-keys"] is not null)
        {
            problems.Add($"{path}: x-kubernetes-list-type and x-kubernetes-list-map-keys need type: array");
        }

        if (node["additionalProperties"] is JsonObject values)
        {
            Visit(values, path + ".additionalProperties", problems, false, uncorrelatable);
        }

        foreach (var (name, child) in Props(node) ?? [])
        {
            // The root metadata was checked above and is the API server's own.
            if (child is JsonObject c && !(root && name == "metadata"))
            {
                Visit(c, $"{path}.properties[{name}]", problems, false, uncorrelatable);
            }
        }
    }

    private static void ListMap(JsonObject node, JsonObject items, string path, string? listType, List<string> problems)
    {
        var keys = Strings(node["x-kubernetes-list-map-keys"]).ToList();
        if (listType is not null and not ("atomic" or "set" or "map"))
        {
            problems.Add($"{path}.x-kubernetes-list-type: '{listType}' is not one of atomic, set, map");
        }

        if (keys.Count > 0 && listType != "map")
        {
            problems.Add($"{path}.x-kubernetes-list-type: must be map if x-kubernetes-list-map-keys is non-empty");
        }

        if (listType != "map")
        {
            return;
        }

        if (keys.Count == 0)
        {
            problems.Add($"{path}.x-kubernetes-list-map-keys: must not be empty if x-kubernetes-list-type is map");
        }

        if (Str(items, "type") != "object")
        {
            problems.Add($"{path}.items.type: must be object if the list is a map");
        }

        foreach (var key in keys)
        {
            if (Props(items)?[key] is not JsonObject keySchema)
            {
                problems.Add($"{path}.x-kubernetes-list-map-keys: '{key}' is not a property of the items");
                continue;
            }

            if (Str(keySchema, "type") is "array" or "object")
            {
                problems.Add($"{path}.items.properties[{key}].type: a list-map key must be a scalar");
            }

            if (!Strings(items["required"]).Contains(key) && keySchema["default"] is null)
            {
                problems.Add($"{path}: list-map key '{key}' must be a required property of the items (or have a default)");
            }

            if (Bool(keySchema, "nullable"))
            {
                problems.Add($"{path}.items.properties[{key}].nullable: a list-map key cannot be nullable");
            }
        }
    }

    private static void Rules(JsonObject node, string path, List<string> problems, string? uncorrelatable)
    {
        if (node["x-kubernetes-validations"] is not JsonArray rules)
        {
            return;
        }

        for (var i = 0; i < rules.Count; i++)
        {
            var rulePath = $"{path}.x-kubernetes-validations[{i}]";
            var rule = Str(rules[i] as JsonObject ?? [], "rule") ?? "";
            var message = Str(rules[i] as JsonObject ?? [], "message") ?? "";
            if (rule.Trim().Length == 0)
            {
                problems.Add($"{rulePath}.rule: rule is not specified");
            }

            if (message.Trim().Length == 0)
            {
                problems.Add($"{rulePath}.message: give every rule a message naming the field");
            }
            else if (message.Contains('\n', StringComparison.Ordinal) || message.Contains('\r', StringComparison.Ordinal))
            {
                problems.Add($"{rulePath}.message: must not contain line breaks");
            }

            if (uncorrelatable is not null && OldSelf().IsMatch(rule))
            {
                problems.Add($"{rulePath}.rule: oldSelf cannot be used on the uncorrelatable portion of the schema within {uncorrelatable} (make the list x-kubernetes-list-type: map)");
            }
        }
    }

    // A default must have the node's type and no field the schema would prune (defaulting/validation.go).
    private static bool DefaultFits(JsonNode? value, JsonObject schema)
    {
        var kind = value?.GetValueKind();
        var ok = Str(schema, "type") switch
        {
            "string" => kind == JsonValueKind.String,
            "boolean" => kind is JsonValueKind.True or JsonValueKind.False,
            "integer" => kind == JsonValueKind.Number && !value!.ToJsonString().Contains('.', StringComparison.Ordinal),
            "number" => kind == JsonValueKind.Number,
            "array" => value is JsonArray a && (schema["items"] is not JsonObject items || a.All(x => DefaultFits(x, items))),
            "object" => value is JsonObject o && o.All(p =>
                Props(schema)?[p.Key] is JsonObject child ? DefaultFits(p.Value, child)
                : schema["additionalProperties"] is JsonObject values ? DefaultFits(p.Value, values)
                : Bool(schema, "x-kubernetes-preserve-unknown-fields") || schema["additionalProperties"]?.GetValueKind() == JsonValueKind.True),
            _ => true,
        };
        return ok && (schema["enum"] is not JsonArray allowed || allowed.Any(a => JsonNode.DeepEquals(a, value)));
    }

    // Go's regexp (RE2) has no lookaround, backreferences, atomic groups or possessive quantifiers.
    private static bool IsRe2(string pattern)
    {
        if (Re2Unsupported().IsMatch(pattern))
        {
            return false;
        }

        try
        {
            _ = new Regex(pattern.Replace("(?P<", "(?<", StringComparison.Ordinal), RegexOptions.None, TimeSpan.FromSeconds(1));
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    [GeneratedRegex(@"\(\?(?:[=!>]|<[=!])|\\[1-9]|\\k<|[*+?}]\+")]
    private static partial Regex Re2Unsupported();

    [GeneratedRegex(@"\boldSelf\b")]
    private static partial Regex OldSelf();

    private static JsonObject? Props(JsonObject node) => node["properties"] as JsonObject;

    private static string? Str(JsonObject node, string key) => node[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    private static bool Bool(JsonObject node, string key) => node[key]?.GetValueKind() == JsonValueKind.True;

    private static IEnumerable<string> Strings(JsonNode? node) =>
        node is JsonArray a ? a.Select(x => x is JsonValue v && v.TryGetValue<string>(out var s) ? s : "") : [];

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
