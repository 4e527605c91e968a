using System.Text.Json;
using System.Text.Json.Serialization;

namespace Rpoi.Escrow.Client;

/// <summary>Refund a lease that was never served: β's signed notice (kind <c>rpoi.never-served/v1</c>) for H.</summary>
public sealed record NeverServedRequest([property: JsonPropertyName("notice")] JsonElement Notice);
