using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Rpoi.Cli.Support;
using Rpoi.Cli.Tests.Support;
using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Protocol;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Cli.Tests;

public sealed class RequestTests : IDisposable
{
    private static readonly PartyIdentity Leaser = PartyKeyPair.Generate(PartyRole.Leaser).Identity;
    private static readonly PartyIdentity Escrow = PartyKeyPair.Generate(PartyRole.Escrow).Identity;
    private readonly TempHome home = new();
    private readonly FakeTimeProvider time = new(new DateTimeOffset(2026, 11, 25, 12, 0, 0, TimeSpan.Zero));

    private string[] Offline(params string[] extra) =>
    [
        "request", "--name", "train-1", "-n", "team-a", "--chips", "8", "--accelerator", "tpu-v5-lite-podslice", "--topology", "2x4",
        "--duration", "4h", "--deposit", "1500000uusd", "--rent", "9000000uusd", "--leaser", Leaser.Address, "--escrow", Escrow.Address, .. extra,
    ];

    [Fact]
    public async Task Request_prints_a_lease_whose_signature_and_binding_verify()
    {
        Assert.Equal(0, (await home.RunAsync("keygen")).ExitCode);
        var renter = KeyFile.Load(Path.Combine(home.Path, ".rpoi", "renter.key")).Value.Keys.Identity;

        var result = await home.RunAsync(time, Offline("--rating-window", "1h"));

        Assert.Equal(0, result.ExitCode);
        var lease = Yaml.ReadAll(result.Out).Single()!;
        Assert.Equal("rpoi.io/v1alpha1", (string?)lease["apiVersion"]);
        Assert.Equal("Lease", (string?)lease["kind"]);
        Assert.Equal("train-1", (string?)lease["metadata"]!["name"]);
        Assert.Equal("team-a", (string?)lease["metadata"]!["namespace"]);
        // The operator's finalizer from the start: the operator need not patch it in.
        Assert.Equal([LeaseConditions.Finalizer], lease["metadata"]!["finalizers"]!.AsArray().Select(f => (string?)f));
        Assert.Equal(3600, (long)lease["spec"]!["ratingWindowSeconds"]!);
        var signed = Signed<LeaseRequest>.Parse(lease["spec"]!["request"]!.ToJsonString());
        Assert.True(signed.IsOk, signed.Message);
        var verified = new RequestVerifier(time).Verify(signed.Value, new RequestExpectations("team-a", "train-1", Leaser.Address, Escrow.Address));
        Assert.True(verified.IsOk, verified.Message);
        Assert.Equal(renter, verified.Value.Renter);
        var m = signed.Value.Payload;
        Assert.Equal((8, "tpu-v5-lite-podslice", "2x4", 14400L), (m.Chips, m.Accelerator, m.Topology, m.DurationSeconds));
        Assert.Equal(new Money("1500000", "uusd"), m.Deposit);
        Assert.Equal(new Money("9000000", "uusd"), m.Rent);
        Assert.Contains($"H = {RpoiEquations.TransactionHashOf(signed.Value).Hex}", result.Out, StringComparison.Ordinal);

        // The binding is what stops a copy: the same request in another namespace fails.
        var copied = new RequestVerifier(time).Verify(signed.Value, new RequestExpectations("team-b", "train-1", Leaser.Address, Escrow.Address));
        Assert.Equal(ReasonCode.LeaseBindingMismatch, copied.Reason);
    }

    [Fact]
    public async Task Json_output_is_the_same_lease()
    {
        Assert.Equal(0, (await home.RunAsync("keygen")).ExitCode);

        var result = await home.RunAsync(time, Offline("-o", "json"));

        Assert.Equal(0, result.ExitCode);
        var lease = JsonNode.Parse(result.Out)!;
        Assert.Equal("rpoi.io/lease", (string?)lease["metadata"]!["finalizers"]![0]);
        Assert.True(Signed<LeaseRequest>.Parse(lease["spec"]!["request"]!.ToJsonString()).IsOk);
    }

    [Theory]
    [InlineData("--chips", "eight", "--chips")]
    [InlineData("--chips", "0", "--chips")]
    [InlineData("--duration", "forever", "--duration")]
    [InlineData("--deposit", "1.5usd", "--deposit")]
    [InlineData("--rent", "9000000", "--rent")]
    [InlineData("--rent", "9000000uatom", "--rent")]
    [InlineData("--name", "Train_1", "--name")]
    [InlineData("--rating-window", "soon", "--rating-window")]
    [InlineData("-o", "xml", "xml")]
    [InlineData("--leaser", "beta", "--leaser")]
    public async Task A_bad_flag_exits_2_and_names_the_flag(string flag, string value, string named)
    {
        Assert.Equal(0, (await home.RunAsync("keygen")).ExitCode);
        var args = Offline().ToList();
        var at = args.IndexOf(flag);
        if (at >= 0)
        {
            args[at + 1] = value;
        }
        else
        {
            args.AddRange([flag, value]);
        }

        var result = await home.RunAsync(time, [.. args]);

        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains(named, result.Err, StringComparison.Ordinal);
        Assert.Empty(result.Out);
    }

    [Fact]
    public async Task A_missing_required_flag_is_named()
    {
        var result = await home.RunAsync("request", "--name", "x");

        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains("'--chips' is required", result.Err, StringComparison.Ordinal);
        Assert.Contains("kubectl rpoi request --help", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_command_is_a_usage_error()
    {
        var result = await home.RunAsync("lease-me");

        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains("lease-me", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_lists_every_command()
    {
        var result = await home.RunAsync("--help");

        Assert.Equal(0, result.ExitCode);
        foreach (var command in new[] { "keygen", "request", "access", "rate", "status", "balance", "offers", "demo", "sandbox" })
        {
            Assert.Contains(command, result.Out, StringComparison.Ordinal);
        }
    }

    public void Dispose() => home.Dispose();
}
