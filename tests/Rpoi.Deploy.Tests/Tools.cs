using System.Diagnostics;

namespace Rpoi.Deploy.Tests;

/// <summary>The repository root, and the real helm and kubectl binaries the tests run.</summary>
internal static class Tools
{
    public static string Root { get; } = FindRoot();

    public static string ChartDir => Path.Combine(Root, "charts", "rpoi-operator");

    /// <summary>helm 4.1.4: $RPOI_HELM, else .tools/bin/helm. Fails (never skips) when absent.</summary>
    public static string Helm => Find("RPOI_HELM", "helm");

    /// <summary>kubectl 1.35: $RPOI_KUBECTL_135, else .tools/bin/kubectl. Fails (never skips) when absent.</summary>
    public static string Kubectl => Find("RPOI_KUBECTL_135", "kubectl");

    /// <summary>Runs a tool to completion (60 s at most) and returns its exit code and output.</summary>
    public static ToolResult Run(string tool, params string[] args)
    {
        var start = new ProcessStartInfo(tool)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Root,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // Keep the tools away from any real cluster or user config on this machine.
        start.Environment["KUBECONFIG"] = "/dev/null";
        start.Environment["HELM_CACHE_HOME"] = Path.Combine(Path.GetTempPath(), "rpoi-helm-cache");
        start.Environment["HELM_CONFIG_HOME"] = Path.Combine(Path.GetTempPath(), "rpoi-helm-config");
        start.Environment["HELM_DATA_HOME"] = Path.Combine(Path.GetTempPath(), "rpoi-helm-data");

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {tool}.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{Path.GetFileName(tool)} {string.Join(' ', args)} did not finish in 60 s.");
        }

        return new ToolResult(process.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
    }

    /// <summary>Runs a tool and fails the test with its output unless it exits with 0.</summary>
    public static string RunOk(string tool, params string[] args)
    {
        var result = Run(tool, args);
        Assert.True(result.ExitCode == 0,
            $"{Path.GetFileName(tool)} {string.Join(' ', args)} exited {result.ExitCode}:\n{result.Stderr}\n{result.Stdout}");
        return result.Stdout;
    }

    private static string Find(string variable, string name)
    {
        var fromEnv = Environment.GetEnvironmentVariable(variable);
        var path = string.IsNullOrEmpty(fromEnv) ? Path.Combine(Root, ".tools", "bin", name) : fromEnv;
        if (!File.Exists(path))
        {
            Assert.Fail($"{name} not found at {path} (from ${variable} or .tools/bin). These tests need the real binary: " +
                "run `bash .ci/install-tools` from the repository root (CI does).");
        }

        return path;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Rpoi.Operator.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No Rpoi.Operator.sln above {AppContext.BaseDirectory}.");
    }
}

/// <summary>What a tool run printed and how it exited.</summary>
internal sealed record ToolResult(int ExitCode, string Stdout, string Stderr);
