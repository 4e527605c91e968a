using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rpoi.Kube.ApiServer;

/// <summary>
/// A snapshot file could not be used: missing, unreadable, corrupt, or not written by this server. The message names
/// the file and the fix.
/// </summary>
public sealed class SnapshotException : Exception
{
    /// <summary>Creates the error for <paramref name="path"/>.</summary>
    public SnapshotException(string path, string message, Exception? inner = null)
        : base(message, inner) => Path = path;

    /// <summary>The snapshot file.</summary>
    public string Path { get; }
}

/// <summary>The objects of one resource (group and plural) in a snapshot.</summary>
internal sealed record SnapshotResource(string Group, string Plural, IReadOnlyList<JsonObject> Items);

/// <summary>A parsed snapshot: the store's resourceVersion counter and every object, by resource.</summary>
internal sealed record SnapshotContent(long ResourceVersion, IReadOnlyList<SnapshotResource> Resources);

/// <summary>
/// The snapshot file: one JSON document <c>{"format", "version", "savedAt", "resourceVersion", "resources": [{"group",
/// "resource", "items": [...]}]}</c>, each item the object exactly as stored (uid, resourceVersion, creationTimestamp,
/// generation, finalizers, deletionTimestamp and status included). One document rather than JSON lines: a file cut
/// short does not parse, so a partial snapshot can never be mistaken for a whole one.
/// </summary>
internal static class Snapshot
{
    public const string Format = "Rpoi.Kube.ApiServer/snapshot";
    public const int Version = 1;

    private static readonly JsonWriterOptions WriterOptions = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Writes the snapshot to <c>path.tmp</c>, flushes it to disk, then renames it over <paramref name="path"/>, so a
    /// reader (or a restart after a crash) sees the old snapshot or the new one, never half of one.
    /// </summary>
    public static void Write(string path, long resourceVersion, IReadOnlyList<(string StorageKey, List<StoredObject> Objects)> buckets,
        DateTimeOffset savedAt, Action<string>? afterTempWritten)
    {
        var full = System.IO.Path.GetFullPath(path);
        var temp = full + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            using (var writer = new Utf8JsonWriter(stream, WriterOptions))
            {
                writer.WriteStartObject();
                writer.WriteString("format", Format);
                writer.WriteNumber("version", Version);
                writer.WriteString("savedAt", Json.FormatTime(savedAt));
                writer.WriteString("resourceVersion", resourceVersion.ToString(CultureInfo.InvariantCulture));
                writer.WriteStartArray("resources");
                foreach (var (storageKey, objects) in buckets)
                {
                    var slash = storageKey.IndexOf('/', StringComparison.Ordinal);
                    writer.WriteStartObject();
                    writer.WriteString("group", storageKey[..slash]);
                    writer.WriteString("resource", storageKey[(slash + 1)..]);
                    writer.WriteStartArray("items");
                    foreach (var obj in objects)
                    {
                        // The stored bytes are the object already serialized: no second serialization.
                        writer.WriteRawValue(obj.Json, skipInputValidation: true);
                    }

                    writer.WriteEndArray();
                    writer.WriteEndObject();
                }

                writer.WriteEndArray();
                writer.WriteEndObject();
            }

            stream.Flush(flushToDisk: true);
        }

        afterTempWritten?.Invoke(temp);
        File.Move(temp, full, overwrite: true);
    }

    /// <summary>Reads and checks a snapshot; anything unusable is a <see cref="SnapshotException"/> naming the file and the fix.</summary>
    public static SnapshotContent Read(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SnapshotException(path, $"cannot read the API server snapshot {path}: {e.Message}; check the path and its permissions", e);
        }

        JsonNode? root;
        try
        {
            root = JsonNode.Parse(bytes, Json.NodeOptions);
        }
        catch (JsonException e)
        {
            throw Corrupt(path, $"it is not valid JSON ({e.Message})", e);
        }

        if (root is not JsonObject doc || Json.GetString(doc["format"]) != Format)
        {
            throw Corrupt(path, $"it is not a snapshot of this API server (\"format\" is not \"{Format}\")");
        }

        if (Json.GetLong(doc["version"]) != Version)
        {
            throw Corrupt(path, $"it is snapshot version {doc["version"]?.ToJsonString() ?? "(none)"}, this server reads version {Version}");
        }

        if (!long.TryParse(Json.GetString(doc["resourceVersion"]), NumberStyles.None, CultureInfo.InvariantCulture, out var rv))
        {
            throw Corrupt(path, "\"resourceVersion\" is not a non-negative integer string");
        }

        if (doc["resources"] is not JsonArray resources)
        {
            throw Corrupt(path, "\"resources\" is not an array");
        }

        var result = new List<SnapshotResource>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < resources.Count; i++)
        {
            var where = $"resources[{i}]";
            if (resources[i] is not JsonObject resource || Json.GetString(resource["group"]) is not { } group ||
                Json.GetString(resource["resource"]) is not { Length: > 0 } plural || resource["items"] is not JsonArray items)
            {
                throw Corrupt(path, $"{where} needs \"group\", \"resource\" and \"items\"");
            }

            var objects = new List<JsonObject>();
            for (var j = 0; j < items.Count; j++)
            {
                var at = $"{where}.items[{j}]";
                if (items[j] is not JsonObject obj || obj["metadata"] is not JsonObject meta)
                {
                    throw Corrupt(path, $"{at} is not an object with metadata");
                }

                var name = Json.GetString(meta["name"]);
                if (string.IsNullOrEmpty(name) || string.IsNullOrEmpty(Json.GetString(meta["uid"])) ||
                    string.IsNullOrEmpty(Json.GetString(obj["apiVersion"])) || string.IsNullOrEmpty(Json.GetString(obj["kind"])))
                {
                    throw Corrupt(path, $"{at} lacks apiVersion, kind, metadata.name or metadata.uid");
                }

                if (!long.TryParse(Json.GetString(meta["resourceVersion"]), NumberStyles.None, CultureInfo.InvariantCulture, out var objRv) || objRv > rv)
                {
                    throw Corrupt(path, $"{at} ({name}) has a resourceVersion that is missing or newer than the snapshot's {rv}");
                }

                if (!seen.Add($"{group}/{plural}/{Json.GetString(meta["namespace"])}/{name}"))
                {
                    throw Corrupt(path, $"{at} ({name}) appears twice");
                }

                objects.Add(obj);
            }

            // Detached from the document so each object can be stored on its own.
            items.Clear();
            result.Add(new SnapshotResource(group, plural, objects));
        }

        return new SnapshotContent(rv, result);
    }

    public static SnapshotException Corrupt(string path, string why, Exception? inner = null) =>
        new(path, $"the API server snapshot {path} cannot be restored: {why}; delete it to start with an empty server (or restore a good copy)", inner);
}
