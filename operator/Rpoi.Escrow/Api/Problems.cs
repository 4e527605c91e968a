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

    /// <summary>A problem response: <c>errors</c> maps the field to the message, <c>reason</c> carries the code.</summary>
    public static IResult Create(int status, string reason, string field, string detail)
    {
        var problem = new ProblemDetails
        {
            Type = TypeBase + reason,
            Title = Title(status),
            Status = status,
            Detail = detail,
        };
        problem.Extensions["reason"] = reason;
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
        422 => "The message does not verify",
        _ => "The escrow could not process the request",
    };

    /// <summary>Deserialises a JSON body, turning any error into a refusal that names the JSON path at fault.</summary>
    public static T ReadJson<T>(ReadOnlySpan<byte> body, JsonSerializerOptions options)
        where T : class
    {
        if (body.IsEmpty)
        {
            throw new EscrowRefusedException(EscrowReasons.InvalidField, "body", $"the request body is empty; send a JSON {typeof(T).Name}");
        }

        try
        {
            return JsonSerializer.Deserialize<T>(body, options)
                ?? throw new EscrowRefusedException(EscrowReasons.InvalidField, "body", $"the request body is null; send a JSON {typeof(T).Name}");
        }
        catch (JsonException ex)
        {
            var path = string.IsNullOrEmpty(ex.Path) || ex.Path == "$" ? "body" : ex.Path.TrimStart('$', '.');
            throw new EscrowRefusedException(EscrowReasons.InvalidField, path, $"the request body is not a valid {typeof(T).Name}: {ex.Message}");
        }
    }
}
