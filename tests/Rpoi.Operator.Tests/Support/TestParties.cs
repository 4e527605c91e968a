using Rpoi.Protocol.Keys;

namespace Rpoi.Operator.Tests.Support;

/// <summary>The three RPOI parties of a test: renter R, leaser β (the operator) and escrow π, each with fresh keys.</summary>
public sealed class TestParties
{
    /// <summary>R.</summary>
    public PartyKeyPair Renter { get; } = PartyKeyPair.Generate(PartyRole.Renter);

    /// <summary>β.</summary>
    public PartyKeyPair Leaser { get; } = PartyKeyPair.Generate(PartyRole.Leaser);

    /// <summary>π.</summary>
    public PartyKeyPair Escrow { get; } = PartyKeyPair.Generate(PartyRole.Escrow);
}
