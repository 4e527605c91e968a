namespace Rpoi.Kube.Controllers;

/// <summary>What a reconcile asks the controller to do next (KubeOps' result record, controller-runtime's <c>Result</c>).</summary>
public abstract record ReconcileResult
{
    private protected ReconcileResult()
    {
    }

    /// <summary>Converged: forget the key's retry history and wait for the next change.</summary>
    public static ReconcileResult Done { get; } = new Success();

    /// <summary>
    /// Done, and the reconciler's own write moved the object to <paramref name="resourceVersion"/>. The controller's next
    /// version-guarded write of the same object (a finalizer's removal after <see cref="IFinalizer{T}.FinalizeAsync"/>)
    /// uses it, instead of the version it handed the reconciler, which would only conflict and wait for a backoff.
    /// </summary>
    public static ReconcileResult DoneAt(string resourceVersion)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(resourceVersion);
        return new Success { ResourceVersion = resourceVersion };
    }

    /// <summary>Converged for now; look again after <paramref name="delay"/> (e.g. a lease expiry).</summary>
    public static ReconcileResult RequeueAfter(TimeSpan delay)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero);
        return new Delayed(delay);
    }

    /// <summary>Not converged yet, no error: retry with the key's backoff.</summary>
    public static ReconcileResult Requeue { get; } = new Retry();

    /// <summary>Failed: retry with the key's backoff and count an error.</summary>
    public static ReconcileResult Error(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return new Failure(exception.Message, exception);
    }

    /// <summary>Failed with <paramref name="message"/>: retry with the key's backoff and count an error.</summary>
    public static ReconcileResult Error(string message)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(message);
        return new Failure(message, null);
    }

    /// <summary>See <see cref="Done"/> and <see cref="DoneAt"/>.</summary>
    public sealed record Success : ReconcileResult
    {
        /// <summary>The object's version after the reconciler's own last write; null when it wrote nothing the controller needs to know.</summary>
        public string? ResourceVersion { get; init; }
    }

    /// <summary>See <see cref="RequeueAfter"/>.</summary>
    /// <param name="After">How long to wait.</param>
    public sealed record Delayed(TimeSpan After) : ReconcileResult;

    /// <summary>See <see cref="Requeue"/>.</summary>
    public sealed record Retry : ReconcileResult;

    /// <summary>See <see cref="Error(Exception)"/>.</summary>
    /// <param name="Message">What went wrong.</param>
    /// <param name="Exception">The cause, when there is one.</param>
    public sealed record Failure(string Message, Exception? Exception) : ReconcileResult;
}
