namespace Rpoi.Operator.CrdGeneration;

// The vocabulary the CRD generator reads from the entity types. Kept apart from
// System.ComponentModel.DataAnnotations so a [Required] here never means "validate in .NET".

/// <summary>A short name for <c>kubectl get</c> (for example <c>tpulease</c>).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true)]
public sealed class ShortNameAttribute(string name) : Attribute
{
    /// <summary>The short name.</summary>
    public string Name { get; } = name;
}

/// <summary>A category the kind belongs to, so <c>kubectl get rpoi</c> lists it.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true)]
public sealed class CategoryAttribute(string name) : Attribute
{
    /// <summary>The category name.</summary>
    public string Name { get; } = name;
}

/// <summary>An additional printer column for <c>kubectl get</c>; order of declaration is kept.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true)]
public sealed class PrinterColumnAttribute(int order, string name, string type, string jsonPath) : Attribute
{
    /// <summary>Position among the columns (ascending).</summary>
    public int Order { get; } = order;

    /// <summary>The column header.</summary>
    public string Name { get; } = name;

    /// <summary>OpenAPI type of the column: string, integer, number, boolean or date.</summary>
    public string Type { get; } = type;

    /// <summary>JSONPath of the value, for example <c>.status.phase</c>.</summary>
    public string JsonPath { get; } = jsonPath;

    /// <summary>What the column shows.</summary>
    public string? Description { get; init; }

    /// <summary>0 shows the column by default; higher values only with <c>-o wide</c>.</summary>
    public int Priority { get; init; }
}

/// <summary>The field must be present (the OpenAPI <c>required</c> list of the parent object).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class RequiredFieldAttribute : Attribute;

/// <summary>Inclusive numeric bounds (OpenAPI <c>minimum</c>/<c>maximum</c>).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class NumberRangeAttribute(long minimum, long maximum = long.MaxValue) : Attribute
{
    /// <summary>The smallest allowed value.</summary>
    public long Minimum { get; } = minimum;

    /// <summary>The largest allowed value; <see cref="long.MaxValue"/> means unbounded.</summary>
    public long Maximum { get; } = maximum;
}

/// <summary>String length bounds (OpenAPI <c>minLength</c>/<c>maxLength</c>).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class LengthAttribute(long minLength, long maxLength = long.MaxValue) : Attribute
{
    /// <summary>The shortest allowed length.</summary>
    public long MinLength { get; } = minLength;

    /// <summary>The longest allowed length; <see cref="long.MaxValue"/> means unbounded.</summary>
    public long MaxLength { get; } = maxLength;
}

/// <summary>A regular expression the string must match (OpenAPI <c>pattern</c>).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class PatternAttribute(string regex) : Attribute
{
    /// <summary>The ECMA-262 regular expression.</summary>
    public string Regex { get; } = regex;
}

/// <summary>OpenAPI <c>format</c> of a string field (for example <c>date-time</c>).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class FormatAttribute(string format) : Attribute
{
    /// <summary>The format name.</summary>
    public string Format { get; } = format;
}

/// <summary>The value the API server fills in when the field is absent.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class DefaultValueAttribute(object value) : Attribute
{
    /// <summary>The default value (string, long or bool).</summary>
    public object Value { get; } = value;
}

/// <summary>The field cannot change once set: the CEL transition rule <c>self == oldSelf</c>.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ImmutableAttribute : Attribute
{
    /// <summary>The message the API server returns when the rule fails.</summary>
    public string Message { get; init; } = "field is immutable";
}

/// <summary>
/// A CEL rule (<c>x-kubernetes-validations</c>) on the field or on the object of the class.
/// There is deliberately no <c>fieldPath</c>: it needs Kubernetes 1.28 and the CRDs must load on 1.25,
/// so a rule on an object names the field it checks in its <see cref="Message"/> (for example
/// "spec.signedRating is required ...").
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Class, AllowMultiple = true)]
public sealed class CelRuleAttribute(string rule, string message) : Attribute
{
    /// <summary>The CEL expression; <c>self</c> is the value, <c>oldSelf</c> the previous one on update.</summary>
    public string Rule { get; } = rule;

    /// <summary>The message the API server returns when the rule fails; it names the field it checks.</summary>
    public string Message { get; } = message;
}

/// <summary>
/// The object keeps fields the schema does not declare (<c>x-kubernetes-preserve-unknown-fields</c>).
/// Used for signed payloads: pruning a field would break the signature over the canonical JSON.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Class)]
public sealed class PreserveUnknownFieldsAttribute : Attribute;

/// <summary>
/// The raw JSON property is described in the schema by the documented properties of <see cref="Type"/>
/// (the C# type stays raw JSON so no field is lost on a round trip through the operator).
/// </summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class SchemaFromAttribute(Type type) : Attribute
{
    /// <summary>The type whose properties document the raw JSON object.</summary>
    public Type Type { get; } = type;
}

/// <summary>A list whose items are merged by key (<c>x-kubernetes-list-type: map</c>).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class ListMapAttribute(params string[] keys) : Attribute
{
    /// <summary>The item fields that identify an item.</summary>
    public IReadOnlyList<string> Keys { get; } = keys;
}
