using k8s;

namespace Rpoi.Kube.ApiServer.Tests.Support;

/// <summary>Starts a server and a real KubernetesClient for it.</summary>
internal static class TestServer
{
    public static async Task<(KubeApiServer Server, Kubernetes Client)> StartAsync(KubeApiServerOptions? options = null, bool widgets = true)
    {
        var server = await KubeApiServer.StartAsync(options ?? new KubeApiServerOptions { BookmarkInterval = TimeSpan.FromMilliseconds(200) });
        if (widgets)
        {
            server.RegisterCustomResourceDefinition(Widgets.CrdJson);
        }

        var client = new Kubernetes(new KubernetesClientConfiguration { Host = server.Url, AccessToken = "test-token" });
        return (server, client);
    }
}
