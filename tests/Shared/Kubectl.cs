using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Rpoi.Kube.ApiServer;

namespace Rpoi.Tests.Shared;

/// <summary>Result of one kubectl run.</summary>
public sealed record KubectlResult(int ExitCode, string Stdout, string Stderr, string CommandLine)
{
    public override string ToString() => $"$ {CommandLine}\nexit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>Runs a real kubectl binary against a test server (with its own HOME) or a real cluster (with the user's HOME, for auth plugins), each run with its own discovery cache.</summary>
public sealed class Kubectl : IDisposable
{
    private readonly string _binary;
    private readonly string _home;
    private readonly string _kubeconfig;
    private readonly bool _ownHome = true;

    /// <summary>kubectl against an in-memory server (a kubeconfig is written for it).</summary>
    public Kubectl(string binary, KubeApiServer server)
    {
        _binary = binary;
        _home = Directory.CreateTempSubdirectory("kubectl-test-").FullName;
        _kubeconfig = server.WriteKubeconfig(Path.Combine(_home, "kubeconfig"));
    }

    /// <summary>kubectl against a <see cref="TestCluster"/> (the test server or the real cluster).</summary>
    public Kubectl(string binary, TestCluster cluster)
    {
        _binary = binary;
        _home = Directory.CreateTempSubdirectory("kubectl-test-").FullName;
        _kubeconfig = cluster.KubeconfigPath;

        // A real cluster's kubeconfig may authenticate through an exec plugin (GKE's gke-gcloud-auth-plugin reads
        // ~/.config/gcloud): keep the user's HOME there; the discovery cache still goes to this run's directory.
        _ownHome = !cluster.IsReal;
    }

    /// <summary>The binary this instance runs.</summary>
    public string Binary => _binary;

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

    public Task<KubectlResult> RunAsync(TimeSpan timeout, params string[] args) => RunAsync(timeout, null, args);

    /// <summary>
    /// Runs kubectl; <paramref name="stdoutLines"/>, when given, receives each stdout line as it is printed, so a test
    /// can wait for output of a long-running command (<c>get -w</c>) before acting.
    /// </summary>
    public async Task<KubectlResult> RunAsync(TimeSpan timeout, ConcurrentQueue<string>? stdoutLines, params string[] args)
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
        if (_ownHome)
        {
            psi.Environment["HOME"] = _home;
        }

        psi.Environment["KUBECACHEDIR"] = Path.Combine(_home, "cache");
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {_binary}");
        var stdout = ReadLinesAsync(process.StandardOutput, stdoutLines);
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

    private static async Task<string> ReadLinesAsync(StreamReader reader, ConcurrentQueue<string>? lines)
    {
        var all = new StringBuilder();
        while (await reader.ReadLineAsync() is { } line)
        {
            all.Append(line).Append('\n');
            lines?.Enqueue(line);
        }

        return all.ToString();
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
public static class KubectlAssert
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
