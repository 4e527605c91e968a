namespace Rpoi.Escrow.Client;

/// <summary>π refused a call, or could not be reached after every retry. <see cref="Reason"/> is the machine-readable code.</summary>
public sealed class EscrowException : Exception
{
    /// <summary>Creates the exception.</summary>
    public EscrowException(int status, string reason, string? field, string message, Exception? inner = null)
        : base(message, inner)
    {
        Status = status;
        Reason = reason;
        Field = field;
    }

    /// <summary>HTTP status (0 when π was not reached).</summary>
    public int Status { get; }

    /// <summary>Reason code: one of <see cref="EscrowReasons"/> or a protocol reason code.</summary>
    public string Reason { get; }

    /// <summary>The request field at fault, when π named one.</summary>
    public string? Field { get; }

    /// <summary>True when retrying later may succeed (π unreachable or overloaded).</summary>
    public bool IsTransient => Status is 0 or 408 or 429 or >= 500;
}
