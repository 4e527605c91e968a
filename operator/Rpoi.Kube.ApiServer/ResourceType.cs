using System.Text.Json.Nodes;

namespace Rpoi.Kube.ApiServer;

/// <summary>One additional printer column of a CRD version (<c>additionalPrinterColumns</c>).</summary>
/// <param name="Name">Column header.</param>
/// <param name="Type">OpenAPI type: string, integer, number, boolean, date.</param>
/// <param name="JsonPath">Simple JSONPath such as <c>.spec.size</c>.</param>
/// <param name="Description">Column description.</param>
/// <param name="Priority">0 = shown by default; higher only with <c>-o wide</c>.</param>
/// <param name="Format">OpenAPI format, e.g. <c>name</c>.</param>
public sealed record PrinterColumn(string Name, string Type, string JsonPath, string Description = "", int Priority = 0, string Format = "");

/// <summary>
/// A served resource: group, version, plural and everything discovery, openapi, tables and validation need.
/// Built-in kinds are fixed; custom resources are added when a CRD is created.
/// </summary>
public sealed record ResourceType
{
    /// <summary>API group; empty for the core group.</summary>
    public required string Group { get; init; }

    /// <summary>API version, e.g. v1.</summary>
    public required string Version { get; init; }

    /// <summary>Plural resource name used in URLs.</summary>
    public required string Plural { get; init; }

    /// <summary>Singular name (lower case).</summary>
    public required string Singular { get; init; }

    /// <summary>Kind, e.g. Secret.</summary>
    public required string Kind { get; init; }

    /// <summary>True when objects live in a namespace.</summary>
    public required bool Namespaced { get; init; }

    /// <summary>Short names (kubectl aliases).</summary>
    public IReadOnlyList<string> ShortNames { get; init; } = [];

    /// <summary>Categories (e.g. all).</summary>
    public IReadOnlyList<string> Categories { get; init; } = [];

    /// <summary>True when <c>/status</c> is a subresource (main-resource writes then never change status).</summary>
    public bool HasStatus { get; init; }

    /// <summary>Other subresources beyond status (e.g. <c>token</c> on serviceaccounts).</summary>
    public IReadOnlyList<string> ExtraSubresources { get; init; } = [];

    /// <summary>CRD printer columns; empty means NAME and AGE.</summary>
    public IReadOnlyList<PrinterColumn> PrinterColumns { get; init; } = [];

    /// <summary>The openAPIV3Schema of a CRD version; null for built-in kinds (no validation).</summary>
    public JsonObject? Schema { get; init; }

    /// <summary>True for kinds defined by a CRD.</summary>
    public bool IsCustom { get; init; }

    /// <summary><c>group/version</c>, or just the version for the core group.</summary>
    public string ApiVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";

    /// <summary><c>plural.group</c> as used in error messages (<c>widgets.example.test</c>), or the plural for core.</summary>
    public string QualifiedPlural => Group.Length == 0 ? Plural : $"{Plural}.{Group}";

    /// <summary>
    /// Set when this resource is served from another resource's storage (events.k8s.io/v1 Events are stored as
    /// core/v1 Events); null when objects are stored as served.
    /// </summary>
    internal StorageConversion? Conversion { get; init; }

    /// <summary>The field selector labels this kind supports; null = any dotted path of the object.</summary>
    internal FieldLabels? FieldLabels { get; init; }

    /// <summary>Storage key: objects are shared across versions of one group and plural, and with a converted resource's storage.</summary>
    internal string StorageKey => Conversion?.StorageKey ?? $"{Group}/{Plural}";

    /// <summary>A stored object's bytes as this resource serves them (converted when it shares another's storage).</summary>
    internal byte[] Serve(StoredObject stored) =>
        Conversion is { } c ? Json.Serialize(c.FromStorage(stored.Node)) : stored.Json;

    /// <summary>A served-form object in the form it is stored in.</summary>
    internal JsonObject ToStorage(JsonObject served) => Conversion is { } c ? c.ToStorage(served) : served;

    /// <summary>A stored-form object in the form this resource serves (a new object when converted).</summary>
    internal JsonObject FromStorage(JsonObject stored) => Conversion is { } c ? c.FromStorage(stored) : stored;

    /// <summary>List kind, e.g. SecretList.</summary>
    public string ListKind => Kind + "List";
}
