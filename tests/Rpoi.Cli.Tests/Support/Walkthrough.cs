using System.Text;
using System.Text.RegularExpressions;

namespace Rpoi.Cli.Tests.Support;

/// <summary>One fenced code block of a Markdown file: its info string (e.g. <c>bash settlement</c>) and its command lines.</summary>
public sealed record CodeBlock(string Info, IReadOnlyList<string> Lines);

/// <summary>Reads the executable parts of the README's walkthrough: its section, its fenced blocks and, per line, shell words.</summary>
public static partial class Walkthrough
{
    /// <summary>
    /// The text from the line that starts with <paramref name="heading"/> up to the next <c>## </c> heading (or the end),
    /// so blocks elsewhere in the file, such as the README's "Two commands", are never run.
    /// </summary>
    public static string Section(string markdown, string heading)
    {
        var lines = markdown.ReplaceLineEndings("\n").Split('\n');
        var start = Array.FindIndex(lines, l => l.StartsWith(heading, StringComparison.Ordinal));
        if (start < 0)
        {
            throw new InvalidOperationException($"no line starts with '{heading}'; the walkthrough's heading was renamed or removed");
        }

        var end = Array.FindIndex(lines, start + 1, l => l.StartsWith("## ", StringComparison.Ordinal));
        return string.Join('\n', lines[start..(end < 0 ? lines.Length : end)]);
    }

    /// <summary>Every fenced block of <paramref name="markdown"/>, with a line that ends in <c>\</c> joined to the next, as a shell does.</summary>
    public static IReadOnlyList<CodeBlock> Blocks(string markdown)
    {
        var blocks = new List<CodeBlock>();
        foreach (Match m in Fence().Matches(markdown.ReplaceLineEndings("\n")))
        {
            var lines = new List<string>();
            var pending = "";
            foreach (var raw in m.Groups[2].Value.TrimEnd('\n').Split('\n'))
            {
                var line = pending + raw.Trim();
                if (line.EndsWith('\\'))
                {
                    pending = line[..^1].TrimEnd() + " ";
                    continue;
                }

                pending = "";
                if (line.Length > 0 && !line.StartsWith('#'))
                {
                    lines.Add(line);
                }
            }

            if (pending.Length > 0)
            {
                throw new FormatException($"the last line of a ```{m.Groups[1].Value.Trim()} block ends in \\ and continues nowhere");
            }

            blocks.Add(new CodeBlock(m.Groups[1].Value.Trim(), lines));
        }

        return blocks;
    }

    /// <summary>Splits a command line as a POSIX shell would for the quoting the walkthrough uses ('…', "…", \\).</summary>
    public static IReadOnlyList<string> Words(string line)
    {
        var words = new List<string>();
        var current = new StringBuilder();
        var inWord = false;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            switch (c)
            {
                case '\'':
                    var close = line.IndexOf('\'', i + 1);
                    if (close < 0)
                    {
                        throw new FormatException($"unclosed ' in: {line}");
                    }

                    current.Append(line, i + 1, close - i - 1);
                    i = close;
                    inWord = true;
                    break;
                case '"':
                    i++;
                    while (i < line.Length && line[i] != '"')
                    {
                        if (line[i] == '\\' && i + 1 < line.Length)
                        {
                            i++;
                        }

                        current.Append(line[i]);
                        i++;
                    }

                    if (i >= line.Length)
                    {
                        throw new FormatException($"unclosed \" in: {line}");
                    }

                    inWord = true;
                    break;
                case ' ' or '\t':
                    if (inWord)
                    {
                        words.Add(current.ToString());
                        current.Clear();
                        inWord = false;
                    }

                    break;
                case '#' when !inWord:
                    i = line.Length;
                    break;
                default:
                    current.Append(c);
                    inWord = true;
                    break;
            }
        }

        if (inWord)
        {
            words.Add(current.ToString());
        }

        return words;
    }

    // Every fence, not only bash ones, so a ```sh or bare ``` block in the walkthrough fails the test instead of being skipped.
    [GeneratedRegex(@"^```([^\n`]*)\n(.*?)^```", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex Fence();
}
