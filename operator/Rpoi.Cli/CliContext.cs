using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Exceptions;
using k8s.Models;
using Rpoi.Operator.Discovery;
using Rpoi.Operator.Entities;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Cli;

/// <summary>The global flags of one invocation and the things every command needs from them: the cluster, the namespace, the key, discovery.</summary>
internal sealed class CliContext : IDisposable
{
    private Kubernetes? client;
    private KubernetesClientConfiguration? config;

    public CliContext(TextWriter stdout, TextWriter stderr, CliEnvironment env, GlobalFlags flags)
    {
        Out = stdout;
        Err = stderr;
        Env = env;
        Flags = flags;
    }

    public TextWriter Out { get; }

    public TextWriter Err { get; }

    public CliEnvironment Env { get; }

    public GlobalFlags Flags { get; }

    public TimeProvider Time => Env.Time;

    /// <summary>The namespace: <c>-n</c>, else the kubeconfig context's, else <c>default</c>.</summary>
    public string Namespace => Flags.Namespace is { Length: > 0 } ns ? ns : Config().Namespace is { Length: > 0 } c ? c : "default";

    /// <summary>The namespace without touching the kubeconfig when <c>-n</c> is given (offline commands).</summary>
    public string NamespaceOffline => Flags.Namespace is { Length: > 0 } ns ? ns : "default";

    public string OperatorNamespace => Flags.OperatorNamespace is { Length: > 0 } ns ? ns : Env.Variable("RPOI_OPERATOR_NAMESPACE") is { Length: > 0 } e ? e : DiscoveryDocument.DefaultNamespace;

    public string KeyPath => Env.Resolve(Flags.Key is { Length: > 0 } k ? k : Env.DefaultKeyPath);

    public IKubernetes Kube()
    {
        if (client is null)
        {
            var cfg = Config();
            client = new Kubernetes(cfg);
        }

        return client;
    }

    public KubernetesClientConfiguration Config()
    {
        if (config is not null)
        {
            return config;
        }

        var path = Flags.Kubeconfig is { Length: > 0 } k ? Env.Resolve(k)
            : Env.Variable("KUBECONFIG") is { Length: > 0 } kc ? Env.Resolve(kc.Split(Path.PathSeparator)[0])
            : Path.Combine(Env.Home, ".kube", "config");
        if (!File.Exists(path))
        {
            throw new CliException(ExitCodes.Unreachable, $"no kubeconfig at {path}: pass --kubeconfig <file> or set KUBECONFIG (for the local sandbox: --kubeconfig .rpoi/sandbox/kubeconfig)");
        }

        try
        {
            config = KubernetesClientConfiguration.BuildConfigFromConfigFile(path, Flags.Context);
        }
        catch (KubeConfigException e)
        {
            throw new CliException(ExitCodes.Usage, $"kubeconfig {path}: {e.Message}; check --context (kubectl config get-contexts)", e);
        }

        return config;
    }

    /// <summary>Loads the renter's key file; prints the loader's warnings (e.g. a group-readable file).</summary>
    public PartyKeyPair LoadKeys()
    {
        var path = KeyPath;
        if (!File.Exists(path))
        {
            throw new CliException(ExitCodes.NotFound, $"no key file at {path}: create one with 'kubectl rpoi keygen' or pass --key <file>");
        }

        var loaded = KeyFile.Load(path);
        if (!loaded.IsOk)
        {
            throw new CliException(ExitCodes.Usage, $"key file {path}: {loaded.Message}");
        }

        foreach (var warning in loaded.Value.Warnings)
        {
            Err.WriteLine($"warning: {warning}");
        }

        if (loaded.Value.Keys.Role != PartyRole.Renter)
        {
            Err.WriteLine($"warning: {path} holds {loaded.Value.Keys.Role} keys, not a renter's; is --key the right file?");
        }

        return loaded.Value.Keys;
    }

    /// <summary>Reads and checks the operator's discovery ConfigMap.</summary>
    public async Task<DiscoveryDocument> DiscoveryAsync(CancellationToken ct)
    {
        var ns = OperatorNamespace;
        var cm = await CallAsync(
            () => Kube().CoreV1.ReadNamespacedConfigMapAsync(DiscoveryDocument.ConfigMapName, ns, cancellationToken: ct),
            $"configmap {ns}/{DiscoveryDocument.ConfigMapName} (the operator's discovery)",
            "is the RPOI operator installed and running? pass --operator-namespace if it runs elsewhere, or --leaser/--escrow to work offline").ConfigureAwait(false);
        var (doc, error) = DiscoveryDocument.FromConfigMap(cm);
        return doc ?? throw new CliException(ExitCodes.VerificationFailed, error!);
    }

    public async Task<(Lease Lease, JsonElement Raw)> GetLeaseAsync(string name, CancellationToken ct)
    {
        var ns = Namespace;
        object raw;
        try
        {
            raw = await CallAsync(
                () => Kube().CustomObjects.GetNamespacedCustomObjectAsync(Lease.Group, Lease.Version, ns, Lease.Plural, name, ct),
                $"lease {ns}/{name}",
                "check the name and -n (kubectl get tpulease -n " + ns + ")").ConfigureAwait(false);
        }
        catch (CliException notFound) when (notFound.ExitCode == ExitCodes.NotFound)
        {
            // A get in a missing namespace is a plain NotFound for the object; say what is really missing.
            if (await NamespaceMissingAsync(ns, ct).ConfigureAwait(false))
            {
                throw new CliException(ExitCodes.NotFound, $"namespace {ns} does not exist, so lease {ns}/{name} cannot either; pick the right one with -n", notFound);
            }

            throw;
        }

        var element = raw is JsonElement e ? e : JsonSerializer.SerializeToElement(raw);
        return (KubernetesJson.Deserialize<Lease>(element.GetRawText()), element);
    }

    /// <summary>True only when the API says the namespace is NotFound (a renter that may not read namespaces learns nothing).</summary>
    private async Task<bool> NamespaceMissingAsync(string ns, CancellationToken ct)
    {
        try
        {
            await Kube().CoreV1.ReadNamespaceAsync(ns, cancellationToken: ct).ConfigureAwait(false);
            return false;
        }
        catch (HttpOperationException e)
        {
            return e.Response.StatusCode == HttpStatusCode.NotFound;
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    /// <summary>E(m) as it sits in the Lease's spec, parsed.</summary>
    public static Signed<LeaseRequest> RequestOf(Lease lease)
    {
        var json = JsonSerializer.Serialize(lease.Spec.Request);
        var parsed = Signed<LeaseRequest>.Parse(json);
        return parsed.IsOk ? parsed.Value : throw new CliException(ExitCodes.VerificationFailed, $"lease {lease.Metadata.NamespaceProperty}/{lease.Metadata.Name}: spec.request is not a signed request ({parsed.Message})");
    }

    public async Task CreateAsync(JsonObject body, string group, string version, string plural, string ns, string what, CancellationToken ct)
    {
        try
        {
            await CallAsync(() => Kube().CustomObjects.CreateNamespacedCustomObjectAsync(body, group, version, ns, plural, cancellationToken: ct), what, "").ConfigureAwait(false);
        }
        catch (CliException e) when (e.InnerException is HttpOperationException { Response.StatusCode: HttpStatusCode.Conflict })
        {
            throw new CliException(ExitCodes.Conflict, $"{what} already exists: a signed object cannot be changed; pick another --name, or delete the old one first (kubectl delete {plural}.{group} -n {ns} <name>)", e);
        }
    }

    /// <summary>Runs a Kubernetes call and turns its failures into messages that say what to do.</summary>
    public async Task<T> CallAsync<T>(Func<Task<T>> call, string what, string hint)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (HttpOperationException e)
        {
            var status = e.Response.StatusCode;
            var detail = ServerMessage(e.Response.Content);
            throw status switch
            {
                HttpStatusCode.NotFound when MissingNamespace(e.Response.Content) is { } missing => new CliException(ExitCodes.NotFound, $"namespace {missing} does not exist (the API server said: namespaces \"{missing}\" not found); pick another with -n, or ask the platform team to create it", e),
                HttpStatusCode.NotFound => new CliException(ExitCodes.NotFound, $"{what} not found; {hint}".TrimEnd(' ', ';'), e),
                HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => new CliException(ExitCodes.Unreachable, $"the cluster refused access to {what} ({(int)status}{detail}); check your kubeconfig context, or ask the platform team for the rpoi renter role", e),
                HttpStatusCode.Conflict => new CliException(ExitCodes.Conflict, $"{what}: conflict{detail}", e),
                HttpStatusCode.BadRequest or HttpStatusCode.UnprocessableEntity => new CliException(ExitCodes.Usage, $"the cluster rejected {what}{detail}", e),
                _ => new CliException(ExitCodes.Unreachable, $"the cluster failed on {what} ({(int)status}{detail}); retry, or check the API server", e),
            };
        }
        catch (HttpRequestException e)
        {
            throw new CliException(ExitCodes.Unreachable, $"cannot reach the cluster at {Config().Host} for {what} ({e.Message}); is it running? (for the sandbox: kubectl rpoi sandbox status)", e);
        }
    }

    /// <summary>The namespace a NotFound is about, when the API's Status names kind "namespaces" (a create into a missing namespace).</summary>
    private static string? MissingNamespace(string? content)
    {
        if (string.IsNullOrEmpty(content))
        {
            return null;
        }

        try
        {
            using var doc = JsonDocument.Parse(content);
            return doc.RootElement.TryGetProperty("details", out var d) && d.TryGetProperty("kind", out var k) && k.GetString() == "namespaces" && d.TryGetProperty("name", out var n)
                ? n.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string ServerMessage(string? content)
    {
        if (string.IsNullOrEmpty(content))
        {
            return "";
        }

        try
        {
            using var doc = JsonDocument.Parse(content);
            return doc.RootElement.TryGetProperty("message", out var m) ? ": " + m.GetString() : "";
        }
        catch (JsonException)
        {
            return "";
        }
    }

    public void Dispose() => client?.Dispose();
}

/// <summary>The flags every command accepts, as kubectl plugins do.</summary>
internal sealed record GlobalFlags(string? Kubeconfig, string? Context, string? Namespace, string? Key, string? OperatorNamespace);
