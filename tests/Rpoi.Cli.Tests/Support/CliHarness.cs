using System.Diagnostics;

namespace Rpoi.Cli.Tests.Support;

/// <summary>The result of one CLI run.</summary>
public sealed record CliResult(int ExitCode, string Out, string Err)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Out}\n--- stderr\n{Err}";
}

/// <summary>A temporary directory that is its own HOME, so nothing touches the real ~/.rpoi or ~/.kube.</summary>
public sealed class TempHome : IDisposable
{
    public TempHome()
    {
        Path = Directory.CreateTempSubdirectory("rpoi-cli-").FullName;
    }

    public string Path { get; }

    public Dictionary<string, string> Variables { get; } = [];

    public CliEnvironment Environment(TimeProvider? time = null) => new()
    {
        Time = time ?? TimeProvider.System,
        WorkingDirectory = Path,
        PollInterval = TimeSpan.FromMilliseconds(100),
        Variable = name => name == "HOME" ? Path : Variables.GetValueOrDefault(name),
    };

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public async Task<CliResult> RunAsync(params string[] args) => await RunAsync(null, args);

    public Task<CliResult> RunAsync(TimeProvider? time, params string[] args) => RunAsync(time, CancellationToken.None, args);

    public async Task<CliResult> RunAsync(TimeProvider? time, CancellationToken cancellationToken, params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await Cli.RunAsync(args, TextWriter.Synchronized(stdout), TextWriter.Synchronized(stderr), Environment(time), cancellationToken);
        return new CliResult(code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>
    /// The environment of a user who installed the plugin: HOME, this home's variables, and a PATH whose first
    /// directory holds <c>kubectl-rpoi</c> (running the built CLI) and the shipped <c>kubectl_complete-rpoi</c>.
    /// </summary>
    public Dictionary<string, string> PluginEnvironment()
    {
        var bin = Directory.CreateDirectory(File("bin")).FullName;
        var plugin = System.IO.Path.Combine(bin, "kubectl-rpoi");
        if (!System.IO.File.Exists(plugin))
        {
            System.IO.File.WriteAllText(plugin, $"#!/bin/sh\nexec dotnet \"{System.IO.Path.Combine(AppContext.BaseDirectory, "kubectl-rpoi.dll")}\" \"$@\"\n");
            System.IO.File.SetUnixFileMode(plugin, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            System.IO.File.Copy(System.IO.Path.Combine(AppContext.BaseDirectory, "kubectl_complete-rpoi"), System.IO.Path.Combine(bin, "kubectl_complete-rpoi"));
        }

        var env = new Dictionary<string, string>(Variables) { ["HOME"] = Path };
        env["PATH"] = bin + System.IO.Path.PathSeparator + System.Environment.GetEnvironmentVariable("PATH");
        return env;
    }

    /// <summary><c>kubectl rpoi &lt;args&gt;</c> through the real kubectl binary, which finds the plugin on PATH.</summary>
    public Task<CliResult> KubectlRpoiAsync(params string[] args) => Processes.RunAsync("kubectl", ["rpoi", .. args], Path, PluginEnvironment());

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // A process that still holds a file (e.g. a log) must not fail the test run.
        }
    }
}

/// <summary>Polls a condition instead of sleeping for a fixed time.</summary>
public static class Eventually
{
    public static async Task<T> ValueAsync<T>(Func<Task<T?>> probe, TimeSpan timeout, string what)
        where T : class
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var value = await probe();
            if (value is not null)
            {
                return value;
            }

            if (watch.Elapsed > timeout)
            {
                throw new TimeoutException($"not true within {timeout.TotalSeconds:0}s: {what}");
            }

            await Task.Yield();
            await Task.Delay(50);
        }
    }

    public static Task TrueAsync(Func<bool> condition, TimeSpan timeout, string what) =>
        ValueAsync<object>(() => Task.FromResult(condition() ? new object() : null), timeout, what);
}

/// <summary>Runs a real process (kubectl, the built kubectl-rpoi) and captures its output.</summary>
public static class Processes
{
    public static async Task<CliResult> RunAsync(string file, IEnumerable<string> args, string workingDirectory, IDictionary<string, string>? env = null, TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            start.Environment[k] = v;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(120));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in time");
        }

        return new CliResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>kubectl with its own HOME (discovery cache) and an explicit kubeconfig.</summary>
    public static Task<CliResult> KubectlAsync(string home, string kubeconfig, params string[] args) =>
        RunAsync("kubectl", ["--kubeconfig", kubeconfig, .. args], home, new Dictionary<string, string> { ["HOME"] = home });
}
