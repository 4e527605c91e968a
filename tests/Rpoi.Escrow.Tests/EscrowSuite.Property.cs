using CsCheck;
using Rpoi.Escrow.Client;
using Rpoi.Protocol.Keys;

namespace Rpoi.Escrow.Tests;

public abstract partial class EscrowSuite
{
    /// <summary>One random step: deposit, pledge, settle (by a random table row) or release.</summary>
    public sealed record Step(int Kind, int Renter, int Amount, int Pick, bool RenterRated, bool LeaserRated);

    private static readonly Gen<Step[]> Steps =
        Gen.Select(Gen.Int[0, 3], Gen.Int[0, 2], Gen.Int[1, 2000], Gen.Int[0, 99], Gen.Bool, Gen.Bool)
            .Select(t => new Step(t.Item1, t.Item2, t.Item3, t.Item4, t.Item5, t.Item6))
            .Array[1, 14];

    /// <summary>
    /// Random pledge/settle/deposit/release sequences: every balance matches a simple model, and the
    /// audit (chain + replay + balances + held + withheld = deposits) holds after every sequence.
    /// </summary>
    [Fact]
    public async Task Random_sequences_keep_the_invariant_and_match_the_model()
    {
        if (Skipped)
        {
            return;
        }

        await Steps.SampleAsync(RunSequenceAsync, iter: 12, threads: 1);
    }

    private async Task RunSequenceAsync(Step[] steps)
    {
        var renters = Enumerable.Range(0, 3).Select(_ => PartyKeyPair.Generate(PartyRole.Renter)).ToArray();
        var model = renters.ToDictionary(r => r.Identity.Address, _ => 0L);
        var leaser = Env.Leaser.Identity.Address;
        var leaserStart = await Env.BalanceAsync(leaser);
        long leaserGain = 0;
        var held = new List<(Lease Lease, long Deposit, long Rent)>();
        var withheld = new List<(Lease Lease, long Deposit)>();

        foreach (var step in steps)
        {
            var renter = renters[step.Renter];
            var address = renter.Identity.Address;
            switch (step.Kind)
            {
                case 0:
                    await Env.FundAsync(address, step.Amount);
                    model[address] += step.Amount;
                    break;
                case 1:
                    var (deposit, rent) = (1 + (step.Amount / 4), (long)step.Amount);
                    var lease = Env.Leases.By(renter).Deposit(deposit).Rent(rent).Build();
                    if (model[address] >= deposit + rent)
                    {
                        await Env.Operator.PledgeAsync(lease.Request);
                        model[address] -= deposit + rent;
                        held.Add((lease, deposit, rent));
                    }
                    else
                    {
                        await Refused(() => Env.Operator.PledgeAsync(lease.Request), EscrowReasons.InsufficientFunds);
                    }

                    break;
                case 2 when held.Count > 0:
                    var pledged = held[step.Pick % held.Count];
                    held.Remove(pledged);
                    await Env.Operator.SettleAsync(Finals.For(Env, pledged.Lease, step.RenterRated, step.LeaserRated));
                    var owner = pledged.Lease.RenterAddress;
                    if (step.RenterRated)
                    {
                        model[owner] += pledged.Deposit;
                    }
                    else
                    {
                        withheld.Add((pledged.Lease, pledged.Deposit));
                    }

                    if (step.LeaserRated)
                    {
                        leaserGain += pledged.Rent;
                    }
                    else
                    {
                        model[owner] += pledged.Rent;
                    }

                    break;
                case 3 when withheld.Count > 0:
                    var kept = withheld[step.Pick % withheld.Count];
                    withheld.Remove(kept);
                    await Env.Admin.ReleaseWithheldAsync(new ReleaseRequest(kept.Lease.H, step.RenterRated ? "renter" : "leaser"));
                    if (step.RenterRated)
                    {
                        model[kept.Lease.RenterAddress] += kept.Deposit;
                    }
                    else
                    {
                        leaserGain += kept.Deposit;
                    }

                    break;
            }
        }

        foreach (var (address, expected) in model)
        {
            Assert.Equal(expected, await Env.BalanceAsync(address));
        }

        Assert.Equal(leaserStart + leaserGain, await Env.BalanceAsync(leaser));
        foreach (var (lease, _, _) in held)
        {
            Assert.Equal("Held", (await Env.Anyone.GetPledgeAsync(lease.H))!.State);
        }

        var audit = await Env.Anyone.VerifyLedgerAsync();
        Assert.True(audit.Ok, string.Join("; ", audit.Problems));
        foreach (var t in audit.Totals)
        {
            Assert.Equal(decimal.Parse(t.Deposits, System.Globalization.CultureInfo.InvariantCulture), decimal.Parse(t.Balances, System.Globalization.CultureInfo.InvariantCulture) + decimal.Parse(t.Held, System.Globalization.CultureInfo.InvariantCulture) + decimal.Parse(t.Withheld, System.Globalization.CultureInfo.InvariantCulture));
        }
    }
}
