using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;

namespace Rpoi.Kube.ApiServer;

/// <summary>What a resource request addresses.</summary>
internal sealed record ResourceRequest(string Verb, ResourceType Type, string? Namespace, string? Name, string? Subresource);

/// <summary>Routes and answers every HTTP request of the server.</summary>
internal sealed partial class RequestHandler
{
    private static readonly byte[] NewLine = "\n"u8.ToArray();
    private static readonly byte[] Comma = ","u8.ToArray();
    private static readonly byte[] ListEnd = "]}"u8.ToArray();
    private static readonly TimeSpan PreDeadlineBookmark = TimeSpan.FromSeconds(2);

    /// <summary>The longest timer .NET can arm (about 49 days); longer watch timeouts are cut to it.</summary>
    private static readonly TimeSpan MaxWatchTimeout = TimeSpan.FromMilliseconds(uint.MaxValue - 1L);
    private readonly KubeApiServerOptions _options;
    private readonly TimeProvider _time;

    public RequestHandler(KubeApiServerOptions options)
    {
        if (options.MinRequestTimeout < TimeSpan.Zero || options.MinRequestTimeout > MaxWatchTimeout / 2)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MinRequestTimeout,
                $"KubeApiServerOptions.MinRequestTimeout must be between 0 (no limit) and {MaxWatchTimeout / 2} (kube-apiserver's default is 1800 s); got {options.MinRequestTimeout}.");
        }

        _options = options;
        _time = options.TimeProvider;
        Registry = new ResourceRegistry();
        Store = new ObjectStore(_time, options.WatchHistorySize, options.WatchQueueCapacity,
            plural => Registry.Find("", "v1", plural),
            obj => Registry.FindByKind(Json.GetString(obj.Node["apiVersion"]) ?? "", Json.GetString(obj.Node["kind"]) ?? ""))
        {
            RequireNamespaces = options.RequireNamespaces,
        };
        Faults = new FaultInjector(Store.CutAllWatches);
        if (options.RestoreFrom is { } snapshot)
        {
            RestoredObjects = Restore(snapshot);
        }

        var nsType = Registry.Find("", "v1", "namespaces")!;
        foreach (var ns in options.InitialNamespaces)
        {
            // After a restore most exist already; only the missing ones are created.
            if (Store.TryGet(nsType, null, ns) is null)
            {
                Store.Create(nsType, null, new JsonObject { ["apiVersion"] = "v1", ["kind"] = "Namespace", ["metadata"] = new JsonObject { ["name"] = ns } });
            }
        }
    }

    /// <summary>Objects loaded from <see cref="KubeApiServerOptions.RestoreFrom"/> (0 when none).</summary>
    public int RestoredObjects { get; }

    public ResourceRegistry Registry { get; }

    public ObjectStore Store { get; }

    public FaultInjector Faults { get; }

    public string HostPort { get; set; } = "127.0.0.1:0";

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex DnsSubdomain();

    /// <summary>Answers one request; returns the status code sent.</summary>
    public async Task<int> HandleAsync(HttpContext ctx)
    {
        try
        {
            if (_options.Authenticate is { } authenticate)
            {
                var header = ctx.Request.Headers.Authorization.ToString();
                var token = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header[7..].Trim() : null;
                if (!authenticate(token))
                {
                    throw new ApiException(401, "Unauthorized", "Unauthorized");
                }
            }

            var path = ctx.Request.Path.Value ?? "/";
            var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
            if (segments is ["healthz" or "readyz" or "livez"])
            {
                ctx.Response.ContentType = "text/plain";
                await ctx.Response.WriteAsync("ok", ctx.RequestAborted).ConfigureAwait(false);
                return 200;
            }

            if (segments is ["openapi", "v2"] && HttpMethods.IsGet(ctx.Request.Method))
            {
                return await OpenApiV2Async(ctx).ConfigureAwait(false);
            }

            if (TryDiscovery(ctx, segments) is { } discovery)
            {
                return await WriteJsonAsync(ctx, 200, discovery).ConfigureAwait(false);
            }

            var request = Route(ctx, segments) ?? throw new ApiException(404, "NotFound", "the server could not find the requested resource");
            var resourceName = request.Subresource is null ? request.Type.Plural : $"{request.Type.Plural}/{request.Subresource}";
            var (failWith, delay) = Faults.Evaluate(request.Verb, resourceName);
            if (delay > TimeSpan.Zero)
            {
                await Task.Delay(delay, _time, ctx.RequestAborted).ConfigureAwait(false);
            }

            if (failWith is { } code)
            {
                if (code == 429)
                {
                    ctx.Response.Headers["Retry-After"] = "1";
                }

                throw new ApiException(code, ReasonFor(code), $"injected fault: {request.Verb} {resourceName} answered {code}");
            }

            return await DispatchAsync(ctx, request).ConfigureAwait(false);
        }
        catch (ApiException e)
        {
            if (ctx.Response.HasStarted)
            {
                return e.Code;
            }

            return await WriteJsonAsync(ctx, e.Code, e.ToStatus()).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            return 499;
        }
        catch (Exception e) when (!ctx.Response.HasStarted)
        {
            // A bug in the test server: answer it as the real server answers panics, with the cause for the test log.
            return await WriteJsonAsync(ctx, 500, ApiException.BuildStatus(500, "InternalError", $"test server error: {e}")).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// <c>/openapi/v2</c>: JSON when the Accept header allows it; a protobuf-only Accept (client-go's OpenAPISchema)
    /// gets 406 with no body, as kube-openapi's handler (pkg/handler/handler.go) answers a format it cannot serve;
    /// kubectl then falls back to its compiled-in types for strategic merge patches.
    /// </summary>
    private async Task<int> OpenApiV2Async(HttpContext ctx)
    {
        ctx.Response.Headers.Append("Vary", "Accept");
        var accept = ctx.Request.Headers.Accept.ToString();
        var json = accept.Length == 0 || accept.Split(',').Select(a => a.Split(';')[0].Trim())
            .Any(m => m is "application/json" or "application/*" or "*/*");
        if (!json)
        {
            ctx.Response.StatusCode = 406;
            return 406;
        }

        return await WriteJsonAsync(ctx, 200, Discovery.OpenApiV2(Registry)).ConfigureAwait(false);
    }

    private static string ReasonFor(int code) => code switch
    {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    };

    private JsonObject? TryDiscovery(HttpContext ctx, string[] s)
    {
        if (!HttpMethods.IsGet(ctx.Request.Method))
        {
            return null;
        }

        switch (s.Length)
        {
            case 0:
                return new JsonObject { ["paths"] = new JsonArray("/api", "/apis", "/openapi/v2", "/openapi/v3", "/version", "/healthz") };
            case 1 when s[0] == "version":
                return Discovery.Version(_options.GitVersion);
            case 1 when s[0] == "api":
                return Discovery.CoreVersions(HostPort);
            case 1 when s[0] == "apis":
                return Discovery.Groups(Registry);
            case 2 when s[0] == "api" && Registry.HasGroupVersion("", s[1]):
                return Discovery.ResourceList(Registry, "", s[1]);
            case 2 when s[0] == "apis":
                var group = Registry.Groups().FirstOrDefault(g => g.Group == s[1]);
                return group.Group is null ? throw new ApiException(404, "NotFound", "the server could not find the requested resource") : Discovery.Group(group.Group, group.Versions);
            case 3 when s[0] == "apis" && Registry.HasGroupVersion(s[1], s[2]):
                return Discovery.ResourceList(Registry, s[1], s[2]);
            case 2 when s[0] == "openapi" && s[1] == "v3":
                return Discovery.OpenApiIndex(Registry);
            case 4 when s[0] == "openapi" && s[1] == "v3" && s[2] == "api" && Registry.HasGroupVersion("", s[3]):
                return Discovery.OpenApiDocument(Registry, "", s[3]);
            case 5 when s[0] == "openapi" && s[1] == "v3" && s[2] == "apis" && Registry.HasGroupVersion(s[3], s[4]):
                return Discovery.OpenApiDocument(Registry, s[3], s[4]);
            default:
                return null;
        }
    }

    /// <summary>Parses <c>/api/v1/...</c> and <c>/apis/g/v/...</c> resource paths (with the <c>/watch/</c> form).</summary>
    private ResourceRequest? Route(HttpContext ctx, string[] s)
    {
        string group;
        string version;
        int i;
        if (s.Length >= 3 && s[0] == "api")
        {
            (group, version, i) = ("", s[1], 2);
        }
        else if (s.Length >= 4 && s[0] == "apis")
        {
            (group, version, i) = (s[1], s[2], 3);
        }
        else
        {
            return null;
        }

        var watchPath = false;
        if (s[i] == "watch")
        {
            watchPath = true;
            i++;
        }

        string? ns = null;
        var rest = s[i..];
        if (rest.Length >= 3 && rest[0] == "namespaces" && Registry.Find(group, version, rest[2]) is { Namespaced: true })
        {
            ns = rest[1];
            rest = rest[2..];
        }

        if (rest.Length is 0 or > 3)
        {
            return null;
        }

        var type = Registry.Find(group, version, rest[0]);
        if (type is null)
        {
            return null;
        }

        var name = rest.Length > 1 ? rest[1] : null;
        var sub = rest.Length > 2 ? rest[2] : null;
        if (sub is not null && !(sub == "status" && type.HasStatus) && !type.ExtraSubresources.Contains(sub))
        {
            return null;
        }

        if (type.Namespaced && name is not null && ns is null)
        {
            return null;
        }

        var method = ctx.Request.Method;
        var isWatch = watchPath || IsTrue(ctx.Request.Query["watch"]);
        var verb = method switch
        {
            "GET" when isWatch => "watch",
            "GET" => name is null ? "list" : "get",
            "POST" => "create",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => name is null ? "deletecollection" : "delete",
            _ => throw new ApiException(405, "MethodNotAllowed", $"method {method} is not supported"),
        };
        if (!type.Namespaced)
        {
            ns = null;
        }

        return new ResourceRequest(verb, type, ns, name, sub);
    }

    private static bool IsTrue(string? value) => value is "true" or "1";

    /// <summary>
    /// Checks a write's options as the real server does before it reads the body (apimachinery
    /// pkg/apis/meta/v1/validation: ValidateCreateOptions, ValidateUpdateOptions, ValidatePatchOptions,
    /// ValidateDeleteOptions) and answers whether it is a dry run. Every failure is 422 on the verb's options kind.
    /// <paramref name="applyPatch"/> is set for PATCH only; <paramref name="deleteDryRun"/> for DELETE (whose
    /// DeleteOptions body may carry dryRun).
    /// </summary>
    private static bool ValidateWriteOptions(HttpContext ctx, string optionsKind, bool? applyPatch = null, List<string>? deleteDryRun = null)
    {
        var q = ctx.Request.Query;
        var causes = new List<StatusCause>();
        void Add(string reason, string field, string body) => causes.Add(new StatusCause(reason, field, body));
        var fieldManager = q["fieldManager"].ToString();
        if (applyPatch == true && fieldManager.Length == 0)
        {
            Add("FieldValueRequired", "fieldManager", "Required value: is required for apply patch");
        }
        else if (applyPatch == false && q.ContainsKey("force"))
        {
            Add("FieldValueForbidden", "force", "Forbidden: may not be specified for non-apply patch");
        }

        if (deleteDryRun is null && fieldManager.Length > 128)
        {
            Add("FieldValueTooLong", "fieldManager", "Too long: may not be more than 128 bytes");
        }

        var dryRun = deleteDryRun ?? q["dryRun"].Where(v => !string.IsNullOrEmpty(v)).Select(v => v!).ToList();
        if (dryRun.Any(v => v != "All"))
        {
            Add("FieldValueNotSupported", "dryRun",
                $"Unsupported value: []string{{{string.Join(", ", dryRun.Select(v => $"\"{v}\""))}}}: supported values: \"All\"");
        }

        var fieldValidation = q["fieldValidation"].ToString();
        if (deleteDryRun is null && fieldValidation is not ("" or "Ignore" or "Strict" or "Warn"))
        {
            Add("FieldValueNotSupported", "fieldValidation",
                $"Unsupported value: \"{fieldValidation}\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"");
        }

        if (causes.Count > 0)
        {
            var parts = causes.Select(c => $"{c.Field}: {c.Message}").ToList();
            throw new ApiException(422, "Invalid",
                $"{optionsKind}.meta.k8s.io \"\" is invalid: {(parts.Count == 1 ? parts[0] : "[" + string.Join(", ", parts) + "]")}", causes)
            { DetailName = "", DetailGroup = "meta.k8s.io", DetailKind = optionsKind };
        }

        return dryRun.Count > 0;
    }

    private Task<int> DispatchAsync(HttpContext ctx, ResourceRequest r) => r.Verb switch
    {
        "get" => GetAsync(ctx, r),
        "list" => ListAsync(ctx, r),
        "watch" => WatchAsync(ctx, r),
        "create" => CreateAsync(ctx, r),
        "update" => UpdateAsync(ctx, r),
        "patch" => PatchAsync(ctx, r),
        "delete" => DeleteAsync(ctx, r),
        "deletecollection" => DeleteCollectionAsync(ctx, r),
        _ => throw new ApiException(405, "MethodNotAllowed", $"verb {r.Verb} is not supported"),
    };

    private async Task<int> GetAsync(HttpContext ctx, ResourceRequest r)
    {
        if (r.Subresource is "token")
        {
            throw new ApiException(405, "MethodNotAllowed", "the token subresource only supports create (POST)");
        }

        var obj = Store.Get(r.Type, r.Namespace, r.Name!);
        if (Tables.Wanted(ctx.Request.Headers.Accept))
        {
            return await WriteJsonAsync(ctx, 200, Tables.Build(r.Type, [obj], null, _time.GetUtcNow())).ConfigureAwait(false);
        }

        return await WriteBytesAsync(ctx, 200, r.Type.Serve(obj)).ConfigureAwait(false);
    }

    private async Task<int> ListAsync(HttpContext ctx, ResourceRequest r)
    {
        var q = ctx.Request.Query;
        var labels = LabelSelector.Parse(q["labelSelector"]);
        var fields = FieldSelector.Parse(q["fieldSelector"], r.Type.FieldLabels);
        var limit = int.TryParse(q["limit"], NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) && l > 0 ? l : 0;
        string? continueKey = null;
        if (q["continue"].ToString() is { Length: > 0 } token)
        {
            try
            {
                continueKey = Encoding.UTF8.GetString(Convert.FromBase64String(token));
            }
            catch (FormatException)
            {
                throw ApiException.BadRequest("invalid continue token: it must be the metadata.continue value of the previous page");
            }
        }

        var (items, rv, next) = Store.List(r.Type, r.Namespace, labels, fields, limit, continueKey);
        if (Tables.Wanted(ctx.Request.Headers.Accept))
        {
            var table = Tables.Build(r.Type, items, rv, _time.GetUtcNow());
            if (next is not null)
            {
                ((JsonObject)table["metadata"]!)["continue"] = Convert.ToBase64String(Encoding.UTF8.GetBytes(next));
            }

            return await WriteJsonAsync(ctx, 200, table).ConfigureAwait(false);
        }

        // Written piecewise so the stored bytes of each item are copied once, never re-serialized.
        var meta = new JsonObject { ["resourceVersion"] = KubeApiServer.FormatRv(rv) };
        if (next is not null)
        {
            meta["continue"] = Convert.ToBase64String(Encoding.UTF8.GetBytes(next));
        }

        var head = Encoding.UTF8.GetBytes(
            $"{{\"kind\":\"{r.Type.ListKind}\",\"apiVersion\":\"{r.Type.ApiVersion}\",\"metadata\":{meta.ToJsonString()},\"items\":[");
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        var bodies = items.Select(r.Type.Serve).ToList(); // the stored bytes themselves unless converted
        ctx.Response.ContentLength = head.Length + bodies.Sum(b => b.Length) + Math.Max(0, items.Count - 1) + 2;
        var body = ctx.Response.Body;
        await body.WriteAsync(head, ctx.RequestAborted).ConfigureAwait(false);
        for (var i = 0; i < items.Count; i++)
        {
            if (i > 0)
            {
                await body.WriteAsync(Comma, ctx.RequestAborted).ConfigureAwait(false);
            }

            await body.WriteAsync(bodies[i], ctx.RequestAborted).ConfigureAwait(false);
        }

        await body.WriteAsync(ListEnd, ctx.RequestAborted).ConfigureAwait(false);
        return 200;
    }

    private async Task<int> WatchAsync(HttpContext ctx, ResourceRequest r)
    {
        var q = ctx.Request.Query;
        var labels = LabelSelector.Parse(q["labelSelector"]);
        var fields = FieldSelector.Parse(q["fieldSelector"], r.Type.FieldLabels);
        if (r.Name is not null)
        {
            // The deprecated /watch/.../{name} form: a watch on one object.
            fields = FieldSelector.Parse(string.IsNullOrEmpty(q["fieldSelector"]) ? $"metadata.name={r.Name}" : $"{q["fieldSelector"]},metadata.name={r.Name}", r.Type.FieldLabels);
        }

        var bookmarks = IsTrue(q["allowWatchBookmarks"]);
        var sendInitial = IsTrue(q["sendInitialEvents"]);
        var rvText = q["resourceVersion"].ToString();
        if (sendInitial && (!bookmarks || q["resourceVersionMatch"] != "NotOlderThan"))
        {
            throw new ApiException(422, "Invalid",
                "sendInitialEvents=true requires allowWatchBookmarks=true and resourceVersionMatch=NotOlderThan",
                [new StatusCause("FieldValueForbidden", "sendInitialEvents", "sendInitialEvents: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan and allowWatchBookmarks to true")]);
        }

        long? fromRv = null;
        if (rvText.Length > 0 && rvText != "0")
        {
            if (!long.TryParse(rvText, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
            {
                throw ApiException.BadRequest($"resourceVersion \"{rvText}\" is invalid: it must be a resourceVersion returned by this server");
            }

            fromRv = parsed;
        }

        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        Watcher watcher;
        try
        {
            watcher = Store.Watch(r.Type, r.Namespace, labels, fields, fromRv, sendInitial);
        }
        catch (ApiException e) when (e.Code == 410)
        {
            // As the real server: the watch itself succeeds and its first event is an ERROR carrying the 410 Status.
            var line = HistoryEntry.WatchLine("ERROR", Json.Serialize(e.ToStatus()));
            await ctx.Response.Body.WriteAsync(line, ctx.RequestAborted).ConfigureAwait(false);
            return 200;
        }

        // As the real server (pkg/endpoints/handlers/watch.go): headers go out at once, then events; when the timeout
        // passes, the client leaves or the watch is cut, the handler returns and the chunked body simply ends (no ERROR
        // event). Writes use only RequestAborted, so a timeout never ends the stream in the middle of a line.
        var timeout = WatchTimeout(q["timeoutSeconds"]);
        var deadline = timeout is { } t ? _time.GetUtcNow() + t : (DateTimeOffset?)null;
        using var lifetime = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, watcher.Cut.Token);
        using var expiry = timeout is { } after ? new CancellationTokenSource(after, _time) : new CancellationTokenSource();
        using var done = CancellationTokenSource.CreateLinkedTokenSource(lifetime.Token, expiry.Token);
        var write = ctx.RequestAborted;
        var body = ctx.Response.Body;
        var asTable = Tables.Wanted(ctx.Request.Headers.Accept);
        try
        {
            await ctx.Response.StartAsync(write).ConfigureAwait(false);
            foreach (var line in watcher.Initial)
            {
                await body.WriteAsync(asTable ? TableLine(r.Type, line) : line, write).ConfigureAwait(false);
            }

            await body.FlushAsync(write).ConfigureAwait(false);
            watcher.Initial.Clear();
            var reader = watcher.Queue.Reader;
            while (!done.IsCancellationRequested)
            {
                if (reader.TryRead(out var line))
                {
                    await body.WriteAsync(asTable ? TableLine(r.Type, line) : line, write).ConfigureAwait(false);
                    while (reader.TryRead(out line))
                    {
                        await body.WriteAsync(asTable ? TableLine(r.Type, line) : line, write).ConfigureAwait(false);
                    }

                    await body.FlushAsync(write).ConfigureAwait(false);
                    continue;
                }

                if (reader.Completion.IsCompleted)
                {
                    break; // dropped for falling behind: close the stream, the client re-watches
                }

                if (bookmarks && NextBookmarkIn(deadline) is { } wait)
                {
                    // The bookmark timer runs on the server's TimeProvider, like every other server-side delay.
                    using var interval = new CancellationTokenSource(wait, _time);
                    using var tick = CancellationTokenSource.CreateLinkedTokenSource(done.Token, interval.Token);
                    try
                    {
                        await reader.WaitToReadAsync(tick.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (!done.IsCancellationRequested)
                    {
                        Store.Bookmark(watcher);
                    }
                }
                else
                {
                    await reader.WaitToReadAsync(done.Token).ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // timeoutSeconds elapsed, the client went away or the watch was cut: end the stream.
        }
        finally
        {
            Store.Unwatch(watcher);
        }

        return 200;
    }

    /// <summary>
    /// How long a watch may run, chosen as kube-apiserver does (pkg/endpoints/handlers/get.go, handleWatch): the
    /// client's <c>timeoutSeconds</c>, else a random time in [min-request-timeout, 2 × min-request-timeout]; null
    /// (no limit) when <see cref="KubeApiServerOptions.MinRequestTimeout"/> is zero.
    /// </summary>
    private TimeSpan? WatchTimeout(string? timeoutSeconds)
    {
        if (long.TryParse(timeoutSeconds, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var seconds) && seconds != 0)
        {
            // A negative value ends the watch at once, as context.WithTimeout does on the real server.
            return TimeSpan.FromSeconds(Math.Clamp(seconds, 0, (long)MaxWatchTimeout.TotalSeconds));
        }

        return _options.MinRequestTimeout > TimeSpan.Zero
            ? _options.MinRequestTimeout * (1 + Random.Shared.NextDouble())
            : null;
    }

    /// <summary>
    /// When the next BOOKMARK is due, as the cacher schedules them (pkg/storage/cacher/cache_watcher.go,
    /// nextBookmarkTime): every <see cref="KubeApiServerOptions.BookmarkInterval"/> and once 2 s before the watch's
    /// deadline, so the client resumes from a fresh resourceVersion; none once that moment has passed.
    /// </summary>
    private TimeSpan? NextBookmarkIn(DateTimeOffset? deadline)
    {
        var now = _time.GetUtcNow();
        var next = now + _options.BookmarkInterval;
        if (deadline is { } d && d - PreDeadlineBookmark < next)
        {
            next = d - PreDeadlineBookmark;
        }

        return next > now ? next - now : null;
    }

    /// <summary>
    /// Rewrites a watch line for <c>kubectl get -w</c>: the event's object becomes a one-row Table, as the real
    /// server sends when the watch asks for <c>as=Table</c>. Slow (a parse per event) but only used by kubectl.
    /// </summary>
    private byte[] TableLine(ResourceType type, byte[] line)
    {
        var evt = JsonNode.Parse(line)!.AsObject();
        var eventType = Json.GetString(evt["type"]);
        if (eventType is not ("ADDED" or "MODIFIED" or "DELETED") || evt["object"] is not JsonObject obj)
        {
            return line;
        }

        evt.Remove("object");
        evt["object"] = Tables.Build(type, [StoredObject.Freeze(obj)], null, _time.GetUtcNow());
        var bytes = Json.Serialize(evt);
        return [.. bytes, (byte)'\n'];
    }

    private static async Task<byte[]> ReadBodyAsync(HttpContext ctx)
    {
        using var ms = new MemoryStream();
        await ctx.Request.Body.CopyToAsync(ms, ctx.RequestAborted).ConfigureAwait(false);
        var contentType = ctx.Request.ContentType ?? "";
        if (contentType.Contains("protobuf", StringComparison.Ordinal))
        {
            // Typed clientsets in kubectl send protobuf for built-in kinds and do not fall back to JSON on 415.
            return Json.Serialize(Protobuf.Decode(ms.ToArray()));
        }

        if (contentType.Contains("cbor", StringComparison.Ordinal))
        {
            throw new ApiException(415, "UnsupportedMediaType",
                $"the body of the request was in an unknown format - accepted media types include: application/json (got \"{contentType}\")");
        }

        return ms.ToArray();
    }

    private async Task<int> CreateAsync(HttpContext ctx, ResourceRequest r)
    {
        var dryRun = ValidateWriteOptions(ctx, "CreateOptions");
        var body = Json.ParseObject(await ReadBodyAsync(ctx).ConfigureAwait(false), "request body");
        if (r.Subresource == "token")
        {
            return await WriteJsonAsync(ctx, 201, TokenRequest(r, body)).ConfigureAwait(false);
        }

        if (r.Name is not null)
        {
            throw new ApiException(405, "MethodNotAllowed", $"POST creates in the collection; send it to the {r.Type.Plural} collection URL, not to an object");
        }

        CheckTypeAndNamespace(r, body);
        var warnings = new List<string>();
        ValidateObject(ctx, r.Type, body, null, warnings);
        StoredObject created;
        if (IsCrd(r.Type))
        {
            created = CreateCrd(body, dryRun);
        }
        else
        {
            created = Store.Create(r.Type, r.Namespace, r.Type.ToStorage(body), dryRun);
        }

        AddWarnings(ctx, warnings);
        return await WriteBytesAsync(ctx, 201, r.Type.Serve(created)).ConfigureAwait(false);
    }

    private static bool IsCrd(ResourceType t) => t.Group == "apiextensions.k8s.io" && t.Plural == "customresourcedefinitions";

    /// <summary>Creates or replaces a CRD and (re)registers what it serves.</summary>
    public IReadOnlyList<ResourceType> RegisterCrd(JsonObject crd)
    {
        var crdType = Registry.Find("apiextensions.k8s.io", "v1", "customresourcedefinitions")!;
        var name = Json.GetString(crd["metadata"]?["name"]) ?? "";
        crd["apiVersion"] ??= "apiextensions.k8s.io/v1";
        crd["kind"] ??= "CustomResourceDefinition";
        if (Store.TryGet(crdType, null, name) is null)
        {
            CreateCrd(crd);
        }
        else
        {
            var types = ResourceRegistry.ParseCrd(crd, Store.TryGet(crdType, null, name)?.Node);
            Store.Update(crdType, null, name, WriteTarget.Main, _ => crd);
            Register(crd, types);
        }

        return ResourceRegistry.ParseCrd(crd);
    }

    private StoredObject CreateCrd(JsonObject crd, bool dryRun = false)
    {
        var crdType = Registry.Find("apiextensions.k8s.io", "v1", "customresourcedefinitions")!;
        var types = ResourceRegistry.ParseCrd(crd);
        var names = crd["spec"]!["names"]!.DeepClone();
        crd["status"] = new JsonObject
        {
            ["acceptedNames"] = names,
            // Only the storage version, as the real server's PrepareForCreate records it.
            ["storedVersions"] = new JsonArray(((JsonArray)crd["spec"]!["versions"]!)
                .Where(v => v?["storage"]?.GetValue<bool>() == true).Take(1).Select(v => (JsonNode)Json.GetString(v!["name"])!).ToArray()),
            ["conditions"] = new JsonArray(
                Condition("NamesAccepted", "NoConflicts", "no conflicts found"),
                Condition("Established", "InitialNamesAccepted", "the initial names have been accepted")),
        };
        var created = Store.Create(crdType, null, crd, dryRun);
        if (!dryRun)
        {
            Register(crd, types);
        }

        return created;

        JsonObject Condition(string type, string reason, string message) => new()
        {
            ["type"] = type,
            ["status"] = "True",
            ["lastTransitionTime"] = Json.FormatTime(_time.GetUtcNow()),
            ["reason"] = reason,
            ["message"] = message,
        };
    }

    /// <summary>
    /// Loads a snapshot into the (still empty) store: the CRDs first, so their kinds are served and their custom
    /// resources can be placed and validated, then every other object as it was stored.
    /// </summary>
    private int Restore(string path)
    {
        var content = Snapshot.Read(path);
        var crdType = Registry.Find("apiextensions.k8s.io", "v1", "customresourcedefinitions")!;
        var restored = new List<(ResourceType Type, StoredObject Object)>();
        foreach (var crd in content.Resources.Where(r => IsCrdResource(r)).SelectMany(r => r.Items))
        {
            IReadOnlyList<ResourceType> types;
            try
            {
                types = ResourceRegistry.ParseCrd(crd);
            }
            catch (ApiException e)
            {
                throw Snapshot.Corrupt(path, $"CustomResourceDefinition {Json.GetString(crd["metadata"]?["name"])} is invalid ({e.Message})", e);
            }

            Register(crd, types);
            restored.Add((crdType, StoredObject.Freeze(crd)));
        }

        foreach (var resource in content.Resources.Where(r => !IsCrdResource(r)))
        {
            var types = Registry.All.Where(t => t.Group == resource.Group && t.Plural == resource.Plural).ToList();
            if (types.Count == 0)
            {
                throw Snapshot.Corrupt(path, $"it holds {resource.Plural}{(resource.Group.Length > 0 ? "." + resource.Group : "")}, which this server does not serve (no CustomResourceDefinition for it in the snapshot)");
            }

            foreach (var obj in resource.Items)
            {
                var name = Json.GetString(obj["metadata"]?["name"]);
                var type = types.FirstOrDefault(t => t.ApiVersion == Json.GetString(obj["apiVersion"])) ?? types[0];
                if (type.Namespaced == string.IsNullOrEmpty(Json.GetString(obj["metadata"]?["namespace"])))
                {
                    throw Snapshot.Corrupt(path, $"{type.QualifiedPlural} {name} {(type.Namespaced ? "has no namespace" : "has a namespace but the resource is cluster-scoped")}");
                }

                if (type.Schema is { } schema)
                {
                    // Validated on a copy: the stored object stays byte for byte as saved (no pruning, no defaults).
                    var (causes, _) = SchemaValidator.Validate((JsonObject)obj.DeepClone(), schema, null);
                    if (causes.Count > 0)
                    {
                        throw Snapshot.Corrupt(path, $"{type.QualifiedPlural} {name} does not match its CustomResourceDefinition ({string.Join("; ", causes.Select(c => c.Message))})");
                    }
                }

                restored.Add((type, StoredObject.Freeze(type.ToStorage(obj))));
            }
        }

        Store.Restore(restored, content.ResourceVersion);
        return restored.Count;

        static bool IsCrdResource(SnapshotResource r) => r.Group == "apiextensions.k8s.io" && r.Plural == "customresourcedefinitions";
    }

    private void Register(JsonObject crd, IReadOnlyList<ResourceType> types)
    {
        var group = Json.GetString(crd["spec"]?["group"]) ?? "";
        var plural = Json.GetString(crd["spec"]?["names"]?["plural"]) ?? "";
        Registry.ReplaceCustom(group, plural, types);
    }

    private JsonObject TokenRequest(ResourceRequest r, JsonObject body)
    {
        var sa = Store.Get(r.Type, r.Namespace, r.Name!);
        var spec = body["spec"] as JsonObject ?? new JsonObject();
        var seconds = spec["expirationSeconds"]?.GetValue<long>() ?? 3600;
        if (seconds < 600)
        {
            throw ApiException.Invalid(r.Type, r.Name!,
                [new StatusCause("FieldValueInvalid", "spec.expirationSeconds", $"spec.expirationSeconds: Invalid value: {seconds}: may not specify a duration less than 10 minutes")]);
        }

        var audiences = spec["audiences"] as JsonArray ?? new JsonArray("https://kubernetes.default.svc");
        var now = _time.GetUtcNow();
        var expires = now.AddSeconds(seconds);
        var payload = new JsonObject
        {
            ["iss"] = "https://kubernetes.default.svc",
            ["sub"] = $"system:serviceaccount:{r.Namespace}:{r.Name}",
            ["aud"] = audiences.DeepClone(),
            ["iat"] = now.ToUnixTimeSeconds(),
            ["exp"] = expires.ToUnixTimeSeconds(),
            ["jti"] = Guid.NewGuid().ToString(),
            ["kubernetes.io"] = new JsonObject
            {
                ["namespace"] = r.Namespace,
                ["serviceaccount"] = new JsonObject { ["name"] = r.Name, ["uid"] = sa.Uid },
            },
        };
        // Shaped like a JWT so clients that decode it work; the signature is random (nothing verifies it here).
        var token = $"{B64("{\"alg\":\"RS256\",\"typ\":\"JWT\"}"u8.ToArray())}.{B64(Json.Serialize(payload))}.{B64(RandomNumberGenerator.GetBytes(32))}";
        return new JsonObject
        {
            ["kind"] = "TokenRequest",
            ["apiVersion"] = "authentication.k8s.io/v1",
            ["metadata"] = new JsonObject { ["name"] = r.Name, ["namespace"] = r.Namespace, ["creationTimestamp"] = null },
            ["spec"] = new JsonObject { ["audiences"] = audiences.DeepClone(), ["expirationSeconds"] = seconds, ["boundObjectRef"] = spec["boundObjectRef"]?.DeepClone() },
            ["status"] = new JsonObject { ["token"] = token, ["expirationTimestamp"] = Json.FormatTime(expires) },
        };

        static string B64(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    /// <summary>Another served version of the same group and storage (a multi-version CRD); core and events.k8s.io Events share storage but not a group.</summary>
    private static bool IsOtherVersionOf(ResourceType? other, ResourceType type) =>
        other is not null && other.StorageKey == type.StorageKey && other.Group == type.Group;

    private void CheckTypeAndNamespace(ResourceRequest r, JsonObject body)
    {
        var apiVersion = Json.GetString(body["apiVersion"]);
        var kind = Json.GetString(body["kind"]);
        if (apiVersion is null || kind is null)
        {
            body["apiVersion"] = r.Type.ApiVersion;
            body["kind"] = r.Type.Kind;
        }
        else if (kind != r.Type.Kind || (apiVersion != r.Type.ApiVersion && !IsOtherVersionOf(Registry.FindByKind(apiVersion, kind), r.Type)))
        {
            throw ApiException.BadRequest($"the API version in the data ({apiVersion}) does not match the expected API version ({r.Type.ApiVersion}), or kind {kind} is not {r.Type.Kind}");
        }
        else
        {
            body["apiVersion"] = r.Type.ApiVersion;
        }

        var meta = Json.Metadata(body);
        var bodyNs = Json.GetString(meta["namespace"]);
        if (r.Type.Namespaced && bodyNs is { Length: > 0 } && bodyNs != r.Namespace)
        {
            throw ApiException.BadRequest("the namespace of the provided object does not match the namespace sent on the request");
        }

        var name = Json.GetString(meta["name"]);
        var generateName = Json.GetString(meta["generateName"]);
        if (string.IsNullOrEmpty(name) && string.IsNullOrEmpty(generateName))
        {
            throw ApiException.Invalid(r.Type, "",
                [new StatusCause("FieldValueRequired", "metadata.name", "metadata.name: Required value: name or generateName is required")]);
        }

        if (!string.IsNullOrEmpty(name) && (name.Length > 253 || !DnsSubdomain().IsMatch(name)))
        {
            throw ApiException.Invalid(r.Type, name,
                [new StatusCause("FieldValueInvalid", "metadata.name",
                    $"metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character")]);
        }
    }

    /// <summary>Schema validation (custom resources) honouring <c>fieldValidation</c>: Strict rejects unknown fields, otherwise they are pruned with a warning.</summary>
    private void ValidateObject(HttpContext ctx, ResourceType type, JsonObject obj, JsonObject? old, List<string> warnings)
    {
        var name = Json.GetString(obj["metadata"]?["name"]) ?? "";
        ValidateMetadata(type, obj, name);
        if (IsCrd(type))
        {
            warnings.AddRange(CrdValidation.UncompiledRules(obj));
        }
        if (type.Schema is not { } schema)
        {
            return;
        }

        var mode = ctx.Request.Query["fieldValidation"].ToString();
        var patched = mode == "Strict" && HttpMethods.IsPatch(ctx.Request.Method) ? obj.ToJsonString() : null; // before pruning
        var (causes, unknown) = SchemaValidator.Validate(obj, schema, old, _options.ApplySchemaDefaults);
        if (unknown.Count > 0)
        {
            if (mode == "Strict")
            {
                // As apiserver's handlers word it: a create or update body fails to decode (transformDecodeError,
                // 400); a patched object fails to decode as the field "patch" (patch.go, 422).
                var strict = "strict decoding error: " + string.Join(", ", unknown.Select(u => $"unknown field \"{u}\""));
                if (patched is not null)
                {
                    // patch.go raises it with an empty GroupKind and name: kubectl then prints "The request is invalid: …".
                    var cause = new StatusCause("FieldValueInvalid", "patch", $"patch: Invalid value: {SchemaValidator.GoQuote(patched)}: {strict}");
                    throw new ApiException(422, "Invalid", $" \"\" is invalid: {cause.Message}", [cause]);
                }

                throw ApiException.BadRequest($"{type.Kind} in version \"{type.Version}\" cannot be handled as a {type.Kind}: {strict}");
            }

            if (mode != "Ignore")
            {
                warnings.AddRange(unknown.Select(u => $"unknown field \"{u}\""));
            }
        }

        if (causes.Count > 0)
        {
            throw ApiException.Invalid(type, name, causes);
        }
    }

    private static void ValidateMetadata(ResourceType type, JsonObject obj, string name)
    {
        if (obj["metadata"] is not JsonObject meta)
        {
            return;
        }

        var causes = new List<StatusCause>();
        foreach (var field in new[] { "labels", "annotations" })
        {
            if (meta[field] is JsonObject map)
            {
                foreach (var (k, v) in map)
                {
                    if (v is not JsonValue value || !value.TryGetValue<string>(out _))
                    {
                        causes.Add(new StatusCause("FieldValueTypeInvalid", $"metadata.{field}", $"metadata.{field}: Invalid value: the value of \"{k}\" must be a string"));
                    }
                }
            }
            else if (meta[field] is not null)
            {
                causes.Add(new StatusCause("FieldValueTypeInvalid", $"metadata.{field}", $"metadata.{field}: Invalid value: must be a map of strings"));
            }
        }

        if (causes.Count > 0)
        {
            throw ApiException.Invalid(type, name, causes);
        }
    }

    private async Task<int> UpdateAsync(HttpContext ctx, ResourceRequest r)
    {
        if (r.Name is null)
        {
            throw new ApiException(405, "MethodNotAllowed", "PUT needs an object URL (…/{name})");
        }

        var dryRun = ValidateWriteOptions(ctx, "UpdateOptions");

        var body = Json.ParseObject(await ReadBodyAsync(ctx).ConfigureAwait(false), "request body");
        CheckTypeAndNamespace(r, body);
        var warnings = new List<string>();
        var target = r.Subresource == "status" ? WriteTarget.Status : WriteTarget.Main;
        IReadOnlyList<ResourceType>? crdTypes = IsCrd(r.Type) && target == WriteTarget.Main
            ? ResourceRegistry.ParseCrd(body, Store.TryGet(r.Type, null, r.Name)?.Node)
            : null;
        var (updated, _) = Store.Update(r.Type, r.Namespace, r.Name, target, old =>
        {
            ValidateObject(ctx, r.Type, body, old is null ? null : r.Type.FromStorage(old), warnings);
            return r.Type.ToStorage(body);
        }, dryRun: dryRun);
        if (crdTypes is not null && !dryRun)
        {
            Register(updated.Node, crdTypes);
        }

        AddWarnings(ctx, warnings);
        return await WriteBytesAsync(ctx, 200, r.Type.Serve(updated)).ConfigureAwait(false);
    }

    private async Task<int> PatchAsync(HttpContext ctx, ResourceRequest r)
    {
        if (r.Name is null)
        {
            throw new ApiException(405, "MethodNotAllowed", "PATCH needs an object URL (…/{name})");
        }

        var contentType = (ctx.Request.ContentType ?? "").Split(';')[0].Trim();
        var apply = contentType == "application/apply-patch+yaml";
        var dryRun = ValidateWriteOptions(ctx, "PatchOptions", applyPatch: apply);
        var raw = await ReadBodyAsync(ctx).ConfigureAwait(false);
        var patch = Json.ParseAny(raw, "patch");
        Func<JsonObject, JsonObject> patcher = contentType switch
        {
            "application/merge-patch+json" => old => AsObject(Patches.MergePatch(old, patch)),
            "application/strategic-merge-patch+json" => old => AsObject(Patches.StrategicMergePatch(old, patch)),
            "application/json-patch+json" => old => AsObject(Patches.ApplyJsonPatch(old, patch)),
            "application/apply-patch+yaml" => old => AsObject(Patches.MergePatch(old, patch)),
            _ => throw new ApiException(415, "UnsupportedMediaType",
                $"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got \"{contentType}\")"),
        };
        if (apply && patch is not JsonObject)
        {
            throw ApiException.BadRequest("an apply patch must be a JSON object (YAML bodies are not supported by the test server)");
        }

        var warnings = new List<string>();
        var target = r.Subresource == "status" ? WriteTarget.Status : WriteTarget.Main;
        IReadOnlyList<ResourceType>? crdTypes = null;
        var (result, created) = Store.Update(r.Type, r.Namespace, r.Name, target, old =>
        {
            JsonObject next;
            if (old is null)
            {
                next = (JsonObject)patch.DeepClone();
                CheckTypeAndNamespace(r, next);
                if (Json.GetString(next["metadata"]?["name"]) != r.Name)
                {
                    throw ApiException.BadRequest($"the name of the object ({Json.GetString(next["metadata"]?["name"])}) does not match the name on the URL ({r.Name})");
                }
            }
            else
            {
                // A patch applies to the served form (an events.k8s.io patch names note, regarding, series, ...).
                old = r.Type.FromStorage(old);
                var oldCopy = (JsonObject)old.DeepClone();
                next = patcher(old);
                Strip(next);
                old = oldCopy;
            }

            ValidateObject(ctx, r.Type, next, old, warnings);
            if (IsCrd(r.Type) && target == WriteTarget.Main)
            {
                crdTypes = ResourceRegistry.ParseCrd(next, old);
            }

            return r.Type.ToStorage(next);
        }, createIfMissing: apply, dryRun: dryRun);
        if (crdTypes is not null && !dryRun)
        {
            Register(result.Node, crdTypes);
        }

        AddWarnings(ctx, warnings);
        return await WriteBytesAsync(ctx, created ? 201 : 200, r.Type.Serve(result)).ConfigureAwait(false);

        static JsonObject AsObject(JsonNode? node) =>
            node as JsonObject ?? throw ApiException.BadRequest("the patched object is not a JSON object");

        static void Strip(JsonObject obj)
        {
            // Apply configurations carry managedFields=null sometimes; the server owns these.
            if (obj["metadata"] is JsonObject m && m["managedFields"] is null)
            {
                m.Remove("managedFields");
            }
        }
    }

    private async Task<int> DeleteAsync(HttpContext ctx, ResourceRequest r)
    {
        var options = await DeleteOptionsAsync(ctx).ConfigureAwait(false);
        var (obj, removed) = Store.Delete(r.Type, r.Namespace, r.Name!, options);
        if (IsCrd(r.Type) && removed && !options.DryRun)
        {
            var group = Json.GetString(obj.Node["spec"]?["group"]) ?? "";
            var plural = Json.GetString(obj.Node["spec"]?["names"]?["plural"]) ?? "";
            if (Registry.All.FirstOrDefault(t => t.Group == group && t.Plural == plural) is { } served)
            {
                Store.DropAll(served);
            }

            Registry.ReplaceCustom(group, plural, []);
        }

        if (!removed)
        {
            return await WriteBytesAsync(ctx, 200, r.Type.Serve(obj)).ConfigureAwait(false);
        }

        var status = ApiException.BuildStatus(200, "", "", obj.Name, r.Type.Group, r.Type.Plural);
        status.Remove("message");
        status.Remove("reason");
        ((JsonObject)status["details"]!)["uid"] = obj.Uid;
        return await WriteJsonAsync(ctx, 200, status).ConfigureAwait(false);
    }

    private async Task<int> DeleteCollectionAsync(HttpContext ctx, ResourceRequest r)
    {
        var options = await DeleteOptionsAsync(ctx).ConfigureAwait(false);
        var q = ctx.Request.Query;
        var (items, _, _) = Store.List(r.Type, r.Namespace, LabelSelector.Parse(q["labelSelector"]), FieldSelector.Parse(q["fieldSelector"], r.Type.FieldLabels));
        var deleted = new JsonArray();
        foreach (var item in items)
        {
            try
            {
                var gone = Store.Delete(r.Type, item.Namespace, item.Name, options with { PreconditionUid = null, PreconditionResourceVersion = null }).Object;
                deleted.Add(r.Type.Conversion is null ? gone.Node.DeepClone() : r.Type.FromStorage(gone.Node));
            }
            catch (ApiException e) when (e.Code == 404)
            {
                // Removed meanwhile (e.g. by garbage collection of an earlier item).
            }
        }

        return await WriteJsonAsync(ctx, 200, new JsonObject
        {
            ["kind"] = r.Type.ListKind,
            ["apiVersion"] = r.Type.ApiVersion,
            ["metadata"] = new JsonObject { ["resourceVersion"] = KubeApiServer.FormatRv(Store.CurrentResourceVersion) },
            ["items"] = deleted,
        }).ConfigureAwait(false);
    }

    private async Task<DeleteOptions> DeleteOptionsAsync(HttpContext ctx)
    {
        var raw = await ReadBodyAsync(ctx).ConfigureAwait(false);
        var policy = ctx.Request.Query["propagationPolicy"].ToString();
        string? uid = null;
        string? rv = null;
        var dryRun = ctx.Request.Query["dryRun"].Where(v => !string.IsNullOrEmpty(v)).Select(v => v!).ToList();
        if (raw.Length > 0)
        {
            var body = Json.ParseObject(raw, "DeleteOptions body");
            if (body["dryRun"] is JsonArray inBody)
            {
                // A DeleteOptions body replaces the query parameters (handlers/delete.go decodes one or the other).
                dryRun = inBody.Select(Json.GetString).OfType<string>().ToList();
            }

            policy = Json.GetString(body["propagationPolicy"]) ?? policy;
            uid = Json.GetString(body["preconditions"]?["uid"]);
            rv = Json.GetString(body["preconditions"]?["resourceVersion"]);
            if (body["orphanDependents"]?.GetValue<bool>() == true)
            {
                policy = "Orphan";
            }
        }

        if (policy.Length == 0)
        {
            policy = "Background";
        }

        if (policy is not ("Background" or "Foreground" or "Orphan"))
        {
            throw ApiException.BadRequest($"propagationPolicy: Unsupported value: \"{policy}\": supported values: \"Foreground\", \"Background\", \"Orphan\"");
        }

        return new DeleteOptions(policy, uid, rv, ValidateWriteOptions(ctx, "DeleteOptions", deleteDryRun: dryRun));
    }

    private static void AddWarnings(HttpContext ctx, List<string> warnings)
    {
        foreach (var w in warnings)
        {
            ctx.Response.Headers.Append("Warning", $"299 - \"{w.Replace("\"", "\\\"", StringComparison.Ordinal)}\"");
        }
    }

    private static Task<int> WriteJsonAsync(HttpContext ctx, int status, JsonObject obj) => WriteBytesAsync(ctx, status, Json.Serialize(obj));

    private static async Task<int> WriteBytesAsync(HttpContext ctx, int status, byte[] bytes)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        ctx.Response.ContentLength = bytes.Length + NewLine.Length;
        await ctx.Response.Body.WriteAsync(bytes, ctx.RequestAborted).ConfigureAwait(false);
        await ctx.Response.Body.WriteAsync(NewLine, ctx.RequestAborted).ConfigureAwait(false);
        return status;
    }
}
