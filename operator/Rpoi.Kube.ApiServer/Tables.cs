using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rpoi.Kube.ApiServer;

/// <summary>
/// <c>meta.k8s.io/v1</c> Table responses (what <c>kubectl get</c> prints): NAME plus the CRD's
/// additionalPrinterColumns, or NAME and AGE for other kinds.
/// </summary>
internal static class Tables
{
    public static bool Wanted(string? accept) =>
        accept is not null && accept.Contains("as=Table", StringComparison.Ordinal);

    public static JsonObject Build(ResourceType type, IEnumerable<StoredObject> items, long? listRv, DateTimeOffset now)
    {
        if (type.Kind == "Event" && type.Group is "" or EventRepresentations.EventsGroup)
        {
            return EventRepresentations.Table(items, listRv, now);
        }

        var columns = type.PrinterColumns.Count > 0
            ? type.PrinterColumns
            : [new PrinterColumn("Age", "date", ".metadata.creationTimestamp", "CreationTimestamp is a timestamp representing the server time when this object was created.")];
        var defs = new JsonArray
        {
            new JsonObject
            {
                ["name"] = "Name",
                ["type"] = "string",
                ["format"] = "name",
                ["description"] = "Name must be unique within a namespace.",
                ["priority"] = 0,
            },
        };
        foreach (var c in columns)
        {
            defs.Add(new JsonObject
            {
                ["name"] = c.Name,
                ["type"] = c.Type,
                ["format"] = c.Format,
                ["description"] = c.Description,
                ["priority"] = c.Priority,
            });
        }

        var rows = new JsonArray();
        foreach (var item in items)
        {
            var cells = new JsonArray { (JsonNode?)item.Name };
            foreach (var c in columns)
            {
                cells.Add(Cell(item.Node, c, now));
            }

            rows.Add(new JsonObject
            {
                ["cells"] = cells,
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
            meta["resourceVersion"] = rv.ToString(CultureInfo.InvariantCulture);
        }

        return new JsonObject
        {
            ["kind"] = "Table",
            ["apiVersion"] = "meta.k8s.io/v1",
            ["metadata"] = meta,
            ["columnDefinitions"] = defs,
            ["rows"] = rows,
        };
    }

    private static JsonNode? Cell(JsonObject obj, PrinterColumn column, DateTimeOffset now)
    {
        var value = JsonPath.Evaluate(obj, column.JsonPath);
        if (value is null)
        {
            return null;
        }

        if (column.Type == "date" && Json.GetString(value) is { } text &&
            DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var when))
        {
            return Age(now - when);
        }

        return column.Type switch
        {
            "integer" when value is JsonValue v && v.TryGetValue<long>(out var l) => l,
            "number" when value is JsonValue v && v.TryGetValue<double>(out var d) => d,
            "boolean" when value.GetValueKind() is JsonValueKind.True or JsonValueKind.False => value.DeepClone(),
            _ => Json.GetString(value) ?? value.ToJsonString(),
        };
    }

    /// <summary>Formats an age as the real server does for tables: 5s, 3m, 2h, 4d (coarsest unit, truncated).</summary>
    public static string Age(TimeSpan age)
    {
        if (age < TimeSpan.Zero)
        {
            age = TimeSpan.Zero;
        }

        return age.TotalSeconds < 120 ? $"{(int)age.TotalSeconds}s"
            : age.TotalMinutes < 120 ? $"{(int)age.TotalMinutes}m"
            : age.TotalHours < 48 ? $"{(int)age.TotalHours}h"
            : $"{(int)age.TotalDays}d";
    }
}

/// <summary>
/// The JSONPath subset printer columns use: <c>.a.b</c>, <c>.a[0]</c>, <c>.a[*].b</c> (first match)
/// and <c>.a[?(@.type=="Ready")].status</c>; the braces of <c>{.a.b}</c> are accepted.
/// </summary>
internal static class JsonPath
{
    public static JsonNode? Evaluate(JsonNode root, string path)
    {
        path = path.Trim();
        if (path.StartsWith('{') && path.EndsWith('}'))
        {
            path = path[1..^1];
        }

        JsonNode? node = root;
        var i = 0;
        while (i < path.Length && node is not null)
        {
            if (path[i] == '.')
            {
                var end = i + 1;
                while (end < path.Length && path[end] != '.' && path[end] != '[')
                {
                    end++;
                }

                node = (node as JsonObject)?[path[(i + 1)..end]];
                i = end;
            }
            else if (path[i] == '[')
            {
                var end = path.IndexOf(']', i);
                if (end < 0)
                {
                    return null;
                }

                var inner = path[(i + 1)..end];
                node = Index(node, inner);
                i = end + 1;
            }
            else
            {
                return null;
            }
        }

        return node;
    }

    private static JsonNode? Index(JsonNode node, string inner)
    {
        if (node is not JsonArray array)
        {
            return null;
        }

        if (inner == "*")
        {
            return array.Count > 0 ? array[0] : null;
        }

        if (int.TryParse(inner, NumberStyles.Integer, CultureInfo.InvariantCulture, out var idx))
        {
            return idx >= 0 && idx < array.Count ? array[idx] : null;
        }

        // ?(@.field=="value") or ?(@.field=='value')
        if (inner.StartsWith("?(@.", StringComparison.Ordinal) && inner.EndsWith(')'))
        {
            var expr = inner[4..^1];
            var eq = expr.IndexOf("==", StringComparison.Ordinal);
            if (eq < 0)
            {
                return null;
            }

            var field = expr[..eq].Trim();
            var want = expr[(eq + 2)..].Trim().Trim('"', '\'');
            return array.FirstOrDefault(item => Json.GetString(item?[field]) == want
                || (item?[field] is JsonValue v && v.ToJsonString() == want));
        }

        return null;
    }
}
