using System.Diagnostics.CodeAnalysis;

namespace Rpoi.Protocol.Checks;

/// <summary>
/// The outcome of a protocol check: either a value, or a <see cref="ReasonCode"/> with a message that
/// names the field and says how to fix it. Checks never throw for bad input and never return a bare bool.
/// </summary>
public sealed class Check<T>
{
    private readonly T? _value;

    private Check(T? value, ReasonCode? reason, string message)
    {
        _value = value;
        Reason = reason;
        Message = message;
    }

    /// <summary>True when the check passed.</summary>
    [MemberNotNullWhen(false, nameof(Reason))]
    public bool IsOk => Reason is null;

    /// <summary>Why the check failed; null when it passed.</summary>
    public ReasonCode? Reason { get; }

    /// <summary>Human message: which field, what was wrong, how to fix it. Empty when the check passed.</summary>
    public string Message { get; }

    /// <summary>The checked value. Throws <see cref="InvalidOperationException"/> (with the failure message) if the check failed.</summary>
    public T Value => IsOk ? _value! : throw new InvalidOperationException($"check failed ({Reason}): {Message}");

    /// <summary>A passed check.</summary>
    public static Check<T> Ok(T value) => new(value, null, string.Empty);

    /// <summary>A failed check.</summary>
    public static Check<T> Fail(ReasonCode reason, string message) => new(default, reason, message);

    /// <summary>Gets the value when the check passed.</summary>
    public bool TryGetValue([MaybeNullWhen(false)] out T value)
    {
        value = _value;
        return IsOk;
    }

    /// <summary>Carries this failure over to a check of another type.</summary>
    public Check<TOther> As<TOther>() =>
        IsOk ? throw new InvalidOperationException("only a failed check can be converted") : Check<TOther>.Fail(Reason.Value, Message);

    /// <summary>Runs <paramref name="next"/> on the value when this check passed.</summary>
    public Check<TOther> Then<TOther>(Func<T, Check<TOther>> next)
    {
        ArgumentNullException.ThrowIfNull(next);
        return IsOk ? next(_value!) : Check<TOther>.Fail(Reason.Value, Message);
    }

    /// <inheritdoc/>
    public override string ToString() => IsOk ? $"ok: {_value}" : $"{Reason}: {Message}";
}

/// <summary>Factory helpers for <see cref="Check{T}"/>.</summary>
public static class Check
{
    /// <summary>A passed check.</summary>
    public static Check<T> Ok<T>(T value) => Check<T>.Ok(value);

    /// <summary>A failed check.</summary>
    public static Check<T> Fail<T>(ReasonCode reason, string message) => Check<T>.Fail(reason, message);
}
