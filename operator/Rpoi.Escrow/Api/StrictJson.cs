using System.Text.Json;
using Microsoft.Net.Http.Headers;
using Rpoi.Escrow.Client;

namespace Rpoi.Escrow.Api;

/// <summary>
/// What a request body may hold: exact (case-sensitive) property names of each object π reads, and for the protocol
/// messages inside (E(m), m_final, E(m'')) any object, which the protocol's own strict parser reads next.
/// </summary>
public sealed class JsonShape
{
    private JsonShape(JsonValueKind kind, IReadOnlyList<(string Name, JsonShape Shape)>? fields)
    {
        Kind = kind;
        Fields = fields;
    }

    /// <summary>A JSON string.</summary>
    public static JsonShape String { get; } = new(JsonValueKind.String, null);

    /// <summary>Any JSON object (still free of duplicate keys at every depth).</summary>
    public static JsonShape AnyObject { get; } = new(JsonValueKind.Object, null);

    /// <summary>An object with exactly these properties, all required.</summary>
    public static JsonShape Object(params (string Name, JsonShape Shape)[] fields) => new(JsonValueKind.Object, fields);

    /// <summary>The JSON kind.</summary>
    public JsonValueKind Kind { get; }

    /// <summary>The properties of an object with a fixed shape; null for <see cref="AnyObject"/> and strings.</summary>
    public IReadOnlyList<(string Name, JsonShape Shape)>? Fields { get; }

    /// <summary>The bodies of π's POST endpoints.</summary>
    public static class Bodies
    {
        /// <summary><c>POST /v1/deposits</c>.</summary>
        public static JsonShape Deposit { get; } = Object(("depositId", String), ("address", String), ("amount", Object(("amount", String), ("denom", String))));

        /// <summary><c>POST /v1/pledges</c>.</summary>
        public static JsonShape Pledge { get; } = Object(("signedRequest", AnyObject));

        /// <summary><c>POST /v1/settlements</c>.</summary>
        public static JsonShape Settlement { get; } = Object(("final", AnyObject));

        /// <summary><c>POST /v1/claims</c>.</summary>
        public static JsonShape Claim { get; } = Object(("renterRating", AnyObject));

        /// <summary><c>POST /v1/never-served</c>.</summary>
        public static JsonShape NeverServed { get; } = Object(("notice", AnyObject));

        /// <summary><c>POST /v1/withheld/release</c>.</summary>
        public static JsonShape Release { get; } = Object(("h", String), ("to", String));
    }
}

/// <summary>
/// The strict reading of π's request bodies, before any deserialiser sees them: a JSON media type, valid UTF-8, one
/// JSON value, no duplicate key anywhere (a reader that keeps the first and one that keeps the last must never disagree
/// about what was signed or paid), and only the property names of the body's shape, spelled exactly. Each refusal names
/// the field (a property path such as <c>amount.denom</c>, or <c>body</c>, or the header) and the fix.
/// </summary>
public static class StrictJson
{
    private const int MaxDepth = 64;

    /// <summary>Refuses anything but <c>application/json</c> (optionally with <c>charset=utf-8</c>), with 415.</summary>
    public static void RequireJsonContentType(string? contentType)
    {
        const string Fix = "send the body as JSON with 'Content-Type: application/json' (charset, if given, must be utf-8)";
        if (string.IsNullOrWhiteSpace(contentType))
        {
            throw new EscrowRefusedException(EscrowReasons.UnsupportedMediaType, "Content-Type", $"the Content-Type header is missing; {Fix}", 415);
        }

        if (!MediaTypeHeaderValue.TryParse(contentType, out var media)
            || !media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || media.Parameters.Any(p => !p.Name.Equals("charset", StringComparison.OrdinalIgnoreCase))
            || (media.Charset.HasValue && !media.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase)))
        {
            throw new EscrowRefusedException(EscrowReasons.UnsupportedMediaType, "Content-Type", $"Content-Type '{Printable(contentType)}' is not accepted; {Fix}", 415);
        }
    }

    /// <summary>Checks <paramref name="body"/> against <paramref name="shape"/>; <paramref name="what"/> names the body in messages.</summary>
    public static void Check(ReadOnlySpan<byte> body, JsonShape shape, string what)
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (body.IsEmpty)
        {
            throw Refuse("body", $"the request body is empty; send a JSON {what}");
        }

        if (!System.Text.Unicode.Utf8.IsValid(body))
        {
            throw Refuse("body", $"the request body is not valid UTF-8; send the {what} as UTF-8 JSON");
        }

        var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = MaxDepth, CommentHandling = JsonCommentHandling.Disallow, AllowTrailingCommas = false });
        var path = new Path();
        try
        {
            if (!reader.Read())
            {
                throw Refuse("body", $"the request body holds no JSON value; send a JSON {what}");
            }

            Value(ref reader, shape, path);
            if (reader.Read())
            {
                throw Refuse("body", $"the request body has data after the {what} object; send exactly one JSON object");
            }
        }
        catch (JsonException)
        {
            // The reader's own text names .NET internals; say where and what instead.
            throw Refuse(path.Field, $"the request body is not valid JSON at byte {reader.BytesConsumed} (in {path.Field}); send a complete, well-formed JSON {what}");
        }
    }

    private static void Value(ref Utf8JsonReader reader, JsonShape shape, Path path)
    {
        var kind = reader.TokenType switch
        {
            JsonTokenType.StartObject => JsonValueKind.Object,
            JsonTokenType.StartArray => JsonValueKind.Array,
            JsonTokenType.String => JsonValueKind.String,
            JsonTokenType.Number => JsonValueKind.Number,
            JsonTokenType.True => JsonValueKind.True,
            JsonTokenType.False => JsonValueKind.False,
            _ => JsonValueKind.Null,
        };
        if (kind != shape.Kind)
        {
            throw Refuse(path.Field, $"{path.Field} must be {Describe(shape.Kind)}, not {Describe(kind)}");
        }

        if (kind == JsonValueKind.Object)
        {
            Object(ref reader, shape, path);
        }
    }

    private static void Object(ref Utf8JsonReader reader, JsonShape shape, Path path)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = reader.GetString()!;
            path.Push(name);
            if (!seen.Add(name))
            {
                throw Refuse(path.Field, $"{path.Field} appears twice; each key may appear only once (a duplicate could be read as either value)");
            }

            JsonShape? fieldShape = null;
            if (shape.Fields is { } fields)
            {
                foreach (var (allowed, s) in fields)
                {
                    if (allowed == name)
                    {
                        fieldShape = s;
                    }
                }

                if (fieldShape is null)
                {
                    var near = fields.FirstOrDefault(f => f.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).Name;
                    throw Refuse(path.Field, near is not null
                        ? $"{path.Field} is not a known property: names are case-sensitive, write '{near}'"
                        : $"{path.Field} is not a known property; the allowed ones here are {string.Join(", ", fields.Select(f => "'" + f.Name + "'"))}");
                }
            }

            reader.Read();
            if (fieldShape is null)
            {
                Any(ref reader, path);
            }
            else
            {
                Value(ref reader, fieldShape, path);
            }

            path.Pop();
        }

        if (shape.Fields is { } required)
        {
            foreach (var (name, s) in required)
            {
                if (!seen.Contains(name))
                {
                    path.Push(name);
                    var field = path.Field;
                    path.Pop();
                    throw Refuse(field, $"{field} is required ({Describe(s.Kind)})");
                }
            }
        }
    }

    /// <summary>Any value; objects at any depth still may not repeat a key.</summary>
    private static void Any(ref Utf8JsonReader reader, Path path)
    {
        if (reader.TokenType == JsonTokenType.StartObject)
        {
            Object(ref reader, JsonShape.AnyObject, path);
        }
        else if (reader.TokenType == JsonTokenType.StartArray)
        {
            var index = 0;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                path.PushIndex(index++);
                Any(ref reader, path);
                path.Pop();
            }
        }
    }

    private static EscrowRefusedException Refuse(string field, string message) => new(EscrowReasons.InvalidField, field, message);

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "a JSON object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a JSON string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };

    /// <summary>A header value as it may be echoed: printable ASCII, at most 100 characters.</summary>
    private static string Printable(string value)
    {
        var clean = new string([.. value.Take(100).Select(c => c is >= ' ' and <= '~' && c != '\'' ? c : '?')]);
        return value.Length > 100 ? clean + "…" : clean;
    }

    /// <summary>The property path being read, as π's problems name fields: <c>amount.denom</c>, <c>x[2].y</c>.</summary>
    private sealed class Path
    {
        private readonly List<string> _parts = [];

        public string Field => _parts.Count == 0 ? "body" : string.Concat(_parts).TrimStart('.');

        public void Push(string name) => _parts.Add("." + (name.Length == 0 ? "\"\"" : Printable(name)));

        public void PushIndex(int index) => _parts.Add("[" + index.ToString(System.Globalization.CultureInfo.InvariantCulture) + "]");

        public void Pop() => _parts.RemoveAt(_parts.Count - 1);
    }
}
