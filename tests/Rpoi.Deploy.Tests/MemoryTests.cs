using System.Globalization;
using k8s.Models;

namespace Rpoi.Deploy.Tests;

/// <summary>
/// The operator's memory settings as the chart (rendered by the real helm) and config/ ship them: the .NET heap limit
/// (DOTNET_GCHeapHardLimitPercent, hexadecimal as .NET reads it) is the measured percentage of a container memory limit
/// that is set, the same in both, and the chart refuses a percentage without a limit to take it of.
/// </summary>
public sealed class MemoryTests
{
    /// <summary>The environment variable .NET reads the heap limit percentage from.</summary>
    public const string HeapLimitEnv = "DOTNET_GCHeapHardLimitPercent";

    private static V1Container Operator(Manifests manifests) =>
        manifests.OfType<V1Deployment>().SelectMany(d => d.Spec.Template.Spec.Containers).Single(c => c.Name == "operator");

    private static int? PercentOf(V1Container container) =>
        container.Env.SingleOrDefault(e => e.Name == HeapLimitEnv) is { } env
            ? int.Parse(env.Value.StartsWith("0x", StringComparison.Ordinal) ? env.Value[2..] : throw new InvalidOperationException($"{HeapLimitEnv}={env.Value} is not hexadecimal (0x...): .NET would read it as hex anyway"), NumberStyles.HexNumber, CultureInfo.InvariantCulture)
            : null;

    [Fact]
    public void The_chart_bounds_the_heap_at_32_percent_of_a_400Mi_limit_by_default()
    {
        var container = Operator(Chart.Render());

        Assert.Equal("0x20", container.Env.Single(e => e.Name == HeapLimitEnv).Value);
        Assert.Equal(32, PercentOf(container));
        Assert.Equal(new ResourceQuantity("400Mi"), container.Resources.Limits["memory"]);
        Assert.Equal(new ResourceQuantity("192Mi"), container.Resources.Requests["memory"]);
        // 32 % of 400 MiB = 128 MiB: the heap limit measured READY with 10,000 Leases and 10,000 Nodes (BENCHMARKS.md).
        Assert.Equal(128L * 1024 * 1024, container.Resources.Limits["memory"].ToInt64() * PercentOf(container)!.Value / 100);
    }

    [Fact]
    public void Another_percentage_is_rendered_in_hex_and_0_leaves_dotnets_default()
    {
        Assert.Equal("0x3c", Operator(Chart.Render("operator.gcHeapHardLimitPercent=60")).Env.Single(e => e.Name == HeapLimitEnv).Value);
        Assert.DoesNotContain(Operator(Chart.Render("operator.gcHeapHardLimitPercent=0")).Env, e => e.Name == HeapLimitEnv);
    }

    [Fact]
    public void A_percentage_without_a_memory_limit_is_refused_with_the_fix()
    {
        var result = Chart.TryRender("operator.resources.limits=null");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("operator.gcHeapHardLimitPercent is a percentage of operator.resources.limits.memory", result.Stderr + result.Stdout, StringComparison.Ordinal);
        Assert.Equal(0, Chart.TryRender("operator.resources.limits=null", "operator.gcHeapHardLimitPercent=0").ExitCode);
    }

    [Fact]
    public void Kustomize_ships_the_same_heap_limit_and_container_memory_as_the_chart()
    {
        var chart = Operator(Chart.Render());
        var kustomize = Operator(Kustomize.Default);

        Assert.Equal(PercentOf(chart), PercentOf(kustomize));
        Assert.Equal(chart.Resources.Limits["memory"], kustomize.Resources.Limits["memory"]);
        Assert.Equal(chart.Resources.Requests["memory"], kustomize.Resources.Requests["memory"]);
    }
}
