using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Rpoi.Kube.ApiServer;

/// <summary>
/// Structural-schema validation of custom resources against a CRD's openAPIV3Schema: type, required,
/// minimum/maximum (and exclusive), minLength/maxLength, pattern, enum, minItems/maxItems, nullable,
/// x-kubernetes-int-or-string, x-kubernetes-preserve-unknown-fields, and pruning of unknown fields
/// (or, with <c>fieldValidation=Strict</c>, rejecting them). CEL rules are a small subset, see <see cref="CelSubset"/>.
/// </summary>
internal static class SchemaValidator
{
    /// <summary>Validates (and prunes) <paramref name="obj"/>; returns field causes and the unknown field paths found.</summary>
    public static (List<StatusCause> Causes, List<string> Unknown) Validate(JsonObject obj, JsonObject schema, JsonObject? old)
    {
        var causes = new List<StatusCause>();
        var unknown = new List<string>();
        var props = schema["properties"] as JsonObject;
        foreach (var (key, value) in obj.ToList())
        {
            if (key is "apiVersion" or "kind" or "metadata")
            {
                continue;
            }

            if (props?[key] is JsonObject propSchema)
            {
                Check(value, propSchema, key, old?[key], causes, unknown);
            }
            else if (schema["x-kubernetes-preserve-unknown-fields"]?.GetValue<bool>() != true)
            {
                unknown.Add(key);
                obj.Remove(key);
            }
        }

        CheckRequired(obj, schema, "", causes, skipMeta: true);
        CelSubset.Check(obj, old, schema, "", causes);
        return (causes, unknown);
    }

    private static void CheckRequired(JsonObject obj, JsonObject schema, string path, List<StatusCause> causes, bool skipMeta = false)
    {
        if (schema["required"] is not JsonArray required)
        {
            return;
        }

        foreach (var name in required.Select(Json.GetString).OfType<string>())
        {
            if (skipMeta && name is "apiVersion" or "kind" or "metadata")
            {
                continue;
            }

            if (obj[name] is null)
            {
                var field = Join(path, name);
                causes.Add(new StatusCause("FieldValueRequired", field, $"{field}: Required value"));
            }
        }
    }

    private static string Join(string path, string key) => path.Length == 0 ? key : path + "." + key;

    /// <summary>Checks one value, pruning unknown fields inside it in place.</summary>
    private static void Check(JsonNode? value, JsonObject schema, string path, JsonNode? old, List<StatusCause> causes, List<string> unknown)
    {
        if (value is null)
        {
            if (schema["nullable"]?.GetValue<bool>() != true)
            {
                causes.Add(new StatusCause("FieldValueTypeInvalid", path, $"{path}: Invalid value: \"null\": {path} in body must be of type {TypeName(schema)}: \"null\""));
            }

            return;
        }

        var type = Json.GetString(schema["type"]);
        var intOrString = schema["x-kubernetes-int-or-string"]?.GetValue<bool>() == true;
        var kind = value.GetValueKind();
        if (intOrString)
        {
            if (kind is not (JsonValueKind.String or JsonValueKind.Number) || (kind == JsonValueKind.Number && !IsInteger(value)))
            {
                causes.Add(TypeCause(path, value, "integer or string"));
                return;
            }
        }
        else if (type is not null)
        {
            var ok = type switch
            {
                "object" => kind == JsonValueKind.Object,
                "array" => kind == JsonValueKind.Array,
                "string" => kind == JsonValueKind.String,
                "boolean" => kind is JsonValueKind.True or JsonValueKind.False,
                "integer" => kind == JsonValueKind.Number && IsInteger(value),
                "number" => kind == JsonValueKind.Number,
                _ => true,
            };
            if (!ok)
            {
                causes.Add(TypeCause(path, value, type));
                return;
            }
        }

        if (schema["enum"] is JsonArray allowed && !allowed.Any(a => JsonNode.DeepEquals(a, value)))
        {
            var list = string.Join(", ", allowed.Select(a => a?.ToJsonString()));
            causes.Add(new StatusCause("FieldValueNotSupported", path, $"{path}: Unsupported value: {value.ToJsonString()}: supported values: {list}"));
        }

        switch (value)
        {
            case JsonObject o:
                CheckObject(o, schema, path, old as JsonObject, causes, unknown);
                break;
            case JsonArray a:
                CheckArray(a, schema, path, causes, unknown);
                break;
            case JsonValue v when kind == JsonValueKind.Number:
                CheckNumber(v, schema, path, causes);
                break;
            case JsonValue v when kind == JsonValueKind.String:
                CheckString(v.GetValue<string>(), schema, path, causes);
                break;
        }

        CelSubset.Check(value, old, schema, path, causes);

        return;
    }

    private static void CheckObject(JsonObject o, JsonObject schema, string path, JsonObject? old, List<StatusCause> causes, List<string> unknown)
    {
        var props = schema["properties"] as JsonObject;
        var additional = schema["additionalProperties"] as JsonObject;
        var preserve = schema["x-kubernetes-preserve-unknown-fields"]?.GetValue<bool>() == true;
        if (props is null && additional is null && (preserve || Json.GetString(schema["type"]) is null))
        {
            return;
        }

        foreach (var (key, child) in o.ToList())
        {
            var childPath = Join(path, key);
            if (props?[key] is JsonObject childSchema)
            {
                Check(child, childSchema, childPath, old?[key], causes, unknown);
            }
            else if (additional is not null)
            {
                Check(child, additional, childPath, old?[key], causes, unknown);
            }
            else if (!preserve)
            {
                unknown.Add(childPath);
                o.Remove(key);
            }
        }

        CheckRequired(o, schema, path, causes);
        if (schema["maxProperties"] is JsonValue maxP && o.Count > maxP.GetValue<int>())
        {
            causes.Add(new StatusCause("FieldValueTooMany", path, $"{path}: Too many: {o.Count}: must have at most {maxP} items"));
        }
    }

    private static void CheckArray(JsonArray a, JsonObject schema, string path, List<StatusCause> causes, List<string> unknown)
    {
        if (schema["minItems"] is JsonValue min && a.Count < min.GetValue<int>())
        {
            causes.Add(new StatusCause("FieldValueInvalid", path, $"{path}: Invalid value: {a.Count}: {path} in body should have at least {min} items"));
        }

        if (schema["maxItems"] is JsonValue max && a.Count > max.GetValue<int>())
        {
            causes.Add(new StatusCause("FieldValueTooMany", path, $"{path}: Too many: {a.Count}: must have at most {max} items"));
        }

        if (schema["items"] is JsonObject itemSchema)
        {
            for (var i = 0; i < a.Count; i++)
            {
                Check(a[i], itemSchema, $"{path}[{i}]", null, causes, unknown);
            }
        }
    }

    private static void CheckNumber(JsonValue v, JsonObject schema, string path, List<StatusCause> causes)
    {
        var n = v.GetValue<double>();
        var text = v.ToJsonString();
        if (schema["minimum"] is JsonValue min)
        {
            var m = min.GetValue<double>();
            var exclusive = schema["exclusiveMinimum"]?.GetValue<bool>() == true;
            if (exclusive ? n <= m : n < m)
            {
                causes.Add(new StatusCause("FieldValueInvalid", path,
                    $"{path}: Invalid value: {text}: {path} in body should be greater than {(exclusive ? "" : "or equal to ")}{min.ToJsonString()}"));
            }
        }

        if (schema["maximum"] is JsonValue max)
        {
            var m = max.GetValue<double>();
            var exclusive = schema["exclusiveMaximum"]?.GetValue<bool>() == true;
            if (exclusive ? n >= m : n > m)
            {
                causes.Add(new StatusCause("FieldValueInvalid", path,
                    $"{path}: Invalid value: {text}: {path} in body should be less than {(exclusive ? "" : "or equal to ")}{max.ToJsonString()}"));
            }
        }
    }

    private static void CheckString(string s, JsonObject schema, string path, List<StatusCause> causes)
    {
        if (schema["minLength"] is JsonValue min && s.Length < min.GetValue<int>())
        {
            causes.Add(new StatusCause("FieldValueInvalid", path, $"{path}: Invalid value: \"{s}\": {path} in body should be at least {min} chars long"));
        }

        if (schema["maxLength"] is JsonValue max && s.Length > max.GetValue<int>())
        {
            causes.Add(new StatusCause("FieldValueTooLong", path, $"{path}: Too long: may not be more than {max} bytes"));
        }

        if (Json.GetString(schema["pattern"]) is { } pattern && !Regex.IsMatch(s, pattern, RegexOptions.None, TimeSpan.FromSeconds(1)))
        {
            causes.Add(new StatusCause("FieldValueInvalid", path, $"{path}: Invalid value: \"{s}\": {path} in body should match '{pattern}'"));
        }

        if (Json.GetString(schema["format"]) == "date-time" &&
            !DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out _))
        {
            causes.Add(new StatusCause("FieldValueInvalid", path, $"{path}: Invalid value: \"{s}\": {path} in body must be of type date-time: \"{s}\""));
        }
    }

    private static bool IsInteger(JsonNode value) =>
        value is JsonValue v && v.TryGetValue<double>(out var d) && Math.Floor(d) == d && !v.ToJsonString().Contains('.', StringComparison.Ordinal);

    private static string TypeName(JsonObject schema) => Json.GetString(schema["type"]) ?? "object";

    private static StatusCause TypeCause(string path, JsonNode value, string type)
    {
        var actual = value.GetValueKind() switch
        {
            JsonValueKind.String => "string",
            JsonValueKind.Number => IsInteger(value) ? "integer" : "number",
            JsonValueKind.Object => "object",
            JsonValueKind.Array => "array",
            JsonValueKind.True or JsonValueKind.False => "boolean",
            _ => "null",
        };
        return new StatusCause("FieldValueTypeInvalid", path, $"{path}: Invalid value: \"{actual}\": {path} in body must be of type {type}: \"{actual}\"");
    }
}

/// <summary>
/// The small subset of CEL <c>x-kubernetes-validations</c> the test server evaluates: <c>self == oldSelf</c>
/// (immutability, checked only on updates) and <c>self.a OP self.b</c> / <c>self.a OP literal</c> / <c>self OP literal</c>
/// comparisons with ==, !=, &lt;, &lt;=, &gt;, &gt;= on numbers and strings. Rules outside the subset are not
/// enforced (docs/testing.md lists this difference); <see cref="Unsupported"/> tells which.
/// </summary>
internal static partial class CelSubset
{
    [GeneratedRegex(@"^\s*(self(?:\.[A-Za-z_][A-Za-z0-9_]*)*|oldSelf(?:\.[A-Za-z_][A-Za-z0-9_]*)*|-?\d+(?:\.\d+)?|'[^']*'|""[^""]*"")\s*(==|!=|<=|>=|<|>)\s*(self(?:\.[A-Za-z_][A-Za-z0-9_]*)*|oldSelf(?:\.[A-Za-z_][A-Za-z0-9_]*)*|-?\d+(?:\.\d+)?|'[^']*'|""[^""]*"")\s*$")]
    private static partial Regex Comparison();

    /// <summary>True when a rule is outside the supported subset (it is then not enforced).</summary>
    public static bool Unsupported(string rule) => !Comparison().IsMatch(rule);

    public static void Check(JsonNode self, JsonNode? oldSelf, JsonObject schema, string path, List<StatusCause> causes)
    {
        if (schema["x-kubernetes-validations"] is not JsonArray rules)
        {
            return;
        }

        foreach (var rule in rules.OfType<JsonObject>())
        {
            var text = Json.GetString(rule["rule"]) ?? "";
            var m = Comparison().Match(text);
            if (!m.Success)
            {
                continue;
            }

            var usesOld = text.Contains("oldSelf", StringComparison.Ordinal);
            if (usesOld && oldSelf is null)
            {
                continue; // transition rules only run on updates
            }

            var left = Operand(m.Groups[1].Value, self, oldSelf);
            var right = Operand(m.Groups[3].Value, self, oldSelf);
            if (!Compare(left, right, m.Groups[2].Value))
            {
                var message = Json.GetString(rule["message"]) ?? $"failed rule: {text}";
                var field = path.Length == 0 ? "<root>" : path;
                causes.Add(new StatusCause("FieldValueInvalid", field, $"{field}: Invalid value: \"object\": {message}"));
            }
        }
    }

    private static JsonNode? Operand(string token, JsonNode self, JsonNode? oldSelf)
    {
        if (token.StartsWith("self", StringComparison.Ordinal) || token.StartsWith("oldSelf", StringComparison.Ordinal))
        {
            var parts = token.Split('.');
            JsonNode? node = parts[0] == "self" ? self : oldSelf;
            foreach (var p in parts.Skip(1))
            {
                node = (node as JsonObject)?[p];
            }

            return node;
        }

        if (token.StartsWith('\'') || token.StartsWith('"'))
        {
            return JsonValue.Create(token[1..^1]);
        }

        return JsonValue.Create(double.Parse(token, CultureInfo.InvariantCulture));
    }

    private static bool Compare(JsonNode? a, JsonNode? b, string op)
    {
        if (op is "==" or "!=")
        {
            var equal = a is JsonValue va && b is JsonValue vb && va.TryGetValue<double>(out var x) && vb.TryGetValue<double>(out var y)
                ? x == y
                : JsonNode.DeepEquals(a, b);
            return op == "==" ? equal : !equal;
        }

        int cmp;
        if (a is JsonValue na && b is JsonValue nb && na.TryGetValue<double>(out var da) && nb.TryGetValue<double>(out var db))
        {
            cmp = da.CompareTo(db);
        }
        else if (Json.GetString(a) is { } sa && Json.GetString(b) is { } sb)
        {
            cmp = string.CompareOrdinal(sa, sb);
        }
        else
        {
            return true; // absent or mismatched operands: nothing to compare (CEL would error; we do not enforce)
        }

        return op switch { "<" => cmp < 0, "<=" => cmp <= 0, ">" => cmp > 0, _ => cmp >= 0 };
    }
}
