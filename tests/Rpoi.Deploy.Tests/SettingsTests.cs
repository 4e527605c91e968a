using k8s.Models;
using Microsoft.Extensions.Configuration;
using Rpoi.Escrow;
using Rpoi.Operator.Hosting;

namespace Rpoi.Deploy.Tests;

/// <summary>
/// The environment the chart and config/ give the operator and π is exactly what their code reads: every variable
/// is a setting (checked against <see cref="OperatorSettings"/> and <see cref="EscrowOptions"/> themselves, so a renamed
/// setting breaks this test, not a cluster), and the values parse.
/// </summary>
public sealed class SettingsTests
{
    private const string Prefix = "RPOI_Operator__";

    public static TheoryData<string> Renders => ["helm", "helm-non-default", "kustomize"];

    private static Manifests Render(string source) => source switch
    {
        "helm" => Chart.Render(),
        "helm-non-default" => Chart.Render(
            "operator.escrowAddress=rpoi1abcdefghijklmnop",
            "operator.clusterServer=https://34.1.2.3",
            "operator.clusterCaFile=",
            "operator.workers=12",
            "operator.ratingWindowSeconds=90061",
            "operator.jsonLogs=false",
            "operator.leasePodImage=registry.example.com/jax:1",
            "operator.leaderElection.enabled=false",
            "operator.leaderElection.leaseDurationSeconds=40",
            "operator.replicaCount=1",
            "fullnameOverride=tpu-broker"),
        _ => Kustomize.Default,
    };

    [Theory]
    [MemberData(nameof(Renders))]
    public void Every_operator_env_var_is_a_setting_the_operator_reads_and_parses(string source)
    {
        var deployment = Render(source).OfType<V1Deployment>().Single(d => d.Spec.Template.Spec.Containers.Any(c => c.Name == "operator"));
        var container = deployment.Spec.Template.Spec.Containers.Single(c => c.Name == "operator");
        var flagOf = OperatorSettings.Flags.ToDictionary(f => f.Value["Operator:".Length..], f => f.Key, StringComparer.Ordinal);
        using var files = new TempFiles();
        var args = new List<string>();
        foreach (var env in container.Env)
        {
            if (env.Name == MemoryTests.HeapLimitEnv)
            {
                // Read by .NET itself, not the operator (MemoryTests checks its value).
                continue;
            }

            if (env.Name == "POD_NAMESPACE")
            {
                // OperatorSettings.Load falls back to it for Namespace (leader-election Lease, discovery ConfigMap).
                Assert.Equal("metadata.namespace", env.ValueFrom?.FieldRef?.FieldPath);
                continue;
            }

            Assert.True(env.Name.StartsWith(Prefix, StringComparison.Ordinal),
                $"{source}: env {env.Name} is not read by the operator (it reads {Prefix}<Key> and POD_NAMESPACE only; .NET reads {MemoryTests.HeapLimitEnv})");
            var key = env.Name[Prefix.Length..];
            Assert.True(flagOf.TryGetValue(key, out var flag) && key != "Config",
                $"{source}: env {env.Name} names no setting of OperatorSettings (known: {string.Join(", ", flagOf.Keys)})");
            Assert.NotNull(env.Value);
            // Files the operator checks for exist only in the pod; the test points those at files that exist here.
            var value = key is "LeaserKeyFile" or "ClusterCaFile" ? files.Create() : env.Value;
            args.Add($"{flag}={value}");
        }

        var (settings, errors) = OperatorSettings.Load([.. args], Path.GetTempPath());
        Assert.True(settings is not null, $"{source}: the operator refuses the rendered settings: {string.Join("; ", errors)}");

        var values = container.Env.Where(e => e.Value is not null).ToDictionary(e => e.Name, e => e.Value);
        Assert.Equal(container.Ports.Single(p => p.Name == "metrics").ContainerPort, settings.MetricsPort);
        var leaseUser = Assert.Single(Render(source).OfType<V1ClusterRole>(), r => r.Metadata.Name.EndsWith("-lease-user", StringComparison.Ordinal));
        Assert.Equal(leaseUser.Metadata.Name, settings.LeaseUserClusterRole);
        Assert.Equal(values[Prefix + "EscrowUrl"].TrimEnd('/') + "/", settings.EscrowUrl!.ToString());
        if (source != "helm-non-default")
        {
            // The chart's and the manifests' default is the operator's own.
            Assert.Equal(new OperatorSettings().Workers, settings.Workers);
        }

        if (source == "helm-non-default")
        {
            Assert.Equal(TimeSpan.FromSeconds(90061), settings.RatingWindow);
            Assert.Equal((12, false, false), (settings.Workers, settings.JsonLogs, settings.LeaderElection));
            Assert.Equal(TimeSpan.FromSeconds(40), settings.LeaderElectionLeaseDuration);
            Assert.Equal(("https://34.1.2.3", null), (settings.ClusterServer, settings.ClusterCaFile));
            Assert.Equal("registry.example.com/jax:1", settings.PodImage);
            Assert.Equal("rpoi1abcdefghijklmnop", settings.EscrowAddress);
            Assert.Equal("tpu-broker-lease-user", settings.LeaseUserClusterRole);
        }
        else
        {
            Assert.Equal(TimeSpan.FromHours(72), settings.RatingWindow);
            Assert.True(settings.LeaderElection);
            // The chart and config/ give the operator its own default (15 s).
            Assert.Equal(new OperatorSettings().LeaderElectionLeaseDuration, settings.LeaderElectionLeaseDuration);
            Assert.Equal(OperatorSettings.DefaultLeaseUserClusterRole, settings.LeaseUserClusterRole);
        }
    }

    [Theory]
    [InlineData("helm")]
    [InlineData("kustomize")]
    [InlineData("postgres")]
    public void Every_escrow_env_var_is_an_escrow_option(string source)
    {
        var manifests = source switch
        {
            "helm" => Chart.Render(),
            "postgres" => Chart.Render("escrow.storage.type=postgres", "escrow.storage.postgres.existingSecret=ledger-db", "escrow.replicaCount=2"),
            _ => Kustomize.Default,
        };
        var container = manifests.Single<V1Deployment>("rpoi-operator-escrow").Spec.Template.Spec.Containers.Single();
        var escrow = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var env in container.Env)
        {
            if (env.Name == "ASPNETCORE_URLS")
            {
                // Read by the ASP.NET Core host; EscrowHost only falls back to loopback when it is unset.
                Assert.Matches(@"^http://\+:\d+$", env.Value);
                continue;
            }

            Assert.True(env.Name.StartsWith("Escrow__", StringComparison.Ordinal), $"{source}: env {env.Name} is not read by π (it binds the Escrow section)");
            // The value of a secretKeyRef is only known in the pod; any text binds the same way.
            escrow[env.Name.Replace("__", ":", StringComparison.Ordinal)] = env.Value ?? "from-a-secret";
        }

        // Binding as EscrowHost does, but failing on keys EscrowOptions has no property for.
        var options = new EscrowOptions();
        new ConfigurationBuilder().AddInMemoryCollection(escrow).Build().GetSection("Escrow")
            .Bind(options, o => o.ErrorOnUnknownConfiguration = true);
        Assert.False(options.GenerateKeyFile, "production mounts π's key; it must never be generated in the pod");
        Assert.StartsWith("/var/run/rpoi/escrow/", options.KeyFile, StringComparison.Ordinal);
        Assert.NotEmpty(options.LeaserIdentityFiles);
        Assert.False(string.IsNullOrWhiteSpace(options.ConnectionString));
    }

    /// <summary>Empty files that exist while a test runs.</summary>
    private sealed class TempFiles : IDisposable
    {
        private readonly List<string> paths = [];

        public string Create()
        {
            var path = Path.GetTempFileName();
            paths.Add(path);
            return path;
        }

        public void Dispose()
        {
            foreach (var path in paths)
            {
                File.Delete(path);
            }
        }
    }
}
