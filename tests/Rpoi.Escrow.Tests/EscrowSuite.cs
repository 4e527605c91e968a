using Rpoi.Escrow.Client;
using Rpoi.Protocol;
using Rpoi.Protocol.Checks;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Escrow.Tests;

/// <summary>
/// The escrow suite, run once per database (<see cref="SqliteEscrowTests"/>, <see cref="PostgresEscrowTests"/>).
/// Every test talks to a real π over HTTP through the typed client. xunit makes one instance per
/// test, so each test gets its own server and a fresh database.
/// </summary>
public abstract partial class EscrowSuite : IAsyncLifetime
{
    private EscrowEnvironment? _env;

    protected abstract IStoreProvider Provider { get; }

    /// <summary>True only when PostgreSQL tests were skipped on purpose with RPOI_SKIP_POSTGRES=1.</summary>
    protected bool Skipped => _env is null;

    protected EscrowEnvironment Env => _env ?? throw new InvalidOperationException("no environment: the test was skipped");

    public async Task InitializeAsync() => _env = await EscrowEnvironment.StartAsync(Provider);

    public async Task DisposeAsync()
    {
        if (_env is not null)
        {
            await _env.DisposeAsync();
        }
    }

    protected static async Task<EscrowException> Refused(Func<Task> call, string reason)
    {
        var ex = await Assert.ThrowsAsync<EscrowException>(call);
        Assert.Equal(reason, ex.Reason);
        return ex;
    }

    [Fact]
    public async Task Identity_publishes_pi_address_and_public_keys()
    {
        if (Skipped)
        {
            return;
        }

        var id = await Env.Anyone.GetIdentityAsync();
        Assert.Equal(Env.Pi.Identity.Address, id.Address);
        Assert.Equal(Env.Pi.Identity.KeyId, id.KeyId);
        Assert.Equal(Env.Pi.Identity.SigningKeyBase64, id.SigningPublicKey);
        Assert.Equal(Env.Pi.Identity.EncryptionKeyBase64, id.EncryptionPublicKey);
    }

    [Fact]
    public async Task Deposit_credits_once_per_id_and_refuses_a_reused_id()
    {
        if (Skipped)
        {
            return;
        }

        var address = PartyKeyPair.Generate(PartyRole.Renter).Identity.Address;
        var request = new DepositRequest("onramp-1", address, new EscrowAmount("1500", "uusd"));
        var first = await Env.Admin.DepositAsync(request);
        var again = await Env.Admin.DepositAsync(request);
        Assert.Equal(first, again);
        Assert.Equal(1500, await Env.BalanceAsync(address));

        var ex = await Refused(() => Env.Admin.DepositAsync(request with { Amount = new EscrowAmount("1600", "uusd") }), EscrowReasons.DepositConflict);
        Assert.Equal(409, ex.Status);
        Assert.Equal(1500, await Env.BalanceAsync(address));
    }

    [Theory]
    [InlineData("0", "uusd", "amount.amount")]
    [InlineData("-5", "uusd", "amount.amount")]
    [InlineData("1.5", "uusd", "amount.amount")]
    [InlineData("99999999999999999999", "uusd", "amount.amount")]
    [InlineData("10", "", "amount.denom")]
    public async Task Deposit_with_a_bad_amount_names_the_field(string amount, string denom, string field)
    {
        if (Skipped)
        {
            return;
        }

        var address = PartyKeyPair.Generate(PartyRole.Renter).Identity.Address;
        var ex = await Refused(() => Env.Admin.DepositAsync(new DepositRequest("d1", address, new EscrowAmount(amount, denom))), EscrowReasons.InvalidField);
        Assert.Equal(400, ex.Status);
        Assert.Equal(field, ex.Field);
        Assert.Equal((0, Ledger0), await Env.HeadAsync());
    }

    private const string Ledger0 = "0000000000000000000000000000000000000000000000000000000000000000";

    [Fact]
    public async Task Only_the_admin_credential_deposits()
    {
        if (Skipped)
        {
            return;
        }

        var request = new DepositRequest("d1", Env.Leaser.Identity.Address, new EscrowAmount("10", "uusd"));
        Assert.Equal(401, (await Refused(() => Env.Anyone.DepositAsync(request), EscrowReasons.Unauthenticated)).Status);
        await Refused(() => Env.Operator.DepositAsync(request), EscrowReasons.Unauthenticated);
        var wrong = Env.ClientFor(EscrowCredentials.Admin("not-the-token"));
        Assert.Equal(403, (await Refused(() => wrong.DepositAsync(request), EscrowReasons.Forbidden)).Status);
        Assert.Equal((0, Ledger0), await Env.HeadAsync());
    }

    [Fact]
    public async Task Pledge_holds_deposit_and_rent_under_H_and_is_idempotent()
    {
        if (Skipped)
        {
            return;
        }

        var lease = Env.Leases.Deposit(100).Rent(900).Build();
        await Env.FundAsync(lease.RenterAddress, 1500);

        var pledge = await Env.Operator.PledgeAsync(lease.Request);
        Assert.Equal(lease.H, pledge.H);
        Assert.Equal("Held", pledge.State);
        Assert.Equal(new EscrowAmount("100", "uusd"), pledge.Deposit);
        Assert.Equal(new EscrowAmount("900", "uusd"), pledge.Rent);
        Assert.Equal(lease.RenterAddress, pledge.Renter);
        Assert.Equal(500, await Env.BalanceAsync(lease.RenterAddress));
        var head = await Env.HeadAsync();

        var again = await Env.Operator.PledgeAsync(lease.Request);
        Assert.Equal(pledge, again);
        Assert.Equal(500, await Env.BalanceAsync(lease.RenterAddress));
        Assert.Equal(head, await Env.HeadAsync());
        Assert.Equal(pledge, await Env.Anyone.GetPledgeAsync(lease.H));
    }

    [Fact]
    public async Task Pledge_with_short_funds_is_refused_and_nothing_moves()
    {
        if (Skipped)
        {
            return;
        }

        var lease = Env.Leases.Deposit(100).Rent(900).Build();
        await Env.FundAsync(lease.RenterAddress, 999);
        var head = await Env.HeadAsync();

        var ex = await Refused(() => Env.Operator.PledgeAsync(lease.Request), EscrowReasons.InsufficientFunds);
        Assert.Equal(409, ex.Status);
        Assert.Contains("1000", ex.Message, StringComparison.Ordinal);
        Assert.Equal(999, await Env.BalanceAsync(lease.RenterAddress));
        Assert.Null(await Env.Anyone.GetPledgeAsync(lease.H));
        Assert.Equal(head, await Env.HeadAsync());
    }

    public static TheoryData<string, string> PledgeTampers => new()
    {
        { "signature", nameof(ReasonCode.BadSignature) },
        { "escrow", nameof(ReasonCode.PartyMismatch) },
        { "leaser", nameof(ReasonCode.PartyMismatch) },
        { "old", nameof(ReasonCode.RequestTooOld) },
        { "future", nameof(ReasonCode.RequestFromFuture) },
    };

    [Theory]
    [MemberData(nameof(PledgeTampers))]
    public async Task Pledge_of_an_invalid_request_is_refused_with_its_reason_and_nothing_moves(string tamper, string reason)
    {
        if (Skipped)
        {
            return;
        }

        var builder = Env.Leases;
        var request = tamper switch
        {
            "escrow" => builder.ForEscrow(PartyKeyPair.Generate(PartyRole.Escrow).Identity.Address).Build().Request,
            "leaser" => builder.ForLeaser(PartyKeyPair.Generate(PartyRole.Leaser).Identity.Address).Build().Request,
            "old" => builder.SignedAgo(TimeSpan.FromHours(25)).Build().Request,
            "future" => builder.SignedAgo(TimeSpan.FromMinutes(-10)).Build().Request,
            _ => Tampered(builder.Build().Request),
        };
        var renter = PartyIdentity.FromPublicKeys(request.Payload.Renter).Value.Address;
        await Env.FundAsync(renter, 5000);
        var head = await Env.HeadAsync();

        var ex = await Refused(() => Env.Operator.PledgeAsync(request), reason);
        Assert.Equal("signedRequest", ex.Field);
        Assert.Equal(5000, await Env.BalanceAsync(renter));
        Assert.Equal(head, await Env.HeadAsync());
    }

    /// <summary>E(m) with the rent raised after R signed it.</summary>
    private static Signed<LeaseRequest> Tampered(Signed<LeaseRequest> request)
    {
        var json = request.ToJson().Replace("\"amount\":\"900\"", "\"amount\":\"9\"", StringComparison.Ordinal);
        return Signed<LeaseRequest>.Parse(json).Value;
    }

    [Fact]
    public async Task Pledge_needs_a_leaser_signed_call()
    {
        if (Skipped)
        {
            return;
        }

        var lease = Env.Leases.Build();
        await Env.FundAsync(lease.RenterAddress, 1000);
        await Refused(() => Env.Anyone.PledgeAsync(lease.Request), EscrowReasons.Unauthenticated);
        var stranger = Env.ClientFor(EscrowCredentials.Leaser(PartyKeyPair.Generate(PartyRole.Leaser)));
        Assert.Equal(403, (await Refused(() => stranger.PledgeAsync(lease.Request), EscrowReasons.Forbidden)).Status);
        Assert.Null(await Env.Anyone.GetPledgeAsync(lease.H));
        Assert.Equal(1000, await Env.BalanceAsync(lease.RenterAddress));
    }
}
