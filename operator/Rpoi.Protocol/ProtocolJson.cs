using System.Text.Json;
using System.Text.Json.Serialization;
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

    /// <summary>RFC 8785 canonical bytes of a message record.</summary>
    public static byte[] CanonicalBytes<T>(T value) =>
        Encoding.CanonicalJson.Canonicalize(JsonSerializer.SerializeToUtf8Bytes(value, Options));

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
