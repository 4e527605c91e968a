using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace Rpoi.Operator.CrdGeneration;

/// <summary>
/// The XML documentation file the compiler writes beside an assembly, read so that the doc comments of
/// the entity types become the CRD's <c>description</c>s (and so <c>kubectl explain</c>).
/// </summary>
public sealed partial class XmlDocumentation
{
    private readonly Dictionary<string, string> summaries;

    private XmlDocumentation(Dictionary<string, string> summaries) => this.summaries = summaries;

    /// <summary>Loads the documentation file of <paramref name="assembly"/> (same path, <c>.xml</c>).</summary>
    /// <exception cref="FileNotFoundException">The file is missing: the project must set GenerateDocumentationFile.</exception>
    public static XmlDocumentation For(Assembly assembly)
    {
        var path = Path.ChangeExtension(assembly.Location, ".xml");
        if (!File.Exists(path))
        {
            throw new FileNotFoundException(
                $"The XML documentation file '{path}' is missing; CRD descriptions come from it. " +
                "Build with <GenerateDocumentationFile>true</GenerateDocumentationFile>.", path);
        }

        return Parse(File.ReadAllText(path));
    }

    /// <summary>Parses the text of an XML documentation file.</summary>
    public static XmlDocumentation Parse(string xml)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var member in XDocument.Parse(xml).Descendants("member"))
        {
            var name = member.Attribute("name")?.Value;
            var summary = member.Element("summary");
            if (name is not null && summary is not null)
            {
                result[name] = Flatten(summary);
            }
        }

        return new XmlDocumentation(result);
    }

    /// <summary>The summary of a type, or null when it has none.</summary>
    public string? Of(Type type) => summaries.GetValueOrDefault("T:" + Name(type));

    /// <summary>The summary of a property, or null when it has none.</summary>
    public string? Of(PropertyInfo property) =>
        summaries.GetValueOrDefault($"P:{Name(property.DeclaringType!)}.{property.Name}");

    /// <summary>The summary of an enum member (or other field), or null when it has none.</summary>
    public string? Of(FieldInfo field) => summaries.GetValueOrDefault($"F:{Name(field.DeclaringType!)}.{field.Name}");

    private static string Name(Type type) => type.FullName!.Replace('+', '.');

    // <c>x</c> becomes x, <see cref="T:A.B"/> becomes B; white space collapses to single spaces.
    private static string Flatten(XElement summary)
    {
        var text = new StringBuilder();
        foreach (var node in summary.Nodes())
        {
            text.Append(node switch
            {
                XText t => t.Value,
                XElement { Name.LocalName: "see" or "seealso" } e =>
                    e.Attribute("langword")?.Value ?? LastSegment(e.Attribute("cref")?.Value ?? e.Value),
                XElement { Name.LocalName: "paramref" or "typeparamref" } e => e.Attribute("name")?.Value ?? "",
                XElement e => e.Value,
                _ => "",
            });
        }

        return Spaces().Replace(text.ToString(), " ").Trim();
    }

    private static string LastSegment(string cref)
    {
        var withoutPrefix = cref.Length > 2 && cref[1] == ':' ? cref[2..] : cref;
        return withoutPrefix[(withoutPrefix.LastIndexOf('.') + 1)..];
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();
}
