using System.Text.Json.Nodes;

namespace Rpoi.Kube.ApiServer;

/// <summary>One field-level cause of an <c>Invalid</c> error, as in <c>Status.details.causes</c>.</summary>
/// <param name="Reason">Machine reason, e.g. <c>FieldValueInvalid</c>, <c>FieldValueRequired</c>.</param>
/// <param name="Field">The JSON path of the field, e.g. <c>spec.size</c>.</param>
/// <param name="Message">
/// The whole field error as the real server's <c>field.Error.Error()</c> writes it (<c>spec.size: Invalid value: 0: …</c>),
/// which goes into <c>Status.message</c>; the cause on the wire carries it without the leading <c>field: </c>
/// (<c>ErrorBody()</c>), as the real server sends it and as kubectl expects when it prints <c>field: message</c>.
/// </param>
public sealed record StatusCause(string Reason, string Field, string Message);

/// <summary>
/// A request failure that is answered with a Kubernetes <c>Status</c> object; thrown anywhere in request
/// handling and turned into the response by the server.
/// </summary>
public sealed class ApiException : Exception
{
    /// <summary>Creates a failure with an HTTP code and a Kubernetes reason.</summary>
    public ApiException(int code, string reason, string message, IReadOnlyList<StatusCause>? causes = null)
        : base(message)
    {
        Code = code;
        Reason = reason;
        Causes = causes ?? [];
    }

    /// <summary>HTTP status code (and <c>Status.code</c>).</summary>
    public int Code { get; }

    /// <summary><c>Status.reason</c>, e.g. NotFound, AlreadyExists, Conflict, Invalid, Gone, BadRequest.</summary>
    public string Reason { get; }

    /// <summary>Field causes (for Invalid).</summary>
    public IReadOnlyList<StatusCause> Causes { get; }

    /// <summary><c>Status.details.name</c>.</summary>
    public string? DetailName { get; init; }

    /// <summary><c>Status.details.group</c>.</summary>
    public string? DetailGroup { get; init; }

    /// <summary><c>Status.details.kind</c> (the plural resource name, as the real server writes it).</summary>
    public string? DetailKind { get; init; }

    internal static ApiException NotFound(ResourceType type, string name) =>
        new(404, "NotFound", $"{type.QualifiedPlural} \"{name}\" not found")
        { DetailName = name, DetailGroup = type.Group, DetailKind = type.Plural };

    internal static ApiException AlreadyExists(ResourceType type, string name) =>
        new(409, "AlreadyExists", $"{type.QualifiedPlural} \"{name}\" already exists")
        { DetailName = name, DetailGroup = type.Group, DetailKind = type.Plural };

    internal static ApiException Conflict(ResourceType type, string name) =>
        new(409, "Conflict",
            $"Operation cannot be fulfilled on {type.QualifiedPlural} \"{name}\": the object has been modified; please apply your changes to the latest version and try again")
        { DetailName = name, DetailGroup = type.Group, DetailKind = type.Plural };

    internal static ApiException BadRequest(string message) => new(400, "BadRequest", message);

    internal static ApiException Invalid(ResourceType type, string name, IReadOnlyList<StatusCause> causes)
    {
        // field.ErrorList.ToAggregate drops repeated messages.
        var parts = causes.Select(c => c.Message).Distinct(StringComparer.Ordinal).ToList();
        var joined = parts.Count == 1 ? parts[0] : "[" + string.Join(", ", parts) + "]";
        var qualifiedKind = type.Group.Length == 0 ? type.Kind : $"{type.Kind}.{type.Group}";
        return new ApiException(422, "Invalid", $"{qualifiedKind} \"{name}\" is invalid: {joined}", causes)
        { DetailName = name, DetailGroup = type.Group, DetailKind = type.Kind };
    }

    internal static ApiException Gone(string message) => new(410, "Expired", message);

    /// <summary>Builds the <c>Status</c> object for this failure.</summary>
    public JsonObject ToStatus() => BuildStatus(Code, Reason, Message, DetailName, DetailGroup, DetailKind, Causes);

    internal static JsonObject BuildStatus(int code, string reason, string message, string? name = null, string? group = null,
        string? kind = null, IReadOnlyList<StatusCause>? causes = null)
    {
        var status = new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = code is >= 200 and < 300 ? "Success" : "Failure",
            ["message"] = message,
            ["reason"] = reason,
            ["code"] = code,
        };
        if (name is not null || kind is not null || causes is { Count: > 0 })
        {
            var details = new JsonObject();
            if (name is not null)
            {
                details["name"] = name;
            }

            if (group is { Length: > 0 })
            {
                details["group"] = group;
            }

            if (kind is not null)
            {
                details["kind"] = kind;
            }

            if (causes is { Count: > 0 })
            {
                details["causes"] = new JsonArray(causes.Select(c => (JsonNode)new JsonObject
                {
                    ["reason"] = c.Reason,
                    ["message"] = c.Message.StartsWith(c.Field + ": ", StringComparison.Ordinal) ? c.Message[(c.Field.Length + 2)..] : c.Message,
                    ["field"] = c.Field,
                }).ToArray());
            }

            status["details"] = details;
        }

        return status;
    }
}
