using System.Text.Json;
using Rpoi.Cli.Support;
using Rpoi.Cli.Tests.Support;
using Rpoi.Protocol;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Cli.Tests;

public sealed class DemoTests : IDisposable
{
    private readonly TempHome home = new();

    [Fact]
    public async Task Demo_runs_a_whole_lifecycle_to_a_verified_receipt()
    {
        // Through the real kubectl, as the README's first command runs it.
        var result = await home.KubectlRpoiAsync("demo");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("refused: LeaseBindingMismatch", result.Out, StringComparison.Ordinal);
        Assert.Contains("cannot open it: WrongRecipient", result.Out, StringComparison.Ordinal);
        Assert.Contains("receipt verified: deposit ToRenter, rent ToLeaser", result.Out, StringComparison.Ordinal);
        Assert.Matches(@"balances: R 11000000 uusd, β 9000000 uusd", result.Out);
    }

    [Fact]
    public async Task Demo_samples_are_signed_by_the_documented_identities()
    {
        var result = await home.RunAsync("demo", "--samples-dir", "samples");
        Assert.True(result.ExitCode == 0, result.ToString());

        using var ids = JsonDocument.Parse(File.ReadAllText(home.File("samples/identities.json")));
        var renter = PartyIdentity.FromJson(ids.RootElement.GetProperty("renter").GetRawText()).Value;
        var leaser = PartyIdentity.FromJson(ids.RootElement.GetProperty("leaser").GetRawText()).Value;
        var escrow = PartyIdentity.FromJson(ids.RootElement.GetProperty("escrow").GetRawText()).Value;
        var lease = Yaml.ReadAll(File.ReadAllText(home.File("samples/lease.yaml"))).Single()!;
        var em = Signed<LeaseRequest>.Parse(lease["spec"]!["request"]!.ToJsonString()).Value;
        var verified = new RequestVerifier(TimeProvider.System).Verify(em, new RequestExpectations("team-a", "train-v5e", leaser.Address, escrow.Address));
        Assert.True(verified.IsOk, verified.Message);
        Assert.Equal(renter, verified.Value.Renter);

        var rating = Yaml.ReadAll(File.ReadAllText(home.File("samples/rating-renter.yaml"))).Single()!;
        var emm = Signed<RenterRating>.Parse(rating["spec"]!["signedRating"]!.ToJsonString()).Value;
        Assert.True(RpoiEquations.VerifyRenterRating(emm, em, null).IsOk);
        var leaserRating = Yaml.ReadAll(File.ReadAllText(home.File("samples/rating-leaser.yaml"))).Single()!;
        Assert.Equal("Leaser", (string?)leaserRating["spec"]!["rater"]);
    }

    public void Dispose() => home.Dispose();
}
