using System.Text;
using System.Text.RegularExpressions;

namespace Rpoi.Cli.Tests.Support;

/// <summary>One fenced code block of a Markdown file: its info string (e.g. <c>bash settlement</c>) and its command lines.</summary>
public sealed record CodeBlock(string Info, IReadOnlyList<string> Lines);

/// <summary>Reads the executable parts of docs/quickstart.md: its fenced blocks and, per line, shell words.</summary>
public static partial class Walkthrough
{
    public static IReadOnlyList<CodeBlock> Blocks(string markdown)
    {
        var blocks = new List<CodeBlock>();
        foreach (Match m in Fence().Matches(markdown))
        {
            var lines = m.Groups[2].Value.Split('\n')
                .Select(l => l.Trim())
                .Where(l => l.Length > 0 && !l.StartsWith('#'))
                .ToList();
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

    [GeneratedRegex(@"^```(bash[^\n]*)\n(.*?)^```", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex Fence();
}
