using System.Text.Json.Serialization;
using Rpoi.Operator.CrdGeneration;

namespace Rpoi.Operator.Entities;

/// <summary>How a node incident ended.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<NodeIncidentResolution>))]
public enum NodeIncidentResolution
{
    /// <summary>The node was healthy again while the lease was still Active.</summary>
    Recovered,

    /// <summary>The lease was returned (expiry, returnRequested or deletion) while the incident was still open.</summary>
    Returned,
}

/// <summary>
/// One problem with one of the lease's nodes while the lease was Active: the node became NotReady, was cordoned, was
/// put under GKE maintenance, lost this lease's claim marks, or was deleted. Kept after the return as evidence for the
/// ratings (β's Ra_β lists them; the renter can cite them in its own rating).
/// </summary>
public sealed class NodeIncident
{
    /// <summary>The node's name.</summary>
    [JsonPropertyName("node")]
    public string? Node { get; set; }

    /// <summary>What happened: NodeNotReady, NodeCordoned, NodeMaintenance, NodeClaimRemoved or NodeDeleted.</summary>
    [JsonPropertyName("reason")]
    public string? Reason { get; set; }

    /// <summary>What the operator saw when the incident started (the node's condition, taint or label).</summary>
    [JsonPropertyName("message")]
    public string? Message { get; set; }

    /// <summary>When the operator first saw the problem (whole seconds, the operator's clock).</summary>
    [JsonPropertyName("startedAt")]
    [Format("date-time")]
    public DateTime? StartedAt { get; set; }

    /// <summary>When the problem ended (the node recovered, or the lease was returned); empty while it lasts.</summary>
    [JsonPropertyName("endedAt")]
    [Format("date-time")]
    public DateTime? EndedAt { get; set; }

    /// <summary>endedAt − startedAt in seconds; empty while the incident lasts.</summary>
    [JsonPropertyName("durationSeconds")]
    public long? DurationSeconds { get; set; }

    /// <summary>How it ended: Recovered (while Active) or Returned (still open at the return).</summary>
    [JsonPropertyName("resolution")]
    public NodeIncidentResolution? Resolution { get; set; }
}
