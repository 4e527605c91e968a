using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Rpoi.Kube.ApiServer.Tests.Support;

namespace Rpoi.Kube.ApiServer.Tests;

/// <summary>
/// Core/v1 and events.k8s.io/v1 Events are one resource with two representations, as on a real server
/// (kubernetes/kubernetes pkg/apis/events/v1/conversion.go): a write through either API is read, selected and
/// watched through both.
/// </summary>
public sealed class EventTests : IAsyncLifetime
{
    private static readonly DateTime EventTime = new(2026, 3, 1, 10, 0, 0, 123, 456, DateTimeKind.Utc);
    private KubeApiServer _server = null!;
    private Kubernetes _client = null!;

    public async Task InitializeAsync() => (_server, _client) = await TestServer.StartAsync(widgets: false);

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }

    private static Eventsv1Event NewEvent(string name, string regarding) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Labels = new Dictionary<string, string> { ["app"] = "t" } },
        EventTime = EventTime,
        Type = "Warning",
        Reason = "Provisioned",
        Action = "Provision",
        Note = "nodes ready",
        ReportingController = "rpoi.io/operator",
        ReportingInstance = "operator-0",
        Regarding = new V1ObjectReference
        {
            ApiVersion = "rpoi.io/v1alpha1",
            Kind = "Lease",
            Name = regarding,
            NamespaceProperty = "default",
            Uid = "uid-" + regarding,
            ResourceVersion = "42",
            FieldPath = "spec.request",
        },
        Related = new V1ObjectReference { ApiVersion = "v1", Kind = "Node", Name = "node-1" },
        Series = new Eventsv1EventSeries { Count = 2, LastObservedTime = EventTime.AddMinutes(1) },
    };

    [Fact]
    public async Task An_events_k8s_io_write_reads_as_a_core_event_field_for_field()
    {
        var created = await _client.EventsV1.CreateNamespacedEventAsync(NewEvent("e1", "train-1"), "default");

        var core = await _client.CoreV1.ReadNamespacedEventAsync("e1", "default");
        Assert.Equal(created.Metadata.Uid, core.Metadata.Uid);
        Assert.Equal(created.Metadata.ResourceVersion, core.Metadata.ResourceVersion);
        Assert.Equal("t", core.Metadata.Labels["app"]);
        Assert.Equal(("Lease", "train-1", "default", "uid-train-1", "rpoi.io/v1alpha1", "42", "spec.request"),
            (core.InvolvedObject.Kind, core.InvolvedObject.Name, core.InvolvedObject.NamespaceProperty, core.InvolvedObject.Uid,
                core.InvolvedObject.ApiVersion, core.InvolvedObject.ResourceVersion, core.InvolvedObject.FieldPath));
        Assert.Equal("nodes ready", core.Message);
        Assert.Equal("rpoi.io/operator", core.ReportingComponent);
        Assert.Equal("operator-0", core.ReportingInstance);
        Assert.Equal(("Warning", "Provisioned", "Provision"), (core.Type, core.Reason, core.Action));
        Assert.Equal(EventTime, core.EventTime);
        Assert.Equal("node-1", core.Related.Name);
        Assert.Equal(2, core.Series.Count);
        Assert.Null(core.Source?.Component);
        Assert.Single((await _client.CoreV1.ListNamespacedEventAsync("default")).Items);
        Assert.Equal("Event", _server.GetObject("events.k8s.io/v1", "Event", "default", "e1")!["kind"]!.GetValue<string>());
        Assert.Equal("nodes ready", _server.GetObject("events.k8s.io/v1", "Event", "default", "e1")!["note"]!.GetValue<string>());

        // An update through the core API is seen through events.k8s.io.
        core.Message = "nodes ready again";
        await _client.CoreV1.ReplaceNamespacedEventAsync(core, "e1", "default");
        Assert.Equal("nodes ready again", (await _client.EventsV1.ReadNamespacedEventAsync("e1", "default")).Note);
    }

    [Fact]
    public async Task A_core_write_reads_as_an_events_k8s_io_event_with_the_deprecated_fields()
    {
        var first = new DateTime(2026, 3, 1, 9, 0, 0, DateTimeKind.Utc);
        await _client.CoreV1.CreateNamespacedEventAsync(new Corev1Event
        {
            Metadata = new V1ObjectMeta { Name = "c1" },
            InvolvedObject = new V1ObjectReference { Kind = "Pod", Name = "p", NamespaceProperty = "default", Uid = "uid-p" },
            Reason = "Pulled",
            Message = "image pulled",
            Type = "Normal",
            Source = new V1EventSource { Component = "kubelet", Host = "node-1" },
            FirstTimestamp = first,
            LastTimestamp = first.AddMinutes(5),
            Count = 3,
        }, "default");

        var ev = await _client.EventsV1.ReadNamespacedEventAsync("c1", "default");
        Assert.Equal("events.k8s.io/v1", ev.ApiVersion);
        Assert.Equal(("Pod", "p", "uid-p"), (ev.Regarding.Kind, ev.Regarding.Name, ev.Regarding.Uid));
        Assert.Equal("image pulled", ev.Note);
        Assert.Equal(("kubelet", "node-1"), (ev.DeprecatedSource.Component, ev.DeprecatedSource.Host));
        Assert.Equal(first, ev.DeprecatedFirstTimestamp);
        Assert.Equal(first.AddMinutes(5), ev.DeprecatedLastTimestamp);
        Assert.Equal(3, ev.DeprecatedCount);

        // A merge patch through events.k8s.io names events.k8s.io fields.
        await _client.EventsV1.PatchNamespacedEventAsync(new V1Patch("""{"note":"patched","series":{"count":4,"lastObservedTime":"2026-03-01T10:00:00.000000Z"}}""",
            V1Patch.PatchType.MergePatch), "c1", "default");
        var core = await _client.CoreV1.ReadNamespacedEventAsync("c1", "default");
        Assert.Equal("patched", core.Message);
        Assert.Equal(4, core.Series.Count);
        Assert.Equal(3, core.Count);
    }

    [Fact]
    public async Task Each_api_selects_by_its_own_field_labels_and_refuses_others()
    {
        await _client.EventsV1.CreateNamespacedEventAsync(NewEvent("e1", "train-1"), "default");
        var e2 = NewEvent("e2", "train-2");
        e2.ReportingController = "other";
        await _client.EventsV1.CreateNamespacedEventAsync(e2, "default");
        await _client.CoreV1.CreateNamespacedEventAsync(new Corev1Event
        {
            Metadata = new V1ObjectMeta { Name = "c1" },
            InvolvedObject = new V1ObjectReference { Kind = "Lease", Name = "train-1", NamespaceProperty = "default", Uid = "uid-train-1" },
            Reason = "Seen",
            Type = "Normal",
            Source = new V1EventSource { Component = "kubelet" },
        }, "default");

        async Task<string[]> Core(string selector) =>
            [.. (await _client.CoreV1.ListNamespacedEventAsync("default", fieldSelector: selector)).Items.Select(e => e.Metadata.Name).Order(StringComparer.Ordinal)];
        async Task<string[]> V1(string selector) =>
            [.. (await _client.EventsV1.ListNamespacedEventAsync("default", fieldSelector: selector)).Items.Select(e => e.Metadata.Name).Order(StringComparer.Ordinal)];

        // kubectl describe's selector (client-go's GetFieldSelector).
        Assert.Equal(["c1", "e1"], await Core("involvedObject.name=train-1,involvedObject.namespace=default,involvedObject.kind=Lease,involvedObject.uid=uid-train-1"));
        Assert.Equal(["e1"], await Core("involvedObject.fieldPath=spec.request,involvedObject.name=train-1"));
        Assert.Equal(["e2"], await Core("reportingComponent=other"));
        Assert.Equal(["e1"], await Core("source=rpoi.io/operator")); // source falls back to reportingComponent
        Assert.Equal(["c1"], await Core("source=kubelet,type=Normal,reason=Seen"));
        Assert.Equal(["c1", "e1"], await V1("regarding.name=train-1"));
        Assert.Equal(["e1", "e2"], await V1("regarding.apiVersion=rpoi.io/v1alpha1,regarding.resourceVersion=42"));
        Assert.Equal(["e2"], await V1("reportingController=other"));
        Assert.Equal(["e1"], await V1("metadata.name=e1,type=Warning"));

        async Task<string> Refused(Func<Task> list)
        {
            var e = await Assert.ThrowsAsync<HttpOperationException>(list);
            Assert.Equal(HttpStatusCode.BadRequest, e.Response.StatusCode);
            return JsonNode.Parse(e.Response.Content)!["message"]!.GetValue<string>();
        }

        Assert.Equal("field label not supported: message", await Refused(() => _client.CoreV1.ListNamespacedEventAsync("default", fieldSelector: "message=x")));
        Assert.Equal("field label not supported: regarding.name", await Refused(() => _client.CoreV1.ListNamespacedEventAsync("default", fieldSelector: "regarding.name=x")));
        Assert.Equal("field label not supported: involvedObject.name", await Refused(() => _client.EventsV1.ListNamespacedEventAsync("default", fieldSelector: "involvedObject.name=x")));
        Assert.Equal("field label not supported: reportingComponent", await Refused(() => _client.EventsV1.ListNamespacedEventAsync("default", fieldSelector: "reportingComponent=x")));
    }

    [Fact]
    public async Task A_watch_on_either_api_sees_writes_made_through_the_other()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var core = _client.CoreV1.WatchListNamespacedEventAsync("default", fieldSelector: "involvedObject.name=train-1", cancellationToken: cts.Token)
            .GetAsyncEnumerator(cts.Token);
        await using var v1 = _client.EventsV1.WatchListNamespacedEventAsync("default", fieldSelector: "regarding.name=train-1", cancellationToken: cts.Token)
            .GetAsyncEnumerator(cts.Token);
        await Eventually.HoldsAsync(() => _server.OpenWatches == 2, TimeSpan.FromSeconds(10));

        await _client.EventsV1.CreateNamespacedEventAsync(NewEvent("other", "train-2"), "default"); // outside both selectors
        await _client.EventsV1.CreateNamespacedEventAsync(NewEvent("e1", "train-1"), "default");
        Assert.True(await core.MoveNextAsync());
        Assert.Equal((WatchEventType.Added, "e1", "nodes ready"), (core.Current.Item1, core.Current.Item2.Metadata.Name, core.Current.Item2.Message));
        Assert.True(await v1.MoveNextAsync());
        Assert.Equal((WatchEventType.Added, "e1", "nodes ready"), (v1.Current.Item1, v1.Current.Item2.Metadata.Name, v1.Current.Item2.Note));

        var modified = await _client.CoreV1.ReadNamespacedEventAsync("e1", "default");
        modified.Message = "changed through core";
        await _client.CoreV1.ReplaceNamespacedEventAsync(modified, "e1", "default");
        Assert.True(await v1.MoveNextAsync());
        Assert.Equal((WatchEventType.Modified, "changed through core"), (v1.Current.Item1, v1.Current.Item2.Note));
        Assert.True(await core.MoveNextAsync());
        Assert.Equal((WatchEventType.Modified, "changed through core"), (core.Current.Item1, core.Current.Item2.Message));

        await _client.EventsV1.DeleteNamespacedEventAsync("e1", "default");
        Assert.True(await core.MoveNextAsync());
        Assert.Equal((WatchEventType.Deleted, "e1"), (core.Current.Item1, core.Current.Item2.Metadata.Name));
        Assert.True(await v1.MoveNextAsync());
        Assert.Equal((WatchEventType.Deleted, "train-1"), (v1.Current.Item1, v1.Current.Item2.Regarding.Name));
    }

    [Fact]
    public async Task A_table_of_events_has_the_real_servers_columns()
    {
        var single = NewEvent("e1", "train-1");
        single.Series = null;
        await _client.EventsV1.CreateNamespacedEventAsync(single, "default");
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{_server.Url}/api/v1/namespaces/default/events");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _server.Options.Token);
        request.Headers.Accept.ParseAdd("application/json;as=Table;v=v1;g=meta.k8s.io");
        using var response = await http.SendAsync(request);
        var table = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal(["Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message", "First Seen", "Count", "Name"],
            table["columnDefinitions"]!.AsArray().Select(c => c!["name"]!.GetValue<string>()));
        var cells = table["rows"]![0]!["cells"]!.AsArray();
        Assert.Equal(["Warning", "Provisioned", "lease/train-1", "spec.request", "rpoi.io/operator, operator-0", "nodes ready"],
            new[] { 1, 2, 3, 4, 5, 6 }.Select(i => cells[i]!.GetValue<string>()));
        Assert.Equal(1, cells[8]!.GetValue<long>());
        Assert.Equal("e1", cells[9]!.GetValue<string>());
    }
}
