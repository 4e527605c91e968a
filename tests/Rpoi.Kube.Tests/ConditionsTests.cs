using k8s.Models;
using Microsoft.Extensions.Time.Testing;
using Rpoi.Kube.Controllers;

namespace Rpoi.Kube.Tests;

public sealed class ConditionsTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    [Fact]
    public void Adding_a_condition_stamps_the_transition_time()
    {
        var list = new List<V1Condition>();
        Assert.True(Conditions.Set(list, "Ready", Conditions.False, "Pending", "waiting", 1, _time));
        var c = Assert.Single(list);
        Assert.Equal(("Ready", "False", "Pending", "waiting", 1L), (c.Type, c.Status, c.Reason, c.Message, c.ObservedGeneration!.Value));
        Assert.Equal(_time.GetUtcNow().UtcDateTime, c.LastTransitionTime);
    }

    [Fact]
    public void Transition_time_moves_only_when_the_status_flips()
    {
        var list = new List<V1Condition>();
        Conditions.Set(list, "Ready", Conditions.False, "Pending", "waiting", 1, _time);
        var first = list[0].LastTransitionTime;

        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.True(Conditions.Set(list, "Ready", Conditions.False, "StillPending", "still waiting", 2, _time));
        Assert.Equal(first, list[0].LastTransitionTime);
        Assert.Equal(("StillPending", 2L), (list[0].Reason, list[0].ObservedGeneration!.Value));

        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.True(Conditions.Set(list, "Ready", Conditions.True, "Granted", null, 2, _time));
        Assert.Equal(_time.GetUtcNow().UtcDateTime, list[0].LastTransitionTime);
        Assert.True(Conditions.IsTrue(list, "Ready"));
    }

    [Fact]
    public void Setting_the_same_condition_again_reports_no_change()
    {
        var list = new List<V1Condition>();
        Conditions.Set(list, "Ready", Conditions.True, "Granted", "ok", 3, _time);
        _time.Advance(TimeSpan.FromMinutes(5));
        Assert.False(Conditions.Set(list, "Ready", Conditions.True, "Granted", "ok", 3, _time));
        Assert.Single(list);
    }

    [Fact]
    public void Invalid_status_is_rejected_with_the_allowed_values()
    {
        var list = new List<V1Condition>();
        var e = Assert.Throws<ArgumentException>(() => Conditions.Set(list, "Ready", "yes", "R", null, null, _time));
        Assert.Contains("\"True\", \"False\" or \"Unknown\"", e.Message, StringComparison.Ordinal);
        Assert.Empty(list);
    }

    [Fact]
    public void Remove_drops_only_the_named_condition()
    {
        var list = new List<V1Condition>();
        Conditions.Set(list, "Ready", Conditions.True, "Granted", null, null, _time);
        Conditions.Set(list, "Degraded", Conditions.False, "Fine", null, null, _time);
        Assert.True(Conditions.Remove(list, "Ready"));
        Assert.False(Conditions.Remove(list, "Ready"));
        Assert.Equal("Degraded", Assert.Single(list).Type);
    }
}
