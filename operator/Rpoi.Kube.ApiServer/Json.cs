using System.Buffers;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rpoi.Kube.ApiServer;

/// <summary>An object as stored: the node (never mutated once stored) and its serialized bytes, written once.</summary>
internal sealed record StoredObject(JsonObject Node, byte[] Json)
{
    /// <summary>
    /// Makes a node safe to share: parsed JsonObjects build their dictionaries lazily on first access, which is not
    /// thread-safe, so the whole tree is materialized once here, before any concurrent reader can see it.
    /// </summary>
    public static StoredObject Freeze(JsonObject node)
    {
        Materialize(node);
        return new StoredObject(node, global::Rpoi.Kube.ApiServer.Json.Serialize(node));
    }

    private static void Materialize(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (_, child) in o)
                {
                    Materialize(child);
                }

                break;
            case JsonArray a:
                foreach (var child in a)
                {
                    Materialize(child);
                }

                break;
        }
    }

    public string Name => Node["metadata"]?["name"]?.GetValue<string>() ?? "";

    public string? Namespace => Node["metadata"]?["namespace"]?.GetValue<string>();

    public string Uid => Node["metadata"]?["uid"]?.GetValue<string>() ?? "";
}

/// <summary>JSON helpers shared by the server.</summary>
internal static class Json
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static readonly JsonNodeOptions NodeOptions = new() { PropertyNameCaseInsensitive = false };

    public static byte[] Serialize(JsonNode node)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            node.WriteTo(writer);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Parses a request body as a JSON object, or fails with a 400 that says what is wrong.</summary>
    public static JsonObject ParseObject(ReadOnlySpan<byte> body, string what)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(body, NodeOptions, new JsonDocumentOptions { AllowTrailingCommas = false });
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest($"the {what} is not valid JSON: {e.Message} (send a JSON object; YAML bodies are not supported)");
        }

        return node as JsonObject ?? throw ApiException.BadRequest($"the {what} must be a JSON object");
    }

    public static JsonNode ParseAny(ReadOnlySpan<byte> body, string what)
    {
        try
        {
            return JsonNode.Parse(body, NodeOptions) ?? throw ApiException.BadRequest($"the {what} is empty");
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest($"the {what} is not valid JSON: {e.Message}");
        }
    }

    public static JsonObject Metadata(JsonObject obj)
    {
        if (obj["metadata"] is JsonObject m)
        {
            return m;
        }

        m = new JsonObject();
        obj["metadata"] = m;
        return m;
    }

    public static string? GetString(JsonNode? node) =>
        node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    /// <summary>A number as long whatever CLR type backs the node (parsed JSON or a value set by the server).</summary>
    public static long? GetLong(JsonNode? node) => node switch
    {
        JsonValue v when v.TryGetValue<long>(out var l) => l,
        JsonValue v when v.TryGetValue<int>(out var i) => i,
        JsonValue v when v.TryGetValue<double>(out var d) => (long)d,
        _ => null,
    };

    public static string FormatTime(DateTimeOffset t) =>
        t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>Deep equality of two JSON trees (object key order ignored).</summary>
    public static bool DeepEquals(JsonNode? a, JsonNode? b) => JsonNode.DeepEquals(a, b);
}
