using System.CommandLine;
using System.Numerics;
using Rpoi.Cli.Support;
using Rpoi.Operator.PhaseOne.Allocation;
using Rpoi.Operator.PhaseOne.Grant;
using Rpoi.Protocol;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Cli.Commands;

/// <summary>
/// <c>kubectl rpoi demo</c>: one whole RPOI lifecycle, phases I and II, in this process with fresh keys for R, β and π
/// and π's ledger simulated in memory. Every step is the real Protocol code; nothing needs a cluster.
/// </summary>
internal static class DemoCommand
{
    public static Command Create(CommandFactory f)
    {
        var samples = new Option<string?>("--samples-dir") { Description = "Also write the signed Lease, the renter's and the leaser's Ratings and the parties' public identities as sample files into this directory." };
        var command = new Command("demo", "Run one whole RPOI lifecycle in-process (no cluster): request, pledge, grant, access, ratings, settlement, receipt.") { samples };
        f.Handle(command, (ctx, parse, ct) => Task.FromResult(Run(ctx, ctx.Flags.Namespace is { Length: > 0 } ns ? ns : "team-a", parse.GetValue(samples))));
        return command;
    }

    private static int Run(CliContext ctx, string ns, string? samplesDir)
    {
        var w = ctx.Out;
        var now = ctx.Time.GetUtcNow();
        const string leaseName = "train-v5e";
        var step = 0;
        void Step(string title) => w.WriteLine($"\n[{++step}] {title}");

        Step("keys: each party has an Ed25519 signing key and an X25519 encryption key");
        var renter = PartyKeyPair.Generate(PartyRole.Renter);
        var leaser = PartyKeyPair.Generate(PartyRole.Leaser);
        var escrow = PartyKeyPair.Generate(PartyRole.Escrow);
        w.WriteLine($"    renter R  {renter.Identity.Address}");
        w.WriteLine($"    leaser β  {leaser.Identity.Address}");
        w.WriteLine($"    escrow π  {escrow.Identity.Address}");
        var ledger = new Dictionary<string, BigInteger> { [renter.Identity.Address] = 20_000_000, [leaser.Identity.Address] = 0 };
        w.WriteLine($"    π credits R with 20000000 uusd (the on-ramp)");

        Step("R signs the request m: 8 chips of tpu-v5-lite-podslice 2x4 for 1h, deposit ρ, rent ω, bound to the Lease's namespace and name (eq. 1)");
        var m = Requests.New(renter.Identity, leaser.Identity.Address, escrow.Identity.Address, "tpu-v5-lite-podslice", "2x4", 8, 3600, now,
            new Money("1500000", "uusd"), new Money("9000000", "uusd"), new LeaseRef(ns, leaseName));
        var em = RpoiEquations.SignRequest(m, renter);
        var h = RpoiEquations.TransactionHashOf(em);
        w.WriteLine($"    E(m) = sign_R(m), signer key {em.Signer}");
        w.WriteLine($"    H = SHA-256(JCS(E(m))) = {h.Hex} (eq. 2)");
        w.WriteLine($"    the Lease YAML carries E(m) in spec.request; 'kubectl rpoi request' prints exactly that");

        Step("π takes the pledge: verifies R's signature and holds ρ + ω under H");
        var verifier = new RequestVerifier(ctx.Time, new InMemoryNonceStore(ctx.Time));
        var atEscrow = verifier.Verify(em, new RequestExpectations(null, null, null, escrow.Identity.Address));
        Expect(atEscrow, "π's check of E(m)");
        var held = BigInteger.Parse(m.Deposit.Amount) + BigInteger.Parse(m.Rent.Amount);
        ledger[renter.Identity.Address] -= held;
        w.WriteLine($"    held under H: {held} uusd; R's free balance now {ledger[renter.Identity.Address]} uusd");

        Step("β verifies E(m) against the Lease object (signature, namespace/name, parties, age) (eq. 3a)");
        var atLeaser = verifier.Verify(em, new RequestExpectations(ns, leaseName, leaser.Identity.Address, escrow.Identity.Address));
        Expect(atLeaser, "β's check of E(m)");
        var copied = verifier.Verify(em, new RequestExpectations("team-b", leaseName, leaser.Identity.Address, escrow.Identity.Address));
        w.WriteLine($"    verified; the same E(m) copied to namespace team-b is refused: {copied.Reason}");

        Step("β claims a v5e 2x4 host and seals the grant σ to R: Enc(m') = E_R(sign_β(m + σ)) (eq. 3b)");
        var lease = new LeaseIdentity(ns, leaseName, "00000000-0000-0000-0000-000000000001");
        var shape = new TpuShape("tpu-v5-lite-podslice", "2x4");
        var grant = new AccessGrant(
            ["gke-tpu-v5e-2x4-0"], "tpu-v5e-2x4", shape.Accelerator, shape.Topology,
            PodPlacement.NodeSelector(lease, shape), PodPlacement.LeaseToleration(lease),
            LeaseAccess.Kubeconfig(new ClusterEndpointOptions("https://127.0.0.1:6443", null), lease, "demo-token"),
            PodPlacement.PodTemplate(lease, shape, 8, PodPlacement.DefaultImage), now, now.AddHours(1));
        var sealedGrant = RpoiEquations.SealGrant(atLeaser.Value, grant, leaser);
        w.WriteLine($"    Secret {leaseName}-access, data access.rpoi: {sealedGrant.ToUtf8Bytes().Length} bytes of HPKE ciphertext ({sealedGrant.Suite})");

        Step("R opens the grant with its private key and checks β's signature (eq. 4)");
        var opened = RpoiEquations.OpenGrant(sealedGrant, renter, em, leaser.Identity);
        Expect(opened, "R's opening of the grant");
        w.WriteLine($"    nodes {string.Join(", ", opened.Value.Grant.NodeNames)}, toleration {opened.Value.Grant.Toleration.Key}={opened.Value.Grant.Toleration.Value}");
        w.WriteLine($"    grant digest SHA-256(σ) = {opened.Value.GrantDigest}");
        var stranger = PartyKeyPair.Generate(PartyRole.Renter);
        var wrongKey = RpoiEquations.OpenGrant(sealedGrant, stranger, em, leaser.Identity);
        w.WriteLine($"    anyone else's key cannot open it: {wrongKey.Reason}");

        Step("the lease ends; R rates β: E(m'') = sign_R(m + digest(σ) + Ra_R) (eq. 18)");
        var renterRating = RpoiEquations.SignRenterRating(em, opened.Value.GrantDigest, new Rating(5, "fast and as described", now.AddHours(1)), renter);
        w.WriteLine($"    Ra_R = 5; the Rating YAML carries E(m'') in spec.signedRating ('kubectl rpoi rate' prints it)");

        Step("β checks E(m''), adds Ra_β and seals m_final to π: E_π(sign_β(E(m'') + Ra_β)) (eq. 19)");
        var checkedRating = RpoiEquations.VerifyRenterRating(renterRating, em, RpoiEquations.GrantDigest(grant));
        Expect(checkedRating, "β's check of E(m'')");
        var leaserRating = new Rating(4, "returned on time", now.AddHours(1));
        var final = RpoiEquations.SealFinal(em, RpoiEquations.GrantDigest(grant), renterRating, leaserRating, leaser, escrow.Identity);
        w.WriteLine($"    Ra_β = 4; m_final is {final.ToUtf8Bytes().Length} bytes, readable only by π");

        Step("π opens m_final, checks every signature and H, and decides ζ and ξ (eqs. 20, 21)");
        var settled = RpoiEquations.OpenFinal(final, escrow, leaser.Identity);
        Expect(settled, "π's check of m_final");
        var decision = settled.Value.Decision;
        var transfers = RpoiEquations.TransfersFor(m, decision, escrow.Identity.Address);
        foreach (var t in transfers)
        {
            if (t.Status == TransferStatus.Transferred)
            {
                ledger[t.To] = ledger.GetValueOrDefault(t.To) + BigInteger.Parse(t.Amount.Amount);
            }

            w.WriteLine($"    {t.Purpose}: {t.Amount.Amount} {t.Amount.Denom} -> {t.To} ({t.Status})");
        }

        var receipt = RpoiEquations.SignReceipt(new SettlementReceipt(MessageKinds.Receipt, h.Hex, escrow.Identity.Address, settled.Value.Source, decision, transfers, now.AddHours(1), "ledger:demo-1"), escrow);

        Step("anyone verifies π's receipt with π's public key");
        var verifiedReceipt = RpoiEquations.VerifyReceipt(receipt, escrow.Identity, h);
        Expect(verifiedReceipt, "the receipt");
        w.WriteLine($"    receipt verified: deposit {decision.Deposit}, rent {decision.Rent}");
        w.WriteLine($"    balances: R {ledger[renter.Identity.Address]} uusd, β {ledger[leaser.Identity.Address]} uusd");

        if (samplesDir is { Length: > 0 })
        {
            var dir = ctx.Env.Resolve(samplesDir);
            Directory.CreateDirectory(dir);
            var header = new[] { "SAMPLE made by 'kubectl rpoi demo --samples-dir' with throwaway keys (identities.json); the operator refuses it after 24 h", $"transaction hash H = {h.Hex}" };
            File.WriteAllText(Path.Combine(dir, "lease.yaml"), Manifests.Render(Manifests.Lease(em, null), "yaml", header));
            File.WriteAllText(Path.Combine(dir, "rating-renter.yaml"), Manifests.Render(Manifests.RenterRating(ns, leaseName, renterRating), "yaml", header));
            File.WriteAllText(Path.Combine(dir, "rating-leaser.yaml"), Manifests.Render(Manifests.LeaserRating(ns, leaseName, 4, "returned on time"), "yaml", ["SAMPLE: the leaser's Rating needs no signature in YAML; the operator signs Ra_β with β's key"]));
            var identities = new System.Text.Json.Nodes.JsonObject
            {
                ["renter"] = System.Text.Json.Nodes.JsonNode.Parse(renter.Identity.ToJson()),
                ["leaser"] = System.Text.Json.Nodes.JsonNode.Parse(leaser.Identity.ToJson()),
                ["escrow"] = System.Text.Json.Nodes.JsonNode.Parse(escrow.Identity.ToJson()),
            };
            File.WriteAllText(Path.Combine(dir, "identities.json"), identities.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
            w.WriteLine($"\nwrote lease.yaml, rating-renter.yaml, rating-leaser.yaml and identities.json to {dir}");
        }

        w.WriteLine("\ndone: one lease, signed, granted, used, rated and settled. Next: 'kubectl rpoi sandbox up' for the same on a local cluster.");
        return ExitCodes.Ok;
    }

    private static void Expect<T>(Check<T> check, string what)
    {
        if (!check.IsOk)
        {
            throw new CliException(ExitCodes.VerificationFailed, $"demo: {what} failed ({check.Reason}): {check.Message}");
        }
    }
}
