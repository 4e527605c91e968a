namespace Rpoi.Escrow.Client;

/// <summary>
/// The escrow's own reason codes, carried in the <c>reason</c> member of every problem response.
/// Verification failures of protocol messages carry the protocol's reason code instead.
/// </summary>
public static class EscrowReasons
{
    /// <summary>A field is missing or malformed; <c>errors</c> names it.</summary>
    public const string InvalidField = "InvalidField";
    /// <summary>The account does not hold enough free balance; nothing moved.</summary>
    public const string InsufficientFunds = "InsufficientFunds";
    /// <summary>A sum would leave the 64-bit range of the ledger.</summary>
    public const string AmountOverflow = "AmountOverflow";
    /// <summary>The same deposit id was used with a different address or amount.</summary>
    public const string DepositConflict = "DepositConflict";
    /// <summary>No pledge is held under this H.</summary>
    public const string PledgeNotFound = "PledgeNotFound";
    /// <summary>The request names another escrow address than this π.</summary>
    public const string WrongEscrow = "WrongEscrow";
    /// <summary>The request is older than the allowed age or too far in the future.</summary>
    public const string RequestExpired = "RequestExpired";
    /// <summary>The renter's own claim came before the rating window plus grace closed.</summary>
    public const string ClaimTooEarly = "ClaimTooEarly";
    /// <summary>Nothing is withheld under this H.</summary>
    public const string WithheldNotFound = "WithheldNotFound";
    /// <summary>The withheld funds were already released to the other party.</summary>
    public const string AlreadyReleased = "AlreadyReleased";
    /// <summary>The body is not sent as <c>application/json</c> (415); <c>errors</c> names the Content-Type header.</summary>
    public const string UnsupportedMediaType = "UnsupportedMediaType";
    /// <summary>The call lacks valid credentials.</summary>
    public const string Unauthenticated = "Unauthenticated";
    /// <summary>The credentials are valid but not allowed to do this.</summary>
    public const string Forbidden = "Forbidden";
    /// <summary>A protocol message failed verification (the protocol's own code is more specific when known).</summary>
    public const string InvalidMessage = "InvalidMessage";
    /// <summary>H was already settled by m_final or the renter's claim: a served lease cannot be refunded as never served.</summary>
    public const string AlreadySettled = "AlreadySettled";

    /// <summary>Unexpected server failure; nothing moved.</summary>
    public const string Internal = "Internal";
}
