using System.Security.Cryptography;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Escrow.Tests;

/// <summary>A lease in the making: the renter, its signed request E(m), and what phase II adds.</summary>
public sealed record Lease(PartyKeyPair Renter, Signed<LeaseRequest> Request, string GrantDigest)
{
    public string H => RpoiEquations.TransactionHashOf(Request).Hex;

    public string RenterAddress => Renter.Identity.Address;

    /// <summary>E(m'') with the given score.</summary>
    public Signed<RenterRating> RenterRating(int score = 5, string? grantDigest = null, PartyKeyPair? signer = null) =>
        signer is null
            ? RpoiEquations.SignRenterRating(Request, grantDigest ?? GrantDigest, new Rating(score, "fine", Request.Payload.Timestamp), Renter)
            : Signed<RenterRating>.Create(new RenterRating(MessageKinds.RenterRating, H, Request, grantDigest ?? GrantDigest, new Rating(score, "fine", Request.Payload.Timestamp)), signer);
}

/// <summary>Builds signed test leases for one environment: <c>env.Leases.Deposit(100).Rent(900).Build()</c>.</summary>
public sealed class Leases(EscrowEnvironment env)
{
    private long _deposit = 100;
    private long _rent = 900;
    private TimeSpan _age = TimeSpan.Zero;
    private string? _escrow;
    private string? _leaser;
    private PartyKeyPair? _renter;
    private string? _nonce;

    public Leases Deposit(long amount)
    {
        _deposit = amount;
        return this;
    }

    public Leases Rent(long amount)
    {
        _rent = amount;
        return this;
    }

    /// <summary>Signed this long before the escrow's now (negative: in the future).</summary>
    public Leases SignedAgo(TimeSpan age)
    {
        _age = age;
        return this;
    }

    public Leases ForEscrow(string address)
    {
        _escrow = address;
        return this;
    }

    public Leases ForLeaser(string address)
    {
        _leaser = address;
        return this;
    }

    /// <summary>The request's nonce (by default 16 fresh random bytes).</summary>
    public Leases Nonce(string nonce)
    {
        _nonce = nonce;
        return this;
    }

    public Leases By(PartyKeyPair renter)
    {
        _renter = renter;
        return this;
    }

    public Lease Build()
    {
        var renter = _renter ?? PartyKeyPair.Generate(PartyRole.Renter);
        var m = new LeaseRequest(
            MessageKinds.Request,
            renter.Identity.ToPublicKeys(),
            _leaser ?? env.Leaser.Identity.Address,
            _escrow ?? env.Pi.Identity.Address,
            "tpu-v5-lite-podslice",
            "2x4",
            8,
            3600,
            env.Time.GetUtcNow() - _age,
            _nonce ?? Convert.ToBase64String(RandomNumberGenerator.GetBytes(16)),
            new Money(_deposit.ToString(System.Globalization.CultureInfo.InvariantCulture), "uusd"),
            new Money(_rent.ToString(System.Globalization.CultureInfo.InvariantCulture), "uusd"),
            new LeaseRef("team-a", "lease-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))));
        return new Lease(renter, RpoiEquations.SignRequest(m, renter), Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)));
    }

    /// <summary>Builds a lease, funds its renter with exactly ρ + ω (+ <paramref name="extra"/>) and pledges it.</summary>
    public async Task<Lease> PledgedAsync(long extra = 0)
    {
        var lease = Build();
        await env.FundAsync(lease.RenterAddress, _deposit + _rent + extra);
        await env.Operator.PledgeAsync(lease.Request);
        return lease;
    }
}

/// <summary>m_final built the way β builds it.</summary>
public static class Finals
{
    public static SealedMessage For(EscrowEnvironment env, Lease lease, bool renterRated, bool leaserRated, PartyKeyPair? leaser = null) =>
        RpoiEquations.SealFinal(
            lease.Request,
            lease.GrantDigest,
            renterRated ? lease.RenterRating() : null,
            leaserRated ? new Rating(4, "good renter", lease.Request.Payload.Timestamp) : null,
            leaser ?? env.Leaser,
            env.Pi.Identity);
}
