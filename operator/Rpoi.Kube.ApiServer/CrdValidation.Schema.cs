using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Rpoi.Kube.ApiServer;

internal static partial class CrdValidation
{
    private static readonly HashSet<string> MetaFields = ["metadata", "kind", "apiVersion"];

    /// <summary>
    /// The internal apiextensions object the real server validates (v1 conversion.go): the first version's name is
    /// spec.version, and a schema, subresources, printer columns or selectable fields equal in every version are
    /// moved to the top level.
    /// </summary>
    private sealed class Internal
    {
        public string Group { get; private init; } = "";

        public string Scope { get; private init; } = "";

        public bool PreserveUnknownFields { get; private init; }

        public NameSet Names { get; private init; } = new("", "", "", "", [], []);

        public List<Version> Versions { get; } = [];

        public JsonObject? Validation { get; private set; }

        public JsonObject? Subresources { get; private set; }

        public List<JsonObject> Columns { get; private set; } = [];

        public JsonObject? Conversion { get; private init; }

        /// <summary>Some version still has its own subresources (hasPerVersionSubresources).</summary>
        public bool VersionsHaveSubresources => Versions.Any(v => v.Subresources is not null);

        public static Internal From(JsonObject spec)
        {
            var names = spec["names"] as JsonObject;
            var kind = Json.GetString(names?["kind"]) ?? "";
            var singular = Json.GetString(names?["singular"]) ?? "";
            var listKind = Json.GetString(names?["listKind"]) ?? "";
            var result = new Internal
            {
                Group = Json.GetString(spec["group"]) ?? "",
                Scope = Json.GetString(spec["scope"]) ?? "",
                PreserveUnknownFields = spec["preserveUnknownFields"]?.GetValueKind() == JsonValueKind.True,

                // v1 defaulting (defaults.go) runs before validation: singular and listKind follow kind.
                Names = new NameSet(
                    Json.GetString(names?["plural"]) ?? "",
                    singular.Length > 0 ? singular : kind.ToLowerInvariant(),
                    kind,
                    listKind.Length > 0 || kind.Length == 0 ? listKind : kind + "List",
                    Strings(names?["shortNames"]) ?? [],
                    Strings(names?["categories"]) ?? []),
                Conversion = spec["conversion"] as JsonObject,
            };

            foreach (var v in (spec["versions"] as JsonArray)?.OfType<JsonObject>() ?? [])
            {
                result.Versions.Add(new Version(
                    Json.GetString(v["name"]) ?? "",
                    v["served"]?.GetValueKind() == JsonValueKind.True,
                    v["storage"]?.GetValueKind() == JsonValueKind.True,
                    v["deprecated"]?.GetValueKind() == JsonValueKind.True,
                    Json.GetString(v["deprecationWarning"]),
                    v["schema"] as JsonObject,
                    v["subresources"] as JsonObject,
                    (v["additionalPrinterColumns"] as JsonArray)?.OfType<JsonObject>().ToList() ?? [],
                    v["additionalPrinterColumns"] is JsonArray,
                    v["selectableFields"] is JsonArray));
            }

            if (result.Versions.Count == 0)
            {
                return result;
            }

            var first = result.Versions[0];
            if (result.Versions.All(v => JsonNode.DeepEquals(v.Schema, first.Schema)))
            {
                result.Validation = first.Schema;
                result.Versions.ForEach(v => v.Schema = null);
            }

            if (result.Versions.All(v => JsonNode.DeepEquals(v.Subresources, first.Subresources)))
            {
                result.Subresources = first.Subresources;
                result.Versions.ForEach(v => v.Subresources = null);
            }

            if (result.Versions.All(v => ColumnsEqual(v.Columns, first.Columns)))
            {
                result.Columns = first.Columns;
                result.Versions.ForEach(v => (v.Columns, v.HasColumns) = ([], false));
            }

            return result;

            static bool ColumnsEqual(List<JsonObject> a, List<JsonObject> b) =>
                a.Count == b.Count && a.Zip(b).All(p => JsonNode.DeepEquals(p.First, p.Second));
        }

        /// <summary>spec.versions as the v1.32 server prints it in an error (<c>%#v</c> of the internal versions).</summary>
        public string VersionsGo() =>
            "[]apiextensions.CustomResourceDefinitionVersion{" + string.Join(", ", Versions.Select(v =>
                "apiextensions.CustomResourceDefinitionVersion{" +
                $"Name:{GoValue.Quote(v.Name)}, Served:{GoValue.Bool(v.Served)}, Storage:{GoValue.Bool(v.Storage)}, " +
                $"Deprecated:{GoValue.Bool(v.Deprecated)}, DeprecationWarning:{GoValue.Pointer("string", v.DeprecationWarning is not null)}, " +
                $"Schema:{GoValue.Pointer("apiextensions.CustomResourceValidation", v.Schema is not null)}, " +
                $"Subresources:{GoValue.Pointer("apiextensions.CustomResourceSubresources", v.Subresources is not null)}, " +
                $"AdditionalPrinterColumns:{ColumnsGo(v)}, " +
                $"SelectableFields:[]apiextensions.SelectableField{(v.HasSelectableFields ? "{…}" : "(nil)")}}}")) + "}";

        private static string ColumnsGo(Version v) =>
            !v.HasColumns ? "[]apiextensions.CustomResourceColumnDefinition(nil)"
            : "[]apiextensions.CustomResourceColumnDefinition{" + string.Join(", ", v.Columns.Select(c =>
                "apiextensions.CustomResourceColumnDefinition{" +
                $"Name:{GoValue.Quote(Json.GetString(c["name"]) ?? "")}, Type:{GoValue.Quote(Json.GetString(c["type"]) ?? "")}, " +
                $"Format:{GoValue.Quote(Json.GetString(c["format"]) ?? "")}, Description:{GoValue.Quote(Json.GetString(c["description"]) ?? "")}, " +
                $"Priority:{Json.GetLong(c["priority"]) ?? 0}, JSONPath:{GoValue.Quote(Json.GetString(c["jsonPath"]) ?? "")}}}")) + "}";

        public sealed record NameSet(string Plural, string Singular, string Kind, string ListKind, IReadOnlyList<string> ShortNames, IReadOnlyList<string> Categories);

        public sealed class Version(string name, bool served, bool storage, bool deprecated, string? deprecationWarning,
            JsonObject? schema, JsonObject? subresources, List<JsonObject> columns, bool hasColumns, bool hasSelectableFields)
        {
            public string Name { get; } = name;

            public bool Served { get; } = served;

            public bool Storage { get; } = storage;

            public bool Deprecated { get; } = deprecated;

            public string? DeprecationWarning { get; } = deprecationWarning;

            public JsonObject? Schema { get; set; } = schema;

            public JsonObject? Subresources { get; set; } = subresources;

            public List<JsonObject> Columns { get; set; } = columns;

            public bool HasColumns { get; set; } = hasColumns;

            public bool HasSelectableFields { get; } = hasSelectableFields;
        }
    }

    private static string Key(string path, string key) => $"{path}[{key}]";

    private static JsonObject? Obj(JsonObject s, string key) => s[key] as JsonObject;

    private static string Type(JsonObject? s) => s is null ? "" : Json.GetString(s["type"]) ?? "";

    private static IEnumerable<(string Key, JsonObject Schema)> Properties(JsonObject s) =>
        (s["properties"] as JsonObject)?.Where(p => p.Value is JsonObject).OrderBy(p => p.Key, StringComparer.Ordinal)
            .Select(p => (p.Key, (JsonObject)p.Value!)) ?? [];

    private static bool Present(JsonObject s, string key) => s[key] is not null;

    /// <summary>pkg/apiserver/schema/validation.go (ValidateStructural) and complete.go.</summary>
    private static class Structural
    {
        private enum Level
        {
            Root,
            Item,
            Field,
        }

        public static List<FieldError> Validate(JsonObject schema, string path)
        {
            var errors = new List<FieldError>();
            Invariants(schema, Level.Root, path, errors);
            Completeness(schema, schema, path, path, errors);

            // The real server sorts these by their text so the answer does not depend on map order.
            errors.Sort((a, b) => string.CompareOrdinal(a.Error, b.Error));
            return errors;
        }

        private static void Invariants(JsonObject? s, Level level, string path, List<FieldError> errors)
        {
            if (s is null)
            {
                return;
            }

            var type = Type(s);
            var embedded = Bool(s, "x-kubernetes-embedded-resource");
            var preserve = Bool(s, "x-kubernetes-preserve-unknown-fields");
            var intOrString = Bool(s, "x-kubernetes-int-or-string");
            if (type == "array" && s["items"] is null)
            {
                errors.Add(FieldError.Required(path + ".items", "must be specified"));
            }

            Invariants(Obj(s, "items"), Level.Item, path + ".items", errors);
            foreach (var (key, child) in Properties(s))
            {
                Invariants(child, Level.Field, Key(path + ".properties", key), errors);
            }

            if (s["additionalProperties"] is { } additional)
            {
                if (level == Level.Root)
                {
                    errors.Add(FieldError.Forbidden(path + ".additionalProperties", "must not be used at the root"));
                }

                Invariants(additional as JsonObject, Level.Field, path + ".additionalProperties", errors);
            }

            if (intOrString && preserve)
            {
                errors.Add(FieldError.Invalid(path + ".x-kubernetes-preserve-unknown-fields", "true", "must be false if x-kubernetes-int-or-string is true"));
            }

            if (intOrString && embedded)
            {
                errors.Add(FieldError.Invalid(path + ".x-kubernetes-embedded-resource", "true", "must be false if x-kubernetes-int-or-string is true"));
            }

            ValueValidation(s, IsIntOrStringAnyOf(s["anyOf"]), IsIntOrStringAnyOf((s["allOf"] as JsonArray)?.FirstOrDefault()?["anyOf"]), path, errors);

            var checkMetadata = level == Level.Root || embedded;
            if (embedded && type != "object")
            {
                errors.Add(type.Length == 0
                    ? FieldError.Required(path + ".type", "must be object if x-kubernetes-embedded-resource is true")
                    : FieldError.Invalid(path + ".type", GoValue.Quote(type), "must be object if x-kubernetes-embedded-resource is true"));
            }
            else if (type.Length == 0 && !intOrString && !preserve)
            {
                errors.Add(FieldError.Required(path + ".type", level switch
                {
                    Level.Root => "must not be empty at the root",
                    Level.Item => "must not be empty for specified array items",
                    _ => "must not be empty for specified object fields",
                }));
            }

            if (embedded && s["additionalProperties"] is not null)
            {
                errors.Add(FieldError.Forbidden(path + ".additionalProperties", "must not be used if x-kubernetes-embedded-resource is set"));
            }

            if (level == Level.Root && type.Length > 0 && type != "object")
            {
                errors.Add(FieldError.Invalid(path + ".type", GoValue.Quote(type), "must be object at the root"));
            }

            foreach (var meta in new[] { "kind", "apiVersion" })
            {
                if (checkMetadata && Obj(s, "properties")?[meta] is JsonObject field && Type(field) != "string")
                {
                    errors.Add(FieldError.Invalid(Key(path + ".properties", meta) + ".type", GoValue.Quote(Type(field)), "must be string"));
                }
            }

            if (Obj(s, "properties")?["metadata"] is JsonObject metadata)
            {
                Metadata(metadata, checkMetadata, level, Key(path + ".properties", "metadata"), errors);
            }

            if (embedded && !preserve && Obj(s, "properties") is not { Count: > 0 })
            {
                errors.Add(FieldError.Required(path + ".properties", "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"));
            }
        }

        private static void Metadata(JsonObject s, bool checkMetadata, Level level, string path, List<FieldError> errors)
        {
            if (checkMetadata && Type(s) != "object")
            {
                errors.Add(FieldError.Invalid(path + ".type", GoValue.Quote(Type(s)), "must be object"));
            }

            if (level != Level.Root)
            {
                return;
            }

            // Only type (object) and restrictions of name and generateName may be said of the root metadata; its
            // default is refused separately, by the OpenAPI checks.
            var specified = s.Where(p => StructuralKeys.Contains(p.Key) && p.Key is not ("type" or "default") && !IsZero(p.Value, true)).ToList();
            specified.RemoveAll(p => p.Key == "properties" && p.Value is JsonObject props &&
                (props.Count == 0 || props.All(q => q.Key is "name" or "generateName")));
            if (specified.Count > 0)
            {
                errors.Add(FieldError.Forbidden(path, "must not specify anything other than name and generateName, but metadata is implicitly specified"));
            }
        }

        private static bool IsIntOrStringAnyOf(JsonNode? anyOf) =>
            anyOf is JsonArray { Count: 2 } a &&
            a[0] is JsonObject { Count: 1 } i && Json.GetString(i["type"]) == "integer" &&
            a[1] is JsonObject { Count: 1 } t && Json.GetString(t["type"]) == "string";

        private static void ValueValidation(JsonObject v, bool skipAnyOf, bool skipFirstAllOfAnyOf, string path, List<FieldError> errors)
        {
            if (!skipAnyOf)
            {
                Each(v["anyOf"], path + ".anyOf", (n, p, _) => Nested(n, false, false, p, errors));
            }

            Each(v["allOf"], path + ".allOf", (n, p, i) => Nested(n, skipFirstAllOfAnyOf && i == 0, false, p, errors));
            Each(v["oneOf"], path + ".oneOf", (n, p, _) => Nested(n, false, false, p, errors));
            if (v["not"] is JsonObject not)
            {
                Nested(not, false, false, path + ".not", errors);
            }

            if (Json.GetString(v["pattern"]) is { Length: > 0 } pattern && PatternError(pattern) is { } problem)
            {
                errors.Add(FieldError.Invalid(path + ".pattern", GoValue.Quote(pattern), "must be a valid regular expression, but isn't: " + problem));
            }
        }

        private static void Each(JsonNode? list, string path, Action<JsonObject, string, int> visit)
        {
            if (list is JsonArray a)
            {
                for (var i = 0; i < a.Count; i++)
                {
                    if (a[i] is JsonObject o)
                    {
                        visit(o, $"{path}[{i}]", i);
                    }
                }
            }
        }

        // A node under allOf/anyOf/oneOf/not may only validate values: no types, defaults, descriptions or extensions.
        private static void Nested(JsonObject v, bool skipAnyOf, bool skipAllOfAnyOf, string path, List<FieldError> errors)
        {
            ValueValidation(v, skipAnyOf, skipAllOfAnyOf, path, errors);
            if (v["items"] is JsonObject items)
            {
                Nested(items, false, false, path + ".items", errors);
            }

            foreach (var (key, child) in Properties(v))
            {
                Nested(child, false, false, Key(path + ".properties", key), errors);
            }

            if (Type(v).Length > 0)
            {
                errors.Add(FieldError.Forbidden(path + ".type", "must be empty to be structural"));
            }

            if (v["additionalProperties"] is not null)
            {
                errors.Add(FieldError.Forbidden(path + ".additionalProperties", "must be undefined to be structural"));
            }

            if (v["default"] is not null)
            {
                errors.Add(FieldError.Forbidden(path + ".default", "must be undefined to be structural"));
            }

            foreach (var key in new[] { "title", "description" })
            {
                if (Json.GetString(v[key]) is { Length: > 0 })
                {
                    errors.Add(FieldError.Forbidden($"{path}.{key}", "must be empty to be structural"));
                }
            }

            foreach (var key in new[] { "nullable", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string" })
            {
                if (Bool(v, key))
                {
                    errors.Add(FieldError.Forbidden($"{path}.{key}", "must be false to be structural"));
                }
            }

            if (v["x-kubernetes-list-map-keys"] is JsonArray { Count: > 0 })
            {
                errors.Add(FieldError.Forbidden(path + ".x-kubernetes-list-map-keys", "must be empty to be structural"));
            }

            foreach (var key in new[] { "x-kubernetes-list-type", "x-kubernetes-map-type" })
            {
                if (v[key] is not null)
                {
                    errors.Add(FieldError.Forbidden($"{path}.{key}", "must be undefined to be structural"));
                }
            }

            if (v["x-kubernetes-validations"] is JsonArray { Count: > 0 })
            {
                errors.Add(FieldError.Forbidden(path + ".x-kubernetes-validations", "must be empty to be structural"));
            }

            if (Obj(v, "properties")?.ContainsKey("metadata") == true)
            {
                errors.Add(FieldError.Forbidden(Key(path + ".properties", "metadata"), "must not be specified in a nested context"));
            }
        }

        // complete.go: whatever allOf/anyOf/oneOf/not say of a property or of items must exist in the structural part.
        private static void Completeness(JsonObject v, JsonObject? s, string sPath, string vPath, List<FieldError> errors)
        {
            if (s is null)
            {
                errors.Add(FieldError.Required(sPath, "because it is defined in " + vPath));
                return;
            }

            if (v["not"] is JsonObject not)
            {
                NestedCompleteness(not, s, sPath, vPath + ".not", errors);
            }

            foreach (var junctor in new[] { "allOf", "anyOf", "oneOf" })
            {
                Each(v[junctor], $"{vPath}.{junctor}", (n, p, _) => NestedCompleteness(n, s, sPath, p, errors));
            }
        }

        private static void NestedCompleteness(JsonObject v, JsonObject s, string sPath, string vPath, List<FieldError> errors)
        {
            Completeness(v, s, sPath, vPath, errors);
            if (v["items"] is JsonObject items)
            {
                if (Obj(s, "items") is { } sItems)
                {
                    NestedCompleteness(items, sItems, sPath + ".items", vPath + ".items", errors);
                }
                else
                {
                    errors.Add(FieldError.Required(sPath + ".items", "because it is defined in " + vPath + ".items"));
                }
            }

            foreach (var (key, child) in Properties(v))
            {
                if (Obj(s, "properties")?[key] is JsonObject sChild)
                {
                    NestedCompleteness(child, sChild, Key(sPath + ".properties", key), Key(vPath + ".properties", key), errors);
                }
                else
                {
                    errors.Add(FieldError.Required(Key(sPath + ".properties", key), "because it is defined in " + Key(vPath + ".properties", key)));
                }
            }
        }
    }

    /// <summary>
    /// A pattern the real server (Go's RE2) cannot compile. .NET is the judge here, with the constructs RE2 lacks
    /// (lookaround, backreferences, possessive and atomic groups) refused explicitly; the wording after
    /// "isn't:" is ours, not Go's.
    /// </summary>
    private static string? PatternError(string pattern)
    {
        if (Re2Unsupported().Match(pattern) is { Success: true } m)
        {
            return $"error parsing regexp: invalid or unsupported Perl syntax: `{m.Value}`";
        }

        try
        {
            _ = new Regex(pattern.Replace("(?P<", "(?<", StringComparison.Ordinal), RegexOptions.None, TimeSpan.FromSeconds(1));
            return null;
        }
        catch (ArgumentException e)
        {
            return "error parsing regexp: " + e.Message;
        }
    }

    [GeneratedRegex(@"\(\?(?:[=!>]|<[=!])|\\[1-9]|\\k<|[*+?}]\+")]
    private static partial Regex Re2Unsupported();

    /// <summary>pkg/apiserver/schema/defaulting/validation.go: every default is pruned and valid for its schema.</summary>
    private static class Defaults
    {
        public static List<FieldError> Validate(JsonObject schema, string path)
        {
            var errors = new List<FieldError>();

            // The root is validated as an embedded resource: apiVersion, kind and metadata are the resource's meta.
            Visit(schema, path, insideMeta: false, resourceRoot: true, errors);
            return errors;
        }

        private static void Visit(JsonObject s, string path, bool insideMeta, bool resourceRoot, List<FieldError> errors)
        {
            var embedded = resourceRoot || Bool(s, "x-kubernetes-embedded-resource");
            if (embedded)
            {
                insideMeta = false;
            }

            // Defaults inside meta are checked as metadata on the real server; the root's are refused by the
            // OpenAPI checks ("must not be set in top-level metadata"), an embedded resource's are not checked here.
            if (s["default"] is { } value && !insideMeta)
            {
                if (!Pruned(value, s, embedded))
                {
                    errors.Add(FieldError.Invalid(path + ".default", GoValue.Json(value), "must not have unknown fields"));
                }

                errors.AddRange(Check(value, s, path + ".default"));
            }

            // additionalProperties is not followed: a default there is refused by the OpenAPI checks.
            if (Obj(s, "items") is { } items)
            {
                Visit(items, path + ".items", insideMeta, false, errors);
            }

            foreach (var (key, child) in Properties(s))
            {
                Visit(child, Key(path + ".properties", key), insideMeta || (embedded && MetaFields.Contains(key)), false, errors);
            }
        }

        // pruning.Prune would change the value: it holds a field its schema does not declare or preserve.
        private static bool Pruned(JsonNode? value, JsonObject s, bool resourceRoot)
        {
            switch (value)
            {
                case JsonObject o:
                    var props = Obj(s, "properties");
                    foreach (var (key, child) in o)
                    {
                        if (resourceRoot && MetaFields.Contains(key))
                        {
                            continue;
                        }

                        if (props?[key] is JsonObject childSchema)
                        {
                            if (!Pruned(child, childSchema, Bool(childSchema, "x-kubernetes-embedded-resource")))
                            {
                                return false;
                            }
                        }
                        else if (s["additionalProperties"] is JsonObject additional)
                        {
                            if (!Pruned(child, additional, Bool(additional, "x-kubernetes-embedded-resource")))
                            {
                                return false;
                            }
                        }
                        else if (!Bool(s, "x-kubernetes-preserve-unknown-fields") && s["additionalProperties"]?.GetValueKind() != JsonValueKind.True)
                        {
                            return false;
                        }
                    }

                    return true;
                case JsonArray a when Obj(s, "items") is { } items:
                    return a.All(item => Pruned(item, items, Bool(items, "x-kubernetes-embedded-resource")));
                default:
                    return true;
            }
        }

        // The default is validated as a value of its own schema by the test server's schema validator, its field
        // paths moved under the schema's ".default".
        private static IEnumerable<FieldError> Check(JsonNode value, JsonObject s, string defaultPath)
        {
            var holder = new JsonObject { ["default"] = value.DeepClone() };
            var schema = new JsonObject { ["type"] = "object", ["properties"] = new JsonObject { ["default"] = s.DeepClone() } };
            var (causes, _) = SchemaValidator.Validate(holder, schema, null);
            foreach (var cause in causes)
            {
                var field = cause.Field.StartsWith("default", StringComparison.Ordinal) ? cause.Field : "default";
                var full = defaultPath[..^"default".Length] + field;
                var body = cause.Message.StartsWith(cause.Field + ": ", StringComparison.Ordinal) ? cause.Message[(cause.Field.Length + 2)..] : cause.Message;
                yield return new FieldError(cause.Reason, full, body.Replace(cause.Field + " in body", full + " in body", StringComparison.Ordinal));
            }
        }
    }

    /// <summary>ValidateCustomResourceDefinitionOpenAPISchema and specStandardValidatorV3 in validation.go.</summary>
    private static partial class OpenApi
    {
        private sealed record Context(bool AllowDefaults, string DisallowReason, bool InsideMeta, string? Uncorrelatable)
        {
            public Context ForbidDefaults(string reason) => this with { AllowDefaults = false, DisallowReason = reason };

            public Context ForbidOldSelf(string path) => Uncorrelatable is null ? this with { Uncorrelatable = path } : this;
        }

        public static (List<FieldError> Schema, List<FieldError> Cel) Validate(JsonObject schema, string path, bool compileCel)
        {
            var schemaErrors = new List<FieldError>();
            var celErrors = new List<FieldError>();
            Visit(schema, path, new Context(true, "", false, null), true, compileCel, schemaErrors, celErrors);
            return (schemaErrors, celErrors);
        }

        private static void Visit(JsonObject? s, string path, Context ctx, bool isRoot, bool cel, List<FieldError> errors, List<FieldError> celErrors)
        {
            if (s is null)
            {
                return;
            }

            // Each node collects its own subtree's errors: CEL is compiled only where that subtree is clean.
            var (parentErrors, parentCel) = (errors, celErrors);
            errors = [];
            celErrors = [];
            Standard(s, path, ctx, errors);
            if (Bool(s, "uniqueItems"))
            {
                errors.Add(FieldError.Forbidden(path + ".uniqueItems", "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"));
            }

            var type = Type(s);
            var additional = s["additionalProperties"];
            if (additional is not null)
            {
                if (Obj(s, "properties") is { Count: > 0 } && (additional is JsonObject || additional.GetValueKind() == JsonValueKind.False))
                {
                    errors.Add(FieldError.Forbidden(path + ".additionalProperties", "additionalProperties and properties are mutual exclusive"));
                }

                Visit(additional as JsonObject, path + ".additionalProperties",
                    ctx.InsideMeta ? ctx.ForbidDefaults("inside additionalProperties applying to object metadata") : ctx, false, cel, errors, celErrors);
            }

            var mapType = Json.GetString(s["x-kubernetes-map-type"]);
            foreach (var (key, child) in Properties(s))
            {
                var sub = mapType is null or "granular" or "atomic" ? ctx : ctx.ForbidOldSelf(path);
                if ((isRoot || Bool(s, "x-kubernetes-embedded-resource")) && MetaFields.Contains(key))
                {
                    sub = sub with { InsideMeta = true };
                    if (isRoot)
                    {
                        sub = sub.ForbidDefaults("in top-level " + key);
                    }
                }

                Visit(child, Key(path + ".properties", key), sub, false, cel, errors, celErrors);
            }

            Visit(Obj(s, "not"), path + ".not", ctx, false, false, errors, celErrors);
            foreach (var junctor in new[] { "allOf", "oneOf", "anyOf" })
            {
                if (s[junctor] is JsonArray list)
                {
                    for (var i = 0; i < list.Count; i++)
                    {
                        Visit(list[i] as JsonObject, $"{path}.{junctor}[{i}]", ctx, false, false, errors, celErrors);
                    }
                }
            }

            var listType = Json.GetString(s["x-kubernetes-list-type"]);
            if (s["items"] is JsonObject items)
            {
                Visit(items, path + ".items", listType == "map" ? ctx : ctx.ForbidOldSelf(path), false, cel, errors, celErrors);
            }

            if (s["x-kubernetes-preserve-unknown-fields"]?.GetValueKind() == JsonValueKind.False)
            {
                errors.Add(FieldError.Invalid(path + ".x-kubernetes-preserve-unknown-fields", "false", "must be true or undefined"));
            }

            if (mapType is not null)
            {
                if (type != "object")
                {
                    errors.Add(type.Length == 0
                        ? FieldError.Required(path + ".type", "must be object if x-kubernetes-map-type is specified")
                        : FieldError.Invalid(path + ".type", GoValue.Quote(type), "must be object if x-kubernetes-map-type is specified"));
                }

                if (mapType is not ("atomic" or "granular"))
                {
                    errors.Add(FieldError.NotSupported(path + ".x-kubernetes-map-type", mapType, ["atomic", "granular"]));
                }
            }

            ListType(s, path, type, listType, errors);
            Rules(s, path, ctx, cel, errors, celErrors);
            parentErrors.AddRange(errors);
            parentCel.AddRange(celErrors);
        }

        private static void Standard(JsonObject s, string path, Context ctx, List<FieldError> errors)
        {
            var type = Type(s);
            if (type.Length > 0 && !OpenApiTypes.Contains(type))
            {
                errors.Add(FieldError.NotSupported(path + ".type", type, OpenApiTypes));
            }

            if (s.ContainsKey("default") && !ctx.AllowDefaults)
            {
                errors.Add(FieldError.Forbidden(path + ".default", ctx.DisallowReason.Length > 0 ? "must not be set " + ctx.DisallowReason : "must not be set"));
            }

            if (Json.GetString(s["id"]) is { Length: > 0 })
            {
                errors.Add(FieldError.Forbidden(path + ".id", "id is not supported"));
            }

            foreach (var (key, message) in new[]
            {
                ("additionalItems", "additionalItems is not supported"), ("patternProperties", "patternProperties is not supported"),
                ("definitions", "definitions is not supported"), ("dependencies", "dependencies is not supported"), ("$ref", "$ref is not supported"),
            })
            {
                if (s[key] is not null and not JsonObject { Count: 0 })
                {
                    errors.Add(FieldError.Forbidden($"{path}.{key}", message));
                }
            }

            if (type == "null")
            {
                errors.Add(FieldError.Forbidden(path + ".type", "type cannot be set to null, use nullable as an alternative"));
            }

            if (s["items"] is JsonArray { Count: > 0 })
            {
                errors.Add(FieldError.Forbidden(path + ".items", "items must be a schema object and not an array"));
            }

            if (ctx.InsideMeta && Bool(s, "x-kubernetes-embedded-resource"))
            {
                errors.Add(FieldError.Forbidden(path + ".x-kubernetes-embedded-resource", "must not be used inside of resource meta"));
            }
        }

        private static void ListType(JsonObject s, string path, string type, string? listType, List<FieldError> errors)
        {
            var items = Obj(s, "items");
            if (listType is not null && type != "array")
            {
                errors.Add(type.Length == 0
                    ? FieldError.Required(path + ".type", "must be array if x-kubernetes-list-type is specified")
                    : FieldError.Invalid(path + ".type", GoValue.Quote(type), "must be array if x-kubernetes-list-type is specified"));
            }
            else if (listType == "set" && items is not null)
            {
                var itemListType = Json.GetString(items["x-kubernetes-list-type"]);
                var itemMapType = Json.GetString(items["x-kubernetes-map-type"]);
                if (Type(items) == "array" && itemListType is not null and not "atomic")
                {
                    errors.Add(FieldError.Invalid(path + ".items.x-kubernetes-list-type", GoValue.Quote(itemListType), "must be atomic as item of a list with x-kubernetes-list-type=set"));
                }
                else if (Type(items) == "object" && itemMapType != "atomic")
                {
                    // The real server prints the item's list type here (a nil *string when unset).
                    errors.Add(FieldError.Invalid(path + ".items.x-kubernetes-map-type", itemListType is null ? "\"null\"" : GoValue.Quote(itemListType),
                        "must be atomic as item of a list with x-kubernetes-list-type=set"));
                }
            }

            if (listType is not null and not ("atomic" or "set" or "map"))
            {
                errors.Add(FieldError.NotSupported(path + ".x-kubernetes-list-type", listType, ["atomic", "set", "map"]));
            }

            var keys = CrdValidation.Strings(s["x-kubernetes-list-map-keys"]);
            if (keys is { Count: > 0 })
            {
                if (listType is null)
                {
                    errors.Add(FieldError.Required(path + ".x-kubernetes-list-type", "must be map if x-kubernetes-list-map-keys is non-empty"));
                }
                else if (listType != "map")
                {
                    errors.Add(FieldError.Invalid(path + ".x-kubernetes-list-type", GoValue.Quote(listType), "must be map if x-kubernetes-list-map-keys is non-empty"));
                }
            }

            if (listType == "map")
            {
                if (keys is not { Count: > 0 })
                {
                    errors.Add(FieldError.Required(path + ".x-kubernetes-list-map-keys", "must not be empty if x-kubernetes-list-type is map"));
                }

                if (s["items"] is null)
                {
                    errors.Add(FieldError.Required(path + ".items", "must have a schema if x-kubernetes-list-type is map"));
                }

                if (items is not null && Type(items) != "object")
                {
                    errors.Add(FieldError.Invalid(path + ".items.type", GoValue.Quote(Type(items)), "must be object if parent array's x-kubernetes-list-type is map"));
                }

                if (items is not null && Type(items) == "object")
                {
                    var seen = new HashSet<string>(StringComparer.Ordinal);
                    foreach (var key in keys ?? [])
                    {
                        if (Obj(items, "properties")?[key] is JsonObject keySchema)
                        {
                            if (Type(keySchema) is "array" or "object")
                            {
                                // The real server prints the item's type, not the key's.
                                errors.Add(FieldError.Invalid(Key(path + ".items.properties", key) + ".type", GoValue.Quote(Type(items)),
                                    "must be a scalar type if parent array's x-kubernetes-list-type is map"));
                            }
                        }
                        else
                        {
                            errors.Add(FieldError.Invalid(path + ".x-kubernetes-list-map-keys", GoValue.Strings(keys), "entries must all be names of item properties"));
                        }

                        if (!seen.Add(key))
                        {
                            errors.Add(FieldError.Invalid(path + ".x-kubernetes-list-map-keys", GoValue.Strings(keys), "must not contain duplicate entries"));
                        }
                    }
                }
            }

            // validateMapListKeysMapSet: set and map items are not nullable; map keys are required or defaulted.
            if (items is null || listType is not ("set" or "map"))
            {
                return;
            }

            if (Bool(items, "nullable"))
            {
                errors.Add(FieldError.Forbidden(path + ".items.nullable", "cannot be nullable when x-kubernetes-list-type is " + listType));
            }

            if (listType == "map")
            {
                var required = CrdValidation.Strings(items["required"]) ?? [];
                foreach (var key in keys ?? [])
                {
                    if (Obj(items, "properties")?[key] is not JsonObject keySchema)
                    {
                        continue;
                    }

                    if (!required.Contains(key) && keySchema["default"] is null)
                    {
                        errors.Add(FieldError.Required(Key(path + ".items.properties", key) + ".default",
                            "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"));
                    }

                    if (Bool(keySchema, "nullable"))
                    {
                        errors.Add(FieldError.Forbidden(Key(path + ".items.properties", key) + ".nullable",
                            "this property is in x-kubernetes-list-map-keys, so it cannot be nullable"));
                    }
                }
            }
        }

        private static void Rules(JsonObject s, string path, Context ctx, bool cel, List<FieldError> errors, List<FieldError> celErrors)
        {
            if (s["x-kubernetes-validations"] is not JsonArray rules || rules.Count == 0)
            {
                return;
            }

            for (var i = 0; i < rules.Count; i++)
            {
                var rulePath = $"{path}.x-kubernetes-validations[{i}]";
                var rule = rules[i] as JsonObject ?? [];
                var text = Json.GetString(rule["rule"]) ?? "";
                var message = Json.GetString(rule["message"]) ?? "";
                var messageExpression = Json.GetString(rule["messageExpression"]) ?? "";
                var fieldPath = Json.GetString(rule["fieldPath"]) ?? "";
                if (text.Trim().Length == 0)
                {
                    errors.Add(FieldError.Required(rulePath + ".rule", "rule is not specified"));
                }
                else if (message.Length > 0 && message.Trim().Length == 0)
                {
                    errors.Add(FieldError.Invalid(rulePath + ".message", GoValue.Quote(message), "message must be non-empty if specified"));
                }
                else if (HasNewlines(message.Trim()))
                {
                    errors.Add(FieldError.Invalid(rulePath + ".message", GoValue.Quote(message), "message must not contain line breaks"));
                }
                else if (HasNewlines(text.Trim()) && message.Trim().Length == 0)
                {
                    errors.Add(FieldError.Required(rulePath + ".message", "message must be specified if rule contains line breaks"));
                }

                if (messageExpression.Length > 0 && messageExpression.Trim().Length == 0)
                {
                    errors.Add(FieldError.Required(rulePath + ".messageExpression", "messageExpression must be non-empty if specified"));
                }

                if (Json.GetString(rule["reason"]) is { } reason && !ValidationReasons.Contains(reason))
                {
                    errors.Add(FieldError.NotSupported(rulePath + ".reason", reason, ValidationReasons));
                }

                if (fieldPath.Length > 0 && fieldPath.Trim().Length == 0)
                {
                    errors.Add(FieldError.Invalid(rulePath + ".fieldPath", GoValue.Quote(fieldPath), "fieldPath must be non-empty if specified"));
                }

                if (HasNewlines(fieldPath))
                {
                    errors.Add(FieldError.Invalid(rulePath + ".fieldPath", GoValue.Quote(fieldPath), "fieldPath must not contain line breaks"));
                }

                if (fieldPath.Trim().Length > 0 && Resolve(s, fieldPath.Trim()) is null)
                {
                    errors.Add(FieldError.Invalid(rulePath + ".fieldPath", GoValue.Quote(fieldPath), "fieldPath must be a valid path"));
                }
            }

            // CEL is compiled only where the schema below is clean, as on the real server.
            if (errors.Count > 0 || !cel)
            {
                return;
            }

            for (var i = 0; i < rules.Count; i++)
            {
                var rulePath = $"{path}.x-kubernetes-validations[{i}]";
                var rule = rules[i] as JsonObject ?? [];
                var text = Json.GetString(rule["rule"]) ?? "";
                if (Cel.CompileErrors(text, s) is { Length: > 0 } compile)
                {
                    celErrors.Add(FieldError.Invalid(rulePath + ".rule", RuleGo(rule), "compilation failed: " + compile));
                }

                if (OldSelf().IsMatch(text))
                {
                    if (ctx.Uncorrelatable is { } within)
                    {
                        celErrors.Add(FieldError.Invalid(rulePath + ".rule", GoValue.Quote(text), "oldSelf cannot be used on the uncorrelatable portion of the schema within " + within));
                    }
                }
                else if (rule["optionalOldSelf"] is JsonValue optional)
                {
                    celErrors.Add(FieldError.Invalid(rulePath + ".optionalOldSelf", GoValue.Value(optional), "may not be set if oldSelf is not used in rule"));
                }
            }
        }

        private static bool HasNewlines(string s) => s.Contains('\n', StringComparison.Ordinal) || s.Contains('\r', StringComparison.Ordinal);

        private static string RuleGo(JsonObject rule) =>
            "apiextensions.ValidationRule{" +
            $"Rule:{GoValue.Quote(Json.GetString(rule["rule"]) ?? "")}, Message:{GoValue.Quote(Json.GetString(rule["message"]) ?? "")}, " +
            $"MessageExpression:{GoValue.Quote(Json.GetString(rule["messageExpression"]) ?? "")}, " +
            $"Reason:{GoValue.Pointer("apiextensions.FieldValueErrorReason", rule["reason"] is not null)}, " +
            $"FieldPath:{GoValue.Quote(Json.GetString(rule["fieldPath"]) ?? "")}, OptionalOldSelf:{GoValue.Pointer("bool", rule["optionalOldSelf"] is not null)}}}";

        // A rule's fieldPath: a dot path through declared properties, ['key'] through map values.
        private static JsonObject? Resolve(JsonObject s, string fieldPath)
        {
            var node = s;
            foreach (Match m in PathSegment().Matches(fieldPath))
            {
                var name = m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value;
                // As cel.ValidFieldPath: .name is a declared property, ['key'] a map value; no list indexes.
                node = m.Groups[1].Success ? Obj(node, "properties")?[name] as JsonObject : Obj(node, "additionalProperties");
                if (node is null)
                {
                    return null;
                }
            }

            return PathSegment().Replace(fieldPath, "").Length == 0 ? node : null;
        }

        [GeneratedRegex(@"\.([A-Za-z_][A-Za-z0-9_]*)|\['([^']*)'\]")]
        private static partial Regex PathSegment();

        [GeneratedRegex(@"\boldSelf\b")]
        private static partial Regex OldSelf();
    }

    /// <summary>
    /// What the test server can say of a rule's compilation: in a rule its CEL subset parses, every
    /// <c>self.a.b</c> (and <c>oldSelf.a.b</c>) must name declared fields, as cel-go's type check requires.
    /// Rules outside the subset are not compiled (see <see cref="UncompiledRules"/>).
    /// </summary>
    private static partial class Cel
    {
        public static string CompileErrors(string rule, JsonObject schema)
        {
            if (CelSubset.Unsupported(rule))
            {
                return "";
            }

            var problems = new List<string>();
            foreach (Match m in Reference().Matches(rule))
            {
                if (InsideString(rule, m.Index))
                {
                    continue;
                }

                var node = schema;
                var at = m.Index + m.Groups[1].Length;
                foreach (var name in m.Groups[2].Value.Split('.', StringSplitOptions.RemoveEmptyEntries))
                {
                    // A resource's metadata is ObjectMeta to CEL (name, generateName), whatever its schema says.
                    if (name == "metadata")
                    {
                        break;
                    }

                    var declared = Obj(node, "properties");
                    if (declared?[name] is JsonObject child)
                    {
                        node = child;
                    }
                    else if (Obj(node, "additionalProperties") is { } values)
                    {
                        node = values;
                    }
                    else
                    {
                        // Only a node with declared fields and nothing dynamic can name an undefined one.
                        if (Type(node) == "object" && !Bool(node, "x-kubernetes-preserve-unknown-fields") && node["additionalProperties"] is null)
                        {
                            problems.Add(Error(rule, at, $"undefined field '{name}'"));
                        }

                        break;
                    }

                    at += name.Length + 1;
                }
            }

            return string.Join("\n", problems);
        }

        // cel-go's error: "ERROR: <input>:line:column: message", the source line, and a caret under the column.
        private static string Error(string rule, int offset, string message)
        {
            var lineStart = rule.LastIndexOf('\n', Math.Max(0, offset - 1)) + 1;
            var line = rule[..lineStart].Count(c => c == '\n') + 1;
            var lineEnd = rule.IndexOf('\n', offset);
            var source = rule[lineStart..(lineEnd < 0 ? rule.Length : lineEnd)];
            var column = offset - lineStart;
            return $"ERROR: <input>:{line}:{column + 1}: {message}\n | {source}\n | {new string('.', column)}^";
        }

        private static bool InsideString(string rule, int index) => rule[..index].Count(c => c is '\'' or '"') % 2 == 1;

        [GeneratedRegex(@"\b(self|oldSelf)((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")]
        private static partial Regex Reference();
    }
}
