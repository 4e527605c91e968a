using k8s;
using k8s.Exceptions;
using k8s.KubeConfigModels;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Rpoi.Operator.Hosting;

/// <summary>
/// Reads a kubeconfig file into a client configuration without <see cref="KubernetesYaml"/>.
/// <c>KubernetesClientConfiguration.BuildConfigFromConfigFile</c> parses with <see cref="KubernetesYaml"/>, whose
/// static deserializers and serializer map every model type of KubernetesClient (tens of thousands of attribute
/// overrides) and stay for the life of the process; the kubeconfig models only need their own YAML aliases.
/// Measured in BENCHMARKS.md "memrt, 2026-12-04".
/// </summary>
internal static class Kubeconfig
{
    /// <summary>
    /// The configuration of <paramref name="path"/>'s current context, as <c>BuildConfigFromConfigFile(path)</c> gives
    /// it: relative certificate and key paths are resolved against the kubeconfig's directory.
    /// </summary>
    public static KubernetesClientConfiguration Load(string path)
    {
        var full = Path.GetFullPath(path);
        var deserializer = new DeserializerBuilder()
            .WithNamingConvention(CamelCaseNamingConvention.Instance)
            .IgnoreUnmatchedProperties()
            .Build();
        K8SConfiguration? config;
        using (var reader = File.OpenText(full))
        {
            config = deserializer.Deserialize<K8SConfiguration?>(reader);
        }

        if (config is null)
        {
            throw new KubeConfigException($"kubeconfig {full} is empty; write a kubeconfig there or leave --kubeconfig out");
        }

        // As LoadKubeConfig(FileInfo) does: relative paths in the file are relative to the file.
        config.FileName = full;
        return KubernetesClientConfiguration.BuildConfigFromConfigObject(config);
    }
}
