using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;

namespace Rpoi.Kube.ApiServer.Tests.Support;

/// <summary>The test-local custom resource: example.test/v1 Widget (spec.size, spec.mode, status.conditions).</summary>
internal static class Widgets
{
    public const string Group = "example.test";
    public const string Version = "v1";
    public const string Plural = "widgets";

    public const string CrdYaml = """
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata:
          name: widgets.example.test
        spec:
          group: example.test
          scope: Namespaced
          names:
            plural: widgets
            singular: widget
            kind: Widget
            shortNames: [wg]
            categories: [all, examples]
          versions:
          - name: v1
            served: true
            storage: true
            subresources:
              status: {}
            additionalPrinterColumns:
            - name: Size
              type: integer
              jsonPath: .spec.size
            - name: Mode
              type: string
              jsonPath: .spec.mode
            - name: Ready
              type: string
              jsonPath: .status.conditions[?(@.type=="Ready")].status
            - name: Age
              type: date
              jsonPath: .metadata.creationTimestamp
            schema:
              openAPIV3Schema:
                type: object
                description: A Widget is a test resource with a size.
                properties:
                  spec:
                    type: object
                    description: Desired state of the widget.
                    required: [size]
                    properties:
                      size:
                        type: integer
                        minimum: 1
                        maximum: 100
                        description: Number of parts.
                      mode:
                        type: string
                        enum: [fast, slow]
                        description: How the widget runs.
                      owner:
                        type: string
                        x-kubernetes-validations:
                        - rule: self == oldSelf
                          message: owner is immutable
                      extra:
                        type: object
                        x-kubernetes-preserve-unknown-fields: true
                  status:
                    type: object
                    properties:
                      observedGeneration:
                        type: integer
                      conditions:
                        type: array
                        items:
                          type: object
                          required: [type, status]
                          properties:
                            type: {type: string}
                            status: {type: string}
                            reason: {type: string}
                            message: {type: string}
                            lastTransitionTime: {type: string, format: date-time}
        """;

    /// <summary>The CRD as JSON (parsed from the YAML with the client's own YAML loader).</summary>
    public static string CrdJson
    {
        get
        {
            var obj = KubernetesYaml.Deserialize<Dictionary<string, object>>(CrdYaml);
            return JsonSerializer.Serialize(obj);
        }
    }

    public static JsonObject New(string name, int size, string ns = "default", string? mode = null)
    {
        var spec = new JsonObject { ["size"] = size };
        if (mode is not null)
        {
            spec["mode"] = mode;
        }

        return new JsonObject
        {
            ["apiVersion"] = "example.test/v1",
            ["kind"] = "Widget",
            ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = ns },
            ["spec"] = spec,
        };
    }
}
