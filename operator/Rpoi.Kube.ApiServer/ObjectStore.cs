using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace Rpoi.Kube.ApiServer;

/// <summary>How a write reaches the store: the main resource or the status subresource.</summary>
internal enum WriteTarget
{
    Main,
    Status,
}

/// <summary>One recorded change, kept in the bounded watch history.</summary>
internal sealed class HistoryEntry(string storageKey, long rv, string type, StoredObject? old, StoredObject current)
{
    private byte[]? _line;
    private byte[]? _converted;

    public string StorageKey { get; } = storageKey;

    public long ResourceVersion { get; } = rv;

    public string Type { get; } = type;

    public StoredObject? Old { get; } = old;

    public StoredObject Current { get; } = current;

    /// <summary>The watch line for the event's own type, serialized once for every watcher.</summary>
    public byte[] Line => _line ??= WatchLine(Type, Current.Json);

    /// <summary>
    /// The line as a resource serves it: the stored bytes, or once converted for a resource served from this
    /// storage (events.k8s.io Events; one storage has at most one such resource, so one cached copy suffices).
    /// </summary>
    public byte[] LineAs(ResourceType type) => type.Conversion is null ? Line : _converted ??= WatchLine(Type, type.Serve(Current));

    public static byte[] WatchLine(string type, byte[] objectJson)
    {
        var head = Encoding.UTF8.GetBytes($"{{\"type\":\"{type}\",\"object\":");
        var line = new byte[head.Length + objectJson.Length + 2];
        head.CopyTo(line, 0);
        objectJson.CopyTo(line, head.Length);
        line[^2] = (byte)'}';
        line[^1] = (byte)'\n';
        return line;
    }
}

/// <summary>A registered watch: its filter, its bounded queue of serialized lines and its cut switch.</summary>
internal sealed class Watcher
{
    public Watcher(ResourceType type, string? ns, LabelSelector labels, FieldSelector fields, int capacity)
    {
        Type = type;
        Namespace = ns;
        Labels = labels;
        Fields = fields;
        Queue = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(capacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    public ResourceType Type { get; }

    public string? Namespace { get; }

    public LabelSelector Labels { get; }

    public FieldSelector Fields { get; }

    /// <summary>Lines to send before the live queue (synthetic ADDED, history replay).</summary>
    public List<byte[]> Initial { get; } = [];

    public Channel<byte[]> Queue { get; }

    public CancellationTokenSource Cut { get; } = new();

    /// <summary>Set when the watcher fell too far behind and was dropped.</summary>
    public bool Dropped { get; set; }

    public bool Matches(StoredObject obj) =>
        (Namespace is null || obj.Namespace == Namespace) && Labels.Matches(obj.Node) && Fields.Matches(obj.Node);
}

/// <summary>Options for <see cref="ObjectStore.Delete"/>.</summary>
/// <param name="PropagationPolicy">Background, Foreground or Orphan.</param>
/// <param name="PreconditionUid">preconditions.uid, when sent.</param>
/// <param name="PreconditionResourceVersion">preconditions.resourceVersion, when sent.</param>
/// <param name="DryRun">dryRun=All: every check runs and the answer is the object as it would be, but nothing is stored.</param>
internal sealed record DeleteOptions(string PropagationPolicy = "Background", string? PreconditionUid = null, string? PreconditionResourceVersion = null,
    bool DryRun = false);

/// <summary>
/// All objects, the global resourceVersion counter, the bounded event history and the watchers.
/// One lock guards everything: writes are short (a clone, a patch, a serialization), and watcher
/// fan-out only does non-blocking TryWrite, so a slow watcher never holds a writer back.
/// </summary>
internal sealed class ObjectStore
{
    private const string GenerateNameAlphabet = "bcdfghjklmnpqrstvwxz2456789";

    private readonly Lock _gate = new();
    private readonly Dictionary<string, SortedDictionary<string, StoredObject>> _data = new(StringComparer.Ordinal);

    // Owner uid -> (storage key, object key) of every stored object naming it in metadata.ownerReferences. Garbage
    // collection after a delete reads an owner's dependents here instead of scanning every stored object, which made each
    // delete O(all objects) and a clean-up of n objects O(n^2) under the store's lock (seen: minutes for 10,000 deletes
    // with 30,000 objects stored). Kept in step with _data by Commit and Restore, the only writers of the buckets.
    private readonly Dictionary<string, HashSet<(string StorageKey, string Key)>> _dependents = new(StringComparer.Ordinal);
    private readonly HistoryEntry?[] _history;
    private readonly List<Watcher> _watchers = [];
    private readonly TimeProvider _time;
    private readonly int _watchQueueCapacity;
    private readonly Func<string, ResourceType?> _namespaceTypeLookup;
    private readonly Func<StoredObject, ResourceType?> _typeOf;
    private int _historyNext;
    private int _historyCount;
    private long _rv;
    private long _evictedRv;

    public ObjectStore(TimeProvider time, int historySize, int watchQueueCapacity, Func<string, ResourceType?> namespaceTypeLookup,
        Func<StoredObject, ResourceType?> typeOf)
    {
        _time = time;
        _history = new HistoryEntry?[Math.Max(1, historySize)];
        _watchQueueCapacity = Math.Max(1, watchQueueCapacity);
        _namespaceTypeLookup = namespaceTypeLookup;
        _typeOf = typeOf;
    }

    /// <summary>When false, namespaced objects may be created in namespaces that do not exist.</summary>
    public bool RequireNamespaces { get; init; } = true;

    public long CurrentResourceVersion
    {
        get
        {
            lock (_gate)
            {
                return _rv;
            }
        }
    }

    private static string Key(string? ns, string name) => ns is null ? name : ns + "/" + name;

    /// <summary>
    /// Every stored object by storage key, with the resourceVersion they are consistent with. Stored objects are
    /// immutable, so this copies references under the lock and the caller serializes outside it.
    /// </summary>
    public (long ResourceVersion, List<(string StorageKey, List<StoredObject> Objects)> Buckets) Export()
    {
        lock (_gate)
        {
            var buckets = _data.Where(b => b.Value.Count > 0)
                .OrderBy(b => b.Key, StringComparer.Ordinal)
                .Select(b => (b.Key, b.Value.Values.ToList()))
                .ToList();
            return (_rv, buckets);
        }
    }

    /// <summary>
    /// Puts objects back exactly as they were stored (uid, resourceVersion, timestamps, finalizers untouched) and
    /// continues the counter from <paramref name="resourceVersion"/>. No events are recorded: the history before it is
    /// unknown, so a watch from an older resourceVersion gets 410 Gone and its client relists, as after etcd compaction.
    /// </summary>
    public void Restore(IEnumerable<(ResourceType Type, StoredObject Object)> objects, long resourceVersion)
    {
        lock (_gate)
        {
            foreach (var (type, obj) in objects)
            {
                var key = Key(type.Namespaced ? obj.Namespace : null, obj.Name);
                var bucket = Bucket(type);
                bucket.TryGetValue(key, out var previous);
                bucket[key] = obj;
                IndexOwners(type.StorageKey, key, previous, obj);
            }

            _rv = Math.Max(_rv, resourceVersion);
            _evictedRv = _rv;
        }
    }

    private SortedDictionary<string, StoredObject> Bucket(ResourceType type)
    {
        if (!_data.TryGetValue(type.StorageKey, out var bucket))
        {
            bucket = new SortedDictionary<string, StoredObject>(StringComparer.Ordinal);
            _data[type.StorageKey] = bucket;
        }

        return bucket;
    }

    public StoredObject Get(ResourceType type, string? ns, string name)
    {
        lock (_gate)
        {
            return Bucket(type).TryGetValue(Key(ns, name), out var obj) ? obj : throw ApiException.NotFound(type, name);
        }
    }

    public StoredObject? TryGet(ResourceType type, string? ns, string name)
    {
        lock (_gate)
        {
            return Bucket(type).TryGetValue(Key(ns, name), out var obj) ? obj : null;
        }
    }

    /// <summary>Lists matching objects in key order, optionally one page after a continue key.</summary>
    public (List<StoredObject> Items, long ResourceVersion, string? ContinueKey) List(ResourceType type, string? ns,
        LabelSelector labels, FieldSelector fields, int limit = 0, string? continueKey = null)
    {
        lock (_gate)
        {
            var items = new List<StoredObject>();
            string? next = null;
            foreach (var (key, obj) in Bucket(type))
            {
                if (continueKey is not null && string.CompareOrdinal(key, continueKey) <= 0)
                {
                    continue;
                }

                if ((ns is not null && obj.Namespace != ns) || !labels.Matches(obj.Node) || !fields.Matches(obj.Node))
                {
                    continue;
                }

                if (limit > 0 && items.Count == limit)
                {
                    next = Key(items[^1].Namespace, items[^1].Name);
                    break;
                }

                items.Add(obj);
            }

            return (items, _rv, next);
        }
    }

    /// <summary>Creates an object; with <paramref name="dryRun"/> it only answers what would be created.</summary>
    public StoredObject Create(ResourceType type, string? ns, JsonObject obj, bool dryRun = false)
    {
        lock (_gate)
        {
            return CreateLocked(type, ns, obj, dryRun);
        }
    }

    private StoredObject CreateLocked(ResourceType type, string? ns, JsonObject obj, bool dryRun = false)
    {
        var meta = Json.Metadata(obj);
        var bucket = Bucket(type);
        if (type.Namespaced && ns is not null && RequireNamespaces && _namespaceTypeLookup("namespaces") is { } nsType)
        {
            if (!Bucket(nsType).TryGetValue(ns, out var namespaceObj))
            {
                throw ApiException.NotFound(nsType, ns);
            }

            if (namespaceObj.Node["metadata"]?["deletionTimestamp"] is not null)
            {
                throw new ApiException(403, "Forbidden",
                    $"{type.QualifiedPlural} \"{Json.GetString(meta["name"]) ?? ""}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated");
            }
        }

        var name = Json.GetString(meta["name"]);
        if (string.IsNullOrEmpty(name))
        {
            var prefix = Json.GetString(meta["generateName"]) ?? "";
            for (var attempt = 0; ; attempt++)
            {
                var suffix = new char[5];
                for (var i = 0; i < suffix.Length; i++)
                {
                    suffix[i] = GenerateNameAlphabet[Random.Shared.Next(GenerateNameAlphabet.Length)];
                }

                name = prefix + new string(suffix);
                if (!bucket.ContainsKey(Key(ns, name)) || attempt > 100)
                {
                    break;
                }
            }

            meta["name"] = name;
        }

        if (bucket.ContainsKey(Key(ns, name)))
        {
            throw ApiException.AlreadyExists(type, name);
        }

        if (type.Namespaced)
        {
            meta["namespace"] = ns;
        }
        else
        {
            meta.Remove("namespace");
        }

        meta["uid"] = Guid.NewGuid().ToString();
        meta["creationTimestamp"] = Json.FormatTime(_time.GetUtcNow());
        meta.Remove("deletionTimestamp");
        meta.Remove("deletionGracePeriodSeconds");
        meta.Remove("managedFields");
        meta.Remove("selfLink");
        if (TracksGeneration(type))
        {
            meta["generation"] = 1L;
        }
        else
        {
            meta.Remove("generation");
        }

        if (type.IsCustom && type.HasStatus)
        {
            // The status subresource owns status: a create cannot set it (as for real custom resources).
            obj.Remove("status");
        }

        if (type.Group.Length == 0 && type.Plural == "namespaces")
        {
            obj["status"] = new JsonObject { ["phase"] = "Active" };
        }

        if (dryRun)
        {
            // As registry/generic/registry/dryrun.go: the object as it would be stored, without a resourceVersion.
            meta.Remove("resourceVersion");
            return StoredObject.Freeze(obj);
        }

        return Commit(type, ns, name, null, obj, "ADDED");
    }

    private static bool TracksGeneration(ResourceType type) => type.IsCustom || type.HasStatus;

    /// <summary>Stamps a new resourceVersion, stores (or removes) the object and tells the watchers.</summary>
    private StoredObject Commit(ResourceType type, string? ns, string name, StoredObject? old, JsonObject node, string eventType)
    {
        _rv++;
        Json.Metadata(node)["resourceVersion"] = _rv.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var stored = StoredObject.Freeze(node);
        var bucket = Bucket(type);
        var key = Key(ns, name);
        bucket.TryGetValue(key, out var previous);
        if (eventType == "DELETED")
        {
            bucket.Remove(key);
            IndexOwners(type.StorageKey, key, previous, null);
        }
        else
        {
            bucket[key] = stored;
            IndexOwners(type.StorageKey, key, previous, stored);
        }

        Publish(new HistoryEntry(type.StorageKey, _rv, eventType, old, stored));
        return stored;
    }

    /// <summary>
    /// Replaces an object with the result of <paramref name="compute"/> (given a private copy of the current one),
    /// enforcing the rules every write shares: resourceVersion precondition, immutable system metadata,
    /// status subresource separation, generation and finalizer-driven removal. With <paramref name="createIfMissing"/>
    /// (server-side apply), a missing object is created from compute(null). With <paramref name="dryRun"/> every rule
    /// runs but nothing is stored: the answer keeps the current resourceVersion and no watcher hears of it.
    /// </summary>
    public (StoredObject Object, bool Created) Update(ResourceType type, string? ns, string name, WriteTarget target,
        Func<JsonObject?, JsonObject> compute, bool createIfMissing = false, bool dryRun = false)
    {
        lock (_gate)
        {
            var bucket = Bucket(type);
            if (!bucket.TryGetValue(Key(ns, name), out var old))
            {
                if (!createIfMissing || target != WriteTarget.Main)
                {
                    throw ApiException.NotFound(type, name);
                }

                var fresh = compute(null);
                return (CreateLocked(type, ns, fresh, dryRun), true);
            }

            var proposed = compute((JsonObject)old.Node.DeepClone());
            var proposedMeta = Json.Metadata(proposed);
            var oldMeta = (JsonObject)old.Node["metadata"]!;
            var proposedName = Json.GetString(proposedMeta["name"]);
            if (proposedName is not null && proposedName != name)
            {
                throw ApiException.BadRequest($"the name of the object ({proposedName}) does not match the name on the URL ({name})");
            }

            var rv = Json.GetString(proposedMeta["resourceVersion"]);
            if (!string.IsNullOrEmpty(rv) && rv != Json.GetString(oldMeta["resourceVersion"]))
            {
                throw ApiException.Conflict(type, name);
            }

            JsonObject next;
            if (target == WriteTarget.Status)
            {
                // A status write changes status only; spec and metadata stay as stored.
                next = (JsonObject)old.Node.DeepClone();
                if (proposed["status"] is { } status)
                {
                    next["status"] = status.DeepClone();
                }
                else
                {
                    next.Remove("status");
                }
            }
            else
            {
                next = proposed;
                var meta = Json.Metadata(next);
                foreach (var field in new[] { "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "namespace" })
                {
                    if (oldMeta[field] is { } keep)
                    {
                        meta[field] = keep.DeepClone();
                    }
                    else
                    {
                        meta.Remove(field);
                    }
                }

                meta["name"] = name;
                meta.Remove("managedFields");
                if (type.HasStatus)
                {
                    // With a status subresource, the main resource cannot change status.
                    if (old.Node["status"] is { } oldStatus)
                    {
                        next["status"] = oldStatus.DeepClone();
                    }
                    else
                    {
                        next.Remove("status");
                    }
                }

                if (TracksGeneration(type) && SpecChanged(old.Node, next))
                {
                    var generation = Json.GetLong(oldMeta["generation"]) ?? 1;
                    meta["generation"] = generation + 1;
                }

                if (oldMeta["deletionTimestamp"] is not null)
                {
                    var oldFinalizers = Finalizers(old.Node);
                    var added = Finalizers(next).Except(oldFinalizers).ToList();
                    if (added.Count > 0)
                    {
                        throw ApiException.Invalid(type, name,
                            [new StatusCause("FieldValueForbidden", "metadata.finalizers",
                                $"metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{\"{string.Join("\", \"", added)}\"}}")]);
                    }
                }
            }

            if (Json.DeepEquals(old.Node, WithRv(next, oldMeta)))
            {
                // A write that changes nothing does not bump resourceVersion or emit an event (as the real server).
                return (old, false);
            }

            if (dryRun)
            {
                return (StoredObject.Freeze(next), false);
            }

            if (oldMeta["deletionTimestamp"] is not null && Finalizers(next).Count == 0)
            {
                // As the real store's deleteWithoutFinalizers: the write that empties the finalizers is not stored; the
                // object is deleted as stored (a watch's DELETED carries that last state, finalizers included) and the
                // writer gets its own object back.
                var removed = Commit(type, ns, name, old, (JsonObject)old.Node.DeepClone(), "DELETED");
                AfterRemoval(removed);
                return (StoredObject.Freeze(next), false);
            }

            return (Commit(type, ns, name, old, next, "MODIFIED"), false);
        }
    }

    private static JsonObject WithRv(JsonObject next, JsonObject oldMeta)
    {
        Json.Metadata(next)["resourceVersion"] = oldMeta["resourceVersion"]?.DeepClone();
        return next;
    }

    private static bool SpecChanged(JsonObject old, JsonObject next)
    {
        foreach (var (key, value) in next)
        {
            if (key is "metadata" or "status" or "apiVersion" or "kind")
            {
                continue;
            }

            if (!Json.DeepEquals(value, old[key]))
            {
                return true;
            }
        }

        foreach (var (key, _) in old)
        {
            if (key is not ("metadata" or "status" or "apiVersion" or "kind") && !next.ContainsKey(key))
            {
                return true;
            }
        }

        return false;
    }

    private static List<string> Finalizers(JsonObject obj) =>
        obj["metadata"]?["finalizers"] is JsonArray a ? a.Select(Json.GetString).OfType<string>().ToList() : [];

    /// <summary>
    /// Deletes an object. Returns the object and whether it is gone now (false when finalizers hold it:
    /// then it carries deletionTimestamp).
    /// </summary>
    public (StoredObject Object, bool Removed) Delete(ResourceType type, string? ns, string name, DeleteOptions options)
    {
        lock (_gate)
        {
            var old = Bucket(type).TryGetValue(Key(ns, name), out var o) ? o : throw ApiException.NotFound(type, name);
            if ((options.PreconditionUid is { } uid && uid != old.Uid) ||
                (options.PreconditionResourceVersion is { } prv && prv != Json.GetString(old.Node["metadata"]?["resourceVersion"])))
            {
                throw new ApiException(409, "Conflict",
                    $"Operation cannot be fulfilled on {type.QualifiedPlural} \"{name}\": Precondition failed: UID in precondition: {options.PreconditionUid}, UID in object meta: {old.Uid}")
                { DetailName = name, DetailGroup = type.Group, DetailKind = type.Plural };
            }

            if (options.DryRun)
            {
                return DeleteDryRun(type, old);
            }

            return DeleteLocked(type, old, options.PropagationPolicy);
        }
    }

    /// <summary>
    /// What a delete would do, without doing it: the object marked for deletion when finalizers (or a namespace's
    /// content) hold it, else the object as it is. Dependents are not visited: garbage collection is a separate
    /// controller on a real server too, and a dry run never reaches it.
    /// </summary>
    private (StoredObject Object, bool Removed) DeleteDryRun(ResourceType type, StoredObject old)
    {
        var isNamespace = type.Group.Length == 0 && type.Plural == "namespaces";
        if (old.Node["metadata"]?["deletionTimestamp"] is not null)
        {
            return (old, false);
        }

        if (Finalizers(old.Node).Count == 0 && !(isNamespace && NamespaceHasContent(old.Name)))
        {
            return (old, true);
        }

        var copy = (JsonObject)old.Node.DeepClone();
        var meta = Json.Metadata(copy);
        meta["deletionTimestamp"] = Json.FormatTime(_time.GetUtcNow());
        meta["deletionGracePeriodSeconds"] = 0;
        if (isNamespace)
        {
            copy["status"] = new JsonObject { ["phase"] = "Terminating" };
        }

        return (StoredObject.Freeze(copy), false);
    }

    private (StoredObject Object, bool Removed) DeleteLocked(ResourceType type, StoredObject old, string propagation)
    {
        var ns = old.Namespace;
        var name = old.Name;
        if (propagation == "Orphan")
        {
            ForEachDependent(old.Uid, (depType, dep) =>
            {
                var copy = (JsonObject)dep.Node.DeepClone();
                RemoveOwnerRef(copy, old.Uid);
                Commit(depType, dep.Namespace, dep.Name, dep, copy, "MODIFIED");
            });
        }
        else if (propagation == "Foreground")
        {
            // Simplified foreground deletion: dependents are deleted first, then the owner.
            ForEachDependent(old.Uid, (depType, dep) => DeleteLocked(depType, dep, "Foreground"));
        }

        var isNamespace = type.Group.Length == 0 && type.Plural == "namespaces";
        if (old.Node["metadata"]?["deletionTimestamp"] is not null)
        {
            return (old, false);
        }

        if (Finalizers(old.Node).Count > 0 || (isNamespace && NamespaceHasContent(name)))
        {
            var copy = (JsonObject)old.Node.DeepClone();
            var meta = Json.Metadata(copy);
            meta["deletionTimestamp"] = Json.FormatTime(_time.GetUtcNow());
            meta["deletionGracePeriodSeconds"] = 0;
            if (isNamespace)
            {
                copy["status"] = new JsonObject { ["phase"] = "Terminating" };
            }

            var marked = Commit(type, ns, name, old, copy, "MODIFIED");
            if (isNamespace)
            {
                DeleteNamespaceContent(name);
                if (!NamespaceHasContent(name) && Finalizers(marked.Node).Count == 0)
                {
                    var gone = Commit(type, ns, name, marked, (JsonObject)marked.Node.DeepClone(), "DELETED");
                    return (gone, true);
                }
            }

            return (marked, false);
        }

        var removed = Commit(type, ns, name, old, (JsonObject)old.Node.DeepClone(), "DELETED");
        AfterRemoval(removed);
        return (removed, true);
    }

    /// <summary>Owner-reference garbage collection and namespace completion after an object is really gone.</summary>
    private void AfterRemoval(StoredObject removed)
    {
        ForEachDependent(removed.Uid, (depType, dep) =>
        {
            var owners = dep.Node["metadata"]?["ownerReferences"] as JsonArray;
            var otherOwnersAlive = owners?.OfType<JsonObject>()
                .Select(r => Json.GetString(r["uid"]))
                .Any(u => u is not null && u != removed.Uid && UidExists(u)) ?? false;
            if (otherOwnersAlive)
            {
                var copy = (JsonObject)dep.Node.DeepClone();
                RemoveOwnerRef(copy, removed.Uid);
                Commit(depType, dep.Namespace, dep.Name, dep, copy, "MODIFIED");
            }
            else
            {
                DeleteLocked(depType, dep, "Background");
            }
        });

        if (removed.Namespace is { } ns && _namespaceTypeLookup("namespaces") is { } nsType &&
            Bucket(nsType).TryGetValue(ns, out var nsObj) && nsObj.Node["metadata"]?["deletionTimestamp"] is not null &&
            Finalizers(nsObj.Node).Count == 0 && !NamespaceHasContent(ns))
        {
            Commit(nsType, null, ns, nsObj, (JsonObject)nsObj.Node.DeepClone(), "DELETED");
        }
    }

    private bool UidExists(string uid) => _data.Values.Any(b => b.Values.Any(o => o.Uid == uid));

    private void ForEachDependent(string ownerUid, Action<ResourceType, StoredObject> action)
    {
        if (!_dependents.TryGetValue(ownerUid, out var index) || index.Count == 0)
        {
            return;
        }

        // Same order as a scan of the buckets would give (bucket order, then key order), so cascades stay deterministic.
        var dependents = new List<StoredObject>(index.Count);
        foreach (var (storageKey, bucket) in _data)
        {
            foreach (var key in index.Where(d => d.StorageKey == storageKey).Select(d => d.Key).Order(StringComparer.Ordinal))
            {
                if (bucket.TryGetValue(key, out var obj))
                {
                    dependents.Add(obj);
                }
            }
        }

        foreach (var dep in dependents)
        {
            // Re-read: an earlier action in this loop may have changed or removed it.
            if (_typeOf(dep) is not { } depType || !Bucket(depType).TryGetValue(Key(dep.Namespace, dep.Name), out var current))
            {
                continue;
            }

            action(depType, current);
        }
    }

    private void IndexOwners(string storageKey, string key, StoredObject? before, StoredObject? after)
    {
        foreach (var uid in OwnerUids(before))
        {
            if (_dependents.TryGetValue(uid, out var set) && set.Remove((storageKey, key)) && set.Count == 0)
            {
                _dependents.Remove(uid);
            }
        }

        foreach (var uid in OwnerUids(after))
        {
            if (!_dependents.TryGetValue(uid, out var set))
            {
                _dependents[uid] = set = [];
            }

            set.Add((storageKey, key));
        }
    }

    private static IEnumerable<string> OwnerUids(StoredObject? obj) =>
        obj?.Node["metadata"]?["ownerReferences"] is JsonArray refs
            ? refs.OfType<JsonObject>().Select(r => Json.GetString(r["uid"])).OfType<string>()
            : [];

    private static void RemoveOwnerRef(JsonObject obj, string uid)
    {
        if (obj["metadata"]?["ownerReferences"] is JsonArray refs)
        {
            for (var i = refs.Count - 1; i >= 0; i--)
            {
                if (Json.GetString(refs[i]?["uid"]) == uid)
                {
                    refs.RemoveAt(i);
                }
            }

            if (refs.Count == 0)
            {
                ((JsonObject)obj["metadata"]!).Remove("ownerReferences");
            }
        }
    }

    private bool NamespaceHasContent(string ns) =>
        _data.Values.Any(b => b.Values.Any(o => o.Namespace == ns));

    private void DeleteNamespaceContent(string ns)
    {
        var content = _data.Values.SelectMany(b => b.Values).Where(o => o.Namespace == ns).ToList();
        foreach (var obj in content)
        {
            if (_typeOf(obj) is { } t && Bucket(t).TryGetValue(Key(obj.Namespace, obj.Name), out var current))
            {
                DeleteLocked(t, current, "Background");
            }
        }
    }

    /// <summary>Removes every object of a storage key at once (a CRD was deleted).</summary>
    public void DropAll(ResourceType type)
    {
        lock (_gate)
        {
            foreach (var obj in Bucket(type).Values.ToList())
            {
                Commit(type, obj.Namespace, obj.Name, obj, (JsonObject)obj.Node.DeepClone(), "DELETED");
            }
        }
    }

    private void Publish(HistoryEntry entry)
    {
        var evicted = _history[_historyNext];
        if (evicted is not null && _historyCount == _history.Length)
        {
            _evictedRv = evicted.ResourceVersion;
        }

        _history[_historyNext] = entry;
        _historyNext = (_historyNext + 1) % _history.Length;
        _historyCount = Math.Min(_historyCount + 1, _history.Length);

        for (var i = _watchers.Count - 1; i >= 0; i--)
        {
            var watcher = _watchers[i];
            if (watcher.Type.StorageKey != entry.StorageKey || LineFor(watcher, entry) is not { } line)
            {
                continue;
            }

            if (!watcher.Queue.Writer.TryWrite(line))
            {
                // Too far behind: drop it rather than block writers; the client re-watches from its last resourceVersion.
                watcher.Dropped = true;
                watcher.Queue.Writer.TryComplete();
                _watchers.RemoveAt(i);
            }
        }
    }

    /// <summary>The line a watcher sees for an entry: selector transitions become ADDED/DELETED as on the real server.</summary>
    private static byte[]? LineFor(Watcher watcher, HistoryEntry entry)
    {
        var nowMatches = watcher.Matches(entry.Current);
        if (entry.Type != "MODIFIED")
        {
            return nowMatches ? entry.LineAs(watcher.Type) : null;
        }

        var wasMatching = entry.Old is not null && watcher.Matches(entry.Old);
        return (wasMatching, nowMatches) switch
        {
            (true, true) => entry.LineAs(watcher.Type),
            (false, true) => HistoryEntry.WatchLine("ADDED", watcher.Type.Serve(entry.Current)),
            (true, false) => HistoryEntry.WatchLine("DELETED", watcher.Type.Serve(entry.Current)),
            _ => null,
        };
    }

    /// <summary>
    /// Registers a watcher. <paramref name="fromRv"/> null = synthetic ADDED for existing objects, then live events;
    /// otherwise replay of the history after it, or 410 when it is older than the history.
    /// With <paramref name="initialEventsEnd"/>, the synthetic ADDED events are followed by the initial-events-end bookmark.
    /// </summary>
    public Watcher Watch(ResourceType type, string? ns, LabelSelector labels, FieldSelector fields, long? fromRv, bool initialEventsEnd)
    {
        var watcher = new Watcher(type, ns, labels, fields, _watchQueueCapacity);
        lock (_gate)
        {
            if (fromRv is null || initialEventsEnd)
            {
                foreach (var obj in Bucket(type).Values)
                {
                    if (watcher.Matches(obj))
                    {
                        watcher.Initial.Add(HistoryEntry.WatchLine("ADDED", type.Serve(obj)));
                    }
                }

                if (initialEventsEnd)
                {
                    watcher.Initial.Add(BookmarkLine(type, _rv, initialEventsEnd: true));
                }
            }
            else
            {
                if (fromRv < _evictedRv)
                {
                    throw ApiException.Gone($"too old resource version: {fromRv} ({_evictedRv + 1})");
                }

                var start = (_historyNext - _historyCount + _history.Length) % _history.Length;
                for (var i = 0; i < _historyCount; i++)
                {
                    var entry = _history[(start + i) % _history.Length]!;
                    if (entry.ResourceVersion > fromRv && entry.StorageKey == type.StorageKey && LineFor(watcher, entry) is { } line)
                    {
                        watcher.Initial.Add(line);
                    }
                }
            }

            _watchers.Add(watcher);
        }

        return watcher;
    }

    public void Unwatch(Watcher watcher)
    {
        lock (_gate)
        {
            _watchers.Remove(watcher);
        }
    }

    /// <summary>Queues a BOOKMARK with the current resourceVersion; ordered after every event already queued.</summary>
    public void Bookmark(Watcher watcher)
    {
        lock (_gate)
        {
            if (_watchers.Contains(watcher))
            {
                watcher.Queue.Writer.TryWrite(BookmarkLine(watcher.Type, _rv, initialEventsEnd: false));
            }
        }
    }

    private static byte[] BookmarkLine(ResourceType type, long rv, bool initialEventsEnd)
    {
        var meta = new JsonObject { ["resourceVersion"] = rv.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        if (initialEventsEnd)
        {
            meta["annotations"] = new JsonObject { ["k8s.io/initial-events-end"] = "true" };
        }

        var obj = new JsonObject { ["kind"] = type.Kind, ["apiVersion"] = type.ApiVersion, ["metadata"] = meta };
        return HistoryEntry.WatchLine("BOOKMARK", Json.Serialize(obj));
    }

    /// <summary>Ends every open watch stream (fault injection).</summary>
    public int CutAllWatches()
    {
        lock (_gate)
        {
            var count = _watchers.Count;
            foreach (var w in _watchers)
            {
                w.Cut.Cancel();
            }

            _watchers.Clear();
            return count;
        }
    }

    public int WatcherCount
    {
        get
        {
            lock (_gate)
            {
                return _watchers.Count;
            }
        }
    }
}
