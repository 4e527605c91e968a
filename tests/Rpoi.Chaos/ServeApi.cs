using Rpoi.Kube.ApiServer;

namespace Rpoi.Chaos;

/// <summary>
/// <c>serve-api &lt;kubeconfig-path&gt;</c>: the API test server in a process of its own, reached only through the
/// kubeconfig it writes (bearer token required, as a real server does), so the real-cluster mode can be tested on the
/// code path a real cluster takes. It prints <c>serving &lt;url&gt;</c> once the file is written and stops when stdin closes.
/// </summary>
internal static class ServeApi
{
    public static async Task<int> RunAsync(string kubeconfigPath)
    {
        var token = $"chaos-{Guid.NewGuid():N}";
        await using var server = await KubeApiServer.StartAsync(ChaosCluster.ServerOptions([]) with { Token = token, Authenticate = t => t == token }).ConfigureAwait(false);
        var temp = kubeconfigPath + ".tmp";
        server.WriteKubeconfig(temp);
        // Renamed into place, so a reader never sees half a file.
        File.Move(temp, kubeconfigPath, overwrite: true);
        Console.WriteLine($"serving {server.Url}");
        await Task.Run(() =>
        {
            using var stdin = Console.OpenStandardInput();
            var buffer = new byte[256];
            while (stdin.Read(buffer) > 0)
            {
            }
        }).ConfigureAwait(false);
        return 0;
    }
}
