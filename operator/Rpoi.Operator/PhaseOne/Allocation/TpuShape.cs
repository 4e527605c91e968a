using System.Globalization;

namespace Rpoi.Operator.PhaseOne.Allocation;

/// <summary>
/// An accelerator type and a slice topology, e.g. <c>tpu-v5-lite-podslice</c> / <c>4x4</c>. The topology's
/// product is the number of chips in one slice; a slice spans several hosts when a host holds fewer chips.
/// </summary>
public sealed record TpuShape(string Accelerator, string Topology)
{
    /// <summary>Chips in one slice of this topology (the product of its dimensions).</summary>
    public int ChipsPerSlice { get; } = ChipsOf(Topology);

    /// <summary>The product of a topology's dimensions, or 0 when the text is not a topology.</summary>
    public static int ChipsOf(string? topology)
    {
        if (string.IsNullOrEmpty(topology))
        {
            return 0;
        }

        var product = 1L;
        foreach (var part in topology.Split('x'))
        {
            if (part.Length is 0 or > 4 || !int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var dim) || dim <= 0)
            {
                return 0;
            }

            product *= dim;
            if (product > 1 << 20)
            {
                return 0;
            }
        }

        return (int)product;
    }

    /// <summary>Whether <paramref name="topology"/> is one to three positive dimensions joined by <c>x</c>.</summary>
    public static bool IsValidTopology(string? topology) =>
        ChipsOf(topology) > 0 && topology!.Split('x').Length is >= 1 and <= 3;

    /// <inheritdoc/>
    public override string ToString() => $"{Accelerator} {Topology}";
}
