namespace Rpoi.Protocol.Keys;

/// <summary>The three RPOI parties.</summary>
public enum PartyRole
{
    /// <summary>R: the team renting TPU chips.</summary>
    Renter = 1,

    /// <summary>β: the platform leasing its TPU node pools (the operator holds its key).</summary>
    Leaser,

    /// <summary>π: the escrow adjudicator at a public ledger address.</summary>
    Escrow,
}
