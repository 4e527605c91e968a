using System.Globalization;
using System.Text.Json;
using Rpoi.Escrow.Client;

namespace Rpoi.Escrow.Api;

/// <summary>The <c>/v1</c> HTTP API. Reads are public (π's ledger is public); writes need a credential or a party signature.</summary>
public static class EscrowEndpoints
{
    /// <summary>JSON settings of the API (the DTOs name their members explicitly).</summary>
    public static JsonSerializerOptions Json { get; } = new(JsonSerializerDefaults.Web)
    {
        // The web defaults match names case-insensitively; π reads exactly the names it documents.
        PropertyNameCaseInsensitive = false,
        AllowDuplicateProperties = false,
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
        RespectNullableAnnotations = true,
        // Base64 keys stay readable ('+' and '/' unescaped); responses are JSON, never HTML.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Maps every route.</summary>
    public static void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.Use(async (context, next) =>
        {
            try
            {
                await next(context);
            }
            catch (EscrowRefusedException refusal)
            {
                await Problems.From(refusal).ExecuteAsync(context);
            }
            catch (BadHttpRequestException ex)
            {
                // Kestrel's own text may name internals; the status it chose (400, 408, 413) is kept.
                await Problems.Create(ex.StatusCode is >= 400 and < 500 ? ex.StatusCode : 400, EscrowReasons.InvalidField, "body", "the request body could not be read (cut off, too large or sent too slowly); send the whole JSON body again").ExecuteAsync(context);
            }
            catch (Exception ex) when (ex is not OperationCanceledException && !context.Response.HasStarted)
            {
                // The transaction rolled back before this point, so "nothing moved" holds here too.
                context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Rpoi.Escrow").LogError(ex, "{Method} {Path} failed", context.Request.Method, context.Request.Path);
                await Problems.Create(500, EscrowReasons.Internal, "body", "the escrow failed to process the request; nothing moved, retry later").ExecuteAsync(context);
            }
        });

        app.MapGet("/healthz", () => Results.Text("ok"));
        var v1 = app.MapGroup("/v1");

        v1.MapGet("/identity", (EscrowService escrow) => Results.Json(escrow.Identity(), Json));

        v1.MapPost("/deposits", async (HttpContext http, EscrowService escrow, CallAuthenticator auth, CancellationToken ct) =>
        {
            StrictJson.RequireJsonContentType(http.Request.ContentType);
            auth.RequireAdmin(http.Request);
            var body = await ReadBodyAsync(http, ct);
            var receipt = await escrow.DepositAsync(Problems.ReadJson<DepositRequest>(body, JsonShape.Bodies.Deposit, "deposit", Json), ct);
            return Results.Json(receipt, Json);
        });

        v1.MapGet("/accounts/{address}", async (string address, EscrowService escrow, CancellationToken ct) =>
            Results.Json(await escrow.AccountAsync(address, ct), Json));

        v1.MapPost("/pledges", async (HttpContext http, EscrowService escrow, CallAuthenticator auth, CancellationToken ct) =>
        {
            StrictJson.RequireJsonContentType(http.Request.ContentType);
            var body = await ReadBodyAsync(http, ct);
            var caller = auth.RequireLeaserOrAdmin(http.Request, body);
            var (pledge, created) = await escrow.PledgeAsync(Problems.ReadJson<PledgeRequest>(body, JsonShape.Bodies.Pledge, "pledge", Json), caller, ct);
            return Results.Json(pledge, Json, statusCode: created ? 201 : 200);
        });

        v1.MapGet("/pledges/{h}", async (string h, EscrowService escrow, CancellationToken ct) =>
            Results.Json(await escrow.GetPledgeAsync(h, ct), Json));

        v1.MapPost("/settlements", async (HttpContext http, EscrowService escrow, CallAuthenticator auth, CancellationToken ct) =>
        {
            StrictJson.RequireJsonContentType(http.Request.ContentType);
            var body = await ReadBodyAsync(http, ct);
            var caller = auth.RequireLeaserOrAdmin(http.Request, body);
            var (settlement, created) = await escrow.SettleAsync(Problems.ReadJson<SettlementRequest>(body, JsonShape.Bodies.Settlement, "settlement", Json), caller, ct);
            return Results.Json(settlement, Json, statusCode: created ? 201 : 200);
        });

        v1.MapGet("/settlements/{h}", async (string h, EscrowService escrow, CancellationToken ct) =>
            Results.Json(await escrow.GetSettlementAsync(h, ct), Json));

        // The renter's own claim needs no call credential: R's signature on E(m'') is the authorisation.
        v1.MapPost("/claims", async (HttpContext http, EscrowService escrow, CancellationToken ct) =>
        {
            StrictJson.RequireJsonContentType(http.Request.ContentType);
            var body = await ReadBodyAsync(http, ct);
            var (settlement, created) = await escrow.ClaimAsync(Problems.ReadJson<ClaimRequest>(body, JsonShape.Bodies.Claim, "claim", Json), ct);
            return Results.Json(settlement, Json, statusCode: created ? 201 : 200);
        });

        NeverServedEndpoint.Map(v1);

        v1.MapGet("/withheld", async (EscrowService escrow, CancellationToken ct) =>
            Results.Json(await escrow.WithheldAsync(ct), Json));

        v1.MapPost("/withheld/release", async (HttpContext http, EscrowService escrow, CallAuthenticator auth, CancellationToken ct) =>
        {
            StrictJson.RequireJsonContentType(http.Request.ContentType);
            auth.RequireAdmin(http.Request);
            var body = await ReadBodyAsync(http, ct);
            return Results.Json(await escrow.ReleaseAsync(Problems.ReadJson<ReleaseRequest>(body, JsonShape.Bodies.Release, "release", Json), ct), Json);
        });

        v1.MapGet("/ledger", async (HttpContext http, EscrowService escrow, CancellationToken ct) =>
        {
            var after = QueryLong(http, "after", 0);
            var limit = QueryLong(http, "limit", 100);
            return Results.Json(await escrow.LedgerAsync(after, (int)Math.Min(limit, int.MaxValue), ct), Json);
        });

        v1.MapGet("/ledger/verify", async (EscrowService escrow, CancellationToken ct) =>
        {
            var audit = await escrow.AuditAsync(ct);
            return Results.Json(audit, Json);
        });
    }

    private static long QueryLong(HttpContext http, string name, long fallback)
    {
        var text = http.Request.Query[name].ToString();
        if (text.Length == 0)
        {
            return fallback;
        }

        return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new EscrowRefusedException(EscrowReasons.InvalidField, name, $"query parameter '{name}' must be a non-negative integer");
    }

    /// <summary>Largest accepted body: m_final with two signed messages fits easily.</summary>
    private const int MaxBody = 256 * 1024;

    internal static async Task<byte[]> ReadBodyAsync(HttpContext http, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await http.Request.Body.ReadAsync(chunk, ct)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length > MaxBody)
            {
                throw new EscrowRefusedException(EscrowReasons.InvalidField, "body", $"the request body exceeds {MaxBody} bytes", 413);
            }
        }

        return buffer.ToArray();
    }
}
