using Rpoi.Operator.PhaseOne.Leases;
using Rpoi.Protocol.Keys;

namespace Rpoi.Operator.PhaseTwo;

/// <summary>What phase II needs to know about this operator: who β is, which π it settles with, and its timing rules.</summary>
public sealed record PhaseTwoOptions
{
    /// <summary>β's key pair: signs m''' (the leaser's rating Ra_β) and authenticates the settlement call.</summary>
    public required PartyKeyPair Leaser { get; init; }

    /// <summary>π's address. π's public keys are fetched from π and must derive this address, so m_final is sealed to the right party.</summary>
    public required string EscrowAddress { get; init; }

    /// <summary>Rating window when neither the Lease nor its status sets a deadline (72 h, PROTOCOL.md).</summary>
    public TimeSpan DefaultRatingWindow { get; init; } = TimeSpan.FromHours(72);

    /// <summary>How long to wait before submitting again after π refused m_final (a refusal is not transient; an operator must look).</summary>
    public TimeSpan RefusedRetryDelay { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The same β, π and rating window as phase I runs with.</summary>
    public static PhaseTwoOptions From(PhaseOneOptions phaseOne)
    {
        ArgumentNullException.ThrowIfNull(phaseOne);
        return new PhaseTwoOptions { Leaser = phaseOne.Leaser, EscrowAddress = phaseOne.EscrowAddress, DefaultRatingWindow = phaseOne.DefaultRatingWindow };
    }
}
