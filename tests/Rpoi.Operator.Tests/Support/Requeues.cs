using k8s;
using k8s.Models;
using Microsoft.Extensions.Time.Testing;
using Rpoi.Kube.Controllers;

namespace Rpoi.Operator.Tests.Support;

/// <summary>
/// Moves a <see cref="FakeTimeProvider"/> across a requeue-after timer only once the timer exists. A controller arms a
/// reconciler's requeue (<c>queue.AddAfter</c>) after the reconciler returned, so after the status write a test waits
/// for; and the reconciler computed the delay from the clock it read before that write. A jump of the fake clock in
/// between arms the timer relative to the moved clock, so it fires the whole jump late and the test waits forever.
/// </summary>
public static class Requeues
{
    /// <summary>
    /// Waits until every controller in <paramref name="controllers"/> is idle (nothing queued, nothing in flight) and
    /// holds at least <paramref name="keys"/> delayed keys, then advances <paramref name="time"/> by <paramref name="by"/>.
    /// Idle after the awaited write means the reconcile that wrote it has armed its timer (a queue marks a key done only
    /// after the requeue is armed); a reconcile that starts later either reads the moved clock or arms a later timer,
    /// which the queue ignores because the earliest pending delay of a key wins.
    /// </summary>
    /// <param name="time">The clock shared by the operator and the test.</param>
    /// <param name="by">How far to move it.</param>
    /// <param name="timer">What the awaited timer is for (the failure message).</param>
    /// <param name="controllers">The controllers whose timers the jump must fire.</param>
    /// <param name="keys">How many distinct keys each controller must have waiting on a delay.</param>
    public static async Task AdvanceAsync<T>(FakeTimeProvider time, TimeSpan by, string timer, IReadOnlyCollection<Controller<T>> controllers, int keys = 1)
        where T : class, IKubernetesObject<V1ObjectMeta>
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(controllers);
        Assert.NotEmpty(controllers);
        // No clock moves while waiting: the timers must be armed against the clock the reconciler read.
        await Eventually.HoldsAsync(
            () => Task.FromResult(controllers.All(c => c.Queue is { } q && q.Count == 0 && q.InFlight == 0 && q.Delayed >= keys)),
            $"{string.Join(", ", controllers.Select(c => c.Name))} idle with {keys} requeue(s) armed: {timer}");
        time.Advance(by);
    }
}
