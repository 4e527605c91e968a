using System.Net;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Rpoi.Kube.ApiServer.Tests.Support;

namespace Rpoi.Kube.ApiServer.Tests;

/// <summary>Built-in kinds through the real KubernetesClient.</summary>
public sealed class CoreKindTests : IAsyncLifetime
{
    private KubeApiServer _server = null!;
    private Kubernetes _client = null!;

    public async Task InitializeAsync() => (_server, _client) = await TestServer.StartAsync(widgets: false);

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }

    private static V1Secret Secret(string name, Dictionary<string, string>? labels = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Labels = labels },
        Data = new Dictionary<string, byte[]> { ["k"] = "v"u8.ToArray() },
    };

    [Fact]
    public async Task Create_get_update_delete_a_secret()
    {
        var created = await _client.CoreV1.CreateNamespacedSecretAsync(Secret("s1"), "default");
        Assert.False(string.IsNullOrEmpty(created.Metadata.Uid));
        Assert.NotNull(created.Metadata.CreationTimestamp);
        Assert.Equal("default", created.Metadata.NamespaceProperty);

        created.Data["k"] = "w"u8.ToArray();
        var updated = await _client.CoreV1.ReplaceNamespacedSecretAsync(created, "s1", "default");
        Assert.True(long.Parse(updated.Metadata.ResourceVersion) > long.Parse(created.Metadata.ResourceVersion));
        Assert.Equal("w"u8.ToArray(), (await _client.CoreV1.ReadNamespacedSecretAsync("s1", "default")).Data["k"]);

        await _client.CoreV1.DeleteNamespacedSecretAsync("s1", "default");
        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ReadNamespacedSecretAsync("s1", "default"));
        Assert.Equal(HttpStatusCode.NotFound, e.Response.StatusCode);
        Assert.Contains("\"reason\":\"NotFound\"", e.Response.Content, StringComparison.Ordinal);
        Assert.Contains("secrets \\\"s1\\\" not found", e.Response.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Creating_twice_is_409_AlreadyExists_and_generateName_makes_unique_names()
    {
        await _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "c" } }, "default");
        var e = await Assert.ThrowsAsync<HttpOperationException>(() =>
            _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = "c" } }, "default"));
        Assert.Equal(HttpStatusCode.Conflict, e.Response.StatusCode);
        Assert.Contains("AlreadyExists", e.Response.Content, StringComparison.Ordinal);

        var a = await _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { GenerateName = "gen-" } }, "default");
        var b = await _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { GenerateName = "gen-" } }, "default");
        Assert.StartsWith("gen-", a.Metadata.Name, StringComparison.Ordinal);
        Assert.Equal(9, a.Metadata.Name.Length);
        Assert.NotEqual(a.Metadata.Name, b.Metadata.Name);
    }

    [Fact]
    public async Task Stale_update_is_409_Conflict()
    {
        var created = await _client.CoreV1.CreateNamespacedSecretAsync(Secret("s"), "default");
        var stale = await _client.CoreV1.ReadNamespacedSecretAsync("s", "default");
        created.Data["k"] = "x"u8.ToArray();
        await _client.CoreV1.ReplaceNamespacedSecretAsync(created, "s", "default");
        stale.Data["k"] = "y"u8.ToArray();
        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ReplaceNamespacedSecretAsync(stale, "s", "default"));
        Assert.Equal(HttpStatusCode.Conflict, e.Response.StatusCode);
        Assert.Contains("\"reason\":\"Conflict\"", e.Response.Content, StringComparison.Ordinal);
        Assert.Contains("the object has been modified", e.Response.Content, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Label_and_field_selectors_filter_lists()
    {
        await _client.CoreV1.CreateNamespacedSecretAsync(Secret("a", new() { ["app"] = "x", ["tier"] = "web" }), "default");
        await _client.CoreV1.CreateNamespacedSecretAsync(Secret("b", new() { ["app"] = "y" }), "default");
        await _client.CoreV1.CreateNamespacedSecretAsync(Secret("c", new() { ["app"] = "z", ["tier"] = "db" }), "default");

        async Task<string[]> Names(string? labels = null, string? fields = null) =>
            (await _client.CoreV1.ListNamespacedSecretAsync("default", labelSelector: labels, fieldSelector: fields))
                .Items.Select(s => s.Metadata.Name).Order().ToArray();

        Assert.Equal(["a"], await Names("app=x"));
        Assert.Equal(["b", "c"], await Names("app!=x"));
        Assert.Equal(["a", "b"], await Names("app in (x,y)"));
        Assert.Equal(["c"], await Names("app notin (x, y)"));
        Assert.Equal(["a", "c"], await Names("tier"));
        Assert.Equal(["b"], await Names("!tier"));
        Assert.Equal(["c"], await Names("tier,app=z"));
        Assert.Equal(["b"], await Names(fields: "metadata.name=b"));
        Assert.Equal(["a", "c"], await Names(fields: "metadata.name!=b"));
        Assert.Equal(["a", "b", "c"], await Names(fields: "metadata.namespace=default"));
    }

    [Fact]
    public async Task Events_can_be_selected_by_involved_object()
    {
        foreach (var (name, target) in new[] { ("e1", "w1"), ("e2", "w2") })
        {
            await _client.CoreV1.CreateNamespacedEventAsync(new Corev1Event
            {
                Metadata = new V1ObjectMeta { Name = name },
                InvolvedObject = new V1ObjectReference { Kind = "Widget", Name = target, NamespaceProperty = "default", Uid = "u-" + target },
                Reason = "Tested",
                Message = "hello",
            }, "default");
        }

        var list = await _client.CoreV1.ListNamespacedEventAsync("default",
            fieldSelector: "involvedObject.kind=Widget,involvedObject.name=w2,involvedObject.namespace=default,involvedObject.uid=u-w2");
        Assert.Equal("e2", Assert.Single(list.Items).Metadata.Name);
    }

    [Fact]
    public async Task Limit_and_continue_page_through_a_list()
    {
        for (var i = 0; i < 5; i++)
        {
            await _client.CoreV1.CreateNamespacedConfigMapAsync(new V1ConfigMap { Metadata = new V1ObjectMeta { Name = $"cm{i}" } }, "default");
        }

        var names = new List<string>();
        string? next = null;
        var pages = 0;
        do
        {
            var page = await _client.CoreV1.ListNamespacedConfigMapAsync("default", limit: 2, continueParameter: next);
            names.AddRange(page.Items.Select(c => c.Metadata.Name));
            next = page.Metadata.ContinueProperty;
            pages++;
        }
        while (!string.IsNullOrEmpty(next));

        Assert.Equal(["cm0", "cm1", "cm2", "cm3", "cm4"], names);
        Assert.Equal(3, pages);
    }

    [Fact]
    public async Task Objects_need_an_existing_namespace_and_cluster_scoped_kinds_have_none()
    {
        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.CreateNamespacedSecretAsync(Secret("s"), "nope"));
        Assert.Equal(HttpStatusCode.NotFound, e.Response.StatusCode);
        Assert.Contains("namespaces \\\"nope\\\" not found", e.Response.Content, StringComparison.Ordinal);

        await _client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = "team" } });
        await _client.CoreV1.CreateNamespacedSecretAsync(Secret("s"), "team");
        var node = await _client.CoreV1.CreateNodeAsync(new V1Node
        {
            Metadata = new V1ObjectMeta { Name = "n1", Labels = new Dictionary<string, string> { ["cloud.google.com/gke-tpu-accelerator"] = "tpu-v5p-slice" } },
            Status = new V1NodeStatus { Capacity = new Dictionary<string, ResourceQuantity> { ["google.com/tpu"] = new("4") } },
        });
        Assert.Null(node.Metadata.NamespaceProperty);
        Assert.Equal("4", node.Status.Capacity["google.com/tpu"].ToString());
        Assert.Equal("Active", (await _client.CoreV1.ReadNamespaceAsync("team")).Status.Phase);
    }

    [Fact]
    public async Task Deleting_a_namespace_deletes_its_content()
    {
        await _client.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = "gone" } });
        await _client.CoreV1.CreateNamespacedSecretAsync(Secret("s"), "gone");
        await _client.CoreV1.DeleteNamespaceAsync("gone");
        await Eventually.HoldsAsync(async () => (await _client.CoreV1.ListNamespaceAsync()).Items.All(n => n.Metadata.Name != "gone"));
        Assert.Empty((await _client.CoreV1.ListNamespacedSecretAsync("gone")).Items);
    }

    [Fact]
    public async Task TokenRequest_returns_a_token_and_expiration()
    {
        await _client.CoreV1.CreateNamespacedServiceAccountAsync(new V1ServiceAccount { Metadata = new V1ObjectMeta { Name = "op" } }, "default");
        var tr = await _client.CoreV1.CreateNamespacedServiceAccountTokenAsync(new Authenticationv1TokenRequest
        {
            Spec = new V1TokenRequestSpec { Audiences = ["escrow"], ExpirationSeconds = 3600 },
        }, "op", "default");
        Assert.Equal(3, tr.Status.Token.Split('.').Length);
        var expiry = tr.Status.ExpirationTimestamp!.Value.ToUniversalTime();
        Assert.InRange(expiry, DateTime.UtcNow.AddMinutes(59), DateTime.UtcNow.AddMinutes(61));

        var e = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.CreateNamespacedServiceAccountTokenAsync(
            new Authenticationv1TokenRequest { Spec = new V1TokenRequestSpec { Audiences = ["x"] } }, "missing", "default"));
        Assert.Equal(HttpStatusCode.NotFound, e.Response.StatusCode);
    }

    [Fact]
    public async Task Rbac_lease_and_admission_kinds_are_stored()
    {
        await _client.RbacAuthorizationV1.CreateClusterRoleAsync(new V1ClusterRole
        {
            Metadata = new V1ObjectMeta { Name = "reader" },
            Rules = [new V1PolicyRule { ApiGroups = [""], Resources = ["secrets"], Verbs = ["get"] }],
        });
        await _client.RbacAuthorizationV1.CreateNamespacedRoleBindingAsync(new V1RoleBinding
        {
            Metadata = new V1ObjectMeta { Name = "rb" },
            RoleRef = new V1RoleRef { ApiGroup = "rbac.authorization.k8s.io", Kind = "ClusterRole", Name = "reader" },
        }, "default");
        var lease = await _client.CoordinationV1.CreateNamespacedLeaseAsync(new V1Lease
        {
            Metadata = new V1ObjectMeta { Name = "leader" },
            Spec = new V1LeaseSpec { HolderIdentity = "me", LeaseDurationSeconds = 15 },
        }, "default");
        Assert.Equal("me", lease.Spec.HolderIdentity);
        await _client.AdmissionregistrationV1.CreateValidatingAdmissionPolicyAsync(new V1ValidatingAdmissionPolicy
        {
            Metadata = new V1ObjectMeta { Name = "p" },
            Spec = new V1ValidatingAdmissionPolicySpec { Validations = [new V1Validation { Expression = "true" }] },
        });
        Assert.Single((await _client.AdmissionregistrationV1.ListValidatingAdmissionPolicyAsync()).Items);
        Assert.Equal("reader", (await _client.RbacAuthorizationV1.ReadNamespacedRoleBindingAsync("rb", "default")).RoleRef.Name);
        await _client.EventsV1.CreateNamespacedEventAsync(new Eventsv1Event
        {
            Metadata = new V1ObjectMeta { Name = "ev" },
            EventTime = DateTime.UtcNow,
            Reason = "R",
            Action = "A",
            ReportingController = "test",
            ReportingInstance = "test-1",
            Regarding = new V1ObjectReference { Kind = "Pod", Name = "p" },
        }, "default");
        Assert.Single((await _client.EventsV1.ListNamespacedEventAsync("default")).Items);
    }
}
