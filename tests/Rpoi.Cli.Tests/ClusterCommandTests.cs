using System.Text.Json.Nodes;
using k8s;
using Rpoi.Cli.Support;
using Rpoi.Cli.Tests.Support;
using Rpoi.Operator.PhaseOne.Grant;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Cli.Tests;

/// <summary>access, rate, status, offers and request --apply against the API test server, with the test playing β and π.</summary>
public sealed class ClusterCommandTests(ClusterFixture cluster) : IClassFixture<ClusterFixture>, IDisposable
{
    private readonly TempHome home = new();

    private async Task<CliResult> Run(params string[] args) => await home.RunAsync(["--kubeconfig", cluster.Kubeconfig, .. args]);

    private async Task<string> RequestAsync(string name)
    {
        Assert.Equal(0, (await home.RunAsync("keygen")).ExitCode);
        var result = await Run("request", "--name", name, "--chips", "8", "--accelerator", "tpu-v5-lite-podslice", "--topology", "2x4",
            "--duration", "1h", "--deposit", "1500000uusd", "--rent", "9000000uusd", "--apply");
        Assert.True(result.ExitCode == 0, result.ToString());
        return name;
    }

    [Fact]
    public async Task Offers_lists_what_discovery_publishes()
    {
        var result = await Run("offers");

        Assert.Equal(0, result.ExitCode);
        var lines = result.Out.Split('\n');
        var v5e2x4 = Array.FindIndex(lines, l => l.StartsWith("tpu-v5-lite-podslice", StringComparison.Ordinal) && l.Contains(" 2x4 ", StringComparison.Ordinal));
        var v5e4x4 = Array.FindIndex(lines, l => l.StartsWith("tpu-v5-lite-podslice", StringComparison.Ordinal) && l.Contains(" 4x4 ", StringComparison.Ordinal));
        Assert.True(v5e2x4 >= 0 && v5e4x4 > v5e2x4, result.Out);
        Assert.Contains(lines, l => l.StartsWith("tpu-v6e-slice", StringComparison.Ordinal) && l.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [_, "2x2", "4", "1", "4", "1", "8"]);
        Assert.Contains(cluster.Leaser.Identity.Address, result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Request_apply_takes_the_parties_from_discovery()
    {
        var name = await RequestAsync("apply-1");

        var lease = await cluster.GetLeaseAsync(name);
        var em = CliContext.RequestOf(lease);
        Assert.Equal(cluster.Leaser.Identity.Address, em.Payload.Leaser);
        Assert.Equal(cluster.Escrow.Identity.Address, em.Payload.Escrow);
        Assert.Equal(new LeaseRef(ClusterFixture.Namespace, name), em.Payload.Lease);

        var again = await Run("request", "--name", name, "--chips", "8", "--accelerator", "tpu-v5-lite-podslice", "--topology", "2x4",
            "--duration", "1h", "--deposit", "1uusd", "--rent", "1uusd", "--apply");
        Assert.Equal(ExitCodes.Conflict, again.ExitCode);
        Assert.Contains("already exists", again.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("tpu-v5p-slice", "2x2x1", "8", "not on offer")]
    [InlineData("tpu-v5-lite-podslice", "4x4", "8", "not a multiple of 16")]
    public async Task Request_refuses_what_is_not_on_offer(string accelerator, string topology, string chips, string message)
    {
        Assert.Equal(0, (await home.RunAsync("keygen")).ExitCode);

        var result = await Run("request", "--name", "nope", "--chips", chips, "--accelerator", accelerator, "--topology", topology,
            "--duration", "1h", "--deposit", "1uusd", "--rent", "1uusd", "--apply");

        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains(message, result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Access_opens_the_grant_verifies_beta_and_writes_a_private_kubeconfig()
    {
        var name = await RequestAsync("access-1");
        var notYet = await Run("access", name);
        Assert.Equal(ExitCodes.NotFound, notYet.ExitCode);
        Assert.Contains("--wait", notYet.Err, StringComparison.Ordinal);

        var grant = await cluster.ActivateAsync(name);
        var result = await Run("access", name, "--pod-template-out", "pod.yaml");

        Assert.True(result.ExitCode == 0, result.ToString());
        var kubeconfig = home.File($"{name}.kubeconfig");
        Assert.Equal(grant.Kubeconfig, File.ReadAllText(kubeconfig));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(kubeconfig));
        Assert.Contains($"node-{name} (node pool pool-a)", result.Out, StringComparison.Ordinal);
        Assert.Contains($"rpoi.io/lease=team-a:NoSchedule", result.Out, StringComparison.Ordinal);
        Assert.Contains($"grant digest:       {RpoiEquations.GrantDigest(grant)}", result.Out, StringComparison.Ordinal);
        var pod = Yaml.ReadAll(File.ReadAllText(home.File("pod.yaml"))).Single()!;
        Assert.Equal("Pod", (string?)pod["kind"]);
        Assert.Equal("team-a", (string?)pod["spec"]!["nodeSelector"]!["rpoi.io/lease-namespace"]);
    }

    [Fact]
    public async Task Access_wait_follows_the_lease_until_active()
    {
        var name = await RequestAsync("wait-1");
        var access = home.RunAsync("--kubeconfig", cluster.Kubeconfig, "access", name, "--wait", "--timeout", "60s");

        await cluster.PatchStatusAsync(name, new { phase = "Allocating", queuePosition = 1 });
        await cluster.ActivateAsync(name);
        var result = await access;

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains($"{name}: Active", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Access_wait_reports_a_failed_lease()
    {
        var name = await RequestAsync("wait-failed");
        await cluster.PatchStatusAsync(name, new { phase = "Failed", conditions = new[] { new { type = "Ready", status = "False", reason = "PledgeRefused", message = "insufficient funds", lastTransitionTime = DateTime.UtcNow } } });

        var result = await Run("access", name, "--wait", "--timeout", "30s");

        Assert.Equal(ExitCodes.LeaseFailed, result.ExitCode);
        Assert.Contains("PledgeRefused: insufficient funds", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Access_with_the_wrong_key_exits_4_and_says_whose_key_it_needs()
    {
        var name = await RequestAsync("wrong-key");
        await cluster.ActivateAsync(name);
        Assert.Equal(0, (await home.RunAsync("keygen", "--out", "other.key")).ExitCode);

        var result = await Run("access", name, "--key", "other.key");

        Assert.Equal(ExitCodes.VerificationFailed, result.ExitCode);
        Assert.Contains("only the requester's key opens the grant", result.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(home.File($"{name}.kubeconfig")));
    }

    [Fact]
    public async Task A_grant_not_signed_by_beta_exits_4()
    {
        var name = await RequestAsync("forged");
        await cluster.ActivateAsync(name, signAs: PartyKeyPair.Generate(PartyRole.Leaser));

        var result = await Run("access", name);

        Assert.Equal(ExitCodes.VerificationFailed, result.ExitCode);
        Assert.Contains("did not verify", result.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(home.File($"{name}.kubeconfig")));
    }

    [Fact]
    public async Task Rate_signs_a_rating_whose_e_m_double_prime_verifies_even_after_the_secret_is_gone()
    {
        var name = await RequestAsync("rate-1");
        var grant = await cluster.ActivateAsync(name);
        Assert.Equal(0, (await Run("access", name)).ExitCode);
        await cluster.Client.CoreV1.DeleteNamespacedSecretAsync(GrantIssuer.SecretName(name), ClusterFixture.Namespace);

        var result = await Run("rate", name, "--score", "4", "--comment", "ok: fast");

        Assert.True(result.ExitCode == 0, result.ToString());
        var rating = Yaml.ReadAll(result.Out).Single()!;
        Assert.Equal("Rating", (string?)rating["kind"]);
        Assert.Equal("Renter", (string?)rating["spec"]!["rater"]);
        Assert.Equal(4, (long)rating["spec"]!["score"]!);
        var signed = Signed<RenterRating>.Parse(rating["spec"]!["signedRating"]!.ToJsonString());
        Assert.True(signed.IsOk, signed.Message);
        var em = CliContext.RequestOf(await cluster.GetLeaseAsync(name));
        var verified = RpoiEquations.VerifyRenterRating(signed.Value, em, RpoiEquations.GrantDigest(grant));
        Assert.True(verified.IsOk, verified.Message);
        Assert.Equal(new Rating(4, "ok: fast", signed.Value.Payload.Rating.Time), signed.Value.Payload.Rating);

        var applied = await Run("rate", name, "--score", "4", "--apply");
        Assert.True(applied.ExitCode == 0, applied.ToString());
        var stored = await cluster.Client.CustomObjects.GetNamespacedCustomObjectAsync("rpoi.io", "v1alpha1", ClusterFixture.Namespace, "ratings", $"{name}-renter");
        Assert.NotNull(stored);
    }

    [Fact]
    public async Task Rate_falls_back_to_the_leases_status_grant_digest_and_says_it_is_unverified()
    {
        var name = await RequestAsync("rate-status");
        var grant = await cluster.ActivateAsync(name);
        // 'access' never ran on this machine and the Secret is gone: only the operator's record is left.
        await cluster.Client.CoreV1.DeleteNamespacedSecretAsync(GrantIssuer.SecretName(name), ClusterFixture.Namespace);
        var missing = await Run("rate", name, "--score", "3");
        Assert.Equal(ExitCodes.NotFound, missing.ExitCode);
        Assert.Contains("no status.grantDigest", missing.Err, StringComparison.Ordinal);

        var digest = RpoiEquations.GrantDigest(grant);
        await cluster.PatchStatusAsync(name, new { grantDigest = digest });
        var result = await Run("rate", name, "--score", "3");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("status.grantDigest", result.Err, StringComparison.Ordinal);
        Assert.Contains("did not verify", result.Err, StringComparison.Ordinal);
        var signed = Signed<RenterRating>.Parse(Yaml.ReadAll(result.Out).Single()!["spec"]!["signedRating"]!.ToJsonString()).Value;
        Assert.Equal(digest, signed.Payload.GrantDigest);
    }

    [Fact]
    public async Task Rate_shows_the_leases_node_incidents_so_the_renter_can_cite_them()
    {
        var name = await RequestAsync("rate-incidents");
        await cluster.ActivateAsync(name);
        Assert.Equal(0, (await Run("access", name)).ExitCode);
        var quiet = await Run("rate", name, "--score", "4");
        Assert.True(quiet.ExitCode == 0, quiet.ToString());
        Assert.DoesNotContain("nodeIncidents", quiet.Err, StringComparison.Ordinal);

        await cluster.PatchStatusAsync(name, new
        {
            nodeIncidents = new[]
            {
                new { node = "gke-a-0", reason = "NodeNotReady", message = "node gke-a-0 reports Ready=False", startedAt = "2026-12-03T08:00:00Z", endedAt = "2026-12-03T08:05:00Z", durationSeconds = 300, resolution = "Recovered" },
            },
        });
        var result = await Run("rate", name, "--score", "2", "--comment", "node gke-a-0 was NotReady for 300 s");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("status.nodeIncidents", result.Err, StringComparison.Ordinal);
        Assert.Contains("- NodeNotReady node gke-a-0 from 2026-12-03T08:00:00Z to 2026-12-03T08:05:00Z (300 s, Recovered)", result.Err, StringComparison.Ordinal);
        var signed = Signed<RenterRating>.Parse(Yaml.ReadAll(result.Out).Single()!["spec"]!["signedRating"]!.ToJsonString()).Value;
        Assert.Equal("node gke-a-0 was NotReady for 300 s", signed.Payload.Rating.Comment);
    }

    [Fact]
    public async Task Rate_keeps_the_digest_it_verified_and_warns_when_the_status_records_another()
    {
        var name = await RequestAsync("rate-mismatch");
        var grant = await cluster.ActivateAsync(name);
        Assert.Equal(0, (await Run("access", name)).ExitCode);
        var recorded = new string('e', 64);
        await cluster.PatchStatusAsync(name, new { grantDigest = recorded });

        var result = await Run("rate", name, "--score", "2");

        Assert.True(result.ExitCode == 0, result.ToString());
        var signed = Signed<RenterRating>.Parse(Yaml.ReadAll(result.Out).Single()!["spec"]!["signedRating"]!.ToJsonString()).Value;
        Assert.Equal(RpoiEquations.GrantDigest(grant), signed.Payload.GrantDigest);
        Assert.Contains($"status.grantDigest is {recorded}", result.Err, StringComparison.Ordinal);
        Assert.Contains("GrantDigestMismatch", result.Err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("6")]
    public async Task Rate_refuses_a_score_outside_1_to_5(string score)
    {
        var result = await Run("rate", "any", "--score", score);

        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains("--score", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_verifies_pis_receipt_with_pis_key()
    {
        var name = await RequestAsync("status-1");
        var em = CliContext.RequestOf(await cluster.GetLeaseAsync(name));
        var h = RpoiEquations.TransactionHashOf(em);
        var decision = RpoiEquations.Decide(true, true);
        var receipt = RpoiEquations.SignReceipt(new SettlementReceipt(MessageKinds.Receipt, h.Hex, cluster.Escrow.Identity.Address, SettlementSource.LeaserFinal, decision,
            RpoiEquations.TransfersFor(em.Payload, decision, cluster.Escrow.Identity.Address), DateTimeOffset.UtcNow, "ledger:7"), cluster.Escrow);
        await cluster.PatchStatusAsync(name, new { phase = "Settled", transactionHash = h.Hex, settlement = new { renterRated = true, leaserRated = true, receipt = receipt.ToJson(), settledAt = DateTime.UtcNow } });

        var result = await Run("status", name);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("phase:       Settled", result.Out, StringComparison.Ordinal);
        Assert.Contains($"receipt:     verified: signed by π {cluster.Escrow.Identity.Address}", result.Out, StringComparison.Ordinal);
        Assert.Contains($"1500000 uusd -> {PartyIdentity.FromPublicKeys(em.Payload.Renter).Value.Address} (Transferred)", result.Out, StringComparison.Ordinal);
        Assert.Contains("ledger:7", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_shows_the_queue_position_and_when_chips_free_up()
    {
        var name = await RequestAsync("status-queued");
        await cluster.PatchStatusAsync(name, new { phase = "Pending", queuePosition = 3, earliestFreeAt = new DateTime(2030, 1, 2, 3, 4, 5, DateTimeKind.Utc) });

        var text = await Run("status", name);
        var json = await Run("status", name, "-o", "json");

        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Matches(@"queue:\s+place 3 among leases waiting for \S+ \S+; chips free up no earlier than 2030-01-02T03:04:05Z \(when Active leases expire\)", text.Out);
        Assert.True(json.ExitCode == 0, json.ToString());
        var waiting = JsonNode.Parse(json.Out)!["waiting"]!;
        Assert.Equal(3, (long)waiting["position"]!);
        Assert.StartsWith("2030-01-02T03:04:05", waiting["earliestFreeAt"]!.ToString(), StringComparison.Ordinal);

        // Once served, no queue line.
        await cluster.PatchStatusAsync(name, new { phase = "Active", queuePosition = (int?)null, earliestFreeAt = (DateTime?)null });
        var active = await Run("status", name);
        Assert.True(active.ExitCode == 0, active.ToString());
        Assert.DoesNotContain("queue:", active.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_refuses_a_receipt_not_signed_by_pi()
    {
        var name = await RequestAsync("status-forged");
        var em = CliContext.RequestOf(await cluster.GetLeaseAsync(name));
        var h = RpoiEquations.TransactionHashOf(em);
        var decision = RpoiEquations.Decide(true, true);
        var forger = PartyKeyPair.Generate(PartyRole.Escrow);
        var receipt = RpoiEquations.SignReceipt(new SettlementReceipt(MessageKinds.Receipt, h.Hex, cluster.Escrow.Identity.Address, SettlementSource.LeaserFinal, decision,
            RpoiEquations.TransfersFor(em.Payload, decision, cluster.Escrow.Identity.Address), DateTimeOffset.UtcNow, "ledger:8"), forger);
        await cluster.PatchStatusAsync(name, new { phase = "Settled", settlement = new { receipt = receipt.ToJson() } });

        var result = await Run("status", name);

        Assert.Equal(ExitCodes.VerificationFailed, result.ExitCode);
        Assert.Contains("did NOT verify", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_lease_exits_3_and_says_how_to_look()
    {
        Assert.Equal(0, (await home.RunAsync("keygen")).ExitCode);

        var result = await Run("status", "no-such-lease");

        Assert.Equal(ExitCodes.NotFound, result.ExitCode);
        Assert.Contains("lease team-a/no-such-lease not found", result.Err, StringComparison.Ordinal);
        Assert.Contains("kubectl get tpulease", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_cluster_exits_7()
    {
        var kubeconfig = home.File("dead.kubeconfig");
        File.WriteAllText(kubeconfig, File.ReadAllText(cluster.Kubeconfig).Replace(new Uri(cluster.Server.Url).Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "1", StringComparison.Ordinal));

        var result = await home.RunAsync("--kubeconfig", kubeconfig, "offers");

        Assert.Equal(ExitCodes.Unreachable, result.ExitCode);
        Assert.Contains("cannot reach the cluster", result.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_escrow_exits_7_and_a_double_account_exits_2()
    {
        Assert.Equal(0, (await home.RunAsync("keygen")).ExitCode);

        var unreachable = await Run("balance", "--escrow-url", "http://127.0.0.1:1/");
        Assert.Equal(ExitCodes.Unreachable, unreachable.ExitCode);
        Assert.Contains("cannot reach π at http://127.0.0.1:1/", unreachable.Err, StringComparison.Ordinal);

        var both = await Run("balance", "--leaser", "--address", cluster.Leaser.Identity.Address);
        Assert.Equal(ExitCodes.Usage, both.ExitCode);
    }

    public void Dispose() => home.Dispose();
}
