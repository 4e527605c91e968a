using System.Reflection;
using k8s;
using k8s.Models;
using Rpoi.Operator.CrdGeneration;
using Rpoi.Operator.Entities;

namespace Rpoi.Operator.Tests.Crds;

public sealed class CrdSchemaTests
{
    private static readonly CrdGenerator Generator = CrdGenerator.ForThisAssembly();
    private static readonly V1CustomResourceDefinition LeaseCrd = Generator.Generate(typeof(Lease));
    private static readonly V1CustomResourceDefinition RatingCrd = Generator.Generate(typeof(Rating));

    public static TheoryData<string> Kinds => ["Lease", "Rating"];

    private static V1CustomResourceDefinition Crd(string kind) => kind == "Lease" ? LeaseCrd : RatingCrd;

    private static V1JSONSchemaProps Root(V1CustomResourceDefinition crd) => crd.Spec.Versions.Single().Schema.OpenAPIV3Schema;

    private static V1JSONSchemaProps At(V1CustomResourceDefinition crd, string path) =>
        path.Split('.').Aggregate(Root(crd), (node, name) => node.Properties[name]);

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Schema_is_structural(string kind) => Assert.Empty(StructuralSchema.Check(Root(Crd(kind))));

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Every_schema_node_has_a_description(string kind) =>
        Assert.Empty(StructuralSchema.MissingDescriptions(Root(Crd(kind))));

    /// <summary>
    /// Keywords the API test server enforces on objects as a real server does (docs/testing.md). A keyword outside it
    /// in our CRDs would be a rule that tests here cannot catch a violation of; add it to the test server first.
    /// </summary>
    private static readonly HashSet<string> EnforcedKeywords =
    [
        "type", "properties", "required", "items", "additionalProperties", "minimum", "maximum", "exclusiveMinimum",
        "exclusiveMaximum", "minLength", "maxLength", "pattern", "enum", "minItems", "maxItems", "maxProperties",
        "nullable", "default", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-validations",
    ];

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Every_validation_keyword_in_the_schema_is_one_the_test_server_enforces(string kind)
    {
        var unenforced = new List<string>();
        void Walk(System.Text.Json.Nodes.JsonObject node, string path)
        {
            foreach (var (key, value) in node)
            {
                var known = EnforcedKeywords.Contains(key) || key == "description"

                    // Neither server checks int32/int64 on integers; date-time is checked on both.
                    || (key == "format" && (string?)value is "int32" or "int64" or "date-time")

                    // A list map's key uniqueness is not checked here; only status.conditions is one, and the operator's
                    // conditions helper replaces a condition by type (ConditionsTests), so it cannot hold duplicates.
                    || (key is "x-kubernetes-list-type" or "x-kubernetes-list-map-keys" && path == ".status.conditions");
                if (!known)
                {
                    unenforced.Add($"{path}: {key}");
                }
            }

            if (node["properties"] is System.Text.Json.Nodes.JsonObject properties)
            {
                foreach (var (name, child) in properties)
                {
                    Walk(child!.AsObject(), $"{path}.{name}");
                }
            }

            foreach (var sub in new[] { "items", "additionalProperties" })
            {
                if (node[sub] is System.Text.Json.Nodes.JsonObject child)
                {
                    Walk(child, $"{path}[]");
                }
            }
        }

        Walk(System.Text.Json.Nodes.JsonNode.Parse(KubernetesJson.Serialize(Root(Crd(kind))))!.AsObject(), string.Empty);
        Assert.Empty(unenforced);
    }

    [Fact]
    public void Every_public_entity_type_property_and_enum_member_has_an_xml_doc()
    {
        var docs = XmlDocumentation.For(typeof(Lease).Assembly);
        var missing = new List<string>();
        foreach (var type in typeof(Lease).Assembly.GetExportedTypes().Where(t => t.Namespace == typeof(Lease).Namespace))
        {
            if (string.IsNullOrWhiteSpace(docs.Of(type)))
            {
                missing.Add(type.Name);
            }

            foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly))
            {
                if (string.IsNullOrWhiteSpace(docs.Of(property)))
                {
                    missing.Add($"{type.Name}.{property.Name}");
                }
            }

            foreach (var field in type.GetFields(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly))
            {
                if (string.IsNullOrWhiteSpace(docs.Of(field)))
                {
                    missing.Add($"{type.Name}.{field.Name}");
                }
            }
        }

        Assert.True(missing.Count == 0,
            "Add a /// <summary> (it becomes the CRD description and kubectl explain) to: " + string.Join(", ", missing));
    }

    [Fact]
    public void The_checker_reports_schemas_that_are_not_structural()
    {
        var bad = new V1JSONSchemaProps
        {
            Type = "object",
            Required = ["missing"],
            Properties = new Dictionary<string, V1JSONSchemaProps>
            {
                ["untyped"] = new() { Description = "no type" },
                ["list"] = new() { Type = "array" },
                ["map"] = new()
                {
                    Type = "array",
                    XKubernetesListType = "map",
                    XKubernetesListMapKeys = ["type"],
                    Items = new V1JSONSchemaProps { Type = "object", Properties = new Dictionary<string, V1JSONSchemaProps> { ["type"] = new() { Type = "string" } } },
                },
                ["mixed"] = new()
                {
                    Type = "object",
                    Properties = new Dictionary<string, V1JSONSchemaProps> { ["a"] = new() { Type = "string" } },
                    AdditionalProperties = new V1JSONSchemaProps { Type = "string" },
                },
                ["ref"] = new() { Type = "object", RefProperty = "#/definitions/x" },
            },
        };

        var problems = StructuralSchema.Check(bad);

        Assert.Contains(problems, p => p.Contains("properties[untyped]: has no type", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("properties[list]: is an array without", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("list-map key 'type' must be a required", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("properties[mixed]: has both properties and additionalProperties", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("properties[ref]: uses a keyword", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("required 'missing'", StringComparison.Ordinal));
        var undescribed = StructuralSchema.MissingDescriptions(bad);
        Assert.Contains(".list", undescribed);
        Assert.DoesNotContain(".untyped", undescribed);
    }

    [Fact]
    public void The_checker_refuses_what_a_real_server_refuses_under_metadata()
    {
        var described = new V1JSONSchemaProps
        {
            Type = "object",
            Properties = new Dictionary<string, V1JSONSchemaProps>
            {
                ["metadata"] = new() { Type = "object", Description = "Standard object metadata." },
                ["spec"] = new() { Type = "object", Description = "x" },
            },
        };
        var restricted = new V1JSONSchemaProps
        {
            Type = "object",
            Properties = new Dictionary<string, V1JSONSchemaProps>
            {
                ["metadata"] = new() { Type = "object", Properties = new Dictionary<string, V1JSONSchemaProps> { ["name"] = new() { Type = "string", MaxLength = 20 } } },
            },
        };

        Assert.Equal(
            ["openAPIV3Schema.properties[metadata]: must not specify anything other than name and generateName, but it says description"],
            StructuralSchema.Check(described));
        Assert.Empty(StructuralSchema.Check(restricted));
    }

    [Fact]
    public void The_checker_refuses_bad_defaults_list_types_and_old_self_in_atomic_lists()
    {
        var bad = new V1JSONSchemaProps
        {
            Type = "object",
            Properties = new Dictionary<string, V1JSONSchemaProps>
            {
                ["n"] = new() { Type = "integer", DefaultProperty = "x" },
                ["o"] = new() { Type = "object", Properties = new Dictionary<string, V1JSONSchemaProps> { ["a"] = new() { Type = "string" } }, DefaultProperty = new Dictionary<string, object> { ["b"] = "x" } },
                ["l"] = new() { Type = "array", XKubernetesListType = "sett", Items = new V1JSONSchemaProps { Type = "string", XKubernetesValidations = [new V1ValidationRule { Rule = "self == oldSelf", Message = "immutable" }] } },
                ["p"] = new() { Type = "string", Pattern = "(?=a)" },
                ["f"] = new() { Type = "object", XKubernetesPreserveUnknownFields = false },
            },
        };

        var problems = StructuralSchema.Check(bad);

        Assert.Contains("openAPIV3Schema.properties[n].default: \"x\" is not a valid, pruned value of this schema", problems);
        Assert.Contains(problems, p => p.StartsWith("openAPIV3Schema.properties[o].default:", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("openAPIV3Schema.properties[l].x-kubernetes-list-type: 'sett'", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("openAPIV3Schema.properties[l].items.x-kubernetes-validations[0].rule: oldSelf cannot be used", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("openAPIV3Schema.properties[p].pattern:", StringComparison.Ordinal));
        Assert.Contains("openAPIV3Schema.properties[f].x-kubernetes-preserve-unknown-fields: must be true or undefined", problems);
    }

    [Fact]
    public void Lease_names_scope_and_subresource()
    {
        var spec = LeaseCrd.Spec;
        Assert.Equal("leases.rpoi.io", LeaseCrd.Metadata.Name);
        Assert.Equal("rpoi.io", spec.Group);
        Assert.Equal("Namespaced", spec.Scope);
        Assert.Equal(("Lease", "LeaseList", "leases", "lease"), (spec.Names.Kind, spec.Names.ListKind, spec.Names.Plural, spec.Names.Singular));
        // Not "lease": plain `kubectl get lease` must keep meaning coordination.k8s.io.
        Assert.Equal(["tpulease"], spec.Names.ShortNames);
        Assert.Equal(["rpoi"], spec.Names.Categories);
        var version = spec.Versions.Single();
        Assert.Equal(("v1alpha1", true, true), (version.Name, version.Served, version.Storage));
        Assert.NotNull(version.Subresources.Status);
    }

    [Fact]
    public void Lease_printer_columns()
    {
        var columns = LeaseCrd.Spec.Versions.Single().AdditionalPrinterColumns.Select(c => (c.Name, c.Type, c.JsonPath));
        Assert.Equal(
            [
                ("Phase", "string", ".status.phase"),
                ("Chips", "integer", ".status.chips"),
                ("Accelerator", "string", ".status.accelerator"),
                ("Renter", "string", ".status.renter"),
                ("Queue", "integer", ".status.queuePosition"),
                ("Free At", "string", ".status.earliestFreeAt"),
                ("Age", "date", ".metadata.creationTimestamp"),
            ],
            columns);
        // The time is only useful with -o wide; the place in the queue is shown by default.
        Assert.Equal(1, LeaseCrd.Spec.Versions.Single().AdditionalPrinterColumns.Single(c => c.Name == "Free At").Priority);
    }

    [Fact]
    public void Rating_names_and_printer_columns()
    {
        Assert.Equal("ratings.rpoi.io", RatingCrd.Metadata.Name);
        Assert.Equal(["tpurating"], RatingCrd.Spec.Names.ShortNames);
        Assert.Equal(["rpoi"], RatingCrd.Spec.Names.Categories);
        var columns = RatingCrd.Spec.Versions.Single().AdditionalPrinterColumns.Select(c => (c.Name, c.Type, c.JsonPath));
        Assert.Equal(
            [
                ("Lease", "string", ".spec.leaseRef.name"),
                ("Rater", "string", ".spec.rater"),
                ("Score", "integer", ".spec.score"),
                ("Accepted", "boolean", ".status.accepted"),
                ("Age", "date", ".metadata.creationTimestamp"),
            ],
            columns);
    }

    [Fact]
    public void Printer_column_paths_exist_in_the_schema()
    {
        foreach (var crd in new[] { LeaseCrd, RatingCrd })
        {
            foreach (var column in crd.Spec.Versions.Single().AdditionalPrinterColumns.Where(c => !c.JsonPath.StartsWith(".metadata", StringComparison.Ordinal)))
            {
                var node = At(crd, column.JsonPath.TrimStart('.'));
                Assert.True(node.Type == column.Type || (column.Type == "string" && node.EnumProperty is not null),
                    $"{crd.Spec.Names.Kind} column {column.Name}: {column.JsonPath} is {node.Type}, column says {column.Type}");
            }
        }
    }

    [Fact]
    public void Lease_signed_request_is_immutable_and_kept_unpruned()
    {
        Assert.Equal(["spec"], Root(LeaseCrd).Required);
        Assert.Contains("request", At(LeaseCrd, "spec").Required);
        var request = At(LeaseCrd, "spec.request");
        var rule = Assert.Single(request.XKubernetesValidations);
        Assert.Equal("self == oldSelf", rule.Rule);
        Assert.Contains("immutable", rule.Message, StringComparison.Ordinal);
        Assert.Equal(["payload", "sig", "signer"], request.Required);

        var payload = At(LeaseCrd, "spec.request.payload");
        Assert.True(payload.XKubernetesPreserveUnknownFields);
        Assert.True(At(LeaseCrd, "spec.request.payload.deposit").XKubernetesPreserveUnknownFields);
        Assert.Equal(1, At(LeaseCrd, "spec.request.payload.chips").Minimum);
        Assert.Equal("integer", At(LeaseCrd, "spec.request.payload.chips").Type);
    }

    [Fact]
    public void Lease_policy_defaults_and_the_return_flag_rule()
    {
        Assert.Equal(259200L, Convert.ToInt64(At(LeaseCrd, "spec.ratingWindowSeconds").DefaultProperty, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("boolean", At(LeaseCrd, "spec.returnRequested").Type);
        var rule = Assert.Single(At(LeaseCrd, "spec").XKubernetesValidations);
        Assert.Contains("oldSelf.returnRequested", rule.Rule, StringComparison.Ordinal);
        Assert.Null(rule.FieldPath); // 1.28+ only; the message names the field instead
        Assert.StartsWith("spec.returnRequested ", rule.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Lease_status_phase_enum_and_conditions_list_map()
    {
        Assert.Equal(
            ["Pending", "Verified", "Allocating", "Active", "Returning", "AwaitingRatings", "Settling", "Settled", "Failed"],
            At(LeaseCrd, "status.phase").EnumProperty.Cast<string>());
        var conditions = At(LeaseCrd, "status.conditions");
        Assert.Equal("map", conditions.XKubernetesListType);
        Assert.Equal(["type"], conditions.XKubernetesListMapKeys);
        var item = (V1JSONSchemaProps)conditions.Items;
        Assert.Equal(["lastTransitionTime", "message", "observedGeneration", "reason", "status", "type"], item.Properties.Keys.Order(StringComparer.Ordinal));
        Assert.Contains("type", item.Required);
        Assert.Equal("date-time", At(LeaseCrd, "status.expiresAt").Format);
        Assert.Equal("^[0-9a-f]{64}$", At(LeaseCrd, "status.transactionHash").Pattern);
    }

    [Fact]
    public void Rating_rules_score_range_immutability_and_signed_rating()
    {
        var score = At(RatingCrd, "spec.score");
        Assert.Equal((1d, 5d), (score.Minimum, score.Maximum));
        Assert.Contains(score.XKubernetesValidations, r => r.Rule == "self >= 1 && self <= 5");
        Assert.Equal(["Renter", "Leaser"], At(RatingCrd, "spec.rater").EnumProperty.Cast<string>());
        var rules = At(RatingCrd, "spec").XKubernetesValidations;
        Assert.Contains(rules, r => r.Rule == "self == oldSelf");
        var signed = Assert.Single(rules, r => r.Rule.Contains("signedRating", StringComparison.Ordinal));
        Assert.Equal("self.rater != 'Renter' || has(self.signedRating)", signed.Rule);
        Assert.True(At(RatingCrd, "spec.signedRating.payload").XKubernetesPreserveUnknownFields);
        Assert.Equal(["leaseRef", "rater", "score"], At(RatingCrd, "spec").Required);
    }

    [Theory]
    [InlineData("crds/rpoi.io_leases.yaml", "leases.rpoi.io")]
    [InlineData("crds/rpoi.io_ratings.yaml", "ratings.rpoi.io")]
    public void Checked_in_yaml_loads_with_KubernetesYaml(string file, string name)
    {
        var text = File.ReadAllText(Path.Combine(RepositoryRoot.Path, file));
        var objects = KubernetesYaml.LoadAllFromString(text);
        var crd = Assert.IsType<V1CustomResourceDefinition>(Assert.Single(objects));
        Assert.Equal(name, crd.Metadata.Name);
        Assert.Empty(StructuralSchema.Check(crd.Spec.Versions.Single().Schema.OpenAPIV3Schema));
        // Loading and writing again gives the same file: nothing the model cannot carry was emitted.
        Assert.Equal(text, CrdGenerator.ToYaml(crd));
    }
}
