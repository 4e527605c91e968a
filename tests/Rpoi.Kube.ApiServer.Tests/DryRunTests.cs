using System.Net;
using System.Text.Json;
using System.Threading.Channels;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Rpoi.Kube.ApiServer.Tests.Support;

namespace Rpoi.Kube.ApiServer.Tests;

/// <summary>
/// dryRun=All on every write verb leaves the server as it was: no object, no resourceVersion bump, no watch event
/// (what CustomResourceTests checks through the API, here also from the server's side).
/// </summary>
public sealed class DryRunTests : IAsyncLifetime
{
    private const string Ns = "default";
    private readonly CancellationTokenSource _cts = new(TimeSpan.FromSeconds(30));
    private KubeApiServer _server = null!;
    private Kubernetes _client = null!;

    public async Task InitializeAsync() => (_server, _client) = await TestServer.StartAsync();

    public async Task DisposeAsync()
    {
        await _cts.CancelAsync();
        _client.Dispose();
        await _server.DisposeAsync();
        _cts.Dispose();
    }

    private static V1Secret Secret(string name, string value) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = Ns },
        StringData = new Dictionary<string, string> { ["k"] = value },
    };

    /// <summary>Every event of a secrets watch (bookmarks included) from the given resourceVersion, in a channel.</summary>
    private Channel<(WatchEventType Type, V1Secret Object)> WatchSecrets(string fromRv)
    {
        var channel = Channel.CreateUnbounded<(WatchEventType, V1Secret)>();
        _ = Task.Run(async () =>
        {
            try
            {
                await foreach (var e in _client.CoreV1.WatchListNamespacedSecretAsync(Ns, resourceVersion: fromRv, cancellationToken: _cts.Token))
                {
                    await channel.Writer.WriteAsync(e);
                }

                channel.Writer.TryComplete();
            }
            catch (Exception e)
            {
                channel.Writer.TryComplete(e);
            }
        });
        return channel;
    }

    private async Task<(HttpStatusCode Code, JsonElement Body)> SendAsync(string method, string pathAndQuery, string? body = null, string contentType = "application/json")
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(new HttpMethod(method), _server.Url + pathAndQuery);
        request.Headers.Authorization = new("Bearer", "test-token");
        if (body is not null)
        {
            request.Content = new StringContent(body, System.Text.Encoding.UTF8, contentType);
        }

        using var response = await http.SendAsync(request, _cts.Token);
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync(_cts.Token)).RootElement.Clone());
    }

    [Fact]
    public async Task Dry_runs_of_every_write_store_nothing_bump_nothing_and_emit_nothing()
    {
        var existing = await _client.CoreV1.CreateNamespacedSecretAsync(Secret("existing", "v1"), Ns);
        var rvBefore = _server.ResourceVersion;
        var events = WatchSecrets(existing.Metadata.ResourceVersion);
        await Eventually.HoldsAsync(() => _server.OpenWatches == 1, because: "the watch is open");

        var created = await _client.CoreV1.CreateNamespacedSecretAsync(Secret("planned", "v1"), Ns, dryRun: "All");
        Assert.Equal("planned", created.Metadata.Name);
        Assert.NotNull(created.Metadata.Uid);
        Assert.Null(created.Metadata.ResourceVersion);

        var generated = await _client.CoreV1.CreateNamespacedSecretAsync(
            new V1Secret { Metadata = new V1ObjectMeta { GenerateName = "gen-" } }, Ns, dryRun: "All");
        Assert.StartsWith("gen-", generated.Metadata.Name, StringComparison.Ordinal);

        var duplicate = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.CreateNamespacedSecretAsync(Secret("existing", "v2"), Ns, dryRun: "All"));
        Assert.Equal(HttpStatusCode.Conflict, duplicate.Response.StatusCode);

        var replaced = await _client.CoreV1.ReplaceNamespacedSecretAsync(Secret("existing", "v2"), "existing", Ns, dryRun: "All");
        Assert.Equal(existing.Metadata.ResourceVersion, replaced.Metadata.ResourceVersion);
        Assert.Equal("v2", replaced.StringData?["k"] ?? System.Text.Encoding.UTF8.GetString(replaced.Data["k"]));

        var merge = new V1Patch("{\"metadata\":{\"labels\":{\"a\":\"b\"}}}", V1Patch.PatchType.MergePatch);
        var patched = await _client.CoreV1.PatchNamespacedSecretAsync(merge, "existing", Ns, dryRun: "All");
        Assert.Equal("b", patched.Metadata.Labels["a"]);
        Assert.Equal(existing.Metadata.ResourceVersion, patched.Metadata.ResourceVersion);

        var apply = new V1Patch(JsonSerializer.Serialize(new { apiVersion = "v1", kind = "Secret", metadata = new { name = "applied", @namespace = Ns } }), V1Patch.PatchType.ApplyPatch);
        var applied = await _client.CoreV1.PatchNamespacedSecretAsync(apply, "applied", Ns, fieldManager: "dry-run-test", dryRun: "All");
        Assert.Equal("applied", applied.Metadata.Name);

        await _client.CoreV1.DeleteNamespacedSecretAsync("existing", Ns, dryRun: "All");
        await _client.CoreV1.DeleteCollectionNamespacedSecretAsync(Ns, dryRun: "All");
        await _client.CoreV1.DeleteNamespaceAsync(Ns, dryRun: "All");

        Assert.Equal(rvBefore, _server.ResourceVersion);
        var stored = await _client.CoreV1.ReadNamespacedSecretAsync("existing", Ns);
        Assert.Equal(existing.Metadata.ResourceVersion, stored.Metadata.ResourceVersion);
        Assert.Null(stored.Metadata.Labels);
        Assert.Equal(["existing"], (await _client.CoreV1.ListNamespacedSecretAsync(Ns)).Items.Select(s => s.Metadata.Name));
        Assert.Equal("Active", (await _client.CoreV1.ReadNamespaceAsync(Ns)).Status.Phase);

        // The first event the watch gets is the real write that follows: none of the dry runs reached it.
        await _client.CoreV1.CreateNamespacedSecretAsync(Secret("marker", "v1"), Ns);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var first = await events.Reader.ReadAsync(timeout.Token);
        while (first.Type == WatchEventType.Bookmark)
        {
            first = await events.Reader.ReadAsync(timeout.Token);
        }

        Assert.Equal((WatchEventType.Added, "marker"), (first.Type, first.Object.Metadata.Name));
    }

    [Fact]
    public async Task A_dry_run_delete_of_an_object_with_finalizers_answers_it_marked_and_keeps_it_unmarked()
    {
        var held = Secret("held", "v1");
        held.Metadata.Finalizers = ["example.test/hold"];
        var existing = await _client.CoreV1.CreateNamespacedSecretAsync(held, Ns);

        var (code, answer) = await SendAsync("DELETE", $"/api/v1/namespaces/{Ns}/secrets/held?dryRun=All");
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal("Secret", answer.GetProperty("kind").GetString());
        Assert.True(answer.GetProperty("metadata").TryGetProperty("deletionTimestamp", out _), answer.ToString());

        var stored = await _client.CoreV1.ReadNamespacedSecretAsync("held", Ns);
        Assert.Null(stored.Metadata.DeletionTimestamp);
        Assert.Equal(existing.Metadata.ResourceVersion, stored.Metadata.ResourceVersion);
    }

    [Fact]
    public async Task A_dry_run_CustomResourceDefinition_serves_nothing()
    {
        var crd = JsonSerializer.Deserialize<V1CustomResourceDefinition>(Widgets.CrdJson.Replace("widgets", "gadgets", StringComparison.Ordinal)
            .Replace("Widget", "Gadget", StringComparison.Ordinal).Replace("widget", "gadget", StringComparison.Ordinal))!;
        var planned = await _client.ApiextensionsV1.CreateCustomResourceDefinitionAsync(crd, dryRun: "All");
        Assert.Equal("gadgets.example.test", planned.Metadata.Name);

        Assert.DoesNotContain(_server.ResourceTypes, t => t.Plural == "gadgets");
        var missing = await Assert.ThrowsAsync<HttpOperationException>(() => _client.ApiextensionsV1.ReadCustomResourceDefinitionAsync("gadgets.example.test"));
        Assert.Equal(HttpStatusCode.NotFound, missing.Response.StatusCode);
    }

    [Theory]
    [InlineData("POST", "CreateOptions")]
    [InlineData("PUT", "UpdateOptions")]
    [InlineData("PATCH", "PatchOptions")]
    [InlineData("DELETE", "DeleteOptions")]
    public async Task An_unknown_dryRun_value_is_refused_with_the_real_message(string method, string optionsKind)
    {
        await _client.CoreV1.CreateNamespacedSecretAsync(Secret("existing", "v1"), Ns);
        var path = method == "POST" ? $"/api/v1/namespaces/{Ns}/secrets" : $"/api/v1/namespaces/{Ns}/secrets/existing";
        var body = method == "DELETE" ? null : JsonSerializer.Serialize(new { apiVersion = "v1", kind = "Secret", metadata = new { name = "existing" } });
        var (code, status) = await SendAsync(method, path + "?dryRun=All&dryRun=Client", body, method == "PATCH" ? "application/merge-patch+json" : "application/json");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, code);
        Assert.Equal($"{optionsKind}.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{{\"All\", \"Client\"}}: supported values: \"All\"",
            status.GetProperty("message").GetString());
        Assert.Equal("dryRun", status.GetProperty("details").GetProperty("causes")[0].GetProperty("field").GetString());
        Assert.Equal(optionsKind, status.GetProperty("details").GetProperty("kind").GetString());
    }

    [Theory]
    [InlineData("POST", "application/json", "?fieldValidation=strict", "CreateOptions",
        "fieldValidation: Unsupported value: \"strict\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"")]
    [InlineData("PATCH", "application/apply-patch+yaml", "", "PatchOptions", "fieldManager: Required value: is required for apply patch")]
    [InlineData("PATCH", "application/merge-patch+json", "?force=true", "PatchOptions", "force: Forbidden: may not be specified for non-apply patch")]
    [InlineData("PUT", "application/json", "?dryRun=None&fieldValidation=Loose", "UpdateOptions",
        "[dryRun: Unsupported value: []string{\"None\"}: supported values: \"All\", fieldValidation: Unsupported value: \"Loose\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"]")]
    public async Task Write_options_are_checked_before_the_write_with_the_real_messages(string method, string contentType, string query, string optionsKind, string expected)
    {
        await _client.CoreV1.CreateNamespacedSecretAsync(Secret("existing", "v1"), Ns);
        var path = method == "POST" ? $"/api/v1/namespaces/{Ns}/secrets" : $"/api/v1/namespaces/{Ns}/secrets/existing";
        var body = JsonSerializer.Serialize(new { apiVersion = "v1", kind = "Secret", metadata = new { name = "existing" }, type = "changed" });
        var rvBefore = _server.ResourceVersion;

        var (code, status) = await SendAsync(method, path + query, body, contentType);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, code);
        Assert.Equal($"{optionsKind}.meta.k8s.io \"\" is invalid: {expected}", status.GetProperty("message").GetString());
        Assert.Equal(rvBefore, _server.ResourceVersion);
    }
}
