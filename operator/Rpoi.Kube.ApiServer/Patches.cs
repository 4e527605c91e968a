using System.Text.Json.Nodes;

namespace Rpoi.Kube.ApiServer;

/// <summary>
/// The patch formats of PATCH requests: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge
/// patch (merge patch plus merge-by-key for the lists kubectl patches, and the <c>$patch</c>, <c>$retainKeys</c>,
/// <c>$setElementOrder</c> and <c>$deleteFromPrimitiveList</c> directives).
/// </summary>
internal static class Patches
{
    /// <summary>List fields merged by key in strategic merge patch (field name → merge key); null key = set of primitives.</summary>
    private static readonly Dictionary<string, string?> MergeKeys = new(StringComparer.Ordinal)
    {
        ["containers"] = "name",
        ["initContainers"] = "name",
        ["ephemeralContainers"] = "name",
        ["volumes"] = "name",
        ["volumeMounts"] = "mountPath",
        ["env"] = "name",
        ["ports"] = "containerPort",
        ["conditions"] = "type",
        ["ownerReferences"] = "uid",
        ["imagePullSecrets"] = "name",
        ["tolerations"] = null,
        ["finalizers"] = null,
    };

    public static JsonNode? MergePatch(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject patchObj)
        {
            return patch?.DeepClone();
        }

        var result = target as JsonObject ?? new JsonObject();
        foreach (var (key, value) in patchObj)
        {
            if (value is null)
            {
                result.Remove(key);
            }
            else
            {
                var existing = result[key];
                result.Remove(key);
                result[key] = MergePatch(existing, value);
            }
        }

        return result;
    }

    public static JsonNode? StrategicMergePatch(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject patchObj)
        {
            return patch?.DeepClone();
        }

        if (Json.GetString(patchObj["$patch"]) == "replace")
        {
            var replaced = (JsonObject)patchObj.DeepClone();
            replaced.Remove("$patch");
            return replaced;
        }

        if (Json.GetString(patchObj["$patch"]) == "delete")
        {
            return null;
        }

        var result = target as JsonObject ?? new JsonObject();
        if (patchObj["$retainKeys"] is JsonArray retain)
        {
            var keep = retain.Select(Json.GetString).ToHashSet();
            foreach (var key in result.Select(p => p.Key).Where(k => !keep.Contains(k)).ToList())
            {
                result.Remove(key);
            }
        }

        foreach (var (key, value) in patchObj)
        {
            if (key is "$patch" or "$retainKeys" || key.StartsWith("$setElementOrder/", StringComparison.Ordinal))
            {
                continue;
            }

            if (key.StartsWith("$deleteFromPrimitiveList/", StringComparison.Ordinal))
            {
                var field = key["$deleteFromPrimitiveList/".Length..];
                if (result[field] is JsonArray list && value is JsonArray remove)
                {
                    for (var i = list.Count - 1; i >= 0; i--)
                    {
                        if (remove.Any(r => JsonNode.DeepEquals(r, list[i])))
                        {
                            list.RemoveAt(i);
                        }
                    }
                }

                continue;
            }

            if (value is null)
            {
                result.Remove(key);
                continue;
            }

            var existing = result[key];
            result.Remove(key);
            if (value is JsonArray patchList && MergeKeys.TryGetValue(key, out var mergeKey))
            {
                result[key] = MergeList(existing as JsonArray, patchList, mergeKey);
            }
            else if (StrategicMergePatch(existing, value) is { } merged)
            {
                result[key] = merged;
            }
        }

        return result;
    }

    private static JsonArray MergeList(JsonArray? existing, JsonArray patch, string? mergeKey)
    {
        var result = existing is null ? [] : (JsonArray)existing.DeepClone();
        foreach (var item in patch)
        {
            if (mergeKey is null || item is not JsonObject itemObj)
            {
                if (!result.Any(r => JsonNode.DeepEquals(r, item)))
                {
                    result.Add(item?.DeepClone());
                }

                continue;
            }

            var keyValue = itemObj[mergeKey];
            var index = -1;
            for (var i = 0; i < result.Count; i++)
            {
                if (JsonNode.DeepEquals(result[i]?[mergeKey], keyValue))
                {
                    index = i;
                    break;
                }
            }

            if (Json.GetString(itemObj["$patch"]) == "delete")
            {
                if (index >= 0)
                {
                    result.RemoveAt(index);
                }

                continue;
            }

            if (index >= 0)
            {
                var merged = StrategicMergePatch(result[index]?.DeepClone(), itemObj);
                result[index] = merged;
            }
            else
            {
                var clean = (JsonObject)StrategicMergePatch(new JsonObject(), itemObj)!;
                result.Add(clean);
            }
        }

        return result;
    }

    /// <summary>Applies an RFC 6902 JSON patch; a failing operation rejects the whole patch.</summary>
    public static JsonNode ApplyJsonPatch(JsonNode target, JsonNode patch)
    {
        if (patch is not JsonArray ops)
        {
            throw ApiException.BadRequest("a json-patch body must be a JSON array of operations");
        }

        JsonNode doc = target.DeepClone();
        for (var i = 0; i < ops.Count; i++)
        {
            if (ops[i] is not JsonObject op)
            {
                throw ApiException.BadRequest($"json-patch operation {i} is not an object");
            }

            var kind = Json.GetString(op["op"]) ?? throw ApiException.BadRequest($"json-patch operation {i} has no \"op\"");
            var path = Json.GetString(op["path"]) ?? throw ApiException.BadRequest($"json-patch operation {i} has no \"path\"");
            switch (kind)
            {
                case "add":
                    doc = Add(doc, path, Value(op, i), i);
                    break;
                case "remove":
                    Remove(doc, path, i);
                    break;
                case "replace":
                    if (path.Length == 0)
                    {
                        doc = Value(op, i) ?? throw ApiException.BadRequest($"json-patch operation {i}: cannot replace the document with null");
                        break;
                    }

                    _ = Resolve(doc, path, i);
                    Remove(doc, path, i);
                    doc = Add(doc, path, Value(op, i), i);
                    break;
                case "move":
                    {
                        var from = Json.GetString(op["from"]) ?? throw ApiException.BadRequest($"json-patch operation {i} (move) has no \"from\"");
                        var moved = Resolve(doc, from, i)?.DeepClone();
                        Remove(doc, from, i);
                        doc = Add(doc, path, moved, i);
                        break;
                    }

                case "copy":
                    {
                        var from = Json.GetString(op["from"]) ?? throw ApiException.BadRequest($"json-patch operation {i} (copy) has no \"from\"");
                        doc = Add(doc, path, Resolve(doc, from, i)?.DeepClone(), i);
                        break;
                    }

                case "test":
                    if (!JsonNode.DeepEquals(Resolve(doc, path, i), op["value"]))
                    {
                        throw new ApiException(422, "Invalid", $"the server rejected our request due to an error in our request: json-patch test operation {i} failed at path {path}");
                    }

                    break;
                default:
                    throw ApiException.BadRequest($"json-patch operation {i}: unknown op \"{kind}\" (use add, remove, replace, move, copy or test)");
            }
        }

        return doc;
    }

    private static JsonNode? Value(JsonObject op, int i) =>
        op.TryGetPropertyValue("value", out var v) ? v?.DeepClone() : throw ApiException.BadRequest($"json-patch operation {i} has no \"value\"");

    private static string[] Tokens(string path, int i)
    {
        if (!path.StartsWith('/'))
        {
            throw ApiException.BadRequest($"json-patch operation {i}: path \"{path}\" must start with /");
        }

        return path[1..].Split('/').Select(t => t.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal)).ToArray();
    }

    private static JsonNode? Resolve(JsonNode doc, string path, int i)
    {
        if (path.Length == 0)
        {
            return doc;
        }

        JsonNode? node = doc;
        foreach (var token in Tokens(path, i))
        {
            node = node switch
            {
                JsonObject o when o.TryGetPropertyValue(token, out var child) => child,
                JsonArray a when int.TryParse(token, out var idx) && idx >= 0 && idx < a.Count => a[idx],
                _ => throw new ApiException(422, "Invalid", $"the server rejected our request due to an error in our request: json-patch operation {i}: path {path} does not exist"),
            };
        }

        return node;
    }

    private static (JsonNode Parent, string Last) Parent(JsonNode doc, string path, int i)
    {
        var tokens = Tokens(path, i);
        var parentPath = tokens.Length == 1 ? "" : "/" + string.Join('/', tokens[..^1].Select(t => t.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal)));
        var parent = Resolve(doc, parentPath, i) ?? throw new ApiException(422, "Invalid", $"json-patch operation {i}: parent of {path} is null");
        return (parent, tokens[^1]);
    }

    private static JsonNode Add(JsonNode doc, string path, JsonNode? value, int i)
    {
        if (path.Length == 0)
        {
            return value ?? throw ApiException.BadRequest($"json-patch operation {i}: cannot replace the document with null");
        }

        var (parent, last) = Parent(doc, path, i);
        switch (parent)
        {
            case JsonObject o:
                o[last] = value;
                break;
            case JsonArray a when last == "-":
                a.Add(value);
                break;
            case JsonArray a when int.TryParse(last, out var idx) && idx >= 0 && idx <= a.Count:
                a.Insert(idx, value);
                break;
            default:
                throw new ApiException(422, "Invalid", $"json-patch operation {i}: cannot add at {path}");
        }

        return doc;
    }

    private static void Remove(JsonNode doc, string path, int i)
    {
        var (parent, last) = Parent(doc, path, i);
        switch (parent)
        {
            case JsonObject o when o.ContainsKey(last):
                o.Remove(last);
                break;
            case JsonArray a when int.TryParse(last, out var idx) && idx >= 0 && idx < a.Count:
                a.RemoveAt(idx);
                break;
            default:
                throw new ApiException(422, "Invalid", $"the server rejected our request due to an error in our request: json-patch operation {i}: path {path} does not exist");
        }
    }
}
