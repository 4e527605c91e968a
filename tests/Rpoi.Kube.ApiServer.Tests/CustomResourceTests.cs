using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Rpoi.Kube.ApiServer.Tests.Support;
using Rpoi.Tests.Shared;

namespace Rpoi.Kube.ApiServer.Tests;

/// <summary>
/// A CRD-defined kind through the real KubernetesClient: generation, status subresource, validation, patches,
/// finalizers, GC. API semantics only, so these also run against a real cluster (RPOI_TEST_KUBECONFIG), each
/// test in a fresh namespace; the few that need the test server skip there.
/// </summary>
public sealed class CustomResourceTests : IAsyncLifetime
{
    private TestCluster _cluster = null!;

    private Kubernetes _client => _cluster.Client;

    private string Ns => _cluster.Namespace;

    public async Task InitializeAsync() =>
        _cluster = await TestCluster.StartAsync(new TestClusterOptions { Crds = [Widgets.CrdYaml], NamespacePrefix = "crd-tests" });

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    private JsonObject New(string name, int size, string? mode = null) => Widgets.New(name, size, Ns, mode);

    private async Task<JsonObject> CreateAsync(JsonObject widget) =>
        ToNode(await _client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonElement>(widget, Widgets.Group, Widgets.Version, Ns, Widgets.Plural));

    private async Task<JsonObject> GetAsync(string name) =>
        ToNode(await _client.CustomObjects.GetNamespacedCustomObjectAsync<JsonElement>(Widgets.Group, Widgets.Version, Ns, Widgets.Plural, name));

    private async Task<JsonObject> MergePatchAsync(string name, object patch, bool status = false)
    {
        var body = new V1Patch(JsonSerializer.Serialize(patch), V1Patch.PatchType.MergePatch);
        var result = status
            ? await _client.CustomObjects.PatchNamespacedCustomObjectStatusAsync<JsonElement>(body, Widgets.Group, Widgets.Version, Ns, Widgets.Plural, name)
            : await _client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(body, Widgets.Group, Widgets.Version, Ns, Widgets.Plural, name);
        return ToNode(result);
    }

    private static JsonObject ToNode(JsonElement e) => JsonNode.Parse(e.GetRawText())!.AsObject();

    private static long Generation(JsonObject o) => o["metadata"]!["generation"]!.GetValue<long>();

    private static string Rv(JsonObject o) => o["metadata"]!["resourceVersion"]!.GetValue<string>();

    [Fact]
    public async Task Generation_moves_only_with_spec_changes()
    {
        var w = await CreateAsync(New("g", 1));
        Assert.Equal(1, Generation(w));

        var labelled = await MergePatchAsync("g", new { metadata = new { labels = new Dictionary<string, string> { ["a"] = "b" } } });
        Assert.Equal(1, Generation(labelled));
        Assert.NotEqual(Rv(w), Rv(labelled));

        var resized = await MergePatchAsync("g", new { spec = new { size = 2 } });
        Assert.Equal(2, Generation(resized));

        var statused = await MergePatchAsync("g", new { status = new { observedGeneration = 2 } }, status: true);
        Assert.Equal(2, Generation(statused));

        var same = await MergePatchAsync("g", new { spec = new { size = 2 } });
        Assert.Equal(Rv(statused), Rv(same));
    }

    [Fact]
    public async Task Status_subresource_separates_spec_and_status()
    {
        var w = New("s", 3);
        w["status"] = new JsonObject { ["observedGeneration"] = 7 };
        var created = await CreateAsync(w);
        Assert.Null(created["status"]);

        // The main resource ignores status ...
        var main = await MergePatchAsync("s", new { spec = new { size = 4 }, status = new { observedGeneration = 9 } });
        Assert.Null(main["status"]);
        Assert.Equal(4, main["spec"]!["size"]!.GetValue<int>());

        // ... and the status subresource ignores spec.
        var status = await MergePatchAsync("s", new { spec = new { size = 50 }, status = new { observedGeneration = 2 } }, status: true);
        Assert.Equal(2, status["status"]!["observedGeneration"]!.GetValue<int>());
        Assert.Equal(4, status["spec"]!["size"]!.GetValue<int>());

        // PUT on /status with a stale resourceVersion is a conflict, as on the main resource.
        var stale = (JsonObject)status.DeepClone();
        stale["metadata"]!["resourceVersion"] = Rv(created);
        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CustomObjects.ReplaceNamespacedCustomObjectStatusAsync<JsonElement>(
            stale, Widgets.Group, Widgets.Version, Ns, Widgets.Plural, "s"));
        Assert.Equal(HttpStatusCode.Conflict, e.Response.StatusCode);
    }

    [Fact]
    public async Task Schema_validation_names_the_field()
    {
        async Task<HttpOperationException> Rejected(JsonObject body) =>
            await Assert.ThrowsAsync<HttpOperationException>(() => CreateAsync(body));

        var tooBig = await Rejected(New("big", 101));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, tooBig.Response.StatusCode);
        Assert.Contains("spec.size", tooBig.Response.Content, StringComparison.Ordinal);
        Assert.Contains("less than or equal to 100", tooBig.Response.Content, StringComparison.Ordinal);

        var badEnum = await Rejected(New("enum", 1, mode: "medium"));
        Assert.Contains("spec.mode: Unsupported value: \\\"medium\\\"", badEnum.Response.Content, StringComparison.Ordinal);

        var missing = New("missing", 1);
        missing["spec"]!.AsObject().Remove("size");
        Assert.Contains("spec.size: Required value", (await Rejected(missing)).Response.Content, StringComparison.Ordinal);

        var wrongType = New("type", 1);
        wrongType["spec"]!["size"] = "three";
        var typeError = await Rejected(wrongType);
        Assert.Contains("must be of type integer", typeError.Response.Content, StringComparison.Ordinal);
        Assert.Contains("\"field\":\"spec.size\"", typeError.Response.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_fields_are_pruned_or_rejected_when_strict()
    {
        var body = New("u", 1);
        body["spec"]!["colour"] = "red";
        body["spec"]!["extra"] = new JsonObject { ["anything"] = new JsonObject { ["goes"] = 1 } };
        var pruned = await CreateAsync(body);
        Assert.Null(pruned["spec"]!["colour"]);
        Assert.Equal(1, pruned["spec"]!["extra"]!["anything"]!["goes"]!.GetValue<int>());

        body["metadata"]!["name"] = "strict";
        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonElement>(
            body, Widgets.Group, Widgets.Version, Ns, Widgets.Plural, fieldValidation: "Strict"));
        Assert.Equal(HttpStatusCode.BadRequest, e.Response.StatusCode);
        Assert.Equal("Widget in version \"v1\" cannot be handled as a Widget: strict decoding error: unknown field \"spec.colour\"",
            JsonNode.Parse(e.Response.Content)!["message"]!.GetValue<string>());

        // A patch whose result has an unknown field fails to decode as the field "patch" (apiserver's patch.go): 422.
        var patch = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(
            new V1Patch("""{"spec":{"colour":"blue"}}""", V1Patch.PatchType.MergePatch), Widgets.Group, Widgets.Version, Ns, Widgets.Plural, "u", fieldValidation: "Strict"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, patch.Response.StatusCode);
        var cause = JsonNode.Parse(patch.Response.Content)!["details"]!["causes"]![0]!;
        Assert.Equal("patch", cause["field"]!.GetValue<string>());
        Assert.EndsWith(": strict decoding error: unknown field \"spec.colour\"", cause["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cel_immutability_rule_is_enforced_on_update()
    {
        var w = New("cel", 1);
        w["spec"]!["owner"] = "alice";
        await CreateAsync(w);
        var e = await Assert.ThrowsAsync<HttpOperationException>(() => MergePatchAsync("cel", new { spec = new { owner = "bob" } }));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, e.Response.StatusCode);
        Assert.Contains("owner is immutable", e.Response.Content, StringComparison.Ordinal);
        Assert.Equal(5, (await MergePatchAsync("cel", new { spec = new { size = 5 } }))["spec"]!["size"]!.GetValue<int>());
    }

    [Fact]
    public async Task Json_patch_and_server_side_apply()
    {
        await CreateAsync(New("p", 1));
        var jsonPatch = new V1Patch("""[{"op":"test","path":"/spec/size","value":1},{"op":"replace","path":"/spec/size","value":8},{"op":"add","path":"/metadata/labels","value":{"x":"y"}}]""",
            V1Patch.PatchType.JsonPatch);
        var patched = ToNode(await _client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(jsonPatch, Widgets.Group, Widgets.Version, Ns, Widgets.Plural, "p"));
        Assert.Equal(8, patched["spec"]!["size"]!.GetValue<int>());
        Assert.Equal("y", patched["metadata"]!["labels"]!["x"]!.GetValue<string>());

        var failedTest = new V1Patch("""[{"op":"test","path":"/spec/size","value":1},{"op":"replace","path":"/spec/size","value":9}]""", V1Patch.PatchType.JsonPatch);
        await Assert.ThrowsAsync<HttpOperationException>(() => _client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(failedTest, Widgets.Group, Widgets.Version, Ns, Widgets.Plural, "p"));
        Assert.Equal(8, (await GetAsync("p"))["spec"]!["size"]!.GetValue<int>());

        var apply = new V1Patch(New("applied", 3).ToJsonString(), V1Patch.PatchType.ApplyPatch);
        var created = ToNode(await _client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(apply, Widgets.Group, Widgets.Version, Ns, Widgets.Plural, "applied", fieldManager: "test"));
        Assert.Equal(3, created["spec"]!["size"]!.GetValue<int>());
        var again = new V1Patch(New("applied", 4, mode: "fast").ToJsonString(), V1Patch.PatchType.ApplyPatch);
        var updated = ToNode(await _client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(again, Widgets.Group, Widgets.Version, Ns, Widgets.Plural, "applied", fieldManager: "test"));
        Assert.Equal("fast", updated["spec"]!["mode"]!.GetValue<string>());
        Assert.Equal(2, Generation(updated));
    }

    [Fact]
    public async Task Finalizers_hold_deletion_until_the_last_one_is_removed()
    {
        var w = New("f", 1);
        w["metadata"]!["finalizers"] = new JsonArray("example.test/a", "example.test/b");
        await CreateAsync(w);

        var deleting = ToNode(await _client.CustomObjects.DeleteNamespacedCustomObjectAsync<JsonElement>(Widgets.Group, Widgets.Version, Ns, Widgets.Plural, "f"));
        Assert.NotNull(deleting["metadata"]!["deletionTimestamp"]);
        Assert.NotNull((await GetAsync("f"))["metadata"]!["deletionTimestamp"]);

        var added = await Assert.ThrowsAsync<HttpOperationException>(() =>
            MergePatchAsync("f", new { metadata = new { finalizers = new[] { "example.test/a", "example.test/b", "example.test/c" } } }));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, added.Response.StatusCode);

        await MergePatchAsync("f", new { metadata = new { finalizers = new[] { "example.test/b" } } });
        Assert.NotNull(await GetAsync("f"));
        await MergePatchAsync("f", new { metadata = new { finalizers = Array.Empty<string>() } });
        var gone = await Assert.ThrowsAsync<HttpOperationException>(() => GetAsync("f"));
        Assert.Equal(HttpStatusCode.NotFound, gone.Response.StatusCode);
    }

    [Fact]
    public async Task A_watch_sees_the_delete_through_a_finalizer_as_MODIFIED_then_DELETED_with_the_last_stored_state()
    {
        var w = New("wf", 1);
        w["metadata"]!["finalizers"] = new JsonArray("example.test/hold");
        var created = await CreateAsync(w);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        // From the create's resourceVersion, so the watch misses nothing on a real server too.
        await using var events = _client.CustomObjects.WatchListNamespacedCustomObjectAsync(Widgets.Group, Widgets.Version, Ns, Widgets.Plural,
            fieldSelector: "metadata.name=wf", resourceVersion: Rv(created), cancellationToken: cts.Token).GetAsyncEnumerator(cts.Token);

        // DELETE answers 200 with the object, now carrying deletionTimestamp; the watch sees that as MODIFIED.
        var deleting = ToNode(await _client.CustomObjects.DeleteNamespacedCustomObjectAsync<JsonElement>(Widgets.Group, Widgets.Version, Ns, Widgets.Plural, "wf"));
        Assert.NotNull(deleting["metadata"]!["deletionTimestamp"]);
        Assert.True(await events.MoveNextAsync());
        Assert.Equal(WatchEventType.Modified, events.Current.Item1);
        Assert.NotNull(ToNode((JsonElement)events.Current.Item2)["metadata"]!["deletionTimestamp"]);

        // Emptying the finalizers deletes the object as stored: the writer gets its object back, the watch a DELETED
        // whose object is the last stored state (finalizer included), as the real store's deleteWithoutFinalizers does.
        var written = await MergePatchAsync("wf", new { metadata = new { finalizers = (string[]?)null } });
        Assert.Null(written["metadata"]!["finalizers"]);
        Assert.True(await events.MoveNextAsync());
        Assert.Equal(WatchEventType.Deleted, events.Current.Item1);
        var last = ToNode((JsonElement)events.Current.Item2);
        Assert.Equal(["example.test/hold"], last["metadata"]!["finalizers"]!.AsArray().Select(f => f!.GetValue<string>()));
        Assert.NotNull(last["metadata"]!["deletionTimestamp"]);
    }

    [Fact]
    public async Task Deleting_an_owner_garbage_collects_its_dependents()
    {
        var owner = await CreateAsync(New("owner", 1));
        var ownerRef = new V1OwnerReference
        {
            ApiVersion = "example.test/v1",
            Kind = "Widget",
            Name = "owner",
            Uid = owner["metadata"]!["uid"]!.GetValue<string>(),
            Controller = true,
        };
        await _client.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "dep", OwnerReferences = [ownerRef] } }, Ns);
        await _client.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "orphan-me", OwnerReferences = [ownerRef] } }, Ns);
        await _client.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "unrelated" } }, Ns);

        await _client.CustomObjects.DeleteNamespacedCustomObjectAsync<JsonElement>(Widgets.Group, Widgets.Version, Ns, Widgets.Plural, "owner",
            new V1DeleteOptions { PropagationPolicy = "Background" });

        await Eventually.HoldsAsync(async () => (await _client.CoreV1.ListNamespacedSecretAsync(Ns)).Items.Select(s => s.Metadata.Name).Order()
            .SequenceEqual(["unrelated"]));
    }

    [Fact]
    public async Task Garbage_collection_follows_owner_references_as_updated_not_as_created()
    {
        // The store indexes dependents by owner uid: an update that adds or drops an owner reference must move the
        // object in that index, or a delete would collect the wrong objects.
        var owner = await CreateAsync(New("owner-upd", 1));
        var ownerRef = new V1OwnerReference
        {
            ApiVersion = "example.test/v1",
            Kind = "Widget",
            Name = "owner-upd",
            Uid = owner["metadata"]!["uid"]!.GetValue<string>(),
        };
        await _client.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "let-go", OwnerReferences = [ownerRef] } }, Ns);
        await _client.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "adopted" } }, Ns);
        await _client.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "recreated", OwnerReferences = [ownerRef] } }, Ns);

        var letGo = await _client.CoreV1.ReadNamespacedSecretAsync("let-go", Ns);
        letGo.Metadata.OwnerReferences = null;
        await _client.CoreV1.ReplaceNamespacedSecretAsync(letGo, "let-go", Ns);
        var adopted = await _client.CoreV1.ReadNamespacedSecretAsync("adopted", Ns);
        adopted.Metadata.OwnerReferences = [ownerRef];
        await _client.CoreV1.ReplaceNamespacedSecretAsync(adopted, "adopted", Ns);
        // Deleted and made again without the reference: the new object is not the old one's dependent.
        await _client.CoreV1.DeleteNamespacedSecretAsync("recreated", Ns);
        await _client.CoreV1.CreateNamespacedSecretAsync(new V1Secret { Metadata = new V1ObjectMeta { Name = "recreated" } }, Ns);

        await _client.CustomObjects.DeleteNamespacedCustomObjectAsync<JsonElement>(Widgets.Group, Widgets.Version, Ns, Widgets.Plural, "owner-upd",
            new V1DeleteOptions { PropagationPolicy = "Background" });

        await Eventually.HoldsAsync(async () => (await _client.CoreV1.ListNamespacedSecretAsync(Ns)).Items.Select(s => s.Metadata.Name).Order()
            .SequenceEqual(["let-go", "recreated"]));
    }

    [Fact]
    public async Task Orphan_propagation_keeps_dependents_without_the_owner_reference()
    {
        var owner = await CreateAsync(New("owner2", 1));
        await _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap
        {
            Metadata = new V1ObjectMeta
            {
                Name = "kept",
                OwnerReferences = [new V1OwnerReference { ApiVersion = "example.test/v1", Kind = "Widget", Name = "owner2", Uid = owner["metadata"]!["uid"]!.GetValue<string>() }],
            },
        }, Ns);
        await _client.CustomObjects.DeleteNamespacedCustomObjectAsync<JsonElement>(Widgets.Group, Widgets.Version, Ns, Widgets.Plural, "owner2",
            new V1DeleteOptions { PropagationPolicy = "Orphan" });
        // A real garbage collector orphans asynchronously; the test server at once.
        await Eventually.HoldsAsync(async () => (await _client.CoreV1.ReadNamespacedConfigMapAsync("kept", Ns)).Metadata.OwnerReferences is null);
        Assert.NotNull(await _client.CoreV1.ReadNamespacedConfigMapAsync("kept", Ns));
    }

    [SkippableFact]
    public async Task Crd_registration_is_visible_in_discovery_and_removal_unserves_the_kind()
    {
        Skip.If(TestCluster.RealClusterConfigured, "deletes the Widget CRD, which other test classes share on a real cluster");
        var resources = await _client.CustomObjects.ListClusterCustomObjectAsync<JsonElement>("apiextensions.k8s.io", "v1", "customresourcedefinitions");
        Assert.Contains("widgets.example.test", resources.GetRawText(), StringComparison.Ordinal);
        await CreateAsync(New("w", 1));
        var crd = await _client.ApiextensionsV1.ReadCustomResourceDefinitionAsync("widgets.example.test");
        Assert.Contains(crd.Status.Conditions, c => c.Type == "Established" && c.Status == "True");

        await _client.ApiextensionsV1.DeleteCustomResourceDefinitionAsync("widgets.example.test");
        var e = await Assert.ThrowsAsync<HttpOperationException>(() => GetAsync("w"));
        Assert.Equal(HttpStatusCode.NotFound, e.Response.StatusCode);
        Assert.DoesNotContain(_cluster.Server.ResourceTypes, t => t.Group == "example.test");
    }

    [Fact]
    public async Task Invalid_crd_is_rejected_with_the_fields_named()
    {
        var crd = new V1CustomResourceDefinition
        {
            Metadata = new V1ObjectMeta { Name = "things.example.test" },
            Spec = new V1CustomResourceDefinitionSpec
            {
                Group = "example.test",
                Scope = "Galaxy",
                Names = new V1CustomResourceDefinitionNames { Plural = "things", Kind = "Thing" },
                Versions = [new V1CustomResourceDefinitionVersion { Name = "v1", Served = true, Storage = true }],
            },
        };
        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.ApiextensionsV1.CreateCustomResourceDefinitionAsync(crd));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, e.Response.StatusCode);
        Assert.Contains("spec.scope", e.Response.Content, StringComparison.Ordinal);
        Assert.Contains("spec.versions[0].schema.openAPIV3Schema", e.Response.Content, StringComparison.Ordinal);
        var notStored = await Assert.ThrowsAsync<HttpOperationException>(() => _client.ApiextensionsV1.ReadCustomResourceDefinitionAsync("things.example.test"));
        Assert.Equal(HttpStatusCode.NotFound, notStored.Response.StatusCode);
    }

    [Fact]
    public async Task Foreground_deletion_removes_dependents_first_and_redelete_returns_the_deleting_object()
    {
        var owner = await CreateAsync(New("fg", 1));
        var uid = owner["metadata"]!["uid"]!.GetValue<string>();
        var child = New("fg-child", 1);
        child["metadata"]!["ownerReferences"] = new JsonArray(new JsonObject { ["apiVersion"] = "example.test/v1", ["kind"] = "Widget", ["name"] = "fg", ["uid"] = uid });
        child["metadata"]!["finalizers"] = new JsonArray("example.test/hold");
        await CreateAsync(child);

        await _client.CustomObjects.DeleteNamespacedCustomObjectAsync<JsonElement>(Widgets.Group, Widgets.Version, Ns, Widgets.Plural, "fg",
            new V1DeleteOptions { PropagationPolicy = "Foreground" });
        // A real garbage collector marks the dependent asynchronously; the test server does it at once.
        await Eventually.HoldsAsync(async () => (await GetAsync("fg-child"))["metadata"]!["deletionTimestamp"] is not null);
        var first = (await GetAsync("fg-child"))["metadata"]!["deletionTimestamp"]!.GetValue<string>();
        var again = ToNode(await _client.CustomObjects.DeleteNamespacedCustomObjectAsync<JsonElement>(Widgets.Group, Widgets.Version, Ns, Widgets.Plural, "fg-child"));
        Assert.Equal(first, again["metadata"]!["deletionTimestamp"]!.GetValue<string>());
    }

    [Fact]
    public async Task Delete_collection_removes_what_the_selector_matches()
    {
        foreach (var (name, team) in new[] { ("a", "x"), ("b", "x"), ("c", "y") })
        {
            var w = New(name, 1);
            w["metadata"]!["labels"] = new JsonObject { ["team"] = team };
            await CreateAsync(w);
        }

        await _client.CustomObjects.DeleteCollectionNamespacedCustomObjectAsync(Widgets.Group, Widgets.Version, Ns, Widgets.Plural, labelSelector: "team=x");
        var left = ToNode(await _client.CustomObjects.ListNamespacedCustomObjectAsync<JsonElement>(Widgets.Group, Widgets.Version, Ns, Widgets.Plural));
        Assert.Equal(["c"], left["items"]!.AsArray().Select(i => i!["metadata"]!["name"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Dry_run_answers_the_object_as_it_would_be_and_stores_nothing()
    {
        // Create: the answer is the object with its uid, but no resourceVersion, and nothing is there afterwards.
        var planned = ToNode(await _client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonElement>(
            New("dry", 1), Widgets.Group, Widgets.Version, Ns, Widgets.Plural, dryRun: "All"));
        Assert.Equal("dry", planned["metadata"]!["name"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(planned["metadata"]!["uid"]?.GetValue<string>()));
        Assert.Null(planned["metadata"]!["resourceVersion"]);
        var missing = await Assert.ThrowsAsync<HttpOperationException>(() => GetAsync("dry"));
        Assert.Equal(HttpStatusCode.NotFound, missing.Response.StatusCode);

        // Validation runs as for a real write.
        var invalid = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonElement>(
            New("dry-invalid", -1), Widgets.Group, Widgets.Version, Ns, Widgets.Plural, dryRun: "All"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, invalid.Response.StatusCode);

        // Patch: the answer carries the new spec and the next generation; the stored object keeps both, and its resourceVersion.
        var stored = await CreateAsync(New("kept", 1));
        var body = new V1Patch(JsonSerializer.Serialize(new { spec = new { size = 7 } }), V1Patch.PatchType.MergePatch);
        var patched = ToNode(await _client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(
            body, Widgets.Group, Widgets.Version, Ns, Widgets.Plural, "kept", dryRun: "All"));
        Assert.Equal(7, patched["spec"]!["size"]!.GetValue<int>());
        Assert.Equal(2, Generation(patched));
        Assert.Equal(Rv(stored), Rv(patched));
        var after = await GetAsync("kept");
        Assert.Equal(1, after["spec"]!["size"]!.GetValue<int>());
        Assert.Equal(1, Generation(after));
        Assert.Equal(Rv(stored), Rv(after));

        // Delete: answered, and the object is still there, unchanged.
        await _client.CustomObjects.DeleteNamespacedCustomObjectAsync(Widgets.Group, Widgets.Version, Ns, Widgets.Plural, "kept", dryRun: "All");
        Assert.Equal(Rv(stored), Rv(await GetAsync("kept")));

        // A dryRun value other than All is refused by the options' validation (apimachinery ValidateDryRun).
        var unknown = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonElement>(
            New("dry-unknown", 1), Widgets.Group, Widgets.Version, Ns, Widgets.Plural, dryRun: "Server"));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, unknown.Response.StatusCode);
        Assert.Equal("CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"Server\"}: supported values: \"All\"",
            JsonNode.Parse(unknown.Response.Content)!["message"]!.GetValue<string>());
    }
}

