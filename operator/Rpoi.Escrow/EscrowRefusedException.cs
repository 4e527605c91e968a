using Rpoi.Escrow.Client;

namespace Rpoi.Escrow;

/// <summary>
/// A request π refuses. Thrown inside the store's transaction so the rollback guarantees that
/// nothing moved; the API turns it into a problem response naming the field and the reason.
/// </summary>
public sealed class EscrowRefusedException(string reason, string field, string detail, int status = 400)
    : Exception(detail)
{
    /// <summary>Reason code (see <see cref="EscrowReasons"/>, or a protocol reason code).</summary>
    public string Reason { get; } = reason;

    /// <summary>The request field at fault, as a JSON path (e.g. <c>deposit.amount</c>).</summary>
    public string Field { get; } = field;

    /// <summary>HTTP status to answer with.</summary>
    public int Status { get; } = status;
}
