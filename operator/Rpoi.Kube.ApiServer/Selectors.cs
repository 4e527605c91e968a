using System.Text.Json.Nodes;

namespace Rpoi.Kube.ApiServer;

/// <summary>A parsed label selector: <c>a=b, a==b, a!=b, a in (x,y), a notin (x), a, !a</c>.</summary>
internal sealed class LabelSelector
{
    private enum Op
    {
        Equals,
        NotEquals,
        In,
        NotIn,
        Exists,
        DoesNotExist,
    }

    private readonly List<(string Key, Op Op, string[] Values)> _terms = [];

    public static readonly LabelSelector Everything = new();

    public bool IsEmpty => _terms.Count == 0;

    public static LabelSelector Parse(string? text)
    {
        var selector = new LabelSelector();
        if (string.IsNullOrWhiteSpace(text))
        {
            return selector;
        }

        foreach (var raw in SplitTopLevel(text))
        {
            var term = raw.Trim();
            if (term.Length == 0)
            {
                continue;
            }

            var inIdx = IndexOfWord(term, " notin ");
            if (inIdx > 0)
            {
                selector._terms.Add((term[..inIdx].Trim(), Op.NotIn, Values(term[(inIdx + 7)..])));
                continue;
            }

            inIdx = IndexOfWord(term, " in ");
            if (inIdx > 0)
            {
                selector._terms.Add((term[..inIdx].Trim(), Op.In, Values(term[(inIdx + 4)..])));
                continue;
            }

            var ne = term.IndexOf("!=", StringComparison.Ordinal);
            if (ne > 0)
            {
                selector._terms.Add((Key(term[..ne]), Op.NotEquals, [term[(ne + 2)..].Trim()]));
                continue;
            }

            var eq = term.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                var value = term[(eq + 1)..];
                if (value.StartsWith('='))
                {
                    value = value[1..];
                }

                selector._terms.Add((Key(term[..eq]), Op.Equals, [value.Trim()]));
                continue;
            }

            if (term.StartsWith('!'))
            {
                selector._terms.Add((Key(term[1..]), Op.DoesNotExist, []));
                continue;
            }

            selector._terms.Add((Key(term), Op.Exists, []));
        }

        return selector;

        static string Key(string k)
        {
            k = k.Trim();
            if (k.Length == 0 || k.Any(c => char.IsWhiteSpace(c) || c is '(' or ')' or ','))
            {
                throw ApiException.BadRequest($"unable to parse requirement: invalid label key \"{k}\" in labelSelector");
            }

            return k;
        }

        static string[] Values(string s)
        {
            s = s.Trim();
            if (!s.StartsWith('(') || !s.EndsWith(')'))
            {
                throw ApiException.BadRequest($"unable to parse requirement: expected '(' and ')' around the values \"{s}\" in labelSelector");
            }

            return s[1..^1].Split(',', StringSplitOptions.TrimEntries);
        }

        static int IndexOfWord(string s, string word) => s.IndexOf(word, StringComparison.Ordinal);
    }

    /// <summary>Splits on commas that are not inside parentheses (the values of in/notin).</summary>
    private static IEnumerable<string> SplitTopLevel(string text)
    {
        var depth = 0;
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            switch (text[i])
            {
                case '(':
                    depth++;
                    break;
                case ')':
                    depth--;
                    break;
                case ',' when depth == 0:
                    yield return text[start..i];
                    start = i + 1;
                    break;
            }
        }

        yield return text[start..];
    }

    public bool Matches(JsonObject obj)
    {
        if (_terms.Count == 0)
        {
            return true;
        }

        var labels = obj["metadata"]?["labels"] as JsonObject;
        foreach (var (key, op, values) in _terms)
        {
            string? actual = labels?[key]?.GetValue<string>();
            var ok = op switch
            {
                Op.Equals => actual == values[0],
                Op.NotEquals => actual != values[0],
                Op.In => actual is not null && values.Contains(actual),
                Op.NotIn => actual is null || !values.Contains(actual),
                Op.Exists => actual is not null,
                _ => actual is null,
            };
            if (!ok)
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>
/// A parsed field selector: <c>path=value</c>, <c>path==value</c>, <c>path!=value</c>, comma separated.
/// A kind with <see cref="FieldLabels"/> (Events) accepts exactly its labels, as the real server does; for other
/// kinds any dotted path of the object can be used (the real server allows a per-kind set: metadata.name,
/// metadata.namespace, spec.nodeName and status.phase for pods, ...).
/// </summary>
internal sealed class FieldSelector
{
    private readonly List<(Func<JsonObject, string> ValueOf, bool Negate, string Value)> _terms = [];

    public static readonly FieldSelector Everything = new();

    /// <summary>The name when the selector pins <c>metadata.name</c> (used to narrow lookups).</summary>
    public string? Name { get; private set; }

    public static FieldSelector Parse(string? text, FieldLabels? labels = null)
    {
        var selector = new FieldSelector();
        if (string.IsNullOrWhiteSpace(text))
        {
            return selector;
        }

        foreach (var raw in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var negate = false;
            int idx;
            int skip;
            if ((idx = raw.IndexOf("!=", StringComparison.Ordinal)) > 0)
            {
                negate = true;
                skip = 2;
            }
            else if ((idx = raw.IndexOf("==", StringComparison.Ordinal)) > 0)
            {
                skip = 2;
            }
            else if ((idx = raw.IndexOf('=', StringComparison.Ordinal)) > 0)
            {
                skip = 1;
            }
            else
            {
                throw ApiException.BadRequest($"invalid selector: '{raw}'; can't understand '{raw}' in fieldSelector (use path=value)");
            }

            var path = raw[..idx].Trim();
            var value = raw[(idx + skip)..].Trim();
            selector._terms.Add((labels?.Resolve(path) ?? PathValue(path.Split('.')), negate, value));
            if (path == "metadata.name" && !negate)
            {
                selector.Name = value;
            }
        }

        return selector;
    }

    private static Func<JsonObject, string> PathValue(string[] path) => obj =>
    {
        JsonNode? node = obj;
        foreach (var segment in path)
        {
            node = (node as JsonObject)?[segment];
        }

        return node switch
        {
            null => "",
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            _ => node.ToJsonString(),
        };
    };

    public bool Matches(JsonObject obj)
    {
        foreach (var (valueOf, negate, value) in _terms)
        {
            if ((valueOf(obj) == value) == negate)
            {
                return false;
            }
        }

        return true;
    }
}
