using k8s.Models;

namespace Rpoi.Deploy.Tests;

public sealed class ChartTests
{
    private static readonly string[] NonDefault =
    [
        "operator.replicaCount=3",
        "operator.image.digest=sha256:" + new string('a', 64),
        "escrow.storage.type=postgres",
        "escrow.storage.postgres.existingSecret=ledger-db",
        "escrow.replicaCount=2",
        "metrics.serviceMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
        "networkPolicy.enabled=false",
        "rbac.sampleRoles=false",
        "admission.validationActions={Warn,Audit}",
        "json:admission.exemptNamespaces=[]",
    ];

    [Fact]
    public void Lint_strict_passes_with_default_values() =>
        Tools.RunOk(Tools.Helm, "lint", "--strict", Tools.ChartDir);

    [Fact]
    public void Lint_strict_passes_with_non_default_values() =>
        Tools.RunOk(Tools.Helm, ["lint", "--strict", Tools.ChartDir, .. Chart.SetArgs(NonDefault)]);

    [Fact]
    public void Default_render_has_the_expected_objects()
    {
        var keys = Chart.Render().Objects.Select(Manifests.Key).Order(StringComparer.Ordinal).ToList();

        Assert.Equal(
            [
                "ClusterRole//rpoi-operator",
                "ClusterRole//rpoi-operator-lease-user",
                "ClusterRole//rpoi-operator-platform-admin",
                "ClusterRole//rpoi-operator-renter",
                "ClusterRole//rpoi-operator-view",
                "ClusterRoleBinding//rpoi-operator",
                "CustomResourceDefinition//leases.rpoi.io",
                "CustomResourceDefinition//ratings.rpoi.io",
                "Deployment/rpoi-system/rpoi-operator",
                "Deployment/rpoi-system/rpoi-operator-escrow",
                "NetworkPolicy/rpoi-system/rpoi-operator",
                "NetworkPolicy/rpoi-system/rpoi-operator-escrow",
                "PersistentVolumeClaim/rpoi-system/rpoi-operator-escrow-ledger",
                "PodDisruptionBudget/rpoi-system/rpoi-operator",
                "Role/rpoi-system/rpoi-operator",
                "Role/rpoi-system/rpoi-operator-discovery-reader",
                "RoleBinding/rpoi-system/rpoi-operator",
                "RoleBinding/rpoi-system/rpoi-operator-discovery-reader",
                "Service/rpoi-system/rpoi-operator-escrow",
                "Service/rpoi-system/rpoi-operator-metrics",
                "ServiceAccount/rpoi-system/rpoi-operator",
                "ServiceAccount/rpoi-system/rpoi-operator-escrow",
                "ValidatingAdmissionPolicy//rpoi-operator-lease-toleration",
                "ValidatingAdmissionPolicyBinding//rpoi-operator-lease-toleration",
            ],
            keys);
    }

    [Fact]
    public void Operator_deployment_is_highly_available_probed_and_restricted()
    {
        var deployment = Chart.Render().Single<V1Deployment>("rpoi-operator");
        Assert.Equal(2, deployment.Spec.Replicas);
        var pod = deployment.Spec.Template.Spec;
        Assert.Equal("rpoi-operator", pod.ServiceAccountName);
        var container = Assert.Single(pod.Containers);
        Assert.Equal("ghcr.io/rpoi/rpoi-operator:0.1.0", container.Image);

        // The operator serves /metrics, /healthz and /readyz on one port (RPOI_Operator__MetricsPort).
        Assert.Equal(("/healthz", "metrics"), (container.StartupProbe.HttpGet.Path, container.StartupProbe.HttpGet.Port.Value));
        Assert.Equal(("/healthz", "metrics"), (container.LivenessProbe.HttpGet.Path, container.LivenessProbe.HttpGet.Port.Value));
        Assert.Equal(("/readyz", "metrics"), (container.ReadinessProbe.HttpGet.Path, container.ReadinessProbe.HttpGet.Port.Value));
        var port = Assert.Single(container.Ports);
        Assert.Equal(("metrics", 8080), (port.Name, port.ContainerPort));
        Assert.Equal("8080", Env(container, "RPOI_Operator__MetricsPort"));
        Assert.NotNull(container.Resources.Requests["cpu"]);
        Assert.NotNull(container.Resources.Limits["memory"]);

        Assert.Equal("true", Env(container, "RPOI_Operator__LeaderElection"));
        // The operator's own default (OperatorSettings.LeaderElectionLeaseDuration), as a duration it parses.
        Assert.Equal("15s", Env(container, "RPOI_Operator__LeaderElectionLeaseDuration"));
        Assert.Equal("http://rpoi-operator-escrow.rpoi-system.svc:8080", Env(container, "RPOI_Operator__EscrowUrl"));
        Assert.Equal("rpoi-operator-lease-user", Env(container, "RPOI_Operator__LeaseUserClusterRole"));
        Assert.Equal("72h", Env(container, "RPOI_Operator__RatingWindow"));
        Assert.Equal("rpoi-leaser-keys", pod.Volumes.Single(v => v.Name == "leaser-keys").Secret.SecretName);

        var pdb = Chart.Render().Single<V1PodDisruptionBudget>("rpoi-operator");
        Assert.Equal("1", pdb.Spec.MinAvailable.Value);
    }

    [Fact]
    public void Every_container_in_every_configuration_runs_restricted()
    {
        foreach (var manifests in new[] { Chart.Render(), Chart.Render(NonDefault) })
        {
            foreach (var deployment in manifests.OfType<V1Deployment>())
            {
                var pod = deployment.Spec.Template.Spec;
                Assert.True(pod.SecurityContext.RunAsNonRoot, deployment.Metadata.Name);
                Assert.Equal("RuntimeDefault", pod.SecurityContext.SeccompProfile.Type);
                foreach (var c in pod.Containers)
                {
                    var sc = c.SecurityContext;
                    var where = $"{deployment.Metadata.Name}/{c.Name}";
                    Assert.True(sc.RunAsNonRoot, where);
                    Assert.True(sc.ReadOnlyRootFilesystem, where);
                    Assert.False(sc.AllowPrivilegeEscalation, where);
                    Assert.Equal(["ALL"], sc.Capabilities.Drop);
                    Assert.Equal("RuntimeDefault", sc.SeccompProfile.Type);
                }
            }
        }
    }

    [Fact]
    public void Escrow_uses_sqlite_on_a_kept_pvc_by_default()
    {
        var manifests = Chart.Render();
        var escrow = manifests.Single<V1Deployment>("rpoi-operator-escrow");
        Assert.Equal(1, escrow.Spec.Replicas);
        Assert.Equal("Recreate", escrow.Spec.Strategy.Type);
        Assert.False(escrow.Spec.Template.Spec.AutomountServiceAccountToken);
        var container = Assert.Single(escrow.Spec.Template.Spec.Containers);
        Assert.Equal("Data Source=/var/lib/rpoi-escrow/ledger.db", Env(container, "Escrow__ConnectionString"));
        // Production never generates π's key: it is mounted from the existing Secret.
        Assert.Equal("false", Env(container, "Escrow__GenerateKeyFile"));
        Assert.Equal("/var/run/rpoi/escrow/escrow.key.json", Env(container, "Escrow__KeyFile"));
        Assert.Equal("/etc/rpoi/leaser/leaser.identity.json", Env(container, "Escrow__LeaserIdentityFiles__0"));
        Assert.Equal("rpoi-leaser-identity", escrow.Spec.Template.Spec.Volumes.Single(v => v.Name == "leaser-identity").ConfigMap.Name);
        var pvc = manifests.Single<V1PersistentVolumeClaim>("rpoi-operator-escrow-ledger");
        Assert.Equal("keep", pvc.Metadata.Annotations["helm.sh/resource-policy"]);
        Assert.Equal("rpoi-operator-escrow-ledger", escrow.Spec.Template.Spec.Volumes.Single(v => v.Name == "ledger").PersistentVolumeClaim.ClaimName);
        Assert.Equal("rpoi-escrow-keys", escrow.Spec.Template.Spec.Volumes.Single(v => v.Name == "escrow-keys").Secret.SecretName);
    }

    [Fact]
    public void Non_default_values_render_postgres_monitoring_and_no_optional_objects()
    {
        var manifests = Chart.Render(NonDefault);

        var op = manifests.Single<V1Deployment>("rpoi-operator");
        Assert.Equal(3, op.Spec.Replicas);
        Assert.Equal("ghcr.io/rpoi/rpoi-operator@sha256:" + new string('a', 64), op.Spec.Template.Spec.Containers[0].Image);

        var escrow = manifests.Single<V1Deployment>("rpoi-operator-escrow");
        Assert.Equal(2, escrow.Spec.Replicas);
        var connection = escrow.Spec.Template.Spec.Containers[0].Env.Single(e => e.Name == "Escrow__ConnectionString");
        Assert.Null(connection.Value);
        Assert.Equal(("ledger-db", "connectionString"), (connection.ValueFrom.SecretKeyRef.Name, connection.ValueFrom.SecretKeyRef.Key));
        Assert.False(manifests.Has("PersistentVolumeClaim"));
        Assert.False(manifests.Has("NetworkPolicy"));
        Assert.DoesNotContain(manifests.OfType<V1ClusterRole>(), r => r.Metadata.Name.EndsWith("-renter", StringComparison.Ordinal));

        Assert.Single(manifests.OfType<CustomObject>(), o => o.Kind == "ServiceMonitor");
        var rule = Assert.Single(manifests.OfType<CustomObject>(), o => o.Kind == "PrometheusRule");
        var text = k8s.KubernetesJson.Serialize(rule.Spec);
        foreach (var alert in new[] { "RpoiReconcileErrors", "RpoiLeaseStuckInPhase", "RpoiSettlementFailures" })
        {
            Assert.Contains(alert, text, StringComparison.Ordinal);
        }

        var binding = manifests.Single<V1ValidatingAdmissionPolicyBinding>("rpoi-operator-lease-toleration");
        Assert.Equal(["Warn", "Audit"], binding.Spec.ValidationActions);
        Assert.Null(binding.Spec.MatchResources);
    }

    [Fact]
    public void External_escrow_renders_no_escrow_objects()
    {
        var manifests = Chart.Render("escrow.enabled=false", "operator.escrowUrl=https://escrow.example.org");
        Assert.DoesNotContain(manifests.Objects, o => o.Metadata.Name.Contains("escrow", StringComparison.Ordinal));
        var container = manifests.Single<V1Deployment>("rpoi-operator").Spec.Template.Spec.Containers[0];
        Assert.Equal("https://escrow.example.org", Env(container, "RPOI_Operator__EscrowUrl"));
    }

    [Fact]
    public void Key_material_is_never_rendered()
    {
        foreach (var manifests in new[] { Chart.Render(), Chart.Render(NonDefault) })
        {
            Assert.False(manifests.Has("Secret"), "the chart must only reference existing Secrets");
        }
    }

    [Fact]
    public void Chart_crds_are_the_generated_crds()
    {
        foreach (var crd in Chart.Render().OfType<V1CustomResourceDefinition>())
        {
            var file = Path.Combine(Tools.Root, "crds", $"{crd.Spec.Group}_{crd.Spec.Names.Plural}.yaml");
            var source = Manifests.Parse(File.ReadAllText(file)).Objects.Single();
            Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(Manifests.Comparable(source), Manifests.Comparable(crd)),
                $"charts/rpoi-operator/crds differs from crds/ for {crd.Metadata.Name}: run the generate-crds command (docs/crds.md)");
        }
    }

    [Fact]
    public void Admission_policy_refuses_foreign_lease_tolerations()
    {
        var manifests = Chart.Render();
        var policy = manifests.Single<V1ValidatingAdmissionPolicy>("rpoi-operator-lease-toleration");
        Assert.Equal("Fail", policy.Spec.FailurePolicy);
        var rule = Assert.Single(policy.Spec.MatchConstraints.ResourceRules);
        Assert.Equal(["pods"], rule.Resources);
        Assert.Equal(["CREATE", "UPDATE"], rule.Operations);
        var variable = Assert.Single(policy.Spec.Variables);
        // The operator's taint key is fixed in code; the policy must name exactly it.
        Assert.Contains($"'{Rpoi.Operator.PhaseOne.Allocation.TpuLabels.LeaseTaintKey}'", variable.Expression, StringComparison.Ordinal);
        Assert.Contains("'Exists'", variable.Expression, StringComparison.Ordinal);
        var validation = Assert.Single(policy.Spec.Validations);
        Assert.Contains("== request.namespace", validation.Expression, StringComparison.Ordinal);

        var binding = manifests.Single<V1ValidatingAdmissionPolicyBinding>("rpoi-operator-lease-toleration");
        Assert.Equal(policy.Metadata.Name, binding.Spec.PolicyName);
        Assert.Equal(["Deny"], binding.Spec.ValidationActions);
        Assert.Equal(["kube-system"], binding.Spec.MatchResources.NamespaceSelector.MatchExpressions.Single().Values);

    }

    private static string? Env(V1Container container, string name) => container.Env.Single(e => e.Name == name).Value;
}
