using System.Text.Json;
using Microsoft.AspNetCore.Mvc;
using Rpoi.Escrow.Client;

namespace Rpoi.Escrow.Api;

/// <summary>RFC 7807 problem responses that name the field and the reason code.</summary>
public static class Problems
{
    /// <summary>Problem type URIs are relative to this base, one per reason code.</summary>
    public const string TypeBase = "https://rpoi.io/problems/escrow/";

    /// <summary>The problem response for a refusal.</summary>
    public static IResult From(EscrowRefusedException refusal)
    {
        ArgumentNullException.ThrowIfNull(refusal);
        return Create(refusal.Status, refusal.Reason, refusal.Field, refusal.Message);
    }

    /// <summary>
    /// A problem response: <c>field</c> names what is at fault (a body property path such as <c>amount.denom</c>,
    /// <c>body</c>, a header or a query parameter), <c>errors</c> maps it to the message, <c>reason</c> carries the code.
    /// </summary>
    public static IResult Create(int status, string reason, string field, string detail)
    {
        field = string.IsNullOrEmpty(field) ? "body" : field;
        var problem = new ProblemDetails
        {
            Type = TypeBase + reason,
            Title = Title(status),
            Status = status,
            Detail = detail,
        };
        problem.Extensions["reason"] = reason;
        problem.Extensions["field"] = field;
        problem.Extensions["errors"] = new Dictionary<string, string[]> { [field] = [detail] };
        return Results.Json(problem, (JsonSerializerOptions?)null, "application/problem+json", status);
    }

    private static string Title(int status) => status switch
    {
        400 => "The request is invalid",
        401 => "Authentication required",
        403 => "Not allowed",
        404 => "Not found",
        409 => "Conflicts with the ledger",
        413 => "The request body is too large",
        415 => "The body must be JSON",
        422 => "The message does not verify",
        _ => "The escrow could not process the request",
    };

    /// <summary>
    /// Reads a JSON body strictly (<see cref="StrictJson.Check"/>: the shape, exact names, no duplicate keys), then
    /// deserialises it. Refusals name the property path at fault and never carry the deserialiser's own text.
    /// </summary>
    public static T ReadJson<T>(ReadOnlySpan<byte> body, JsonShape shape, string what, JsonSerializerOptions options)
        where T : class
    {
        StrictJson.Check(body, shape, what);
        try
        {
            return JsonSerializer.Deserialize<T>(body, options)
                ?? throw new EscrowRefusedException(EscrowReasons.InvalidField, "body", $"the request body is null; send a JSON {what}");
        }
        catch (JsonException ex)
        {
            // The shape check passed, so this is a value the types refuse; the path is ours, the message too.
            var path = string.IsNullOrEmpty(ex.Path) || ex.Path == "$" ? "body" : ex.Path.TrimStart('$', '.');
            throw new EscrowRefusedException(EscrowReasons.InvalidField, path, $"{path} has a value a {what} cannot hold; see docs/escrow.md for the body's fields");
        }
    }
}
