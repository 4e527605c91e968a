using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Rpoi.Kube.ApiServer;

/// <summary>
/// One field error as the real server's <c>field.Error</c> (k8s.io/apimachinery/pkg/util/validation/field): a
/// type, the field path and the body ("Invalid value: …: detail") that <c>Error()</c> prefixes with the path.
/// </summary>
internal sealed record FieldError(string Type, string Field, string Body)
{
    public string Error => $"{Field}: {Body}";

    public static FieldError Required(string field, string detail = "") => new("FieldValueRequired", field, WithDetail("Required value", detail));

    public static FieldError Forbidden(string field, string detail) => new("FieldValueForbidden", field, WithDetail("Forbidden", detail));

    /// <summary>An Invalid error; <paramref name="value"/> is already rendered as Go renders it (see <see cref="GoValue"/>).</summary>
    public static FieldError Invalid(string field, string value, string detail) => new("FieldValueInvalid", field, WithDetail("Invalid value: " + value, detail));

    public static FieldError NotSupported(string field, string value, IEnumerable<string> supported) =>
        new("FieldValueNotSupported", field, $"Unsupported value: {GoValue.Quote(value)}: supported values: {string.Join(", ", supported.Select(GoValue.Quote))}");

    private static string WithDetail(string head, string detail) => detail.Length == 0 ? head : head + ": " + detail;
}

/// <summary>
/// Renders bad values the way the v1.32 API server's <c>field.Error.ErrorBody</c> does: strings quoted (<c>%q</c>),
/// numbers and booleans plain, everything else in Go syntax (<c>%#v</c>) of the internal apiextensions types.
/// Pointers inside a struct print as addresses on the real server; they are written <c>0xc…</c> here.
/// </summary>
internal static class GoValue
{
    public static string Quote(string s)
    {
        var b = new StringBuilder("\"");
        foreach (var r in s.EnumerateRunes())
        {
            switch (r.Value)
            {
                case '"': b.Append("\\\""); break;
                case '\\': b.Append("\\\\"); break;
                case '\n': b.Append("\\n"); break;
                case '\r': b.Append("\\r"); break;
                case '\t': b.Append("\\t"); break;
                case < 0x20 or 0x7f: b.Append(CultureInfo.InvariantCulture, $"\\x{r.Value:x2}"); break;
                default: b.Append(r.ToString()); break;
            }
        }

        return b.Append('"').ToString();
    }

    public static string Bool(bool value) => value ? "true" : "false";

    public static string Strings(IReadOnlyList<string>? values) =>
        values is null ? "[]string(nil)" : "[]string{" + string.Join(", ", values.Select(Quote)) + "}";

    /// <summary>A JSON value as Go prints the decoded <c>interface{}</c> (maps with sorted keys, int64 or float64 numbers).</summary>
    public static string Json(JsonNode? node) => node switch
    {
        null => "interface {}(nil)",
        JsonObject o => "map[string]interface {}{" + string.Join(", ",
            o.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => Quote(p.Key) + ":" + Element(p.Value))) + "}",
        JsonArray a => "[]interface {}{" + string.Join(", ", a.Select(Element)) + "}",
        _ => Element(node),
    };

    private static string Element(JsonNode? node) => node switch
    {
        null => "interface {}(nil)",
        JsonObject or JsonArray => Json(node),
        JsonValue v when v.GetValueKind() == JsonValueKind.String => Quote(v.GetValue<string>()),
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => Bool(v.GetValue<bool>()),
        JsonValue v => Number(v),
        _ => node.ToJsonString(),
    };

    /// <summary>A JSON value as the top-level bad value of an Invalid error (strings quoted, scalars plain).</summary>
    public static string Value(JsonNode? node) => node switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => Number(v),
        JsonValue v when v.GetValueKind() == JsonValueKind.String => Quote(v.GetValue<string>()),
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => Bool(v.GetValue<bool>()),
        null => "\"null\"",
        _ => Json(node),
    };

    private static string Number(JsonValue v)
    {
        var text = v.ToJsonString();
        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l))
        {
            return l.ToString(CultureInfo.InvariantCulture);
        }

        // Go prints a float64 with %g: 1.5, 1e+21.
        return v.GetValue<double>().ToString("R", CultureInfo.InvariantCulture)
            .Replace("E+", "e+", StringComparison.Ordinal).Replace("E-", "e-", StringComparison.Ordinal);
    }

    public static string Pointer(string type, bool present) => present ? $"(*{type})(0xc…)" : $"(*{type})(nil)";
}

/// <summary>
/// The checks a real kube-apiserver (v1.32) makes when a CustomResourceDefinition is created or updated, with its field
/// paths and wording: <c>ValidateCustomResourceDefinition</c> and <c>ValidateCustomResourceDefinitionUpdate</c> in
/// k8s.io/apiextensions-apiserver pkg/apis/apiextensions/validation/validation.go, the structural-schema rules of
/// pkg/apiserver/schema/validation.go and complete.go, and the default checks of pkg/apiserver/schema/defaulting.
/// The real server validates the internal form of the object, in which schemas, subresources and printer columns that
/// are identical in every version are moved to <c>spec.validation</c>, <c>spec.subresources</c> and
/// <c>spec.additionalPrinterColumns</c>; so are the field paths here. docs/crds.md lists each rule and what is not
/// checked (CEL cost estimation and type checking beyond the test server's CEL subset).
/// </summary>
internal static partial class CrdValidation
{
    private const string Qualified = "CustomResourceDefinition.apiextensions.k8s.io";

    private static readonly string[] PrinterColumnTypes = ["boolean", "date", "integer", "number", "string"];
    private static readonly string[] PrinterColumnFormats = ["byte", "date", "date-time", "double", "float", "int32", "int64", "password"];
    private static readonly string[] OpenApiTypes = ["array", "boolean", "integer", "number", "object", "string"];
    private static readonly string[] ValidationReasons = ["FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"];

    // JSONSchemaProps fields in the order of the Go struct, with the Go names the status-root check prints.
    private static readonly (string Json, string Go)[] SchemaFields =
    [
        ("id", "ID"), ("$schema", "Schema"), ("$ref", "Ref"), ("description", "Description"), ("type", "Type"),
        ("nullable", "Nullable"), ("format", "Format"), ("title", "Title"), ("default", "Default"), ("maximum", "Maximum"),
        ("exclusiveMaximum", "ExclusiveMaximum"), ("minimum", "Minimum"), ("exclusiveMinimum", "ExclusiveMinimum"),
        ("maxLength", "MaxLength"), ("minLength", "MinLength"), ("pattern", "Pattern"), ("maxItems", "MaxItems"),
        ("minItems", "MinItems"), ("uniqueItems", "UniqueItems"), ("multipleOf", "MultipleOf"), ("enum", "Enum"),
        ("maxProperties", "MaxProperties"), ("minProperties", "MinProperties"), ("required", "Required"), ("items", "Items"),
        ("allOf", "AllOf"), ("oneOf", "OneOf"), ("anyOf", "AnyOf"), ("not", "Not"), ("properties", "Properties"),
        ("additionalProperties", "AdditionalProperties"), ("patternProperties", "PatternProperties"),
        ("dependencies", "Dependencies"), ("additionalItems", "AdditionalItems"), ("definitions", "Definitions"),
        ("externalDocs", "ExternalDocs"), ("example", "Example"), ("x-kubernetes-preserve-unknown-fields", "XPreserveUnknownFields"),
        ("x-kubernetes-embedded-resource", "XEmbeddedResource"), ("x-kubernetes-int-or-string", "XIntOrString"),
        ("x-kubernetes-list-map-keys", "XListMapKeys"), ("x-kubernetes-list-type", "XListType"),
        ("x-kubernetes-map-type", "XMapType"), ("x-kubernetes-validations", "XValidations"),
    ];

    private static readonly string[] AllowedAtStatusRoot =
    [
        "Description", "Type", "Format", "Title", "Maximum", "ExclusiveMaximum", "Minimum", "ExclusiveMinimum", "MaxLength",
        "MinLength", "Pattern", "MaxItems", "MinItems", "UniqueItems", "MultipleOf", "Required", "Items", "Properties",
        "ExternalDocs", "Example", "XPreserveUnknownFields", "XValidations",
    ];

    // The keywords a structural schema node is made of (schema.Structural); a v1.32 server drops externalDocs and example.
    private static readonly HashSet<string> StructuralKeys =
    [
        "type", "description", "title", "nullable", "default", "items", "properties", "additionalProperties", "format",
        "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems",
        "minItems", "uniqueItems", "multipleOf", "enum", "maxProperties", "minProperties", "required", "allOf", "oneOf",
        "anyOf", "not", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string",
        "x-kubernetes-list-map-keys", "x-kubernetes-list-type", "x-kubernetes-map-type", "x-kubernetes-validations",
    ];

    /// <summary>Throws the real server's 422 Invalid when <paramref name="crd"/> would be refused.</summary>
    /// <param name="crd">The CustomResourceDefinition (apiextensions.k8s.io/v1) as sent.</param>
    /// <param name="old">The stored one on an update, null on a create.</param>
    public static void EnsureValid(JsonObject crd, JsonObject? old)
    {
        var errors = Validate(crd, old);
        if (errors.Count > 0)
        {
            throw Refusal(Json.GetString(crd["metadata"]?["name"]) ?? "", errors);
        }
    }

    /// <summary>The refusal the real server sends for these errors: <c>errors.NewInvalid</c>.</summary>
    public static ApiException Refusal(string name, IReadOnlyList<FieldError> errors)
    {
        // The message de-duplicates equal errors (field.ErrorList.ToAggregate); the causes keep every one.
        var messages = errors.Select(e => e.Error).Distinct(StringComparer.Ordinal).ToList();
        var joined = messages.Count == 1 ? messages[0] : "[" + string.Join(", ", messages) + "]";
        return new ApiException(422, "Invalid", $"{Qualified} \"{name}\" is invalid: {joined}",
            errors.Select(e => new StatusCause(e.Type, e.Field, e.Body)).ToList())
        { DetailName = name, DetailGroup = "apiextensions.k8s.io", DetailKind = "CustomResourceDefinition" };
    }

    /// <summary>Every error the real server reports for this CRD, in its order.</summary>
    public static IReadOnlyList<FieldError> Validate(JsonObject crd, JsonObject? old)
    {
        var errors = new List<FieldError>();
        var spec = crd["spec"] as JsonObject ?? [];
        var internalSpec = Internal.From(spec);
        if (old is null)
        {
            // On update the real server checks metadata with ValidateObjectMetaUpdate, without the name rule.
            ValidateMetadata(crd, internalSpec, errors);
        }

        ValidateSpec(internalSpec, errors);
        if (old is not null)
        {
            ValidateSpecUpdate(internalSpec, Internal.From(old["spec"] as JsonObject ?? []), IsEstablished(old), errors);
        }

        // The status is the server's: cleared on create, kept from the stored object on update; then the storage
        // version is added to storedVersions (strategy.go PrepareForCreate/PrepareForUpdate).
        var stored = old is null ? [] : Strings(old["status"]?["storedVersions"]) ?? [];
        if (internalSpec.Versions.FirstOrDefault(v => v.Storage) is { } storage && !stored.Contains(storage.Name))
        {
            stored = [.. stored, storage.Name];
        }

        ValidateStoredVersions(old is null && stored.Count == 0 ? null : stored, internalSpec.Versions, errors);
        ValidateApiApproval(crd, old, internalSpec.Group, errors);
        if (spec["preserveUnknownFields"]?.GetValueKind() == JsonValueKind.True &&
            old?["spec"]?["preserveUnknownFields"]?.GetValueKind() != JsonValueKind.True)
        {
            errors.Add(FieldError.Invalid("spec.preserveUnknownFields", "true",
                "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead"));
        }

        return errors;
    }

    /// <summary>
    /// The x-kubernetes-validations rules of this CRD that the test server's CEL subset cannot parse: the real server
    /// compiles them (and refuses one that does not compile); here they are neither compiled nor enforced, and the
    /// create or update answers a warning naming each, so a test that relies on one is not fooled.
    /// </summary>
    public static IReadOnlyList<string> UncompiledRules(JsonObject crd)
    {
        var found = new List<string>();
        foreach (var (path, schema) in Schemas(Internal.From(crd["spec"] as JsonObject ?? [])))
        {
            Walk(schema, path);
        }

        return found;

        void Walk(JsonNode? node, string path)
        {
            if (node is not JsonObject s)
            {
                return;
            }

            if (s["x-kubernetes-validations"] is JsonArray rules)
            {
                for (var i = 0; i < rules.Count; i++)
                {
                    var rule = Json.GetString(rules[i]?["rule"]) ?? "";
                    if (rule.Trim().Length > 0 && CelSubset.Unsupported(rule))
                    {
                        found.Add($"{path}.x-kubernetes-validations[{i}].rule: the test server does not compile or enforce {GoValue.Quote(rule)} (outside its CEL subset)");
                    }
                }
            }

            foreach (var (key, child) in Children(s, path))
            {
                Walk(child, key);
            }
        }
    }

    private static IEnumerable<(string Path, JsonNode? Node)> Children(JsonObject s, string path)
    {
        if (s["properties"] is JsonObject props)
        {
            foreach (var (k, v) in props.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                yield return ($"{path}.properties[{k}]", v);
            }
        }

        if (s["items"] is JsonObject items)
        {
            yield return (path + ".items", items);
        }

        if (s["additionalProperties"] is JsonObject additional)
        {
            yield return (path + ".additionalProperties", additional);
        }
    }

    private static IEnumerable<(string Path, JsonObject Schema)> Schemas(Internal spec)
    {
        if (spec.Validation?["openAPIV3Schema"] is JsonObject top)
        {
            yield return ("spec.validation.openAPIV3Schema", top);
        }

        for (var i = 0; i < spec.Versions.Count; i++)
        {
            if (spec.Versions[i].Schema?["openAPIV3Schema"] is JsonObject s)
            {
                yield return ($"spec.versions[{i}].schema.openAPIV3Schema", s);
            }
        }
    }

    private static bool IsEstablished(JsonObject crd) =>
        crd["status"]?["conditions"] is JsonArray conditions &&
        conditions.Any(c => Json.GetString(c?["type"]) == "Established" && Json.GetString(c?["status"]) == "True");

    // ---- metadata, names, versions -------------------------------------------------------------------------------

    private static void ValidateMetadata(JsonObject crd, Internal spec, List<FieldError> errors)
    {
        var meta = crd["metadata"] as JsonObject;
        var name = Json.GetString(meta?["name"]) ?? "";
        if (name.Length == 0)
        {
            if ((Json.GetString(meta?["generateName"]) ?? "").Length == 0)
            {
                errors.Add(FieldError.Required("metadata.name", "name or generateName is required"));
            }

            return;
        }

        foreach (var message in Dns1123Subdomain(name))
        {
            errors.Add(FieldError.Invalid("metadata.name", GoValue.Quote(name), message));
        }

        if (name != spec.Names.Plural + "." + spec.Group)
        {
            errors.Add(FieldError.Invalid("metadata.name", GoValue.Quote(name), "must be spec.names.plural+\".\"+spec.group"));
        }
    }

    private static void ValidateSpec(Internal spec, List<FieldError> errors)
    {
        if (spec.Group.Length == 0)
        {
            errors.Add(FieldError.Required("spec.group"));
        }
        else if (Dns1123Subdomain(spec.Group) is { Count: > 0 } groupErrors)
        {
            errors.Add(FieldError.Invalid("spec.group", GoValue.Quote(spec.Group), string.Join(",", groupErrors)));
        }
        else if (spec.Group.Split('.').Length < 2)
        {
            errors.Add(FieldError.Invalid("spec.group", GoValue.Quote(spec.Group), "should be a domain with at least one dot"));
        }

        if (spec.Scope.Length == 0)
        {
            errors.Add(FieldError.Required("spec.scope"));
        }
        else if (spec.Scope is not ("Cluster" or "Namespaced"))
        {
            errors.Add(FieldError.NotSupported("spec.scope", spec.Scope, ["Cluster", "Namespaced"]));
        }

        if (spec.Validation?["openAPIV3Schema"] is not JsonObject)
        {
            for (var i = 0; i < spec.Versions.Count; i++)
            {
                if (spec.Versions[i].Schema?["openAPIV3Schema"] is not JsonObject)
                {
                    errors.Add(FieldError.Required($"spec.versions[{i}].schema.openAPIV3Schema", "schemas are required"));
                }
            }
        }

        if (spec.PreserveUnknownFields && Schemas(spec).Any(s => Has(s.Schema, n => n.ContainsKey("default"))))
        {
            errors.Add(FieldError.Invalid("spec.preserveUnknownFields", "true", "must be false in order to use defaults in the schema"));
        }

        var storageCount = 0;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var unique = true;
        for (var i = 0; i < spec.Versions.Count; i++)
        {
            var version = spec.Versions[i];
            var path = $"spec.versions[{i}]";
            storageCount += version.Storage ? 1 : 0;
            unique &= seen.Add(version.Name);
            if (Dns1035Label(version.Name) is { Count: > 0 } nameErrors)
            {
                errors.Add(FieldError.Invalid(path + ".name", GoValue.Quote(version.Name), string.Join(",", nameErrors)));
            }

            var statusEnabled = (spec.VersionsHaveSubresources ? version.Subresources : spec.Subresources)?["status"] is not null;
            ValidateVersion(version, path, statusEnabled, errors);
        }

        if (!unique)
        {
            errors.Add(FieldError.Invalid("spec.versions", spec.VersionsGo(), "must contain unique version names"));
        }

        if (storageCount != 1)
        {
            errors.Add(FieldError.Invalid("spec.versions", spec.VersionsGo(), "must have exactly one version marked as storage version"));
        }

        if (spec.Versions.Count > 0 && Dns1035Label(spec.Versions[0].Name) is { Count: > 0 } versionErrors)
        {
            // The internal object's spec.version is the first version's name, checked again under its own path.
            errors.Add(FieldError.Invalid("spec.version", GoValue.Quote(spec.Versions[0].Name), string.Join(",", versionErrors)));
        }

        foreach (var (field, value) in new[] { ("plural", spec.Names.Plural), ("singular", spec.Names.Singular), ("kind", spec.Names.Kind), ("listKind", spec.Names.ListKind) })
        {
            if (value.Length == 0)
            {
                errors.Add(FieldError.Required("spec.names." + field));
            }
        }

        ValidateNames(spec.Names, "spec.names", errors);
        var anyStatus = spec.Subresources?["status"] is not null || spec.Versions.Any(v => v.Subresources?["status"] is not null);
        ValidateSchema(spec.Validation, "spec.validation", anyStatus, errors);
        ValidateSubresources(spec.Subresources, "spec.subresources", errors);
        for (var i = 0; i < spec.Columns.Count; i++)
        {
            ValidateColumn(spec.Columns[i], $"spec.additionalPrinterColumns[{i}]", errors);
        }

        ValidateConversion(spec.Conversion, errors);
    }

    private static void ValidateVersion(Internal.Version version, string path, bool statusEnabled, List<FieldError> errors)
    {
        if (version.DeprecationWarning is { } warning)
        {
            if (!version.Deprecated)
            {
                errors.Add(FieldError.Invalid(path + ".deprecationWarning", GoValue.Quote(warning), "can only be set for deprecated versions"));
            }
            else
            {
                if (Encoding.UTF8.GetByteCount(warning) > 256)
                {
                    errors.Add(FieldError.Invalid(path + ".deprecationWarning", GoValue.Quote(warning), "must be <= 256 characters long"));
                }

                if (warning.Length == 0)
                {
                    errors.Add(FieldError.Invalid(path + ".deprecationWarning", GoValue.Quote(warning), "must not be an empty string"));
                }

                var bad = warning.Select((c, i) => (c, i)).FirstOrDefault(x => char.IsControl(x.c));
                if (bad != default)
                {
                    errors.Add(FieldError.Invalid(path + ".deprecationWarning", GoValue.Quote(warning),
                        $"must only contain printable UTF-8 characters; non-printable character found at index {Encoding.UTF8.GetByteCount(warning[..bad.i])}"));
                }
            }
        }

        ValidateSchema(version.Schema, path + ".schema", statusEnabled, errors);
        ValidateSubresources(version.Subresources, path + ".subresources", errors);
        for (var i = 0; i < version.Columns.Count; i++)
        {
            ValidateColumn(version.Columns[i], $"{path}.additionalPrinterColumns[{i}]", errors);
        }
    }

    private static void ValidateNames(Internal.NameSet names, string path, List<FieldError> errors)
    {
        void Label(string field, string value, string prefix, bool lower)
        {
            if (value.Length > 0 && Dns1035Label(lower ? value.ToLowerInvariant() : value) is { Count: > 0 } e)
            {
                errors.Add(FieldError.Invalid($"{path}.{field}", GoValue.Quote(value), prefix + string.Join(",", e)));
            }
        }

        Label("plural", names.Plural, "", false);
        Label("singular", names.Singular, "", false);
        Label("kind", names.Kind, "may have mixed case, but should otherwise match: ", true);
        Label("listKind", names.ListKind, "may have mixed case, but should otherwise match: ", true);
        for (var i = 0; i < names.ShortNames.Count; i++)
        {
            if (Dns1035Label(names.ShortNames[i]) is { Count: > 0 } e)
            {
                errors.Add(FieldError.Invalid($"{path}.shortNames[{i}]", GoValue.Quote(names.ShortNames[i]), string.Join(",", e)));
            }
        }

        if (names.Kind.Length > 0 && names.Kind == names.ListKind)
        {
            errors.Add(FieldError.Invalid(path + ".listKind", GoValue.Quote(names.ListKind), "kind and listKind may not be the same"));
        }

        for (var i = 0; i < names.Categories.Count; i++)
        {
            if (Dns1035Label(names.Categories[i]) is { Count: > 0 } e)
            {
                errors.Add(FieldError.Invalid($"{path}.categories[{i}]", GoValue.Quote(names.Categories[i]), string.Join(",", e)));
            }
        }
    }

    private static void ValidateColumn(JsonObject column, string path, List<FieldError> errors)
    {
        var name = Json.GetString(column["name"]) ?? "";
        var type = Json.GetString(column["type"]) ?? "";
        var format = Json.GetString(column["format"]) ?? "";
        var jsonPath = Json.GetString(column["jsonPath"]) ?? "";
        if (name.Length == 0)
        {
            errors.Add(FieldError.Required(path + ".name"));
        }

        var types = "must be one of " + string.Join(",", PrinterColumnTypes);
        if (type.Length == 0)
        {
            errors.Add(FieldError.Required(path + ".type", types));
        }
        else if (!PrinterColumnTypes.Contains(type))
        {
            errors.Add(FieldError.Invalid(path + ".type", GoValue.Quote(type), types));
        }

        if (format.Length > 0 && !PrinterColumnFormats.Contains(format))
        {
            errors.Add(FieldError.Invalid(path + ".format", GoValue.Quote(format), "must be one of " + string.Join(",", PrinterColumnFormats)));
        }

        // The internal type's field is JSONPath, and so is the path the real server names.
        if (jsonPath.Length == 0)
        {
            errors.Add(FieldError.Required(path + ".JSONPath"));
        }
        else
        {
            SimpleJsonPath(jsonPath, path + ".JSONPath", errors);
        }
    }

    private static bool SimpleJsonPath(string s, string path, List<FieldError> errors)
    {
        if (s.Length == 0)
        {
            errors.Add(FieldError.Invalid(path, GoValue.Quote(s), "must not be empty"));
            return false;
        }

        if (s[0] != '.')
        {
            errors.Add(FieldError.Invalid(path, GoValue.Quote(s), "must be a simple json path starting with ."));
            return false;
        }

        return true;
    }

    private static void ValidateSubresources(JsonObject? subresources, string path, List<FieldError> errors)
    {
        if (subresources?["scale"] is not JsonObject scale)
        {
            return;
        }

        void Check(string field, string? value, bool required, string[] prefixes, string under)
        {
            var fieldPath = $"{path}.scale.{field}";
            if (string.IsNullOrEmpty(value))
            {
                if (required)
                {
                    errors.Add(FieldError.Required(fieldPath));
                }

                return;
            }

            if (SimpleJsonPath(value, fieldPath, errors) && !prefixes.Any(p => value.StartsWith(p, StringComparison.Ordinal)))
            {
                errors.Add(FieldError.Invalid(fieldPath, GoValue.Quote(value), under));
            }
        }

        Check("specReplicasPath", Json.GetString(scale["specReplicasPath"]), true, [".spec."], "should be a json path under .spec");
        Check("statusReplicasPath", Json.GetString(scale["statusReplicasPath"]), true, [".status."], "should be a json path under .status");
        Check("labelSelectorPath", Json.GetString(scale["labelSelectorPath"]), false, [".spec.", ".status."], "should be a json path under either .spec or .status");
    }

    private static void ValidateConversion(JsonObject? conversion, List<FieldError> errors)
    {
        // v1 defaults a missing conversion to strategy None.
        var strategy = conversion is null ? "None" : Json.GetString(conversion["strategy"]) ?? "";
        var webhook = conversion?["webhook"] as JsonObject;
        var clientConfig = webhook?["clientConfig"] as JsonObject;
        var reviewVersions = Strings(webhook?["conversionReviewVersions"]) ?? [];
        if (strategy.Length == 0)
        {
            errors.Add(FieldError.Required("spec.conversion.strategy"));
        }
        else if (strategy is not ("None" or "Webhook"))
        {
            errors.Add(FieldError.NotSupported("spec.conversion.strategy", strategy, ["None", "Webhook"]));
        }

        if (strategy == "Webhook")
        {
            if (clientConfig is null)
            {
                errors.Add(FieldError.Required("spec.conversion.webhookClientConfig", "required when strategy is set to Webhook"));
            }
            else if ((clientConfig["url"] is null) == (clientConfig["service"] is null))
            {
                errors.Add(FieldError.Required("spec.conversion.webhookClientConfig", "exactly one of url or service is required"));
            }

            const string reviewPath = "spec.conversion.conversionReviewVersions";
            if (reviewVersions.Count == 0)
            {
                errors.Add(FieldError.Required(reviewPath));
            }
            else
            {
                var seen = new HashSet<string>(StringComparer.Ordinal);
                for (var i = 0; i < reviewVersions.Count; i++)
                {
                    if (!seen.Add(reviewVersions[i]))
                    {
                        errors.Add(FieldError.Invalid($"{reviewPath}[{i}]", GoValue.Quote(reviewVersions[i]), "duplicate version"));
                        continue;
                    }

                    foreach (var e in Dns1035Label(reviewVersions[i]))
                    {
                        errors.Add(FieldError.Invalid($"{reviewPath}[{i}]", GoValue.Quote(reviewVersions[i]), e));
                    }
                }

                if (!reviewVersions.Any(v => v is "v1" or "v1beta1"))
                {
                    errors.Add(FieldError.Invalid(reviewPath, GoValue.Strings(reviewVersions), "must include at least one of v1, v1beta1"));
                }
            }
        }
        else
        {
            if (clientConfig is not null)
            {
                errors.Add(FieldError.Forbidden("spec.conversion.webhookClientConfig", "should not be set when strategy is not set to Webhook"));
            }

            if (reviewVersions.Count > 0)
            {
                errors.Add(FieldError.Forbidden("spec.conversion.conversionReviewVersions", "should not be set when strategy is not set to Webhook"));
            }
        }
    }

    private static void ValidateSpecUpdate(Internal spec, Internal old, bool established, List<FieldError> errors)
    {
        if (established)
        {
            Immutable("spec.scope", spec.Scope, old.Scope);
            Immutable("spec.names.kind", spec.Names.Kind, old.Names.Kind);
        }

        Immutable("spec.group", spec.Group, old.Group);
        Immutable("spec.names.plural", spec.Names.Plural, old.Names.Plural);

        void Immutable(string path, string value, string previous)
        {
            if (value != previous)
            {
                errors.Add(FieldError.Invalid(path, GoValue.Quote(value), "field is immutable"));
            }
        }
    }

    private static void ValidateStoredVersions(IReadOnlyList<string>? stored, IReadOnlyList<Internal.Version> versions, List<FieldError> errors)
    {
        const string path = "status.storedVersions";
        if (stored is null or { Count: 0 })
        {
            errors.Add(FieldError.Invalid(path, GoValue.Strings(stored), "must have at least one stored version"));
            return;
        }

        var remaining = stored.Select((v, i) => (v, i)).ToDictionary(x => x.v, x => x.i, StringComparer.Ordinal);
        foreach (var version in versions)
        {
            var isStored = remaining.Remove(version.Name) || stored.Contains(version.Name);
            if (version.Storage && !isStored)
            {
                errors.Add(FieldError.Invalid(path, GoValue.Strings(stored), "must have the storage version " + version.Name));
            }
        }

        foreach (var (version, index) in remaining.OrderBy(r => r.Value))
        {
            errors.Add(FieldError.Invalid($"{path}[{index}]", GoValue.Quote(version), "must appear in spec.versions"));
        }
    }

    private static void ValidateApiApproval(JsonObject crd, JsonObject? old, string group, List<FieldError> errors)
    {
        const string annotation = "api-approved.kubernetes.io";
        if (!(group is "k8s.io" or "kubernetes.io" || group.EndsWith(".k8s.io", StringComparison.Ordinal) || group.EndsWith(".kubernetes.io", StringComparison.Ordinal)))
        {
            return;
        }

        var value = Json.GetString(crd["metadata"]?["annotations"]?[annotation]) ?? "";
        var state = Approval(value);
        if (old is not null && Approval(Json.GetString(old["metadata"]?["annotations"]?[annotation]) ?? "") == state)
        {
            return;
        }

        var path = $"metadata.annotations[{annotation}]";
        switch (state)
        {
            case "missing":
                errors.Add(FieldError.Required(path, $"protected groups must have approval annotation \"{annotation}\", see https://github.com/kubernetes/enhancements/pull/1111"));
                break;
            case "invalid":
                errors.Add(FieldError.Invalid(path, GoValue.Quote(value),
                    $"protected groups must have approval annotation \"{annotation}\" with either a URL or a reason starting with \"unapproved\", see https://github.com/kubernetes/enhancements/pull/1111"));
                break;
        }

        static string Approval(string value) =>
            value.Length == 0 ? "missing"
            : value.StartsWith("unapproved", StringComparison.Ordinal) ? "bypassed"
            : Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Host.Length > 0 ? "approved"
            : "invalid";
    }

    // ---- the schema ------------------------------------------------------------------------------------------------

    private static void ValidateSchema(JsonObject? validation, string path, bool statusEnabled, List<FieldError> errors)
    {
        if (validation?["openAPIV3Schema"] is not JsonObject schema)
        {
            return;
        }

        var own = new List<FieldError>();
        var schemaPath = path + ".openAPIV3Schema";
        if (statusEnabled)
        {
            foreach (var (json, go) in SchemaFields)
            {
                if (IsZero(schema[json], schema.ContainsKey(json)))
                {
                    continue;
                }

                if (go == "Type")
                {
                    if (Json.GetString(schema["type"]) != "object")
                    {
                        own.Add(FieldError.Invalid(path + ".openAPIV3Schema.type", GoValue.Quote(Json.GetString(schema["type"]) ?? ""),
                            "only \"object\" is allowed as the type at the root of the schema if the status subresource is enabled"));
                        break;
                    }

                    continue;
                }

                if (!AllowedAtStatusRoot.Contains(go))
                {
                    own.Add(FieldError.Invalid(schemaPath, "apiextensions.JSONSchemaProps{…}",
                        $"only [{string.Join(" ", AllowedAtStatusRoot)}] fields are allowed at the root of the schema if the status subresource is enabled"));
                    break;
                }
            }
        }

        if (Bool(schema, "nullable"))
        {
            own.Add(FieldError.Forbidden(path + ".openAPIV3Schema.nullable", "nullable cannot be true at the root"));
        }

        var celAllowed = false;
        var initErrors = new List<FieldError>();
        if (NewStructuralError(schema) is { } initError)
        {
            initErrors.Add(FieldError.Invalid(schemaPath, "\"\"", initError));
        }
        else if (Structural.Validate(schema, schemaPath) is { Count: > 0 } structural)
        {
            own.AddRange(structural);
        }
        else if (Defaults.Validate(schema, schemaPath) is { Count: > 0 } defaults)
        {
            own.AddRange(defaults);
        }
        else
        {
            celAllowed = true;
        }

        var (schemaErrors, celErrors) = OpenApi.Validate(schema, schemaPath, celAllowed);
        own.AddRange(schemaErrors);
        own.AddRange(celErrors);
        if (own.Count == 0)
        {
            own.AddRange(initErrors);
        }

        errors.AddRange(own);
    }

    // schema.NewStructural refuses what it cannot represent; these surface only when nothing else is wrong.
    private static string? NewStructuralError(JsonNode? node)
    {
        if (node is not JsonObject s)
        {
            return null;
        }

        foreach (var (key, name) in new[] { ("id", "id"), ("$schema", "schema"), ("$ref", "$ref"), ("patternProperties", "patternProperties"), ("dependencies", "dependencies"), ("additionalItems", "additionalItems"), ("definitions", "definitions") })
        {
            if (s[key] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? Json.GetString(v)!.Length > 0 : s[key] is JsonObject { Count: > 0 } || (key == "additionalItems" && s[key] is not null))
            {
                return $"OpenAPIV3Schema '{name}' is not supported";
            }
        }

        if (s["items"] is JsonArray)
        {
            return "OpenAPIV3Schema 'items' must be a schema, but is an array";
        }

        foreach (var child in new[] { s["items"], s["additionalProperties"], s["not"] }
            .Concat((s["properties"] as JsonObject)?.Select(p => p.Value) ?? [])
            .Concat(new[] { "allOf", "anyOf", "oneOf" }.SelectMany(k => (s[k] as JsonArray)?.AsEnumerable() ?? [])))
        {
            if (NewStructuralError(child) is { } e)
            {
                return e;
            }
        }

        return null;
    }

    /// <summary>Whether a JSONSchemaProps field holds its Go zero value (absent, false, "", 0-length only for nil).</summary>
    private static bool IsZero(JsonNode? value, bool present) =>
        !present || value is null || (value is JsonValue v && (v.GetValueKind() == JsonValueKind.False || (v.GetValueKind() == JsonValueKind.String && v.GetValue<string>().Length == 0)));

    private static bool Bool(JsonObject s, string key) => s[key]?.GetValueKind() == JsonValueKind.True;

    private static bool Has(JsonObject schema, Func<JsonObject, bool> predicate)
    {
        if (predicate(schema))
        {
            return true;
        }

        IEnumerable<JsonNode?> children = [schema["items"], schema["additionalProperties"], schema["not"],
            .. (schema["properties"] as JsonObject)?.Select(p => p.Value) ?? [],
            .. new[] { "allOf", "anyOf", "oneOf" }.SelectMany(k => (schema[k] as JsonArray)?.AsEnumerable() ?? [])];
        return children.OfType<JsonObject>().Any(c => Has(c, predicate));
    }

    internal static IReadOnlyList<string>? Strings(JsonNode? node) =>
        node is JsonArray a ? a.Select(x => Json.GetString(x) ?? "").ToList() : null;

    // ---- DNS names (k8s.io/apimachinery/pkg/util/validation) ---------------------------------------------------

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex Dns1123SubdomainRegex();

    [GeneratedRegex("^[a-z]([-a-z0-9]*[a-z0-9])?$")]
    private static partial Regex Dns1035Regex();

    internal static List<string> Dns1123Subdomain(string value)
    {
        var errors = new List<string>();
        if (value.Length > 253)
        {
            errors.Add("must be no more than 253 characters");
        }

        if (!Dns1123SubdomainRegex().IsMatch(value))
        {
            errors.Add("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");
        }

        return errors;
    }

    internal static List<string> Dns1035Label(string value)
    {
        var errors = new List<string>();
        if (value.Length > 63)
        {
            errors.Add("must be no more than 63 characters");
        }

        if (!Dns1035Regex().IsMatch(value))
        {
            errors.Add("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')");
        }

        return errors;
    }
}
