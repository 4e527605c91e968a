using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using k8s;
using Microsoft.Extensions.Time.Testing;
using Rpoi.Cli.Support;
using Rpoi.Cli.Tests.Support;
using Rpoi.Escrow;
using Rpoi.Escrow.Client;
using Rpoi.Escrow.Storage;
using Rpoi.Operator.PhaseOne.Grant;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;
using Rpoi.Protocol.Proof;
using Lease = Rpoi.Operator.Entities.Lease;

namespace Rpoi.Cli.Tests;

/// <summary>
/// proof against the API test server and the real π (Rpoi.Escrow on SQLite, in this process), the test playing β:
/// a lease settled by β's m_final (m''' from π), a renter's claim (m' from the access Secret or from what access kept),
/// and the refusals: not settled, unknown lease, π unreachable, no β signature, a bundle that would not verify.
/// Every bundle written is checked by 'kubectl rpoi verify', once through the real kubectl as a plugin.
/// </summary>
public sealed class ProofTests(ClusterFixture cluster) : IClassFixture<ClusterFixture>, IAsyncLifetime
{
    private const string AdminToken = "proof-test-admin";

    private readonly TempHome home = new();
    private readonly FakeTimeProvider time = new(DateTimeOffset.UtcNow);
    private WebApplication app = null!;
    private HttpClient http = null!;
    private string url = "";

    public async Task InitializeAsync()
    {
        var store = new SqliteEscrowStore(home.File("escrow.db"));
        await store.InitializeAsync(CancellationToken.None);
        app = EscrowHost.Build(new EscrowOptions { Database = home.File("escrow.db") }, new EscrowHostParts(store, cluster.Escrow, time, [cluster.Leaser.Identity], Encoding.UTF8.GetBytes(AdminToken)),
            "http://127.0.0.1:0", b => b.Logging.ClearProviders());
        await app.StartAsync();
        url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single() + "/";
        http = new HttpClient();
        Assert.Equal(0, (await home.RunAsync("keygen")).ExitCode);
    }

    private EscrowClient Client(EscrowCredentials credentials) => new(http, new EscrowClientOptions { BaseAddress = new Uri(url), Credentials = credentials, Time = time, MaxAttempts = 1 });

    private async Task<CliResult> Run(params string[] args) => await home.RunAsync(time, ["--kubeconfig", cluster.Kubeconfig, .. args]);

    /// <summary>A lease requested by the CLI, pledged to π and made Active with a sealed grant, as β does.</summary>
    private async Task<(Signed<LeaseRequest> Request, string GrantDigest)> ActiveAsync(string name)
    {
        var request = await Run("request", "--name", name, "--chips", "8", "--accelerator", "tpu-v5-lite-podslice", "--topology", "2x4",
            "--duration", "1h", "--deposit", "1500000uusd", "--rent", "9000000uusd", "--apply");
        Assert.True(request.ExitCode == 0, request.ToString());
        var em = CliContext.RequestOf(await cluster.GetLeaseAsync(name));
        var renter = KeyFile.Load(home.File(".rpoi/renter.key")).Value.Keys.Identity.Address;
        await Client(EscrowCredentials.Admin(AdminToken)).DepositAsync(new DepositRequest($"fund-{name}", renter, new EscrowAmount("10500000", "uusd")));
        await Client(EscrowCredentials.Leaser(cluster.Leaser)).PledgeAsync(em);
        var grant = await cluster.ActivateAsync(name);
        var digest = RpoiEquations.GrantDigest(grant);
        await cluster.PatchStatusAsync(name, new { grantDigest = digest });
        return (em, digest);
    }

    /// <summary>The return (the operator deletes the access Secret) and then the renter's rating.</summary>
    private async Task ReturnAsync(string name, bool rate = true)
    {
        if (rate)
        {
            // Rated while the Secret is there, so the digest is the renter's own.
            var rated = await Run("rate", name, "--score", "4", "--apply");
            Assert.True(rated.ExitCode == 0, rated.ToString());
        }

        await cluster.Client.CoreV1.DeleteNamespacedSecretAsync(GrantIssuer.SecretName(name), ClusterFixture.Namespace);
        await cluster.PatchStatusAsync(name, new { phase = "AwaitingRatings" });
    }

    /// <summary>β's m_final to π with both ratings, and π's receipt in the Lease's status, as the operator records it.</summary>
    private async Task<SettlementView> SettledByLeaserAsync(string name)
    {
        var (em, digest) = await ActiveAsync(name);
        await ReturnAsync(name);
        var rating = (await cluster.Client.CustomObjects.GetNamespacedCustomObjectAsync(Lease.Group, Lease.Version, ClusterFixture.Namespace, Rpoi.Operator.Entities.Rating.Plural, Manifests.RenterRatingName(name)))!;
        var resource = KubernetesJson.Deserialize<Rpoi.Operator.Entities.Rating>(((System.Text.Json.JsonElement)rating).GetRawText());
        var signed = Signed<RenterRating>.Parse(System.Text.Json.JsonSerializer.Serialize(resource.Spec.SignedRating)).Value;
        var final = RpoiEquations.SealFinal(em, digest, signed, new Rating(5, "paid on time", time.GetUtcNow()), cluster.Leaser, cluster.Escrow.Identity);
        var settlement = await Client(EscrowCredentials.Leaser(cluster.Leaser)).SettleAsync(final);
        await cluster.PatchStatusAsync(name, new { phase = "Settled", settlement = new { renterRated = true, leaserRated = true, receipt = settlement.Receipt.GetRawText(), settledAt = DateTime.UtcNow } });
        return settlement;
    }

    private static ProofBundle Bundle(string json)
    {
        var parsed = ProofBundle.Parse(json);
        Assert.True(parsed.IsOk, parsed.Message);
        return parsed.Value;
    }

    [Fact]
    public async Task Proof_of_a_lease_settled_by_beta_carries_m_triple_prime_from_pi_and_verify_accepts_it()
    {
        var settlement = await SettledByLeaserAsync("proof-final");

        var proof = await Run("proof", "proof-final", "--escrow-url", url, "-o", "bundle.json");

        Assert.True(proof.ExitCode == 0, proof.ToString());
        Assert.Contains($"wrote {home.File("bundle.json")}: lease team-a/proof-final", proof.Out, StringComparison.Ordinal);
        Assert.Contains("settled by LeaserFinal, all 13 checks ok", proof.Out, StringComparison.Ordinal);
        var bundle = Bundle(File.ReadAllText(home.File("bundle.json")));
        Assert.Equal(settlement.LeaserFinal!.Value.GetRawText(), bundle.LeaserFinal!.ToJson());
        Assert.Equal(settlement.Receipt.GetRawText(), bundle.Receipt!.ToJson());
        // m' holds σ and its token: a bundle that has m''' leaves it out.
        Assert.Null(bundle.GrantedLease);
        Assert.DoesNotContain("lease-token", File.ReadAllText(home.File("bundle.json")), StringComparison.Ordinal);
        Assert.Equal(cluster.Leaser.Identity.SigningKeyBase64, bundle.Keys.Leaser.SigningKey);
        Assert.Equal(4, bundle.RenterRating!.Payload.Rating.Score);

        var verify = await Run("verify", "bundle.json");
        Assert.True(verify.ExitCode == 0, verify.ToString());
        Assert.Contains("verified: lease team-a/proof-final", verify.Out, StringComparison.Ordinal);

        // No -o (or -o -): the bundle alone on stdout, ready for a pipe.
        var piped = await Run("proof", "proof-final", "--escrow-url", url);
        Assert.True(piped.ExitCode == 0, piped.ToString());
        Assert.Equal(bundle.ToJson(), Bundle(piped.Out).ToJson());
        Assert.Equal(piped.Out, (await Run("proof", "proof-final", "--escrow-url", url, "-o", "-")).Out);
    }

    [Fact]
    public async Task Kubectl_rpoi_proof_and_verify_run_through_the_real_kubectl_as_a_plugin()
    {
        await SettledByLeaserAsync("proof-kubectl");
        var env = home.PluginEnvironment();
        env["KUBECONFIG"] = cluster.Kubeconfig;

        var proof = await Processes.RunAsync("kubectl", ["rpoi", "proof", "proof-kubectl", "-n", "team-a", "--escrow-url", url, "-o", "bundle.json"], home.Path, env);
        Assert.True(proof.ExitCode == 0, proof.ToString());
        Assert.True(File.Exists(home.File("bundle.json")));

        // verify needs no cluster: not even a kubeconfig.
        env.Remove("KUBECONFIG");
        var verify = await Processes.RunAsync("kubectl", ["rpoi", "verify", "bundle.json"], home.Path, env);
        Assert.True(verify.ExitCode == 0, verify.ToString());
        Assert.Contains("ok      final", verify.Out, StringComparison.Ordinal);
        Assert.Contains("verified: lease team-a/proof-kubectl", verify.Out, StringComparison.Ordinal);

        env["KUBECONFIG"] = cluster.Kubeconfig;
        var missing = await Processes.RunAsync("kubectl", ["rpoi", "proof", "no-such-lease", "--escrow-url", url], home.Path, env);
        Assert.Equal(ExitCodes.NotFound, missing.ExitCode);
        Assert.Contains("lease team-a/no-such-lease not found", missing.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Proof_of_a_renters_claim_takes_m_prime_from_what_access_kept_after_the_secret_is_gone()
    {
        await ActiveAsync("proof-claim-cached");
        var access = await Run("access", "proof-claim-cached");
        Assert.True(access.ExitCode == 0, access.ToString());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(GrantCache.PathFor(home.Environment(), ClusterFixture.Namespace, "proof-claim-cached")));
        await ReturnAsync("proof-claim-cached");
        time.Advance(TimeSpan.FromHours(98));
        var claim = await Run("claim", "proof-claim-cached", "--escrow-url", url);
        Assert.True(claim.ExitCode == 0, claim.ToString());

        var proof = await Run("proof", "proof-claim-cached", "--escrow-url", url, "-o", "claim.json");

        Assert.True(proof.ExitCode == 0, proof.ToString());
        Assert.Contains("settled by RenterFallback", proof.Out, StringComparison.Ordinal);
        Assert.Contains("warning: this bundle carries m', which holds σ with the lease's ServiceAccount token", proof.Err, StringComparison.Ordinal);
        var bundle = Bundle(File.ReadAllText(home.File("claim.json")));
        Assert.Null(bundle.LeaserFinal);
        Assert.Equal(RpoiEquations.TransactionHashOf(bundle.Request).Hex, bundle.GrantedLease!.Payload.H);
        Assert.Equal(SettlementSource.RenterFallback, bundle.Receipt!.Payload.Source);
        var verify = await Run("verify", "claim.json");
        Assert.True(verify.ExitCode == 0, verify.ToString());
        Assert.Contains("ok      grant.lease", verify.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Proof_of_a_renters_claim_opens_the_access_secret_while_it_exists()
    {
        await ActiveAsync("proof-claim-secret");
        var rated = await Run("rate", "proof-claim-secret", "--score", "2", "--apply");
        Assert.True(rated.ExitCode == 0, rated.ToString());
        time.Advance(TimeSpan.FromHours(98));
        Assert.Equal(0, (await Run("claim", "proof-claim-secret", "--escrow-url", url)).ExitCode);

        var proof = await Run("proof", "proof-claim-secret", "--escrow-url", url, "-o", "secret.json");

        Assert.True(proof.ExitCode == 0, proof.ToString());
        Assert.NotNull(Bundle(File.ReadAllText(home.File("secret.json"))).GrantedLease);
        Assert.Equal(0, (await Run("verify", "secret.json")).ExitCode);
    }

    [Fact]
    public async Task Proof_of_a_renters_claim_with_no_m_prime_anywhere_says_why_no_beta_signature_is_available()
    {
        await ActiveAsync("proof-claim-none");
        await ReturnAsync("proof-claim-none");
        time.Advance(TimeSpan.FromHours(98));
        Assert.Equal(0, (await Run("claim", "proof-claim-none", "--escrow-url", url)).ExitCode);

        var proof = await Run("proof", "proof-claim-none", "--escrow-url", url, "-o", "none.json");

        Assert.Equal(ExitCodes.NotFound, proof.ExitCode);
        Assert.Contains("no β signature over σ's digest is available for lease team-a/proof-claim-none: π settled it on the renter's claim", proof.Err, StringComparison.Ordinal);
        Assert.Contains("the access Secret team-a/proof-claim-none-access is gone", proof.Err, StringComparison.Ordinal);
        Assert.Contains("'kubectl rpoi access proof-claim-none -n team-a' was not run on this machine", proof.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(home.File("none.json")));
    }

    [Fact]
    public async Task Proof_of_a_lease_not_settled_yet_or_unknown_or_with_pi_unreachable_says_which()
    {
        await ActiveAsync("proof-active");

        var active = await Run("proof", "proof-active", "--escrow-url", url, "-o", "active.json");
        Assert.Equal(ExitCodes.NotFound, active.ExitCode);
        Assert.Contains("lease team-a/proof-active is not settled yet (phase Active; π at", active.Err, StringComparison.Ordinal);
        Assert.Contains("export it once the lease is Settled", active.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(home.File("active.json")));

        var unknown = await Run("proof", "no-such-lease", "--escrow-url", url);
        Assert.Equal(ExitCodes.NotFound, unknown.ExitCode);
        Assert.Contains("lease team-a/no-such-lease not found", unknown.Err, StringComparison.Ordinal);
        var elsewhere = await Run("proof", "proof-active", "-n", "no-such-namespace", "--escrow-url", url);
        Assert.Equal(ExitCodes.NotFound, elsewhere.ExitCode);
        Assert.Contains("namespace no-such-namespace does not exist", elsewhere.Err, StringComparison.Ordinal);

        // Discovery's π URL (127.0.0.1:1) answers nothing.
        var unreachable = await Run("proof", "proof-active", "-o", "down.json");
        Assert.Equal(ExitCodes.Unreachable, unreachable.ExitCode);
        Assert.Contains("cannot reach π at http://127.0.0.1:1/", unreachable.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(home.File("down.json")));
    }

    [Fact]
    public async Task Proof_refuses_to_write_a_bundle_that_does_not_verify_and_names_the_check()
    {
        await SettledByLeaserAsync("proof-wrong-key");
        var stranger = PartyKeyPair.Generate(PartyRole.Escrow);
        File.WriteAllText(home.File("other-escrow.json"), stranger.Identity.ToJson());
        File.WriteAllText(home.File("bundle.json"), "an older file that must stay as it was");

        var proof = await Run("proof", "proof-wrong-key", "--escrow-url", url, "--escrow-identity", "other-escrow.json", "-o", "bundle.json");

        Assert.Equal(ExitCodes.VerificationFailed, proof.ExitCode);
        Assert.Contains("FAILED  request.parties  PartyMismatch: ", proof.Err, StringComparison.Ordinal);
        Assert.Matches("(?m)^FAILED  receipt  (BadSignature|SignerMismatch): ", proof.Err);
        Assert.Contains("the bundle assembled for lease team-a/proof-wrong-key does not verify", proof.Err, StringComparison.Ordinal);
        Assert.Contains("first 'request.parties'", proof.Err, StringComparison.Ordinal);
        Assert.Contains("nothing was written", proof.Err, StringComparison.Ordinal);
        Assert.Equal("an older file that must stay as it was", File.ReadAllText(home.File("bundle.json")));
        Assert.Empty(Directory.EnumerateFiles(home.Path, ".bundle.json.*"));
    }

    [Fact]
    public async Task Proof_of_an_m_final_settlement_from_before_pi_kept_m_triple_prime_says_no_beta_signature_is_available()
    {
        await SettledByLeaserAsync("proof-old-pi");
        // The row as an older π wrote it: the settlement and its receipt, no m'''.
        await using (var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={home.File("escrow.db")};Pooling=False"))
        {
            await db.OpenAsync();
            await using var cmd = db.CreateCommand();
            cmd.CommandText = "UPDATE settlements SET leaser_final = NULL";
            Assert.Equal(1, await cmd.ExecuteNonQueryAsync());
        }

        var proof = await Run("proof", "proof-old-pi", "--escrow-url", url, "-o", "old.json");

        Assert.Equal(ExitCodes.NotFound, proof.ExitCode);
        Assert.Contains("settled lease team-a/proof-old-pi from β's m_final but returns no leaserFinal (m''')", proof.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(home.File("old.json")));
    }

    [Fact]
    public async Task Proof_refuses_a_lease_whose_recorded_receipt_is_not_the_one_pi_returns()
    {
        var settlement = await SettledByLeaserAsync("proof-two-receipts");
        // Validly signed by π's key, but not what π's ledger holds for this H.
        var real = Signed<SettlementReceipt>.Parse(settlement.Receipt.GetRawText()).Value.Payload;
        var other = RpoiEquations.SignReceipt(real with { LedgerEntry = "ledger:999" }, cluster.Escrow);
        await cluster.PatchStatusAsync("proof-two-receipts", new { settlement = new { receipt = other.ToJson() } });

        var proof = await Run("proof", "proof-two-receipts", "--escrow-url", url, "-o", "two.json");

        Assert.Equal(ExitCodes.VerificationFailed, proof.ExitCode);
        Assert.Contains("lease team-a/proof-two-receipts's status.settlement.receipt is not the receipt π at", proof.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(home.File("two.json")));
    }

    [Fact]
    public async Task Proof_of_a_never_served_refund_says_there_is_no_grant_to_prove()
    {
        var (em, _) = await ActiveAsync("proof-never-served");
        var notice = RpoiEquations.SignNeverServed(em, "no capacity", time.GetUtcNow(), cluster.Leaser);
        await Client(EscrowCredentials.Leaser(cluster.Leaser)).NeverServedAsync(notice);

        var proof = await Run("proof", "proof-never-served", "--escrow-url", url);

        Assert.Equal(ExitCodes.NotFound, proof.ExitCode);
        Assert.Contains("was refunded by π on β's never-served notice", proof.Err, StringComparison.Ordinal);
        Assert.Equal("", proof.Out);
    }

    [Fact]
    public async Task Proof_help_shows_the_usage_and_examples()
    {
        var help = await home.RunAsync("proof", "--help");
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("kubectl rpoi proof <lease> [options]", help.Out, StringComparison.Ordinal);
        Assert.Contains("Examples:\n  kubectl rpoi proof train-1 -n team-a -o bundle.json", help.Out.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        Assert.Contains("-o, --output <output>", help.Out, StringComparison.Ordinal);
    }

    public async Task DisposeAsync()
    {
        http?.Dispose();
        if (app is not null)
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }

        home.Dispose();
    }
}
