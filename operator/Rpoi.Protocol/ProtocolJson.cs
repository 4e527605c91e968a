using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Rpoi.Protocol.Messages;

namespace Rpoi.Protocol;

/// <summary>The System.Text.Json settings every RPOI message uses: camelCase, strict (unknown or missing
/// fields are errors, so a signed payload cannot carry data the typed record would silently drop).</summary>
public static class ProtocolJson
{
    /// <summary>Compact, strict options.</summary>
    public static JsonSerializerOptions Options { get; } = Create(false);

    /// <summary>Indented options for files people read.</summary>
    public static JsonSerializerOptions Indented { get; } = Create(true);

    // Writes records with their properties in JCS order, dictionaries sorted and JsonElements canonical, so the
    // serializer's output is usually RFC 8785 already and only needs checking, not re-parsing.
    private static readonly JsonSerializerOptions CanonicalWrite = CreateCanonicalWrite();

    /// <summary>RFC 8785 canonical bytes of a message record.</summary>
    public static byte[] CanonicalBytes<T>(T value)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(value, CanonicalWrite);
        // The check is conservative (e.g. escapes the serializer spells differently): anything it does not accept goes
        // through the full canonicaliser, so the result is always exactly CanonicalJson.Canonicalize of the JSON.
        return Encoding.CanonicalJson.IsCanonical(bytes) ? bytes : Encoding.CanonicalJson.Canonicalize(bytes);
    }

    private static JsonSerializerOptions CreateCanonicalWrite()
    {
        var o = new JsonSerializerOptions(Options)
        {
            TypeInfoResolver = new DefaultJsonTypeInfoResolver { Modifiers = { SortPropertiesForJcs } },
        };
        o.Converters.Insert(0, new CanonicalElementConverter());
        o.Converters.Insert(0, new SortedStringMapConverter());
        o.MakeReadOnly();
        return o;
    }

    /// <summary>RFC 8785 3.2.3 property order: ordinal (UTF-16 code unit) order of the JSON names.</summary>
    private static void SortPropertiesForJcs(JsonTypeInfo info)
    {
        if (info.Kind != JsonTypeInfoKind.Object || info.Properties.Count < 2)
        {
            return;
        }

        var sorted = info.Properties.OrderBy(p => p.Name, StringComparer.Ordinal).ToList();
        info.Properties.Clear();
        for (var i = 0; i < sorted.Count; i++)
        {
            sorted[i].Order = i;
            info.Properties.Add(sorted[i]);
        }
    }

    /// <summary>Writes a JsonElement (σ's pod template) in canonical form.</summary>
    private sealed class CanonicalElementConverter : JsonConverter<JsonElement>
    {
        public override JsonElement Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            JsonElement.ParseValue(ref reader);

        public override void Write(Utf8JsonWriter writer, JsonElement value, JsonSerializerOptions options) =>
            writer.WriteRawValue(Encoding.CanonicalJson.Canonicalize(value), skipInputValidation: true);
    }

    /// <summary>Writes string maps (σ's node selector) with keys in ordinal order.</summary>
    private sealed class SortedStringMapConverter : JsonConverter<IReadOnlyDictionary<string, string>>
    {
        public override IReadOnlyDictionary<string, string> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            JsonSerializer.Deserialize<Dictionary<string, string>>(ref reader, options) ?? throw new JsonException("a string map must not be null");

        public override void Write(Utf8JsonWriter writer, IReadOnlyDictionary<string, string> value, JsonSerializerOptions options)
        {
            writer.WriteStartObject();
            foreach (var key in value.Keys.Order(StringComparer.Ordinal))
            {
                writer.WriteString(key, value[key]);
            }

            writer.WriteEndObject();
        }
    }

    private static JsonSerializerOptions Create(bool indented)
    {
        var o = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            WriteIndented = indented,
            // Web defaults match names case-insensitively; a signed message must have one spelling only.
            PropertyNameCaseInsensitive = false,
            // Key files and identities are read by people: keep base64 '+' and '/' literal. Signed bytes are JCS anyway.
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
            RespectNullableAnnotations = true,
            RespectRequiredConstructorParameters = true,
            NumberHandling = JsonNumberHandling.Strict,
            AllowTrailingCommas = false,
            ReadCommentHandling = JsonCommentHandling.Disallow,
        };
        o.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase, allowIntegerValues: false));
        o.Converters.Add(new SignedConverterFactory());
        o.Converters.Add(new UtcTimestampConverter());
        o.MakeReadOnly(populateMissingResolver: true);
        return o;
    }
}
