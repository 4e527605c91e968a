using System.Collections.Concurrent;

namespace Rpoi.Deploy.Tests;

/// <summary>Renders the chart with <c>helm template</c>; each distinct set of values is rendered once per run.</summary>
internal static class Chart
{
    public const string Release = "rpoi-operator";
    public const string Namespace = "rpoi-system";

    private static readonly ConcurrentDictionary<string, Lazy<Manifests>> Cache = new();

    /// <summary>The manifests for the given <c>--set</c> values (CRDs included).</summary>
    public static Manifests Render(params string[] sets) =>
        Cache.GetOrAdd(string.Join('\n', sets), _ => new Lazy<Manifests>(() => Manifests.Parse(Tools.RunOk(Tools.Helm, Args(sets))))).Value;

    /// <summary>helm template with the given values, not asserting success (for rejection tests).</summary>
    public static ToolResult TryRender(params string[] sets) => Tools.Run(Tools.Helm, Args(sets));

    private static string[] Args(string[] sets) =>
        ["template", Release, Tools.ChartDir, "--namespace", Namespace, "--include-crds", .. SetArgs(sets)];

    /// <summary>"a.b=1" becomes --set a.b=1; "json:a.b=[]" becomes --set-json a.b=[] (for empty lists).</summary>
    public static IEnumerable<string> SetArgs(IEnumerable<string> sets) =>
        sets.SelectMany(s => s.StartsWith("json:", StringComparison.Ordinal) ? new[] { "--set-json", s[5..] } : new[] { "--set", s });
}
