using System.Diagnostics;
using System.Text;

namespace Rpoi.Kube.ApiServer.Tests.Support;

/// <summary>Result of one kubectl run.</summary>
internal sealed record KubectlResult(int ExitCode, string Stdout, string Stderr, string CommandLine)
{
    public override string ToString() => $"$ {CommandLine}\nexit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>Runs a real kubectl binary against a test server with a temporary kubeconfig and cache.</summary>
internal sealed class Kubectl : IDisposable
{
    private readonly string _binary;
    private readonly string _home;
    private readonly string _kubeconfig;

    public Kubectl(string binary, KubeApiServer server)
    {
        _binary = binary;
        _home = Directory.CreateTempSubdirectory("kubectl-test-").FullName;
        _kubeconfig = server.WriteKubeconfig(Path.Combine(_home, "kubeconfig"));
    }

    /// <summary>The kubectl binaries to test with: 1.32 at /usr/bin/kubectl and 1.35 when present.</summary>
    public static IEnumerable<object[]> Binaries()
    {
        var candidates = new List<string> { "/usr/bin/kubectl" };
        if (Environment.GetEnvironmentVariable("RPOI_KUBECTL_135") is { Length: > 0 } env)
        {
            candidates.Add(env);
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Rpoi.Operator.sln")))
            {
                candidates.Add(Path.Combine(dir.FullName, ".tools", "bin", "kubectl"));
                break;
            }
        }

        var found = candidates.Where(File.Exists).Select(Path.GetFullPath).Distinct().ToList();
        if (found.Count == 0)
        {
            found.Add("kubectl"); // from PATH; the test then fails loudly if there is none
        }

        return found.Select(b => new object[] { b });
    }

    public string WriteFile(string name, string content)
    {
        var path = Path.Combine(_home, name);
        File.WriteAllText(path, content);
        return path;
    }

    public Task<KubectlResult> RunAsync(params string[] args) => RunAsync(TimeSpan.FromSeconds(60), args);

    public async Task<KubectlResult> RunAsync(TimeSpan timeout, params string[] args)
    {
        var psi = new ProcessStartInfo(_binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["KUBECONFIG"] = _kubeconfig;
        psi.Environment["HOME"] = _home;
        psi.Environment["KUBECACHEDIR"] = Path.Combine(_home, "cache");
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {_binary}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            var timedOut = new KubectlResult(-1, await stdout, await stderr, $"{_binary} {string.Join(' ', args)}");
            throw new TimeoutException($"kubectl did not finish within {timeout}:\n{timedOut}");
        }

        return new KubectlResult(process.ExitCode, await stdout, await stderr, $"{_binary} {string.Join(' ', args)}");
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_home, recursive: true);
        }
        catch (IOException)
        {
            // A kubectl still exiting may hold a cache file; the temp directory is cleaned by the OS.
        }
    }
}

/// <summary>Assertion helpers that put the whole kubectl transcript in the failure message.</summary>
internal static class KubectlAssert
{
    public static KubectlResult Succeeded(KubectlResult result)
    {
        Assert.True(result.ExitCode == 0, $"kubectl failed:\n{result}");
        return result;
    }

    public static void Contains(string expected, KubectlResult result)
    {
        var all = new StringBuilder().Append(result.Stdout).Append(result.Stderr).ToString();
        Assert.True(all.Contains(expected, StringComparison.Ordinal), $"expected \"{expected}\" in kubectl output:\n{result}");
    }
}
