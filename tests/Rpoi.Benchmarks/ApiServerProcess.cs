using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Threading.Channels;
using Rpoi.Kube.ApiServer;

namespace Rpoi.Benchmarks;

/// <summary>
/// Child side of the phase I benchmark's <c>split</c> mode (hidden subcommand <c>phase-one-server</c>): hosts the
/// in-memory API server in a process of its own, so the benchmark can read the CPU of the API server and of the
/// operator apart, as on a real cluster where the API server runs elsewhere. It obeys one command per line on stdin and
/// answers on stdout; it exits when stdin closes (also when the parent dies).
/// <list type="bullet">
/// <item><c>start [ms]</c>: starts a fresh server (each write delayed by <c>ms</c> when given), answers <c>started &lt;url&gt; &lt;token&gt;</c>.</item>
/// <item><c>stop</c>: stops it (open watches end), answers <c>stopped</c>.</item>
/// <item><c>count</c>: answers <c>count &lt;n&gt;</c>, the requests the server answered since <c>start</c>.</item>
/// <item><c>requests &lt;from&gt; &lt;to&gt;</c>: answers one tab-separated line per request (method, status, path,
/// query, content type) with index from..to-1, then <c>end</c>.</item>
/// <item><c>gc</c>: answers <c>gc &lt;gen0&gt; &lt;gen1&gt; &lt;gen2&gt; &lt;server|workstation&gt;</c>.</item>
/// <item><c>kubeconfig &lt;namespace&gt; &lt;path&gt;</c>: writes a kubeconfig for the server, answers <c>ok</c>.</item>
/// </list>
/// A failed command answers <c>error &lt;message&gt;</c>.
/// </summary>
internal static class PhaseOneServer
{
    public const string Subcommand = "phase-one-server";

    /// <summary>The options of the benchmark's API server, in-process or in the child.</summary>
    public static KubeApiServerOptions ServerOptions() => new()
    {
        BookmarkInterval = TimeSpan.FromSeconds(5),
        WatchHistorySize = 200_000,
        WatchQueueCapacity = 100_000,
    };

    /// <summary>
    /// Every write waits <paramref name="delay"/> before it is served (concurrent writes wait side by side), as on a real
    /// API server whose etcd commit takes milliseconds: one client writing one object after another gets 1/delay writes/s.
    /// </summary>
    public static void DelayWrites(KubeApiServer server, TimeSpan delay)
    {
        ArgumentNullException.ThrowIfNull(server);
        foreach (var verb in (string[])["create", "update", "patch", "delete", "deletecollection"])
        {
            server.Faults.AddLatency(delay, verb);
        }
    }

    public static async Task<int> RunAsync()
    {
        // stdin is read on a thread of its own: a console read blocks, and a blocked pool thread would slow the server.
        var commands = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var reader = new Thread(() =>
        {
            using var stdin = new StreamReader(Console.OpenStandardInput(), new UTF8Encoding(false));
            while (stdin.ReadLine() is { } line)
            {
                commands.Writer.TryWrite(line);
            }

            commands.Writer.TryComplete();
        })
        { IsBackground = true, Name = "phase-one-server stdin" };
        reader.Start();

        await using var stdout = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false)) { AutoFlush = false, NewLine = "\n" };
        RequestTap? tap = null;
        try
        {
            await foreach (var line in commands.Reader.ReadAllAsync())
            {
                var parts = line.Split(' ', 3, StringSplitOptions.RemoveEmptyEntries);
                try
                {
                    switch (parts.FirstOrDefault())
                    {
                        case "start" when tap is null:
                            tap = await RequestTap.StartAsync(ServerOptions());
                            if (parts.Length > 1)
                            {
                                DelayWrites(tap.Server, TimeSpan.FromMilliseconds(int.Parse(parts[1], CultureInfo.InvariantCulture)));
                            }

                            await stdout.WriteLineAsync($"started {tap.Server.Url} {tap.Server.Options.Token}");
                            break;
                        case "stop" when tap is not null:
                            await tap.DisposeAsync();
                            tap = null;
                            await stdout.WriteLineAsync("stopped");
                            break;
                        case "count" when tap is not null:
                            await stdout.WriteLineAsync(FormattableString.Invariant($"count {tap.Count()}"));
                            break;
                        case "requests" when tap is not null && parts.Length == 3:
                            var from = int.Parse(parts[1], CultureInfo.InvariantCulture);
                            var to = int.Parse(parts[2], CultureInfo.InvariantCulture);
                            foreach (var r in tap.Range(from, to))
                            {
                                await stdout.WriteLineAsync(FormattableString.Invariant($"{r.Method}\t{r.StatusCode}\t{r.Path}\t{r.Query}\t{r.ContentType}"));
                            }

                            await stdout.WriteLineAsync("end");
                            break;
                        case "gc":
                            await stdout.WriteLineAsync(FormattableString.Invariant(
                                $"gc {GC.CollectionCount(0)} {GC.CollectionCount(1)} {GC.CollectionCount(2)} {(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")}"));
                            break;
                        case "kubeconfig" when tap is not null && parts.Length == 3:
                            tap.Server.WriteKubeconfig(parts[2], parts[1]);
                            await stdout.WriteLineAsync("ok");
                            break;
                        default:
                            await stdout.WriteLineAsync($"error unknown command '{line}' in this state (server {(tap is null ? "stopped" : "running")}); "
                                + "commands: start, stop, count, requests <from> <to>, gc, kubeconfig <namespace> <path>");
                            break;
                    }
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    await stdout.WriteLineAsync($"error {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
                }

                await stdout.FlushAsync();
            }
        }
        finally
        {
            if (tap is not null)
            {
                await tap.DisposeAsync();
            }
        }

        return 0;
    }

    /// <summary>
    /// A server plus every request it answered since it started. The server's own log keeps only the last
    /// <see cref="KubeApiServer.RequestLogSize"/> requests and one round sends more, so the log is read every 100 ms
    /// and new entries (found by reference, each entry being its own object) are appended here.
    /// </summary>
    private sealed class RequestTap : IAsyncDisposable
    {
        private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);
        private readonly List<RecordedRequest> seen = [];
        private readonly Lock gate = new();
        private readonly CancellationTokenSource stop = new();
        private readonly Task polling;
        private RecordedRequest? last;
        private bool lost;

        private RequestTap(KubeApiServer server)
        {
            Server = server;
            polling = Task.Run(PollLoopAsync);
        }

        public KubeApiServer Server { get; }

        public static async Task<RequestTap> StartAsync(KubeApiServerOptions options) => new(await KubeApiServer.StartAsync(options));

        public int Count()
        {
            lock (gate)
            {
                Poll();
                return seen.Count;
            }
        }

        public List<RecordedRequest> Range(int from, int to)
        {
            lock (gate)
            {
                Poll();
                if (from < 0 || to < from || to > seen.Count)
                {
                    throw new ArgumentOutOfRangeException(nameof(to), $"requests {from}..{to} asked, {seen.Count} logged; ask within 0..{seen.Count}");
                }

                return seen.GetRange(from, to - from);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await stop.CancelAsync();
            try
            {
                await polling;
            }
            catch (OperationCanceledException)
            {
            }

            await Server.DisposeAsync();
            stop.Dispose();
        }

        private async Task PollLoopAsync()
        {
            using var timer = new PeriodicTimer(Interval);
            while (await timer.WaitForNextTickAsync(stop.Token))
            {
                lock (gate)
                {
                    if (!lost)
                    {
                        Append();
                    }
                }
            }
        }

        /// <summary>Appends the log's new entries; counts are refused from the moment one read missed entries.</summary>
        private void Poll()
        {
            if (!lost)
            {
                Append();
            }

            if (lost)
            {
                throw new InvalidOperationException($"the server's request log ({KubeApiServer.RequestLogSize} entries) rolled over between two reads {Interval.TotalMilliseconds:0} ms apart; counts would be short, so none are given");
            }
        }

        private void Append()
        {
            var log = Server.Requests;
            var from = 0;
            if (last is not null)
            {
                from = -1;
                for (var k = log.Count - 1; k >= 0; k--)
                {
                    if (ReferenceEquals(log[k], last))
                    {
                        from = k + 1;
                        break;
                    }
                }

                if (from < 0)
                {
                    lost = true;
                    return;
                }
            }

            for (var k = from; k < log.Count; k++)
            {
                seen.Add(log[k]);
            }

            if (log.Count > 0)
            {
                last = log[^1];
            }
        }
    }
}

/// <summary>
/// Parent side of the <c>split</c> mode: the <see cref="PhaseOneServer"/> child process, started from this same build
/// (the apphost, or <c>dotnet</c> with this assembly), and the line protocol to it. Its CPU is read from outside
/// (<see cref="Process.TotalProcessorTime"/>, /proc on Linux), so it covers every thread of the child.
/// </summary>
internal sealed class ApiServerProcess : IAsyncDisposable
{
    private readonly Process process;
    private readonly SemaphoreSlim gate = new(1, 1);
    private readonly Task stderrPump;

    private ApiServerProcess(Process process)
    {
        this.process = process;
        stderrPump = Task.Run(async () =>
        {
            while (await process.StandardError.ReadLineAsync() is { } line)
            {
                await Console.Error.WriteLineAsync($"[api server process {process.Id}] {line}");
            }
        });
    }

    public int Id => process.Id;

    /// <summary>CPU time of the child so far, read fresh.</summary>
    public TimeSpan TotalProcessorTime
    {
        get
        {
            process.Refresh();
            return process.TotalProcessorTime;
        }
    }

    public static ApiServerProcess Start()
    {
        var host = Environment.ProcessPath ?? throw new InvalidOperationException("the path of this process's executable is unknown; cannot start the API server process");
        var info = new ProcessStartInfo(host)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardInputEncoding = new UTF8Encoding(false),
        };

        // Under 'dotnet Rpoi.Benchmarks.dll' the host needs the assembly; under the apphost (dotnet run) it does not.
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
        {
            info.ArgumentList.Add(typeof(ApiServerProcess).Assembly.Location);
        }

        info.ArgumentList.Add(PhaseOneServer.Subcommand);
        var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {host} {PhaseOneServer.Subcommand}");
        process.StandardInput.NewLine = "\n";
        return new ApiServerProcess(process);
    }

    /// <summary>Starts a fresh API server in the child; returns its URL and bearer token.</summary>
    public async Task<(string Url, string Token)> StartServerAsync(int? writeLatencyMs = null)
    {
        var words = (await AskAsync(writeLatencyMs is { } ms ? FormattableString.Invariant($"start {ms}") : "start", "started")).Split(' ');
        return (words[1], words[2]);
    }

    public Task StopServerAsync() => AskAsync("stop", "stopped");

    public async Task<int> CountAsync() => int.Parse((await AskAsync("count", "count")).Split(' ')[1], CultureInfo.InvariantCulture);

    public async Task<int[]> GcCountsAsync() =>
        (await AskAsync("gc", "gc")).Split(' ')[1..4].Select(w => int.Parse(w, CultureInfo.InvariantCulture)).ToArray();

    public Task WriteKubeconfigAsync(string path, string @namespace) => AskAsync($"kubeconfig {@namespace} {path}", "ok");

    /// <summary>The requests the child's server answered with index <paramref name="from"/> to <paramref name="to"/> - 1.</summary>
    public async Task<List<RecordedRequest>> RequestsAsync(int from, int to)
    {
        await gate.WaitAsync();
        try
        {
            await process.StandardInput.WriteLineAsync(FormattableString.Invariant($"requests {from} {to}"));
            await process.StandardInput.FlushAsync();
            var requests = new List<RecordedRequest>(to - from);
            while (true)
            {
                var line = await ReadAnswerAsync("requests");
                if (line == "end")
                {
                    return requests;
                }

                var f = line.Split('\t');
                if (f.Length != 5)
                {
                    throw new InvalidOperationException($"the API server process answered 'requests' with a line that is not 5 tab-separated fields: '{line}'");
                }

                requests.Add(new RecordedRequest(f[0], f[2], f[3], f[4].Length == 0 ? null : f[4], int.Parse(f[1], CultureInfo.InvariantCulture)));
            }
        }
        finally
        {
            gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Closing stdin is the child's signal to stop its server and exit; it is killed only if it does not.
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            await process.WaitForExitAsync();
        }

        await stderrPump;
        process.Dispose();
        gate.Dispose();
    }

    private async Task<string> AskAsync(string command, string expected)
    {
        await gate.WaitAsync();
        try
        {
            await process.StandardInput.WriteLineAsync(command);
            await process.StandardInput.FlushAsync();
            var answer = await ReadAnswerAsync(command);
            if (answer != expected && !answer.StartsWith(expected + " ", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"the API server process answered '{command}' with '{answer}', expected '{expected} ...'");
            }

            return answer;
        }
        finally
        {
            gate.Release();
        }
    }

    private async Task<string> ReadAnswerAsync(string command)
    {
        var line = await process.StandardOutput.ReadLineAsync();
        if (line is null)
        {
            await process.WaitForExitAsync();
            throw new InvalidOperationException($"the API server process {process.Id} exited (code {process.ExitCode}) before it answered '{command}'; its stderr is above");
        }

        return line.StartsWith("error ", StringComparison.Ordinal)
            ? throw new InvalidOperationException($"the API server process answered '{command}' with: {line[6..]}")
            : line;
    }
}
