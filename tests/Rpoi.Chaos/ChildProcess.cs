using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Rpoi.Chaos;

/// <summary>
/// A real child process (the operator or π from their own build outputs, run by <c>dotnet</c>), killed with SIGKILL
/// (<see cref="Process.Kill()"/> on Linux) so it gets no chance to clean up, as when a node dies or the OOM killer strikes.
/// </summary>
internal sealed partial class ChildProcess : IAsyncDisposable
{
    private readonly Process process;
    private readonly Task pumps;
    private readonly TextWriter log;
    private readonly Lock gate = new();
    private readonly List<string> tail = [];

    private ChildProcess(string name, Process process, TextWriter log)
    {
        Name = name;
        this.process = process;
        this.log = log;
        pumps = Task.WhenAll(PumpAsync(process.StandardOutput), PumpAsync(process.StandardError));
    }

    /// <summary>How the run calls it in its summary (operator-a, operator-b, escrow).</summary>
    public string Name { get; }

    /// <summary>The leader-election identity this process logged when it became leader, or null.</summary>
    public string? LeaderIdentity { get; private set; }

    /// <summary>True once it exited (killed or on its own).</summary>
    public bool HasExited => process.HasExited;

    /// <summary>Starts <c>dotnet &lt;dll&gt; args</c> with <paramref name="environment"/> added.</summary>
    public static ChildProcess Start(string name, string dll, IEnumerable<string> args, IReadOnlyDictionary<string, string> environment, string workingDirectory, TextWriter log)
    {
        var info = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        info.ArgumentList.Add(dll);
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        foreach (var (k, v) in environment)
        {
            info.Environment[k] = v;
        }

        // The children log plainly; colour codes would only clutter the captured lines.
        info.Environment["DOTNET_SYSTEM_CONSOLE_ALLOW_ANSI_COLOR_REDIRECTION"] = "false";
        var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {info.FileName} {dll}");
        return new ChildProcess(name, process, log);
    }

    /// <summary>SIGKILL, then wait until the kernel has reaped it.</summary>
    public async Task KillAsync()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: false);
        }

        await process.WaitForExitAsync().ConfigureAwait(false);
        await pumps.ConfigureAwait(false);
    }

    /// <summary>The last lines it printed (for error messages).</summary>
    public string Tail()
    {
        lock (gate)
        {
            return string.Join('\n', tail);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync().ConfigureAwait(false);
        process.Dispose();
    }

    /// <summary>The dotnet host: the one that runs us when it is known (dotnet test sets DOTNET_HOST_PATH), else dotnet on PATH.</summary>
    private static string DotnetHost()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host))
        {
            return host;
        }

        return Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : "dotnet";
    }

    private async Task PumpAsync(StreamReader reader)
    {
        while (await reader.ReadLineAsync().ConfigureAwait(false) is { } line)
        {
            if (LeaderLine().Match(line) is { Success: true } m)
            {
                LeaderIdentity = m.Groups[1].Value;
            }

            lock (gate)
            {
                tail.Add(line);
                if (tail.Count > 40)
                {
                    tail.RemoveAt(0);
                }
            }

            if (line.Contains("fail:", StringComparison.Ordinal) || line.Contains("crit:", StringComparison.Ordinal))
            {
                lock (log)
                {
                    log.WriteLine($"[{Name}] {line}");
                }
            }
        }
    }

    // Rpoi.Kube's LeaderElectionRunner logs "<identity> became leader of <lease>".
    [GeneratedRegex(@"(\S+) became leader of rpoi-operator-leader")]
    private static partial Regex LeaderLine();
}
