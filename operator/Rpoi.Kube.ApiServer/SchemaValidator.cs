using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Rpoi.Kube.ApiServer;

/// <summary>
/// Structural-schema validation of custom resources against a CRD's openAPIV3Schema: type, required,
/// minimum/maximum (and exclusive), minLength/maxLength, pattern, enum, minItems/maxItems, nullable,
/// x-kubernetes-int-or-string, x-kubernetes-preserve-unknown-fields, and pruning of unknown fields
/// (or, with <c>fieldValidation=Strict</c>, rejecting them), and, when asked, <c>default</c> values for absent fields. CEL rules are a small subset, see <see cref="CelSubset"/>.
/// Messages are the real server's: kube-openapi's validation messages (pkg/validation/errors/schema.go) turned into
/// field errors as apiextensions-apiserver does (pkg/apiserver/validation/validation.go kubeOpenAPIResultToFieldErrors),
/// printed as apimachinery's field.Error.Error() (<c>field: Invalid value: 0: detail</c>). As in
/// apiextensions-apiserver's strategy (pkg/registry/customresource/strategy.go), CEL rules run after the schema checks
/// and only when none of them is a blocking error (required, type, enum, too long, too many).
/// </summary>
internal static class SchemaValidator
{
    /// <summary>
    /// Validates (and prunes) <paramref name="obj"/>, filling in <c>default:</c> values when <paramref name="applyDefaults"/>;
    /// returns field causes and the unknown field paths found.
    /// </summary>
    public static (List<StatusCause> Causes, List<string> Unknown) Validate(JsonObject obj, JsonObject schema, JsonObject? old, bool applyDefaults = false)
    {
        if (applyDefaults)
        {
            ApplyDefaults(obj, schema);
        }

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
        if (!HasRules(schema))
        {
            return (causes, unknown);
        }

        if (causes.Any(c => c.Reason is "FieldValueNotSupported" or "FieldValueRequired" or "FieldValueTooLong" or "FieldValueTooMany" or "FieldValueTypeInvalid"))
        {
            // field.Invalid(nil, nil, …): the real server prints a nil path as <nil> and a nil value as "null".
            causes.Add(new StatusCause("FieldValueInvalid", "<nil>",
                "<nil>: Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"));
            return (causes, unknown);
        }

        CelSubset.Check(obj, old, schema, "", causes);
        foreach (var (key, value) in obj)
        {
            if (key is not ("apiVersion" or "kind" or "metadata") && props?[key] is JsonObject propSchema)
            {
                CheckRules(value, propSchema, key, old?[key], causes);
            }
        }

        return (causes, unknown);
    }

    /// <summary>Whether any x-kubernetes-validations rule sits anywhere in the schema (the real server then has a CEL validator).</summary>
    private static bool HasRules(JsonNode? node) => node is JsonObject o &&
        (o.ContainsKey("x-kubernetes-validations")
         || (o["properties"] is JsonObject props && props.Any(p => HasRules(p.Value)))
         || HasRules(o["items"]) || HasRules(o["additionalProperties"]));

    /// <summary>Runs the CEL rules of a value and then of its children, as the real CEL validator walks the object.</summary>
    private static void CheckRules(JsonNode? value, JsonObject schema, string path, JsonNode? old, List<StatusCause> causes)
    {
        if (value is null)
        {
            return;
        }

        CelSubset.Check(value, old, schema, path, causes);
        switch (value)
        {
            case JsonObject o:
                var props = schema["properties"] as JsonObject;
                var additional = schema["additionalProperties"] as JsonObject;
                foreach (var (key, child) in o)
                {
                    if ((props?[key] as JsonObject ?? additional) is { } childSchema)
                    {
                        CheckRules(child, childSchema, Join(path, key), (old as JsonObject)?[key], causes);
                    }
                }

                break;
            case JsonArray a when schema["items"] is JsonObject items:
                for (var i = 0; i < a.Count; i++)
                {
                    CheckRules(a[i], items, $"{path}[{i}]", null, causes);
                }

                break;
        }
    }

    /// <summary>Structural defaulting, as the real server does on create and update: absent fields of present objects get their default.</summary>
    private static void ApplyDefaults(JsonNode? node, JsonObject schema)
    {
        switch (node)
        {
            case JsonObject o:
                if (schema["properties"] is JsonObject props)
                {
                    foreach (var (name, childSchema) in props)
                    {
                        if (childSchema is not JsonObject child)
                        {
                            continue;
                        }

                        if (!o.ContainsKey(name) && child["default"] is { } value)
                        {
                            o[name] = value.DeepClone();
                        }

                        ApplyDefaults(o[name], child);
                    }
                }

                break;
            case JsonArray a when schema["items"] is JsonObject items:
                foreach (var item in a)
                {
                    ApplyDefaults(item, items);
                }

                break;
        }
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
                causes.Add(TypeCause(path, value, "integer,string"));
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
            // field.NotSupported quotes every allowed value; non-strings are JSON-encoded first.
            var list = string.Join(", ", allowed.Select(a => GoQuote(a is JsonValue av && av.GetValueKind() == JsonValueKind.String ? av.GetValue<string>() : a?.ToJsonString() ?? "null")));
            causes.Add(new StatusCause("FieldValueNotSupported", path, $"{path}: Unsupported value: {BadValue(value)}: supported values: {list}"));
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
        var text = GoNumber(v);
        if (schema["minimum"] is JsonValue min)
        {
            var m = min.GetValue<double>();
            var exclusive = schema["exclusiveMinimum"]?.GetValue<bool>() == true;
            if (exclusive ? n <= m : n < m)
            {
                causes.Add(new StatusCause("FieldValueInvalid", path,
                    $"{path}: Invalid value: {text}: {path} in body should be greater than {(exclusive ? "" : "or equal to ")}{GoFloat(m)}"));
            }
        }

        if (schema["maximum"] is JsonValue max)
        {
            var m = max.GetValue<double>();
            var exclusive = schema["exclusiveMaximum"]?.GetValue<bool>() == true;
            if (exclusive ? n >= m : n > m)
            {
                causes.Add(new StatusCause("FieldValueInvalid", path,
                    $"{path}: Invalid value: {text}: {path} in body should be less than {(exclusive ? "" : "or equal to ")}{GoFloat(m)}"));
            }
        }
    }

    private static void CheckString(string s, JsonObject schema, string path, List<StatusCause> causes)
    {
        // kube-openapi counts characters (runes), not UTF-16 code units.
        var length = s.EnumerateRunes().Count();
        if (schema["minLength"] is JsonValue min && length < min.GetValue<int>())
        {
            causes.Add(new StatusCause("FieldValueInvalid", path, $"{path}: Invalid value: {GoQuote(s)}: {path} in body should be at least {min} chars long"));
        }

        if (schema["maxLength"] is JsonValue max && length > max.GetValue<int>())
        {
            causes.Add(new StatusCause("FieldValueTooLong", path, $"{path}: Too long: may not be more than {max} bytes"));
        }

        if (Json.GetString(schema["pattern"]) is { } pattern && !Regex.IsMatch(s, pattern, RegexOptions.None, TimeSpan.FromSeconds(1)))
        {
            causes.Add(new StatusCause("FieldValueInvalid", path, $"{path}: Invalid value: {GoQuote(s)}: {path} in body should match '{pattern}'"));
        }

        if (Json.GetString(schema["format"]) == "date-time" &&
            !DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out _))
        {
            // A format failure is a type failure in kube-openapi (errors.InvalidType), so a TypeInvalid field error.
            causes.Add(new StatusCause("FieldValueTypeInvalid", path, $"{path}: Invalid value: {GoQuote(s)}: {path} in body must be of type date-time: {GoQuote(s)}"));
        }
    }

    /// <summary>A string as Go's %q prints it (how field errors show string values): quotes and backslashes escaped, control characters as escapes.</summary>
    internal static string GoQuote(string s)
    {
        var b = new System.Text.StringBuilder(s.Length + 2).Append('"');
        foreach (var c in s)
        {
            b.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when char.IsControl(c) => $"\\x{(int)c:x2}",
                _ => c.ToString(),
            });
        }

        return b.Append('"').ToString();
    }

    /// <summary>A JSON value as field errors print a bad value: strings quoted (%q), numbers and booleans as they are (%v).</summary>
    private static string BadValue(JsonNode? value) => value switch
    {
        null => "\"null\"",
        JsonValue v when v.GetValueKind() == JsonValueKind.String => GoQuote(v.GetValue<string>()),
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => GoNumber(v),
        _ => value.ToJsonString(),
    };

    /// <summary>A value as Go's %v prints what the real server decoded: an integer literal is an int64, anything else a float64.</summary>
    private static string GoNumber(JsonValue v) =>
        !v.ToJsonString().Any(c => c is '.' or 'e' or 'E') && v.TryGetValue<long>(out var l)
            ? l.ToString(CultureInfo.InvariantCulture)
            : GoFloat(v.GetValue<double>());

    /// <summary>
    /// A float64 as Go's %v (strconv 'g', shortest) prints it: scientific when the exponent is below -4 or at least 6,
    /// so a schema's <c>maximum: 31536000</c> reads 3.1536e+07 in the real server's message.
    /// </summary>
    internal static string GoFloat(double d)
    {
        if (d == 0)
        {
            return "0";
        }

        // Shortest round-trip digits, then the position of the decimal point.
        var shortest = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        var e = shortest.IndexOf('E');
        var mantissa = e < 0 ? shortest : shortest[..e];
        var shift = e < 0 ? 0 : int.Parse(shortest[(e + 1)..], CultureInfo.InvariantCulture);
        var point = mantissa.IndexOf('.');
        var digits = mantissa.Replace(".", "", StringComparison.Ordinal);
        var dp = (point < 0 ? mantissa.Length : point) + shift;
        var lead = digits.Length - digits.TrimStart('0').Length;
        digits = digits.TrimStart('0').TrimEnd('0');
        dp -= lead;
        var exponent = dp - 1;
        var sign = d < 0 ? "-" : "";
        if (exponent < -4 || exponent >= 6)
        {
            var frac = digits.Length > 1 ? "." + digits[1..] : "";
            return $"{sign}{digits[0]}{frac}e{(exponent < 0 ? "-" : "+")}{Math.Abs(exponent):00}";
        }

        if (dp <= 0)
        {
            return $"{sign}0.{new string('0', -dp)}{digits}";
        }

        return digits.Length <= dp ? sign + digits + new string('0', dp - digits.Length) : $"{sign}{digits[..dp]}.{digits[dp..]}";
    }

    private static bool IsInteger(JsonNode value) =>
        value is JsonValue v && v.TryGetValue<double>(out var d) && Math.Floor(d) == d && !v.ToJsonString().Contains('.', StringComparison.Ordinal);

    private static string TypeName(JsonObject schema) =>
        schema["x-kubernetes-int-or-string"]?.GetValue<bool>() == true ? "integer,string" : Json.GetString(schema["type"]) ?? "";

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
/// The small subset of CEL <c>x-kubernetes-validations</c> the test server evaluates: comparisons
/// <c>A OP B</c> (OP one of == != &lt; &lt;= &gt; &gt;=) where each side is <c>self[.field…]</c>,
/// <c>oldSelf[.field…]</c>, a number, a quoted string or true/false; <c>has(self.field…)</c>; a bare boolean
/// field; combined with <c>!</c>, <c>&amp;&amp;</c>, <c>||</c> and parentheses. That covers immutability
/// (<c>self == oldSelf</c>), ranges and "required when" rules. Rules that use oldSelf run only on updates;
/// a rule's <c>fieldPath</c> names the reported field. Rules outside the subset, and comparisons with a
/// missing operand (a CEL runtime error on a real server), are not enforced (docs/testing.md lists this
/// difference); <see cref="Unsupported"/> tells which rules are outside.
/// </summary>
internal static partial class CelSubset
{
    [GeneratedRegex(@"\G\s*(&&|\|\||==|!=|<=|>=|<|>|!|\(|\)|has\(|true\b|false\b|(?:self|oldSelf)(?:\.[A-Za-z_][A-Za-z0-9_]*)*\b|-?\d+(?:\.\d+)?|'[^']*'|""[^""]*"")")]
    private static partial Regex Token();

    /// <summary>True when a rule is outside the supported subset (it is then not enforced).</summary>
    public static bool Unsupported(string rule) => Parse(rule) is null;

    public static void Check(JsonNode self, JsonNode? oldSelf, JsonObject schema, string path, List<StatusCause> causes)
    {
        if (schema["x-kubernetes-validations"] is not JsonArray rules)
        {
            return;
        }

        foreach (var rule in rules.OfType<JsonObject>())
        {
            var text = Json.GetString(rule["rule"]) ?? "";
            if (Parse(text) is not { } expr)
            {
                continue;
            }

            var usesOld = text.Contains("oldSelf", StringComparison.Ordinal);
            if (usesOld && oldSelf is null)
            {
                continue; // transition rules only run on updates
            }

            if (expr.Evaluate(self, oldSelf) == false)
            {
                // As apiextensions-apiserver's CEL validator (pkg/apiserver/schema/cel/validation.go): the value shown is the
                // type of the schema the rule sits on, the path is the rule's (plus fieldPath), a nil root path prints <nil>.
                var message = Json.GetString(rule["message"]) is { Length: > 0 } m && m.Trim().Length > 0 ? m.Trim() : $"failed rule: {text.Trim()}";
                var field = path.Length == 0 ? "<nil>" : path;
                if (Json.GetString(rule["fieldPath"]) is { Length: > 0 } fieldPath)
                {
                    // fieldPath is relative to self, for example ".returnRequested".
                    field = path.Length == 0 ? fieldPath.TrimStart('.') : path + "." + fieldPath.TrimStart('.');
                }

                var type = Json.GetString(schema["type"]) ?? "";
                causes.Add(Json.GetString(rule["reason"]) switch
                {
                    "FieldValueForbidden" => new StatusCause("FieldValueForbidden", field, $"{field}: Forbidden: {message}"),
                    "FieldValueRequired" => new StatusCause("FieldValueRequired", field, $"{field}: Required value: {message}"),
                    "FieldValueDuplicate" => new StatusCause("FieldValueDuplicate", field, $"{field}: Duplicate value: {SchemaValidator.GoQuote(type)}"),
                    _ => new StatusCause("FieldValueInvalid", field, $"{field}: Invalid value: {SchemaValidator.GoQuote(type)}: {message}"),
                });
            }
        }
    }

    /// <summary>Parses a rule into an expression tree, or null when it is outside the subset.</summary>
    private static Expr? Parse(string rule)
    {
        var tokens = new List<string>();
        var at = 0;
        while (at < rule.Length)
        {
            if (string.IsNullOrWhiteSpace(rule[at..]))
            {
                break;
            }

            var m = Token().Match(rule, at);
            if (!m.Success)
            {
                return null;
            }

            tokens.Add(m.Groups[1].Value);
            at = m.Index + m.Length;
        }

        var parser = new Parser(tokens);
        var expr = parser.Or();
        return expr is not null && parser.AtEnd ? expr : null;
    }

    private sealed class Parser(List<string> tokens)
    {
        private int _next;

        public bool AtEnd => _next == tokens.Count;

        private string? Peek => _next < tokens.Count ? tokens[_next] : null;

        public Expr? Or()
        {
            var left = And();
            while (left is not null && Peek == "||")
            {
                _next++;
                var right = And();
                left = right is null ? null : new Expr.Binary("||", left, right);
            }

            return left;
        }

        private Expr? And()
        {
            var left = Unary();
            while (left is not null && Peek == "&&")
            {
                _next++;
                var right = Unary();
                left = right is null ? null : new Expr.Binary("&&", left, right);
            }

            return left;
        }

        private Expr? Unary()
        {
            if (Peek == "!")
            {
                _next++;
                return Unary() is { } inner ? new Expr.Not(inner) : null;
            }

            var left = Primary();
            if (left is Expr.Operand && Peek is "==" or "!=" or "<" or "<=" or ">" or ">=")
            {
                var op = tokens[_next++];
                return Primary() is Expr.Operand right ? new Expr.Compare(op, (Expr.Operand)left, right) : null;
            }

            return left;
        }

        private Expr? Primary()
        {
            var token = Peek;
            if (token is null)
            {
                return null;
            }

            _next++;
            switch (token)
            {
                case "(":
                    var inner = Or();
                    return inner is not null && Peek == ")" && ++_next > 0 ? inner : null;
                case "has(":
                    var field = Peek;
                    if (field is null || !field.Contains('.', StringComparison.Ordinal) || !(field.StartsWith("self", StringComparison.Ordinal) || field.StartsWith("oldSelf", StringComparison.Ordinal)))
                    {
                        return null;
                    }

                    _next++;
                    return Peek == ")" && ++_next > 0 ? new Expr.Has(field) : null;
                case "&&" or "||" or ")" or "!" or "==" or "!=" or "<" or "<=" or ">" or ">=":
                    return null;
                default:
                    return new Expr.Operand(token);
            }
        }
    }

    /// <summary>An expression; <see cref="Evaluate"/> is null when CEL would raise an error (not enforced).</summary>
    private abstract record Expr
    {
        public abstract bool? Evaluate(JsonNode self, JsonNode? oldSelf);

        public static JsonNode? Resolve(string token, JsonNode self, JsonNode? oldSelf)
        {
            var parts = token.Split('.');
            JsonNode? node = parts[0] == "self" ? self : oldSelf;
            foreach (var p in parts.Skip(1))
            {
                node = (node as JsonObject)?[p];
            }

            return node;
        }

        public sealed record Operand(string Token) : Expr
        {
            public JsonNode? Value(JsonNode self, JsonNode? oldSelf) => Token switch
            {
                "true" => JsonValue.Create(true),
                "false" => JsonValue.Create(false),
                _ when Token.StartsWith("self", StringComparison.Ordinal) || Token.StartsWith("oldSelf", StringComparison.Ordinal) => Resolve(Token, self, oldSelf),
                _ when Token.StartsWith('\'') || Token.StartsWith('"') => JsonValue.Create(Token[1..^1]),
                _ => JsonValue.Create(double.Parse(Token, CultureInfo.InvariantCulture)),
            };

            public override bool? Evaluate(JsonNode self, JsonNode? oldSelf) =>
                Value(self, oldSelf) is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? v.GetValue<bool>() : null;
        }

        public sealed record Has(string Field) : Expr
        {
            public override bool? Evaluate(JsonNode self, JsonNode? oldSelf)
            {
                var dot = Field.LastIndexOf('.');
                return Resolve(Field[..dot], self, oldSelf) is JsonObject parent ? parent.ContainsKey(Field[(dot + 1)..]) : null;
            }
        }

        public sealed record Not(Expr Inner) : Expr
        {
            public override bool? Evaluate(JsonNode self, JsonNode? oldSelf) => !Inner.Evaluate(self, oldSelf);
        }

        public sealed record Binary(string Op, Expr Left, Expr Right) : Expr
        {
            // CEL's && and || are commutative over errors: false && error is false, true || error is true.
            public override bool? Evaluate(JsonNode self, JsonNode? oldSelf)
            {
                var l = Left.Evaluate(self, oldSelf);
                var r = Right.Evaluate(self, oldSelf);
                return Op == "&&"
                    ? (l == false || r == false ? false : l == true && r == true ? true : null)
                    : (l == true || r == true ? true : l == false && r == false ? false : null);
            }
        }

        public sealed record Compare(string Op, Operand Left, Operand Right) : Expr
        {
            public override bool? Evaluate(JsonNode self, JsonNode? oldSelf)
            {
                var a = Left.Value(self, oldSelf);
                var b = Right.Value(self, oldSelf);
                if (a is null || b is null)
                {
                    return null; // a missing field is a CEL error ("no such key"), not enforced here
                }

                if (Op is "==" or "!=")
                {
                    var equal = a is JsonValue va && b is JsonValue vb && va.TryGetValue<double>(out var x) && vb.TryGetValue<double>(out var y)
                        ? x == y
                        : JsonNode.DeepEquals(a, b);
                    return Op == "==" ? equal : !equal;
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
                    return null;
                }

                return Op switch { "<" => cmp < 0, "<=" => cmp <= 0, ">" => cmp > 0, _ => cmp >= 0 };
            }
        }
    }
}
