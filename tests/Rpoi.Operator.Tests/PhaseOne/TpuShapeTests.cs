using Rpoi.Operator.PhaseOne.Allocation;

namespace Rpoi.Operator.Tests.PhaseOne;

public sealed class TpuShapeTests
{
    [Theory]
    [InlineData("2x2", 4)]
    [InlineData("2x4", 8)]
    [InlineData("4x4", 16)]
    [InlineData("2x2x2", 8)]
    [InlineData("1x1", 1)]
    [InlineData("", 0)]
    [InlineData("2x", 0)]
    [InlineData("0x4", 0)]
    [InlineData("2by2", 0)]
    [InlineData("-2x2", 0)]
    [InlineData("99999x99999", 0)]
    public void Chips_per_slice_is_the_product_of_the_dimensions(string topology, int chips)
    {
        Assert.Equal(chips, TpuShape.ChipsOf(topology));
        Assert.Equal(chips > 0, TpuShape.IsValidTopology(topology));
    }

    [Theory]
    [InlineData("4x4", 4, 4)]
    [InlineData("2x4", 8, 1)]
    [InlineData("2x2", 4, 1)]
    [InlineData("8x8", 4, 16)]
    public void Hosts_per_slice_follow_chips_per_host(string topology, int chipsPerHost, int hosts) =>
        Assert.Equal(hosts, TpuSlices.HostsPerSlice(new TpuShape("tpu-v5-lite-podslice", topology), chipsPerHost));
}
