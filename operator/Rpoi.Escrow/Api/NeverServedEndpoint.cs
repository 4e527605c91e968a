using Rpoi.Escrow.Client;

namespace Rpoi.Escrow.Api;

/// <summary><c>POST /v1/never-served</c>: the refund of a lease cancelled before it was ever served (row NeverServed).</summary>
public static class NeverServedEndpoint
{
    /// <summary>Maps the route on the <c>/v1</c> group.</summary>
    public static void Map(RouteGroupBuilder v1)
    {
        ArgumentNullException.ThrowIfNull(v1);
        v1.MapPost("/never-served", async (HttpContext http, EscrowService escrow, CallAuthenticator auth, CancellationToken ct) =>
        {
            StrictJson.RequireJsonContentType(http.Request.ContentType);
            var body = await EscrowEndpoints.ReadBodyAsync(http, ct);
            var caller = auth.RequireLeaserOrAdmin(http.Request, body);
            var (settlement, created) = await escrow.NeverServedAsync(Problems.ReadJson<NeverServedRequest>(body, JsonShape.Bodies.NeverServed, "notice", EscrowEndpoints.Json), caller, ct);
            return Results.Json(settlement, EscrowEndpoints.Json, statusCode: created ? 201 : 200);
        });
    }
}
