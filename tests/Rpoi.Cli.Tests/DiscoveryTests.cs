using Rpoi.Operator.Discovery;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Protocol.Keys;

namespace Rpoi.Cli.Tests;

public sealed class DiscoveryTests
{
    private static readonly PartyKeyPair Leaser = PartyKeyPair.Generate(PartyRole.Leaser);
    private static readonly PartyKeyPair Escrow = PartyKeyPair.Generate(PartyRole.Escrow);
    private static readonly DiscoveryOptions Options = new(Leaser.Identity, Escrow.Identity, new Uri("https://escrow.example/"), "rpoi-system");

    [Fact]
    public void The_configmap_round_trips_with_offers_sorted()
    {
        var capacity = new[]
        {
            new TpuCapacity(new TpuShape("tpu-v6e-slice", "2x2"), 1, 8, 4, 1),
            new TpuCapacity(new TpuShape("tpu-v5-lite-podslice", "4x4"), 4, 16, 0, 0),
            new TpuCapacity(new TpuShape("tpu-v5-lite-podslice", "2x4"), 1, 16, 8, 1),
        };
        var now = new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

        var cm = DiscoveryBuilder.ToConfigMap(DiscoveryBuilder.Build(Options, capacity, now), "rpoi-system");
        var (doc, error) = DiscoveryDocument.FromConfigMap(cm);

        Assert.Null(error);
        Assert.Equal(["tpu-v5-lite-podslice 2x4", "tpu-v5-lite-podslice 4x4", "tpu-v6e-slice 2x2"], doc!.Offers.Select(o => $"{o.Accelerator} {o.Topology}"));
        Assert.Equal(new DiscoveryOffer("tpu-v5-lite-podslice", "4x4", 16, 4, 16, 0, 0), doc.Offers[1]);
        Assert.Equal(Leaser.Identity, doc.Leaser.ToIdentity(PartyRole.Leaser, "leaser").Identity);
        Assert.Equal(Escrow.Identity, doc.Escrow.ToIdentity().Identity);
        Assert.Equal("https://escrow.example/", doc.Escrow.Url);
        Assert.Equal(now, doc.UpdatedAt);
        Assert.Equal(Leaser.Identity.Address, cm.Data["leaser.address"]);
        Assert.Equal("rpoi-discovery", cm.Metadata.Name);
    }

    [Fact]
    public void An_address_that_does_not_belong_to_the_published_key_is_refused()
    {
        var doc = DiscoveryBuilder.Build(Options, [], DateTimeOffset.UnixEpoch);
        var forged = doc with { Leaser = doc.Leaser with { Address = PartyKeyPair.Generate(PartyRole.Leaser).Identity.Address } };

        var (parsed, error) = DiscoveryDocument.Parse(forged.ToJson());

        Assert.Null(parsed);
        Assert.Contains("leaser.address/keyId", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{", "not valid JSON")]
    [InlineData("{\"version\":1}", "lacks 'leaser' or 'escrow'")]
    public void A_broken_document_says_what_to_do(string json, string message)
    {
        var (parsed, error) = DiscoveryDocument.Parse(json);

        Assert.Null(parsed);
        Assert.Contains(message, error, StringComparison.Ordinal);
        Assert.Contains("restart the operator", error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_newer_document_asks_for_a_newer_cli()
    {
        var doc = DiscoveryBuilder.Build(Options, [], DateTimeOffset.UnixEpoch) with { Version = 2 };

        var (parsed, error) = DiscoveryDocument.Parse(doc.ToJson());

        Assert.Null(parsed);
        Assert.Contains("upgrade kubectl-rpoi", error, StringComparison.Ordinal);
    }
}
