namespace Rpoi.Deploy.Tests;

/// <summary>Renders config/default with the real <c>kubectl kustomize</c> (once per run).</summary>
internal static class Kustomize
{
    private static readonly Lazy<Manifests> DefaultRender =
        new(() => Manifests.Parse(Tools.RunOk(Tools.Kubectl, "kustomize", Path.Combine(Tools.Root, "config", "default"))));

    public static Manifests Default => DefaultRender.Value;

    public static Manifests Render(string directory) =>
        Manifests.Parse(Tools.RunOk(Tools.Kubectl, "kustomize", Path.Combine(Tools.Root, directory)));
}
