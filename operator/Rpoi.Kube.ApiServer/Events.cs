using System.Text.Json.Nodes;

namespace Rpoi.Kube.ApiServer;

/// <summary>
/// How a served resource that shares another's storage converts to and from the stored form. Used for
/// events.k8s.io/v1 Events, which a real API server keeps in the same storage as core/v1 Events (one resource,
/// two representations): the test server stores core/v1 JSON and converts events.k8s.io/v1 at the edges.
/// </summary>
/// <param name="StorageKey">The storage key of the stored form (for example <c>/events</c>).</param>
/// <param name="ToStorage">Served form to stored form; returns a new object.</param>
/// <param name="FromStorage">Stored form to served form; returns a new object.</param>
internal sealed record StorageConversion(string StorageKey, Func<JsonObject, JsonObject> ToStorage, Func<JsonObject, JsonObject> FromStorage);

/// <summary>
/// The field selector labels a kind supports, each resolved to a function of the stored object. A label not in
/// the set is refused as a real server refuses it (<c>field label not supported: …</c>).
/// </summary>
internal sealed class FieldLabels(Func<string, Func<JsonObject, string>?> resolve)
{
    /// <summary>The value function of a label, or a 400 Bad Request naming it.</summary>
    public Func<JsonObject, string> Resolve(string label) =>
        resolve(label) ?? throw ApiException.BadRequest($"field label not supported: {label}");
}

/// <summary>
/// Core/v1 Event ⇄ events.k8s.io/v1 Event, field for field as kubernetes/kubernetes converts them through the internal
/// type (pkg/apis/events/v1/conversion.go and zz_generated.conversion.go): regarding ⇄ involvedObject, note ⇄ message,
/// deprecatedSource ⇄ source, deprecatedFirstTimestamp/LastTimestamp/Count ⇄ firstTimestamp/lastTimestamp/count,
/// reportingController ⇄ reportingComponent (the core JSON name), and metadata, eventTime, series, reportingInstance,
/// action, reason, related, type as they are. Field selectors follow pkg/registry/core/event/strategy.go
/// (ToSelectableFields) and the events.k8s.io label mapping in pkg/apis/events/v1/conversion.go.
/// </summary>
internal static class EventRepresentations
{
    public const string EventsGroup = "events.k8s.io";

    /// <summary>Fields copied unchanged between the two forms.</summary>
    private static readonly string[] Common = ["metadata", "eventTime", "series", "reportingInstance", "action", "reason", "related", "type"];

    /// <summary>events.k8s.io/v1 name → core/v1 name for the renamed fields.</summary>
    private static readonly (string EventsV1, string Core)[] Renamed =
    [
        ("regarding", "involvedObject"),
        ("note", "message"),
        ("reportingController", "reportingComponent"),
        ("deprecatedSource", "source"),
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
        ("deprecatedCount", "count"),
    ];

    /// <summary>events.k8s.io/v1 field labels → the core field set they select on (pkg/apis/events/v1/conversion.go).</summary>
    private static readonly Dictionary<string, string> EventsV1LabelMap = new(StringComparer.Ordinal)
    {
        ["reason"] = "reason",
        ["regarding.kind"] = "involvedObject.kind",
        ["regarding.namespace"] = "involvedObject.namespace",
        ["regarding.name"] = "involvedObject.name",
        ["regarding.uid"] = "involvedObject.uid",
        ["regarding.apiVersion"] = "involvedObject.apiVersion",
        ["regarding.resourceVersion"] = "involvedObject.resourceVersion",
        ["regarding.fieldPath"] = "involvedObject.fieldPath",
        ["reportingController"] = "reportingComponent",
        ["source"] = "source",
        ["type"] = "type",
        ["metadata.namespace"] = "metadata.namespace",
        ["metadata.name"] = "metadata.name",
    };

    /// <summary>The stored (core/v1) form of an events.k8s.io/v1 Event.</summary>
    public static JsonObject ToCore(JsonObject ev)
    {
        var core = new JsonObject { ["kind"] = "Event", ["apiVersion"] = "v1" };
        Copy(ev, core, Common.Select(f => (f, f)));
        Copy(ev, core, Renamed);
        return core;
    }

    /// <summary>The events.k8s.io/v1 form of a stored core/v1 Event.</summary>
    public static JsonObject ToEventsV1(JsonObject core)
    {
        var ev = new JsonObject { ["kind"] = "Event", ["apiVersion"] = $"{EventsGroup}/v1" };
        Copy(core, ev, Common.Select(f => (f, f)));
        Copy(core, ev, Renamed.Select(r => (r.Core, r.EventsV1)));
        return ev;
    }

    private static void Copy(JsonObject from, JsonObject to, IEnumerable<(string From, string To)> fields)
    {
        foreach (var (source, target) in fields)
        {
            if (from.TryGetPropertyValue(source, out var value))
            {
                to[target] = value?.DeepClone();
            }
        }
    }

    /// <summary>The conversion that serves events.k8s.io/v1 Events from the core/v1 storage.</summary>
    public static StorageConversion EventsV1Conversion { get; } = new("/events", ToCore, ToEventsV1);

    /// <summary>Core/v1 Event field labels: metadata.name/namespace, involvedObject.*, reason, reportingComponent, source, type.</summary>
    public static FieldLabels CoreLabels { get; } = new(CoreField);

    /// <summary>events.k8s.io/v1 Event field labels, mapped onto the core field set.</summary>
    public static FieldLabels EventsV1Labels { get; } = new(label => EventsV1LabelMap.TryGetValue(label, out var core) ? CoreField(core) : null);

    private static Func<JsonObject, string>? CoreField(string label) => label switch
    {
        "metadata.name" or "metadata.namespace" or "reason" or "reportingComponent" or "type" or
            "involvedObject.kind" or "involvedObject.namespace" or "involvedObject.name" or "involvedObject.uid" or
            "involvedObject.apiVersion" or "involvedObject.resourceVersion" or "involvedObject.fieldPath" => obj => Text(obj, label),

        // "source" is source.component, or reportingComponent when an events.k8s.io client left source empty.
        "source" => obj => Text(obj, "source.component") is { Length: > 0 } component ? component : Text(obj, "reportingComponent"),
        _ => null,
    };

    private static string Text(JsonObject obj, string dotted)
    {
        JsonNode? node = obj;
        foreach (var part in dotted.Split('.'))
        {
            node = (node as JsonObject)?[part];
        }

        return Json.GetString(node) ?? "";
    }

    /// <summary>
    /// The Table the real server prints for Events (pkg/printers/internalversion printEvent): LAST SEEN, TYPE, REASON,
    /// OBJECT, MESSAGE, and with <c>-o wide</c> SUBOBJECT, SOURCE, FIRST SEEN, COUNT, NAME. Rows are built from the
    /// core/v1 form (an events.k8s.io/v1 object is converted first).
    /// </summary>
    public static JsonObject Table(IEnumerable<StoredObject> items, long? listRv, DateTimeOffset now)
    {
        var defs = new JsonArray(
            Column("Last Seen", "Time when this Event was last observed.", 0),
            Column("Type", "Type of this event (Normal, Warning), new types could be added in the future", 0),
            Column("Reason", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.", 0),
            Column("Object", "The object that this event is about.", 0),
            Column("Subobject", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2].", 1),
            Column("Source", "The component reporting this event. Should be a short machine understandable string.", 1),
            Column("Message", "A human-readable description of the status of this operation.", 0),
            Column("First Seen", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)", 1),
            Column("Count", "The number of times this event has occurred.", 1),
            Column("Name", "Name must be unique within a namespace.", 1, "name"));
        var rows = new JsonArray();
        foreach (var item in items)
        {
            var e = Json.GetString(item.Node["apiVersion"]) == $"{EventsGroup}/v1" ? ToCore(item.Node) : item.Node;
            var first = Since(e["firstTimestamp"], now) ?? Since(e["eventTime"], now) ?? "<unknown>";
            var last = Since(e["lastTimestamp"], now) ?? first;
            var count = Json.GetLong(e["count"]) ?? 0;
            if (e["series"] is JsonObject series)
            {
                last = Since(series["lastObservedTime"], now) ?? "<unknown>";
                count = Json.GetLong(series["count"]) ?? 0;
            }
            else if (count == 0)
            {
                count = 1; // singleton events have no count in the events.k8s.io API
            }

            var kind = Text(e, "involvedObject.kind").ToLowerInvariant();
            var name = Text(e, "involvedObject.name");
            var source = Text(e, "source.component");
            if (source.Length == 0)
            {
                source = Text(e, "reportingComponent");
            }

            var host = Text(e, "source.host") is { Length: > 0 } h ? h : Text(e, "reportingInstance");
            if (host.Length > 0)
            {
                source = $"{source}, {host}";
            }

            rows.Add(new JsonObject
            {
                ["cells"] = new JsonArray(last, Text(e, "type"), Text(e, "reason"), name.Length > 0 ? $"{kind}/{name}" : kind,
                    Text(e, "involvedObject.fieldPath"), source, Text(e, "message").Trim(), first, count, item.Name),
                ["object"] = new JsonObject
                {
                    ["kind"] = "PartialObjectMetadata",
                    ["apiVersion"] = "meta.k8s.io/v1",
                    ["metadata"] = item.Node["metadata"]?.DeepClone(),
                },
            });
        }

        var meta = new JsonObject();
        if (listRv is { } rv)
        {
            meta["resourceVersion"] = rv.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return new JsonObject
        {
            ["kind"] = "Table",
            ["apiVersion"] = "meta.k8s.io/v1",
            ["metadata"] = meta,
            ["columnDefinitions"] = defs,
            ["rows"] = rows,
        };

        static JsonObject Column(string name, string description, int priority, string format = "") => new()
        {
            ["name"] = name,
            ["type"] = "string",
            ["format"] = format,
            ["description"] = description,
            ["priority"] = priority,
        };

        static string? Since(JsonNode? time, DateTimeOffset now) =>
            Json.GetString(time) is { Length: > 0 } text &&
            DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var when)
                ? Tables.Age(now - when)
                : null;
    }
}
