using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using k8s.Models;

namespace Rpoi.Operator.CrdGeneration;

/// <summary>
/// Builds a structural OpenAPI v3 schema from C# types by reflection: the properties' JSON names,
/// their types, the schema attributes of this namespace and the XML doc comments as descriptions.
/// Properties are emitted in ordinal order of their JSON names so the output never depends on
/// reflection order.
/// </summary>
public sealed class SchemaBuilder(XmlDocumentation docs)
{
    /// <summary>The root schema of an entity: apiVersion, kind, metadata, spec and status.</summary>
    public V1JSONSchemaProps ForEntity(Type entity) => ForObject(entity, docs.Of(entity));

    private V1JSONSchemaProps ForObject(Type type, string? description)
    {
        var properties = new SortedDictionary<string, V1JSONSchemaProps>(StringComparer.Ordinal);
        var required = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetCustomAttribute<JsonIgnoreAttribute>() is not null)
            {
                continue;
            }

            var name = JsonName(property);
            properties.Add(name, ForProperty(property));
            if (property.GetCustomAttribute<RequiredFieldAttribute>() is not null)
            {
                required.Add(name);
            }
        }

        var schema = new V1JSONSchemaProps
        {
            Type = "object",
            Description = description,
            Properties = new Dictionary<string, V1JSONSchemaProps>(properties),
            Required = required.Count > 0 ? [.. required] : null,
        };
        ApplyTypeAttributes(schema, type);
        return schema;
    }

    private V1JSONSchemaProps ForProperty(PropertyInfo property)
    {
        var schemaFrom = property.GetCustomAttribute<SchemaFromAttribute>();
        var schema = schemaFrom is not null
            ? ForObject(schemaFrom.Type, docs.Of(schemaFrom.Type))
            : ForType(property.PropertyType);

        // A property's own doc says what the field means where it is used; it wins over the type's. Not for
        // metadata: the API server allows only "type: object" there (a description makes it refuse the CRD).
        schema.Description = property.PropertyType == typeof(V1ObjectMeta) ? null : docs.Of(property) ?? schema.Description;

        if (property.GetCustomAttribute<NumberRangeAttribute>() is { } range)
        {
            schema.Minimum = range.Minimum;
            schema.Maximum = range.Maximum == long.MaxValue ? null : range.Maximum;
        }

        if (property.GetCustomAttribute<LengthAttribute>() is { } length)
        {
            schema.MinLength = length.MinLength > 0 ? length.MinLength : null;
            schema.MaxLength = length.MaxLength == long.MaxValue ? null : length.MaxLength;
        }

        if (property.GetCustomAttribute<PatternAttribute>() is { } pattern)
        {
            schema.Pattern = pattern.Regex;
        }

        if (property.GetCustomAttribute<FormatAttribute>() is { } format)
        {
            schema.Format = format.Format;
        }

        if (property.GetCustomAttribute<DefaultValueAttribute>() is { } defaultValue)
        {
            schema.DefaultProperty = defaultValue.Value;
        }

        if (property.GetCustomAttribute<PreserveUnknownFieldsAttribute>() is not null)
        {
            schema.XKubernetesPreserveUnknownFields = true;
        }

        if (property.GetCustomAttribute<ListMapAttribute>() is { } listMap)
        {
            schema.XKubernetesListType = "map";
            schema.XKubernetesListMapKeys = [.. listMap.Keys];
        }

        var rules = new List<V1ValidationRule>();
        if (property.GetCustomAttribute<ImmutableAttribute>() is { } immutable)
        {
            // A transition rule: the API server evaluates it only on update, when oldSelf exists, so a
            // create is never refused by it (works from Kubernetes 1.25 on, no optionalOldSelf needed).
            rules.Add(new V1ValidationRule { Rule = "self == oldSelf", Message = immutable.Message });
        }

        rules.AddRange(property.GetCustomAttributes<CelRuleAttribute>().Select(Rule));
        if (rules.Count > 0)
        {
            schema.XKubernetesValidations = [.. schema.XKubernetesValidations ?? [], .. rules];
        }

        return schema;
    }

    private V1JSONSchemaProps ForType(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(string))
        {
            return new V1JSONSchemaProps { Type = "string" };
        }

        if (type == typeof(bool))
        {
            return new V1JSONSchemaProps { Type = "boolean" };
        }

        if (type == typeof(int))
        {
            return new V1JSONSchemaProps { Type = "integer", Format = "int32" };
        }

        if (type == typeof(long))
        {
            return new V1JSONSchemaProps { Type = "integer", Format = "int64" };
        }

        if (type == typeof(DateTime) || type == typeof(DateTimeOffset))
        {
            return new V1JSONSchemaProps { Type = "string", Format = "date-time" };
        }

        if (type.IsEnum)
        {
            return new V1JSONSchemaProps
            {
                Type = "string",
                Description = docs.Of(type),
                EnumProperty = [.. type.GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (object)EnumName(f))],
            };
        }

        if (type == typeof(JsonObject))
        {
            return new V1JSONSchemaProps { Type = "object", XKubernetesPreserveUnknownFields = true };
        }

        if (type == typeof(V1ObjectMeta))
        {
            // Metadata is the API server's: a structural schema may say no more than "object" here.
            return new V1JSONSchemaProps { Type = "object" };
        }

        if (type == typeof(V1Condition))
        {
            return Condition();
        }

        if (ElementType(type) is { } element)
        {
            return new V1JSONSchemaProps { Type = "array", Items = ForType(element) };
        }

        if (type.IsClass && type.Namespace?.StartsWith("Rpoi.", StringComparison.Ordinal) == true)
        {
            return ForObject(type, docs.Of(type));
        }

        throw new NotSupportedException(
            $"The CRD generator has no schema for type '{type.FullName}'. Use a supported type " +
            "(string, bool, int, long, DateTime, enum, list, JsonObject, V1Condition or an Rpoi class) or extend SchemaBuilder.");
    }

    private static Type? ElementType(Type type)
    {
        if (type.IsArray)
        {
            return type.GetElementType();
        }

        if (type.IsGenericType && type.GetGenericTypeDefinition() is var definition &&
            (definition == typeof(IList<>) || definition == typeof(List<>) ||
             definition == typeof(IReadOnlyList<>) || definition == typeof(ICollection<>)))
        {
            return type.GetGenericArguments()[0];
        }

        return null;
    }

    private static void ApplyTypeAttributes(V1JSONSchemaProps schema, Type type)
    {
        if (type.GetCustomAttribute<PreserveUnknownFieldsAttribute>() is not null)
        {
            schema.XKubernetesPreserveUnknownFields = true;
        }

        var rules = type.GetCustomAttributes<CelRuleAttribute>().Select(Rule).ToList();
        if (rules.Count > 0)
        {
            schema.XKubernetesValidations = rules;
        }
    }

    // Only rule and message: fieldPath, messageExpression, reason and optionalOldSelf need Kubernetes newer than 1.25.
    private static V1ValidationRule Rule(CelRuleAttribute rule) =>
        new() { Rule = rule.Rule, Message = rule.Message };

    private static string JsonName(PropertyInfo property) =>
        property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? JsonNamingPolicy.CamelCase.ConvertName(property.Name);

    private static string EnumName(FieldInfo field) =>
        field.GetCustomAttribute<JsonStringEnumMemberNameAttribute>()?.Name ?? field.Name;

    // metav1.Condition, as upstream documents it; written out here because it is not one of our types.
    private static V1JSONSchemaProps Condition() => new()
    {
        Type = "object",
        Description = "Condition contains details for one aspect of the current state of this API Resource.",
        Required = ["lastTransitionTime", "message", "reason", "status", "type"],
        Properties = new Dictionary<string, V1JSONSchemaProps>
        {
            ["lastTransitionTime"] = new()
            {
                Type = "string",
                Format = "date-time",
                Description = "lastTransitionTime is the last time the condition transitioned from one status to another.",
            },
            ["message"] = new()
            {
                Type = "string",
                MaxLength = 32768,
                Description = "message is a human readable message indicating details about the transition. This may be an empty string.",
            },
            ["observedGeneration"] = new()
            {
                Type = "integer",
                Format = "int64",
                Minimum = 0,
                Description = "observedGeneration is the .metadata.generation that the condition was set based upon.",
            },
            ["reason"] = new()
            {
                Type = "string",
                MinLength = 1,
                MaxLength = 1024,
                Pattern = "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
                Description = "reason contains a programmatic identifier indicating the reason for the condition's last transition, in CamelCase.",
            },
            ["status"] = new()
            {
                Type = "string",
                EnumProperty = ["True", "False", "Unknown"],
                Description = "status of the condition, one of True, False, Unknown.",
            },
            ["type"] = new()
            {
                Type = "string",
                MaxLength = 316,
                Pattern = @"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
                Description = "type of condition in CamelCase or in foo.example.com/CamelCase.",
            },
        },
    };
}
