using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Rpoi.Cli.Support;

/// <summary>
/// JSON ⇄ YAML for Kubernetes manifests. Writing is a small block-style emitter (deterministic, so a GitOps
/// diff shows only what changed); a string is quoted whenever YAML could read it as anything but that string,
/// so the signed payload comes back byte for byte. Reading goes through YamlDotNet's representation model.
/// </summary>
public static partial class Yaml
{
    private static readonly JsonSerializerOptions QuoteOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>One YAML document for <paramref name="node"/> (a JSON object), ending in a newline.</summary>
    public static string Write(JsonNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (node is JsonObject { Count: 0 } or JsonArray { Count: 0 })
        {
            return node is JsonObject ? "{}\n" : "[]\n";
        }

        var sb = new StringBuilder();
        WriteBlock(sb, node, 0);
        return sb.ToString();
    }

    /// <summary>Reads every document of a YAML stream as JSON (plain scalars become numbers, booleans or null as YAML 1.2 core says).</summary>
    /// <exception cref="FormatException">The text is not YAML; the message names the line.</exception>
    public static IReadOnlyList<JsonNode?> ReadAll(string yaml)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw new FormatException($"not valid YAML at line {e.Start.Line}, column {e.Start.Column}: {e.Message}", e);
        }
        catch (InvalidOperationException e)
        {
            // YamlDotNet's scanner throws this on some malformed flow collections.
            throw new FormatException($"not valid YAML: {e.Message}", e);
        }

        return stream.Documents.Select(d => ToJson(d.RootNode)).ToList();
    }

    private static void WriteBlock(StringBuilder sb, JsonNode node, int indent)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (key, value) in obj)
                {
                    sb.Append(' ', indent).Append(Scalar(key)).Append(':');
                    WriteValue(sb, value, indent + 2);
                }

                break;
            case JsonArray array:
                foreach (var item in array)
                {
                    sb.Append(' ', indent).Append('-');
                    if (item is JsonObject { Count: > 0 } itemObj)
                    {
                        // "- key: value" with the following keys aligned under the first.
                        var inner = new StringBuilder();
                        WriteBlock(inner, itemObj, indent + 2);
                        sb.Append(' ').Append(inner.ToString(indent + 2, inner.Length - indent - 2));
                    }
                    else if (item is JsonArray { Count: > 0 } nested)
                    {
                        sb.Append('\n');
                        WriteBlock(sb, nested, indent + 2);
                    }
                    else
                    {
                        WriteValue(sb, item, indent + 2);
                    }
                }

                break;
            default:
                throw new ArgumentException("a YAML document must be an object or an array", nameof(node));
        }
    }

    private static void WriteValue(StringBuilder sb, JsonNode? value, int indent)
    {
        switch (value)
        {
            case JsonObject { Count: 0 }:
                sb.Append(" {}\n");
                break;
            case JsonArray { Count: 0 }:
                sb.Append(" []\n");
                break;
            case JsonObject or JsonArray:
                sb.Append('\n');
                WriteBlock(sb, value, value is JsonArray ? indent - 2 : indent);
                break;
            case null:
                sb.Append(" null\n");
                break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                sb.Append(' ').Append(Scalar(v.GetValue<string>())).Append('\n');
                break;
            default:
                sb.Append(' ').Append(value.ToJsonString()).Append('\n');
                break;
        }
    }

    private static string Scalar(string s) =>
        PlainSafe().IsMatch(s) && !Reserved().IsMatch(s) && !Float().IsMatch(s) ? s : JsonSerializer.Serialize(s, QuoteOptions);

    private static JsonNode? ToJson(YamlNode node)
    {
        switch (node)
        {
            case YamlMappingNode map:
                var obj = new JsonObject();
                foreach (var (k, v) in map.Children)
                {
                    var key = ((YamlScalarNode)k).Value ?? "";
                    obj[key] = ToJson(v);
                }

                return obj;
            case YamlSequenceNode seq:
                return new JsonArray(seq.Children.Select(ToJson).ToArray());
            case YamlScalarNode scalar:
                var text = scalar.Value ?? "";
                if (scalar.Style is ScalarStyle.Plain)
                {
                    if (text is "" or "~" or "null" or "Null" or "NULL")
                    {
                        return null;
                    }

                    if (text is "true" or "True" or "TRUE" or "false" or "False" or "FALSE")
                    {
                        return JsonValue.Create(text.Equals("true", StringComparison.OrdinalIgnoreCase));
                    }

                    if (Integer().IsMatch(text) && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l))
                    {
                        return JsonValue.Create(l);
                    }

                    if (Float().IsMatch(text))
                    {
                        return JsonNode.Parse(JsonNumber(text));
                    }
                }

                return JsonValue.Create(text);
            default:
                throw new FormatException($"unsupported YAML node at {node.Start}");
        }
    }

    /// <summary>
    /// A YAML float as JSON number text: YAML allows <c>+1.5</c>, <c>.5</c> and <c>1.</c>, JSON none of them, so the sign
    /// goes and the missing zeros are written (the digits stay as given, so no precision is lost).
    /// </summary>
    private static string JsonNumber(string yamlFloat)
    {
        var t = yamlFloat.StartsWith('+') ? yamlFloat[1..] : yamlFloat;
        var sign = t.StartsWith('-') ? "-" : "";
        t = t[sign.Length..];
        if (t.StartsWith('.'))
        {
            t = "0" + t;
        }

        var dot = t.IndexOf('.', StringComparison.Ordinal);
        if (dot >= 0 && (dot == t.Length - 1 || t[dot + 1] is 'e' or 'E'))
        {
            t = t.Insert(dot + 1, "0");
        }

        return sign + t;
    }

    // Letters, digits and a few punctuation marks that YAML never reads as syntax inside a plain scalar.
    [GeneratedRegex(@"^[A-Za-z_./][A-Za-z0-9_./@+=-]*$|^[0-9][A-Za-z0-9_./@+=-]*[A-Za-z_/@+=][A-Za-z0-9_./@+=-]*$")]
    private static partial Regex PlainSafe();

    // Plain scalars YAML 1.1 or 1.2 would read as a bool, null or number.
    [GeneratedRegex(@"^(y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|null|Null|NULL|~|\.inf|\.nan|[-+]?[0-9][0-9_]*(\.[0-9]*)?([eE][-+]?[0-9]+)?|0x[0-9a-fA-F]+|0o[0-7]+|0b[01]+|[0-9]+(:[0-5]?[0-9])+)$")]
    private static partial Regex Reserved();

    [GeneratedRegex(@"^[-+]?[0-9]+$")]
    private static partial Regex Integer();

    [GeneratedRegex(@"^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$|^[-+]?[0-9]+[eE][-+]?[0-9]+$")]
    private static partial Regex Float();
}
