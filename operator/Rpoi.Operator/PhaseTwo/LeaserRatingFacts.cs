using System.Globalization;
using System.Text;
using Rpoi.Operator.Entities;
using Rpoi.Operator.PhaseOne.Nodes;

namespace Rpoi.Operator.PhaseTwo;

/// <summary>
/// The facts β adds to its rating Ra_β: the lease's node incidents (<c>status.nodeIncidents</c>), appended to the
/// platform team's comment in a fixed, line-based form, so the rating signed into m''' and seen by π says when the
/// renter did not have all its chips. They are evidence only: the decision table does not read them (docs/protocol.md,
/// "Lost nodes").
/// </summary>
public static class LeaserRatingFacts
{
    /// <summary>The first line of the facts block; each incident follows on its own line.</summary>
    public const string Header = "rpoi.io/node-incidents:";

    /// <summary>The most incidents listed in Ra_β; the rest are counted in one line (status.nodeIncidents has them all).</summary>
    public const int MaxListed = 16;

    /// <summary>
    /// The comment of Ra_β: <paramref name="comment"/>, then, when the lease had node incidents, a blank line and the
    /// facts block. Deterministic for a returned lease (its incidents no longer change), so a re-submitted m_final carries
    /// the same Ra_β.
    /// </summary>
    public static string CommentOf(string? comment, LeaseStatus? status)
    {
        var facts = FactsOf(status);
        var text = comment ?? string.Empty;
        return facts.Length == 0 ? text : text.Length == 0 ? facts : $"{text}\n\n{facts}";
    }

    /// <summary>The facts block for <paramref name="status"/>, or empty when the lease had no node incident.</summary>
    public static string FactsOf(LeaseStatus? status)
    {
        var incidents = status?.NodeIncidents ?? [];
        var dropped = status?.NodeIncidentsDropped ?? 0;
        if (incidents.Count == 0 && dropped == 0)
        {
            return string.Empty;
        }

        // A returned lease has no open incident (the return ends them); without a return time, the last recorded time bounds them.
        var until = status?.ReturnedAt is { } returned
            ? Utc(returned)
            : incidents.SelectMany(i => new[] { i.StartedAt, i.EndedAt }).OfType<DateTime>().Select(Utc).DefaultIfEmpty(DateTimeOffset.UnixEpoch).Max();
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{Header} {incidents.Count + dropped} on the leased nodes, degraded for {NodeIncidents.DegradedSeconds(incidents, until)} s in all");
        foreach (var i in incidents.Take(MaxListed))
        {
            var end = i.EndedAt is { } e ? $"{Format(e)} ({i.DurationSeconds} s, {i.Resolution})" : "still open";
            sb.Append(CultureInfo.InvariantCulture, $"\n- {i.Reason} node {i.Node} from {(i.StartedAt is { } s ? Format(s) : "?")} to {end}");
        }

        var unlisted = incidents.Count - Math.Min(incidents.Count, MaxListed) + dropped;
        if (unlisted > 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $"\n- and {unlisted} more (see the Lease's status.nodeIncidents)");
        }

        return sb.ToString();
    }

    private static string Format(DateTime t) => Utc(t).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static DateTimeOffset Utc(DateTime t) => new(DateTime.SpecifyKind(t, DateTimeKind.Utc));
}
