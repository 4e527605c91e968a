using System.Text.Json;
using Rpoi.Cli.Tests.Support;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;
using Rpoi.Protocol.Proof;

namespace Rpoi.Cli.Tests;

public sealed class VerifyCommandTests
{
    private static readonly DateTimeOffset Now = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    /// <summary>One lease through the real equations, from E(m) to π's receipt, as the bundle 'proof' exports.</summary>
    private static ProofBundle Bundle()
    {
        var renter = PartyKeyPair.Generate(PartyRole.Renter);
        var leaser = PartyKeyPair.Generate(PartyRole.Leaser);
        var escrow = PartyKeyPair.Generate(PartyRole.Escrow);
        var m = Requests.New(renter.Identity, leaser.Identity.Address, escrow.Identity.Address, "tpu-v5-lite-podslice", "2x4", 8, 3600, Now,
            new Money("1500000", "uusd"), new Money("9000000", "uusd"), new LeaseRef("team-a", "train-1"));
        var em = RpoiEquations.SignRequest(m, renter);
        var verified = RpoiEquations.VerifyRequest(em).Value;
        var sigma = new AccessGrant(["node-a"], "pool", "tpu-v5-lite-podslice", "2x4", new Dictionary<string, string> { ["rpoi.io/lease"] = "team-a.train-1" },
            new Toleration("rpoi.io/lease", "Equal", "team-a.train-1", "NoSchedule"), "kubeconfig", JsonDocument.Parse("{}").RootElement.Clone(), Now, Now.AddHours(1));
        var opened = RpoiEquations.OpenGrant(RpoiEquations.SealGrant(verified, sigma, leaser), renter, em, leaser.Identity).Value;
        var rating = RpoiEquations.SignRenterRating(em, opened.GrantDigest, new Rating(5, "fast", Now.AddHours(1)), renter);
        var mFinal = RpoiEquations.SealFinal(em, opened.GrantDigest, rating, new Rating(4, "", Now.AddHours(1)), leaser, escrow.Identity);
        var settled = RpoiEquations.OpenFinal(mFinal, escrow, leaser.Identity).Value;
        var receipt = RpoiEquations.SignReceipt(new SettlementReceipt(MessageKinds.Receipt, verified.H.Hex, escrow.Identity.Address, settled.Source, settled.Decision,
            RpoiEquations.TransfersFor(m, settled.Decision, escrow.Identity.Address), Now.AddHours(2), "ledger:1"), escrow);
        var keys = new ProofKeys(renter.Identity.ToPublicKeys(), leaser.Identity.ToPublicKeys(), escrow.Identity.ToPublicKeys());
        return new ProofBundle(ProofBundle.CurrentFormat, em, verified.H.Hex, opened.GrantDigest, keys, null, rating, settled.Final, receipt);
    }

    [Fact]
    public async Task Verify_prints_every_check_ok_and_exits_zero()
    {
        using var home = new TempHome();
        var bundle = Bundle();
        File.WriteAllText(home.File("bundle.json"), bundle.ToJson());

        var result = await home.RunAsync("verify", "bundle.json");

        Assert.True(result.ExitCode == ExitCodes.Ok, result.ToString());
        foreach (var name in ProofBundleVerifier.Verify(bundle).Select(c => c.Name))
        {
            Assert.Contains($"ok      {name}\n", result.Out.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        }

        Assert.Contains($"H {bundle.H}", result.Out, StringComparison.Ordinal);
        Assert.Empty(result.Err);
    }

    [Fact]
    public async Task Verify_of_a_tampered_bundle_names_the_first_failed_check_and_exits_4()
    {
        using var home = new TempHome();
        var bundle = Bundle();
        var other = Bundle();
        File.WriteAllText(home.File("bundle.json"), (bundle with { Receipt = other.Receipt }).ToJson());

        var result = await home.RunAsync("verify", "bundle.json");

        Assert.Equal(ExitCodes.VerificationFailed, result.ExitCode);
        Assert.Contains("FAILED  receipt ", result.Out, StringComparison.Ordinal);
        Assert.Contains("ok      request.signature", result.Out, StringComparison.Ordinal);
        Assert.Contains("first 'receipt'", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_of_a_missing_file_exits_3_and_says_how_to_get_one()
    {
        using var home = new TempHome();

        var result = await home.RunAsync("verify", "nope.json");

        Assert.Equal(ExitCodes.NotFound, result.ExitCode);
        Assert.Contains("kubectl rpoi proof", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_of_a_file_that_is_not_a_bundle_exits_4_naming_the_format()
    {
        using var home = new TempHome();
        File.WriteAllText(home.File("bundle.json"), """{"format":"rpoi.proof-bundle/v1"}""");

        var result = await home.RunAsync("verify", "bundle.json");

        Assert.Equal(ExitCodes.VerificationFailed, result.ExitCode);
        Assert.Contains("rpoi.proof-bundle/v1", result.Err, StringComparison.Ordinal);
        Assert.Empty(result.Out);
    }

    [Fact]
    public async Task Verify_through_the_real_kubectl_with_no_cluster_exits_0_then_4_for_a_changed_h()
    {
        using var home = new TempHome();
        var bundle = Bundle();
        File.WriteAllText(home.File("good.json"), bundle.ToJson());
        File.WriteAllText(home.File("bad.json"), (bundle with { H = new string('0', 64) }).ToJson());
        // No KUBECONFIG and no π: verify must not need either.
        home.Variables["KUBECONFIG"] = home.File("absent-kubeconfig");

        var good = await home.KubectlRpoiAsync("verify", "good.json");
        var bad = await home.KubectlRpoiAsync("verify", "bad.json");

        Assert.True(good.ExitCode == ExitCodes.Ok, good.ToString());
        Assert.True(bad.ExitCode == ExitCodes.VerificationFailed, bad.ToString());
        Assert.Contains("FAILED  h ", bad.Out, StringComparison.Ordinal);
        Assert.Contains("first 'h'", bad.Err, StringComparison.Ordinal);
    }
}
