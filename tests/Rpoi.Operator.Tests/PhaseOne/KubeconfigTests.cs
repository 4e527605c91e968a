using k8s;
using k8s.Exceptions;
using Rpoi.Operator.Hosting;

namespace Rpoi.Operator.Tests.PhaseOne;

/// <summary>The operator's own kubeconfig reader (no KubernetesYaml) gives what KubernetesClient's reader gives.</summary>
public sealed class KubeconfigTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("rpoi-kubeconfig-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Fact]
    public async Task Current_context_and_relative_paths_match_KubernetesClient()
    {
        var path = Path.Combine(dir, "config");
        await File.WriteAllTextAsync(path, """
            apiVersion: v1
            kind: Config
            preferences: {}
            current-context: beta
            clusters:
            - name: a
              cluster:
                server: https://10.0.0.1:6443
                insecure-skip-tls-verify: true
            - name: b
              cluster:
                server: https://34.1.2.3
                tls-server-name: kubernetes.default
                insecure-skip-tls-verify: true
                extensions:
                - name: client.authentication.k8s.io/exec
                  extension:
                    audience: rpoi
            contexts:
            - name: alpha
              context: { cluster: a, user: token-user, namespace: team-a }
            - name: beta
              context: { cluster: b, user: cert-user, namespace: rpoi-system }
            users:
            - name: token-user
              user: { token: abc }
            - name: cert-user
              user:
                client-certificate: certs/client.crt
                client-key: certs/client.key
                token: def
                unknown-field: ignored
            """);

        var ours = Kubeconfig.Load(path);
        var theirs = KubernetesClientConfiguration.BuildConfigFromConfigFile(path);

        Assert.Equal("https://34.1.2.3", ours.Host);
        Assert.Equal("rpoi-system", ours.Namespace);
        Assert.Equal(Path.Combine(dir, "certs", "client.crt"), ours.ClientCertificateFilePath);
        Assert.Equal(
            (theirs.Host, theirs.Namespace, theirs.CurrentContext, theirs.AccessToken, theirs.ClientCertificateFilePath, theirs.ClientKeyFilePath, theirs.SkipTlsVerify, theirs.TlsServerName),
            (ours.Host, ours.Namespace, ours.CurrentContext, ours.AccessToken, ours.ClientCertificateFilePath, ours.ClientKeyFilePath, ours.SkipTlsVerify, ours.TlsServerName));
    }

    [Fact]
    public async Task An_empty_file_is_an_error_naming_it()
    {
        var path = Path.Combine(dir, "empty");
        await File.WriteAllTextAsync(path, "");
        var e = Assert.Throws<KubeConfigException>(() => Kubeconfig.Load(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
    }
}
