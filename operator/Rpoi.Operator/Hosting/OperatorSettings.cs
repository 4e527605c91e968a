using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;

namespace Rpoi.Operator.Hosting;

/// <summary>
/// The operator's settings, from (later wins) <c>appsettings.json</c> in the working directory or the file named by
/// <c>--config</c>, environment variables <c>RPOI_Operator__&lt;Key&gt;</c>, and command-line flags. docs/phase-one.md lists them.
/// </summary>
public sealed partial record OperatorSettings
{
    /// <summary>Default of <see cref="LeaseUserClusterRole"/> (the chart's name for release <c>rpoi-operator</c>).</summary>
    public const string DefaultLeaseUserClusterRole = PhaseOne.Grant.LeaseAccess.DefaultClusterRole;

    /// <summary>Command-line flags and the configuration keys they set.</summary>
    public static IReadOnlyDictionary<string, string> Flags { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["--leaser-key-file"] = "Operator:LeaserKeyFile",
        ["--escrow-url"] = "Operator:EscrowUrl",
        ["--escrow-address"] = "Operator:EscrowAddress",
        ["--escrow-public-url"] = "Operator:EscrowPublicUrl",
        ["--cluster-server"] = "Operator:ClusterServer",
        ["--cluster-ca-file"] = "Operator:ClusterCaFile",
        ["--kubeconfig"] = "Operator:Kubeconfig",
        ["--namespace"] = "Operator:Namespace",
        ["--leader-election"] = "Operator:LeaderElection",
        ["--leader-election-lease-duration"] = "Operator:LeaderElectionLeaseDuration",
        ["--metrics-port"] = "Operator:MetricsPort",
        ["--metrics-address"] = "Operator:MetricsAddress",
        ["--workers"] = "Operator:Workers",
        ["--pod-image"] = "Operator:PodImage",
        ["--rating-window"] = "Operator:RatingWindow",
        ["--json-logs"] = "Operator:JsonLogs",
        ["--lease-user-cluster-role"] = "Operator:LeaseUserClusterRole",
        ["--config"] = "Operator:Config",
    };

    /// <summary>Path of β's key file (signs grants and escrow calls).</summary>
    public string LeaserKeyFile { get; init; } = string.Empty;

    /// <summary>π's base URL.</summary>
    public Uri? EscrowUrl { get; init; }

    /// <summary>
    /// π's URL as renters reach it, published in the discovery ConfigMap; defaults to <see cref="EscrowUrl"/>
    /// (which may be an in-cluster address renters cannot reach).
    /// </summary>
    public Uri? EscrowPublicUrl { get; init; }

    /// <summary>π's address; when empty it is read from π's identity endpoint at start.</summary>
    public string? EscrowAddress { get; init; }

    /// <summary>API server URL written into renters' kubeconfigs.</summary>
    public string ClusterServer { get; init; } = string.Empty;

    /// <summary>PEM file of the cluster CA, embedded in renters' kubeconfigs (optional).</summary>
    public string? ClusterCaFile { get; init; }

    /// <summary>Kubeconfig of the operator itself; empty = in-cluster config when running in a pod, else the default kubeconfig.</summary>
    public string? Kubeconfig { get; init; }

    /// <summary>The operator's own namespace (leader-election Lease); defaults to POD_NAMESPACE, else rpoi-system.</summary>
    public string Namespace { get; init; } = "rpoi-system";

    /// <summary>Run controllers only while holding the leader Lease (on for more than one replica).</summary>
    public bool LeaderElection { get; init; } = true;

    /// <summary>
    /// How long the leader Lease is valid without a renewal: how long the replicas wait for a leader that died without
    /// releasing it. The renew deadline is 2/3 of it and the retry period 2/15, as in the 15 s / 10 s / 2 s defaults.
    /// </summary>
    public TimeSpan LeaderElectionLeaseDuration { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Port of /metrics, /healthz and /readyz; negative turns the endpoint off, 0 picks a free port.</summary>
    public int MetricsPort { get; init; } = 8080;

    /// <summary>Address the metrics endpoint binds to.</summary>
    public string MetricsAddress { get; init; } = "0.0.0.0";

    /// <summary>
    /// Parallel Lease reconciles. 8: a reconcile waits on about seven API writes in a row, so against an API server
    /// taking ~10 ms a write, 4 workers left a burst at 2.8–3.0× the API floor and 8 at 1.4–2.0× warm (BENCHMARKS.md,
    /// "Burst to Active").
    /// </summary>
    public int Workers { get; init; } = 8;

    /// <summary>Image of the pod template in σ (default: PodPlacement.DefaultImage).</summary>
    public string? PodImage { get; init; }

    /// <summary>Rating window when a Lease sets none.</summary>
    public TimeSpan RatingWindow { get; init; } = TimeSpan.FromHours(72);

    /// <summary>JSON log lines (for log collectors) instead of plain text.</summary>
    public bool JsonLogs { get; init; }

    /// <summary>
    /// The ClusterRole each lease's ServiceAccount is bound to, by a RoleBinding in the lease's namespace (so its rules
    /// apply there only). The Helm chart ships it as <c>&lt;fullname&gt;-lease-user</c> and lets the operator <c>bind</c> exactly it.
    /// </summary>
    public string LeaseUserClusterRole { get; init; } = DefaultLeaseUserClusterRole;

    /// <summary>Reads and validates the settings. Errors name the flag and the fix; nothing starts when there are any.</summary>
    public static (OperatorSettings? Settings, IReadOnlyList<string> Errors) Load(string[] args, string? workingDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        var errors = new List<string>();
        foreach (var arg in args)
        {
            var flag = arg.Split('=', 2)[0];
            if (flag.StartsWith("--", StringComparison.Ordinal) && !Flags.ContainsKey(flag))
            {
                errors.Add($"unknown flag {flag}; known flags: {string.Join(", ", Flags.Keys)}");
            }
        }

        if (errors.Count > 0)
        {
            return (null, errors);
        }

        var first = new ConfigurationBuilder().AddEnvironmentVariables("RPOI_").AddCommandLine(args, Flags.ToDictionary()).Build();
        var configFile = first["Operator:Config"];
        var baseDir = workingDirectory ?? Directory.GetCurrentDirectory();
        if (configFile is not null && !File.Exists(Path.Combine(baseDir, configFile)))
        {
            return (null, [$"--config: file {configFile} does not exist"]);
        }

        var config = new ConfigurationBuilder()
            .SetBasePath(baseDir)
            .AddJsonFile(configFile ?? "appsettings.json", optional: configFile is null)
            .AddEnvironmentVariables("RPOI_")
            .AddCommandLine(args, Flags.ToDictionary())
            .Build()
            .GetSection("Operator");

        string? Text(string key) => string.IsNullOrWhiteSpace(config[key]) ? null : config[key]!.Trim();
        bool Bool(string key, string flag, bool fallback)
        {
            var text = Text(key);
            if (text is null)
            {
                return fallback;
            }

            if (bool.TryParse(text, out var value))
            {
                return value;
            }

            errors.Add($"{flag}: '{text}' is not true or false");
            return fallback;
        }

        int Int(string key, string flag, int fallback, int min, int max)
        {
            var text = Text(key);
            if (text is null)
            {
                return fallback;
            }

            if (int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
            {
                return value;
            }

            errors.Add($"{flag}: '{text}' is not a whole number from {min} to {max}");
            return fallback;
        }

        var leaserKey = Text("LeaserKeyFile");
        if (leaserKey is null)
        {
            errors.Add("--leaser-key-file is required: the path of β's key file (create one with 'kubectl rpoi keys new --role leaser')");
        }
        else if (!File.Exists(leaserKey))
        {
            errors.Add($"--leaser-key-file: {leaserKey} does not exist; mount the leaser key Secret there");
        }

        Uri? escrowUrl = null;
        var escrowText = Text("EscrowUrl");
        if (escrowText is null)
        {
            errors.Add("--escrow-url is required: π's base URL, e.g. http://rpoi-escrow.rpoi-system:5080/");
        }
        else if (!Uri.TryCreate(escrowText.EndsWith('/') ? escrowText : escrowText + "/", UriKind.Absolute, out escrowUrl) || escrowUrl.Scheme is not ("http" or "https"))
        {
            errors.Add($"--escrow-url: '{escrowText}' is not an http(s) URL");
        }

        Uri? escrowPublicUrl = escrowUrl;
        if (Text("EscrowPublicUrl") is { } publicText
            && (!Uri.TryCreate(publicText.EndsWith('/') ? publicText : publicText + "/", UriKind.Absolute, out escrowPublicUrl) || escrowPublicUrl.Scheme is not ("http" or "https")))
        {
            errors.Add($"--escrow-public-url: '{publicText}' is not an http(s) URL; give π's URL as renters reach it, e.g. https://escrow.example.com/");
        }

        var server = Text("ClusterServer");
        if (server is null)
        {
            errors.Add("--cluster-server is required: the API server URL renters use, written into their kubeconfigs (e.g. https://34.1.2.3)");
        }
        else if (!Uri.TryCreate(server, UriKind.Absolute, out var serverUri) || serverUri.Scheme is not ("http" or "https"))
        {
            errors.Add($"--cluster-server: '{server}' is not an http(s) URL");
        }

        var ca = Text("ClusterCaFile");
        if (ca is not null && !File.Exists(ca))
        {
            errors.Add($"--cluster-ca-file: {ca} does not exist");
        }

        var kubeconfig = Text("Kubeconfig");
        if (kubeconfig is not null && !File.Exists(kubeconfig))
        {
            errors.Add($"--kubeconfig: {kubeconfig} does not exist");
        }

        var window = TimeSpan.FromHours(72);
        if (Text("RatingWindow") is { } windowText && !TryParseDuration(windowText, out window))
        {
            window = TimeSpan.FromHours(72);
            errors.Add($"--rating-window: '{windowText}' is not a duration; use Go style such as 72h, 90m or 1h30m, whole seconds such as 259200, or d.hh:mm:ss such as 3.00:00:00");
        }

        var leaseDuration = TimeSpan.FromSeconds(15);
        if (Text("LeaderElectionLeaseDuration") is { } leaseText
            && (!TryParseDuration(leaseText, out leaseDuration) || leaseDuration < TimeSpan.FromSeconds(3) || leaseDuration > TimeSpan.FromMinutes(10) || leaseDuration.Ticks % TimeSpan.TicksPerSecond != 0))
        {
            leaseDuration = TimeSpan.FromSeconds(15);
            errors.Add($"--leader-election-lease-duration: '{leaseText}' is not a whole number of seconds from 3s to 10m (the leader Lease stores whole seconds); use e.g. 15s");
        }

        var leaseUserRole = Text("LeaseUserClusterRole") ?? DefaultLeaseUserClusterRole;
        if (!IsRbacName(leaseUserRole))
        {
            errors.Add($"--lease-user-cluster-role: '{leaseUserRole}' is not a ClusterRole name (lower-case letters, digits, '-', '.', ':'; at most 253 characters)");
        }

        var settings = new OperatorSettings
        {
            LeaserKeyFile = leaserKey ?? string.Empty,
            EscrowUrl = escrowUrl,
            EscrowPublicUrl = escrowPublicUrl,
            EscrowAddress = Text("EscrowAddress"),
            ClusterServer = server ?? string.Empty,
            ClusterCaFile = ca,
            Kubeconfig = kubeconfig,
            Namespace = Text("Namespace") ?? Environment.GetEnvironmentVariable("POD_NAMESPACE") ?? "rpoi-system",
            LeaderElection = Bool("LeaderElection", "--leader-election", true),
            LeaderElectionLeaseDuration = leaseDuration,
            MetricsPort = Int("MetricsPort", "--metrics-port", 8080, -1, 65535),
            MetricsAddress = Text("MetricsAddress") ?? "0.0.0.0",
            Workers = Int("Workers", "--workers", 8, 1, 64),
            PodImage = Text("PodImage"),
            RatingWindow = window,
            JsonLogs = Bool("JsonLogs", "--json-logs", false),
            LeaseUserClusterRole = leaseUserRole,
        };
        return errors.Count > 0 ? (null, errors) : (settings, []);
    }

    /// <summary>
    /// Parses a non-negative duration: Go style (<c>72h</c>, <c>90m</c>, <c>3600s</c>, <c>1h30m</c>, <c>1.5h</c>; units h, m, s, ms),
    /// whole seconds (<c>259200</c>), or .NET's invariant <c>[d.]hh:mm:ss</c> with hours below 24 (<c>3.00:00:00</c>).
    /// <c>TimeSpan.TryParse</c> alone is not used: it reads <c>72:00:00</c> as 72 days.
    /// </summary>
    public static bool TryParseDuration(string text, out TimeSpan value)
    {
        ArgumentNullException.ThrowIfNull(text);
        value = TimeSpan.Zero;
        text = text.Trim();
        if (text.Length == 0)
        {
            return false;
        }

        if (text.All(char.IsAsciiDigit))
        {
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) || seconds > (long)TimeSpan.MaxValue.TotalSeconds)
            {
                return false;
            }

            value = TimeSpan.FromSeconds(seconds);
            return true;
        }

        if (text.Contains(':', StringComparison.Ordinal))
        {
            // The constant ("c") format rejects hours of 24 or more, so 72:00:00 is an error, not 72 days.
            return TimeSpan.TryParseExact(text, "c", CultureInfo.InvariantCulture, out value) && value >= TimeSpan.Zero;
        }

        var match = GoDuration().Match(text);
        if (!match.Success)
        {
            return false;
        }

        var total = 0m;
        for (var i = 0; i < match.Groups["n"].Captures.Count; i++)
        {
            var number = decimal.Parse(match.Groups["n"].Captures[i].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture);
            total += number * match.Groups["u"].Captures[i].Value switch
            {
                "h" => 3600m,
                "m" => 60m,
                "s" => 1m,
                _ => 0.001m, // ms
            };
            if (total > (decimal)TimeSpan.MaxValue.TotalSeconds)
            {
                return false;
            }
        }

        value = TimeSpan.FromTicks((long)(total * TimeSpan.TicksPerSecond));
        return true;
    }

    [GeneratedRegex(@"^(?:(?<n>\d+(?:\.\d+)?)(?<u>ms|h|m|s))+$", RegexOptions.CultureInvariant)]
    private static partial Regex GoDuration();

    // RBAC object names are path segments: no '/', no '%', not '.' or '..'; ClusterRoles commonly use ':' (system:...).
    private static bool IsRbacName(string name) =>
        name.Length <= 253 && name is not ("." or "..")
        && name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '.' or ':');
}
