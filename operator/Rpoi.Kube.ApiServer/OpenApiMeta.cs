using System.Text.Json.Nodes;

namespace Rpoi.Kube.ApiServer;

/// <summary>
/// The meta.k8s.io schemas an OpenAPI v3 document of a real server carries for its kinds: TypeMeta's apiVersion and
/// kind, and ObjectMeta (with OwnerReference, ManagedFieldsEntry, Time, FieldsV1) that <c>metadata</c> refers to, so
/// <c>kubectl explain &lt;kind&gt;.metadata</c> resolves as on a real server. Descriptions are those of
/// k8s.io/apimachinery pkg/apis/meta/v1 (types_swagger_doc_generated.go); for a CRD, apiextensions-apiserver replaces
/// the schema's own apiVersion, kind and metadata with these (pkg/controller/openapi/builder/builder.go).
/// </summary>
internal static class OpenApiMeta
{
    public const string ObjectMetaName = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
    private const string Meta = "io.k8s.apimachinery.pkg.apis.meta.v1.";

    public static JsonObject ApiVersion() => Str(
        "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources");

    public static JsonObject Kind() => Str(
        "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds");

    /// <summary>The <c>metadata</c> property: a reference to ObjectMeta, wrapped in allOf because it has a sibling description.</summary>
    public static JsonObject Metadata() => new()
    {
        ["description"] = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
        ["allOf"] = new JsonArray(Ref(ObjectMetaName)),
    };

    /// <summary>Adds ObjectMeta and the schemas it refers to into <c>components.schemas</c>.</summary>
    public static void AddComponents(JsonObject schemas)
    {
        schemas[ObjectMetaName] = Obj("ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.", new JsonObject
        {
            ["annotations"] = Map("Annotations is an unstructured key value map stored with a resource that may be set by external tools to store and retrieve arbitrary metadata. They are not queryable and should be preserved when modifying objects. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/annotations"),
            ["creationTimestamp"] = Wrapped("Time", "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"),
            ["deletionGracePeriodSeconds"] = Int("Number of seconds allowed for this object to gracefully terminate before it will be removed from the system. Only set when deletionTimestamp is also set. May only be shortened. Read-only."),
            ["deletionTimestamp"] = Wrapped("Time", "DeletionTimestamp is RFC 3339 date and time at which this resource will be deleted. This field is set by the server when a graceful deletion is requested by the user, and is not directly settable by a client. The resource is expected to be deleted (no longer visible from resource lists, and not reachable by name) after the time in this field, once the finalizers list is empty. As long as the finalizers list contains items, deletion is blocked.\n\nPopulated by the system when a graceful deletion is requested. Read-only. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"),
            ["finalizers"] = new JsonObject
            {
                ["description"] = "Must be empty before the object is deleted from the registry. Each entry is an identifier for the responsible component that will remove the entry from the list. If the deletionTimestamp of the object is non-nil, entries in this list can only be removed. Finalizers may be processed and removed in any order.  Order is NOT enforced because it introduces significant risk of stuck finalizers.",
                ["type"] = "array",
                ["items"] = new JsonObject { ["type"] = "string", ["default"] = "" },
                ["x-kubernetes-list-type"] = "set",
                ["x-kubernetes-patch-strategy"] = "merge",
            },
            ["generateName"] = Str("GenerateName is an optional prefix, used by the server, to generate a unique name ONLY IF the Name field has not been provided. If this field is used, the name returned to the client will be different than the name passed. This value will also be combined with a unique suffix. The provided value has the same validation rules as the Name field, and may be truncated by the length of the suffix required to make the value unique on the server.\n\nIf this field is specified and the generated name exists, the server will return a 409.\n\nApplied only if Name is not specified. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#idempotency"),
            ["generation"] = Int("A sequence number representing a specific generation of the desired state. Populated by the system. Read-only."),
            ["labels"] = Map("Map of string keys and values that can be used to organize and categorize (scope and select) objects. May match selectors of replication controllers and services. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels"),
            ["managedFields"] = List("ManagedFieldsEntry", "ManagedFields maps workflow-id and version to the set of fields that are managed by that workflow. This is mostly for internal housekeeping, and users typically shouldn't need to set or understand this field. A workflow can be the user's name, a controller's name, or the name of a specific apply path like \"ci-cd\". The set of fields is always in the version that the workflow used when modifying the object.", "atomic"),
            ["name"] = Str("Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"),
            ["namespace"] = Str("Namespace defines the space within which each name must be unique. An empty namespace is equivalent to the \"default\" namespace, but \"default\" is the canonical representation. Not all objects are required to be scoped to a namespace - the value of this field for those objects will be empty.\n\nMust be a DNS_LABEL. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces"),
            ["ownerReferences"] = List("OwnerReference", "List of objects depended by this object. If ALL objects in the list have been deleted, this object will be garbage collected. If this object is managed by a controller, then an entry in this list will point to this controller, with the controller field set to true. There cannot be more than one managing controller.", "map"),
            ["resourceVersion"] = Str("An opaque value that represents the internal version of this object that can be used by clients to determine when objects have changed. May be used for optimistic concurrency, change detection, and the watch operation on a resource or set of resources. Clients must treat these values as opaque and passed unmodified back to the server. They may only be valid for a particular resource or set of resources.\n\nPopulated by the system. Read-only. Value must be treated as opaque by clients and . More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#concurrency-control-and-consistency"),
            ["selfLink"] = Str("Deprecated: selfLink is a legacy read-only field that is no longer populated by the system."),
            ["uid"] = Str("UID is the unique in time and space value for this object. It is typically generated by the server on successful creation of a resource and is not allowed to change on PUT operations.\n\nPopulated by the system. Read-only. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#uids"),
        });
        var owner = Obj("OwnerReference contains enough information to let you identify an owning object. An owning object must be in the same namespace as the dependent, or be cluster-scoped, so there is no namespace field.", new JsonObject
        {
            ["apiVersion"] = Str("API version of the referent.", ""),
            ["blockOwnerDeletion"] = new JsonObject { ["type"] = "boolean", ["description"] = "If true, AND if the owner has the \"foregroundDeletion\" finalizer, then the owner cannot be deleted from the key-value store until this reference is removed. Defaults to false." },
            ["controller"] = new JsonObject { ["type"] = "boolean", ["description"] = "If true, this reference points to the managing controller." },
            ["kind"] = Str("Kind of the referent. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds", ""),
            ["name"] = Str("Name of the referent. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names", ""),
            ["uid"] = Str("UID of the referent. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#uids", ""),
        });
        owner["required"] = new JsonArray("apiVersion", "kind", "name", "uid");
        owner["x-kubernetes-map-type"] = "atomic";
        schemas[Meta + "OwnerReference"] = owner;
        schemas[Meta + "ManagedFieldsEntry"] = Obj("ManagedFieldsEntry is a workflow-id, a FieldSet and the group version of the resource that the fieldset applies to.", new JsonObject
        {
            ["apiVersion"] = Str("APIVersion defines the version of this resource that this field set applies to. The format is \"group/version\" just like the top-level APIVersion field. It is necessary to track the version of a field set because it cannot be automatically converted."),
            ["fieldsType"] = Str("FieldsType is the discriminator for the different fields format and version. There is currently only one possible value: \"FieldsV1\""),
            ["fieldsV1"] = Wrapped("FieldsV1", "FieldsV1 holds the first JSON version format as described in the \"FieldsV1\" type."),
            ["manager"] = Str("Manager is an identifier of the workflow managing these fields."),
            ["operation"] = Str("Operation is the type of operation which lead to this ManagedFieldsEntry being created. The only valid values for this field are 'Apply' and 'Update'."),
            ["subresource"] = Str("Subresource is the name of the subresource used to update that object, or empty string if the object was updated through the main resource."),
            ["time"] = Wrapped("Time", "Time is the timestamp of when the ManagedFields entry was added. The timestamp will also be updated if a field is added, the manager changes any of the owned fields value or removes a field. The timestamp does not update when a field is removed from the entry because another manager took it over."),
        });
        schemas[Meta + "Time"] = new JsonObject
        {
            ["description"] = "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON.  Wrappers are provided for many of the factory methods that the time package offers.",
            ["type"] = "string",
            ["format"] = "date-time",
        };
        schemas[Meta + "FieldsV1"] = new JsonObject
        {
            ["description"] = "FieldsV1 stores a set of fields in a data structure like a Trie, in JSON format.",
            ["type"] = "object",
        };
    }

    private static JsonObject Ref(string name) => new() { ["$ref"] = $"#/components/schemas/{name}" };

    private static JsonObject Str(string description, string? @default = null)
    {
        var s = new JsonObject { ["description"] = description, ["type"] = "string" };
        if (@default is not null)
        {
            s["default"] = @default;
        }

        return s;
    }

    private static JsonObject Int(string description) => new() { ["description"] = description, ["type"] = "integer", ["format"] = "int64" };

    private static JsonObject Map(string description) => new()
    {
        ["description"] = description,
        ["type"] = "object",
        ["additionalProperties"] = new JsonObject { ["type"] = "string", ["default"] = "" },
    };

    private static JsonObject Wrapped(string type, string description) => new() { ["description"] = description, ["allOf"] = new JsonArray(Ref(Meta + type)) };

    private static JsonObject List(string itemType, string description, string listType)
    {
        var list = new JsonObject
        {
            ["description"] = description,
            ["type"] = "array",
            ["items"] = new JsonObject { ["default"] = new JsonObject(), ["allOf"] = new JsonArray(Ref(Meta + itemType)) },
            ["x-kubernetes-list-type"] = listType,
        };
        if (listType == "map")
        {
            list["x-kubernetes-list-map-keys"] = new JsonArray("uid");
            list["x-kubernetes-patch-merge-key"] = "uid";
            list["x-kubernetes-patch-strategy"] = "merge";
        }

        return list;
    }

    private static JsonObject Obj(string description, JsonObject properties) => new() { ["description"] = description, ["type"] = "object", ["properties"] = properties };
}
