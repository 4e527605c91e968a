using Rpoi.Cli.Support;
using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Rpoi.Sandbox;

namespace Rpoi.Cli.Commands;

/// <summary><c>kubectl rpoi sandbox up|down|status</c>: the whole system on 127.0.0.1 for trying RPOI in five minutes.</summary>
internal static partial class SandboxCommand
{
    private const string PidFile = "sandbox.pid";

    public static Command Create(CommandFactory f)
    {
        var dir = new Option<string>("--dir") { Description = "The sandbox's directory (keys, kubeconfig, π's ledger).", DefaultValueFactory = _ => Path.Combine(".rpoi", "sandbox"), Recursive = true };
        var detach = new Option<bool>("--detach", "-d") { Description = "Run in the background (log in <dir>/sandbox.log); stop it with 'sandbox down'." };
        var apiPort = Flags.WholeNumber("--api-port", 0, 65535, "from 0 to 65535 (a TCP port; 0: any free port)");
        apiPort.Description = "The API server's port on 127.0.0.1 (0: any free port).";
        var escrowPort = Flags.WholeNumber("--escrow-port", 0, 65535, "from 0 to 65535 (a TCP port; 0: any free port)");
        escrowPort.Description = "π's port on 127.0.0.1 (0: any free port).";
        var saveInterval = Flags.WholeNumber("--save-interval", 0, 86400, "of seconds from 0 to 86400");
        saveInterval.Description = "Seconds between saves of the API objects to <dir>/api-objects.json while running, when they changed (0: only at stop).";
        saveInterval.DefaultValueFactory = _ => 30;
        var timeout = Flags.DurationSeconds("--timeout", 90);
        timeout.Description = "How long 'up --detach' waits for the sandbox and 'down' waits for it to stop: seconds, or 90s, 2m, 1h30m.";

        var up = new Command("up", "Start the sandbox: Kubernetes API with simulated GKE TPU node pools, the RPOI CRDs, π on SQLite, the operator, and a funded demo renter; resumes from the objects saved at the last stop.") { detach, apiPort, escrowPort, saveInterval, timeout };
        f.Handle(up, async (ctx, parse, ct) =>
        {
            var directory = ctx.Env.Resolve(parse.GetValue(dir)!);
            if (Running(directory) is { } existing)
            {
                throw new CliException(ExitCodes.Conflict, $"a sandbox already runs from {directory} (pid {existing.Pid}, API {existing.ApiServer}); use it, or stop it with 'kubectl rpoi sandbox down --dir {parse.GetValue(dir)}'");
            }

            if (parse.GetValue(saveInterval) < 0)
            {
                throw new CliException(ExitCodes.Usage, $"--save-interval {parse.GetValue(saveInterval)} is negative; give seconds between saves, or 0 to save only at stop");
            }

            if (parse.GetValue(detach))
            {
                return await DetachAsync(ctx, directory, parse.GetValue(apiPort), parse.GetValue(escrowPort), parse.GetValue(saveInterval), parse.GetValue(timeout), ct).ConfigureAwait(false);
            }

            var options = new SandboxOptions
            {
                Directory = directory,
                ApiPort = parse.GetValue(apiPort),
                EscrowPort = parse.GetValue(escrowPort),
                SaveInterval = TimeSpan.FromSeconds(parse.GetValue(saveInterval)),
                Time = ctx.Time,
            };
            // The hosted web apps inside (API server, π) install their own SIGTERM/SIGINT handlers that swallow the
            // signal, so System.CommandLine never hears it: listen for it here too, BEFORE anything starts. sandbox.json
            // appears at the end of the start, and a 'sandbox down' that reads it at once must find this handler in place,
            // or its SIGTERM only stops the web apps and leaves this process waiting forever.
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
            Sandbox.Sandbox sandbox;
            try
            {
                sandbox = await StartAsync(options, ctx, stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                // Stopped while starting: StartAsync already shut down what had started.
                await ctx.Err.WriteLineAsync("interrupted while the sandbox was starting").ConfigureAwait(false);
                return ExitCodes.Interrupted;
            }

            await using (sandbox.ConfigureAwait(false))
            {
                // Not cancellable: a stop that comes now (sandbox.json is already written) must still end in a clean
                // shutdown below, not in an "interrupted" half-way through writing the pid file.
                await File.WriteAllTextAsync(Path.Combine(directory, PidFile), Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), CancellationToken.None).ConfigureAwait(false);
                PrintNext(ctx.Out, sandbox.State, ctx.Env.WorkingDirectory);
                await ctx.Out.WriteLineAsync("running; Ctrl-C (or 'kubectl rpoi sandbox down') stops it. The keys, π's ledger and the API objects stay for the next 'sandbox up'.").ConfigureAwait(false);
                await ctx.Out.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                try
                {
                    await Task.Delay(Timeout.InfiniteTimeSpan, stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // Ctrl-C or SIGTERM (or the caller's token, as in tests): fall through to a clean shutdown.
                }

                await ctx.Out.WriteLineAsync("stopping the sandbox").ConfigureAwait(false);
                File.Delete(Path.Combine(directory, PidFile));
                return ExitCodes.Ok;
            }

            void OnSignal(PosixSignalContext signal)
            {
                signal.Cancel = true;
                stop.Cancel();
            }
        });

        var down = new Command("down", "Stop the sandbox started with 'sandbox up' (its keys, π's ledger and its API objects stay for the next 'sandbox up').") { timeout };
        f.Handle(down, async (ctx, parse, ct) =>
        {
            var directory = ctx.Env.Resolve(parse.GetValue(dir)!);
            var state = SandboxState.Load(directory);
            var pidText = File.Exists(Path.Combine(directory, PidFile)) ? await File.ReadAllTextAsync(Path.Combine(directory, PidFile), ct).ConfigureAwait(false) : null;
            var pid = state?.Pid ?? (int.TryParse(pidText, out var p) ? p : 0);
            if (pid == 0 || !IsAlive(pid))
            {
                // Stale files of a sandbox that died; none at all when the directory was never created.
                if (Directory.Exists(directory))
                {
                    File.Delete(SandboxState.PathIn(directory));
                    File.Delete(Path.Combine(directory, PidFile));
                }

                throw new CliException(ExitCodes.NotFound, $"no sandbox runs from {directory}; start one with 'kubectl rpoi sandbox up'");
            }

            if (pid == Environment.ProcessId)
            {
                throw new CliException(ExitCodes.Usage, "this process hosts the sandbox; stop it with Ctrl-C");
            }

            Terminate(pid);
            var deadline = ctx.Time.GetUtcNow().AddSeconds(parse.GetValue(timeout));
            while (IsAlive(pid))
            {
                if (ctx.Time.GetUtcNow() > deadline)
                {
                    throw new CliException(ExitCodes.Timeout, $"the sandbox (pid {pid}) did not stop within {parse.GetValue(timeout)}s; look at {Path.Combine(directory, "sandbox.log")}, or end it with 'kill {pid}'");
                }

                await Task.Delay(TimeSpan.FromMilliseconds(100), ctx.Time, ct).ConfigureAwait(false);
            }

            File.Delete(Path.Combine(directory, PidFile));
            await ctx.Out.WriteLineAsync($"sandbox (pid {pid}) stopped; keys, π's ledger and the API objects ({Sandbox.Sandbox.SnapshotFile}) kept in {directory}").ConfigureAwait(false);
            return ExitCodes.Ok;
        });

        var status = new Command("status", "Say whether the sandbox runs, and where.");
        f.Handle(status, async (ctx, parse, ct) =>
        {
            var directory = ctx.Env.Resolve(parse.GetValue(dir)!);
            if (Running(directory) is not { } state)
            {
                throw new CliException(ExitCodes.NotFound, $"no sandbox runs from {directory}; start one with 'kubectl rpoi sandbox up' (or --detach)");
            }

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            var apiOk = await ProbeAsync(http, state.ApiServer + "/version", ct).ConfigureAwait(false);
            var escrowOk = await ProbeAsync(http, state.Escrow + "/healthz", ct).ConfigureAwait(false);
            ctx.Out.WriteLine($"sandbox pid {state.Pid}, up since {state.StartedAt:u}");
            ctx.Out.WriteLine($"  kubernetes API  {state.ApiServer}  {(apiOk ? "ok" : "NOT ANSWERING")}");
            ctx.Out.WriteLine($"  escrow π        {state.Escrow}  {(escrowOk ? "ok" : "NOT ANSWERING")}");
            ctx.Out.WriteLine($"  operator β      {state.LeaserAddress}  {(state.OperatorRunning ? "running" : "not running")}{(state.Settles ? ", settles with π" : ", phase I only")}");
            ctx.Out.WriteLine($"  kubeconfig      {state.Kubeconfig}");
            ctx.Out.WriteLine($"  demo renter     {state.RenterAddress}  key {state.RenterKey}");
            return apiOk && escrowOk ? ExitCodes.Ok : ExitCodes.Unreachable;
        });

        var address = new Option<string?>("--address") { Description = "The account to credit (default: the address of --key)." };
        var amount = new Option<string>("--amount") { Description = "How much π credits, e.g. 100000000uusd.", DefaultValueFactory = _ => "100000000uusd" };
        var fund = new Command("fund", "Credit an account on the sandbox's π (the on-ramp, with the sandbox's admin token).") { address, amount };
        f.Handle(fund, async (ctx, parse, ct) =>
        {
            var directory = ctx.Env.Resolve(parse.GetValue(dir)!);
            if (Running(directory) is not { } state)
            {
                throw new CliException(ExitCodes.NotFound, $"no sandbox runs from {directory}; start one with 'kubectl rpoi sandbox up --detach'");
            }

            if (!Support.Values.TryParseMoney(parse.GetValue(amount), out var money) || money.Amount == "0")
            {
                throw new CliException(ExitCodes.Usage, $"--amount '{parse.GetValue(amount)}' is not a positive amount such as 100000000uusd");
            }

            var account = parse.GetValue(address) ?? ctx.LoadKeys().Identity.Address;
            var token = (await File.ReadAllTextAsync(Path.Combine(directory, "admin.token"), ct).ConfigureAwait(false)).Trim();
            using var http = new HttpClient();
            var admin = new Escrow.Client.EscrowClient(http, new Escrow.Client.EscrowClientOptions { BaseAddress = new Uri(state.Escrow + "/"), Credentials = Escrow.Client.EscrowCredentials.Admin(token), MaxAttempts = 2 });
            var receipt = await BalanceCommand.EscrowCallAsync(
                () => admin.DepositAsync(new Escrow.Client.DepositRequest($"sandbox-fund-{Guid.NewGuid():N}", account, new Escrow.Client.EscrowAmount(money.Amount, money.Denom)), ct), state.Escrow).ConfigureAwait(false);
            ctx.Out.WriteLine($"π credited {receipt.Amount.Amount} {receipt.Amount.Denom} to {receipt.Address} (ledger entry {receipt.Seq})");
            return ExitCodes.Ok;
        });

        return new Command("sandbox", "Run RPOI locally: API server with simulated TPU nodes, π, the operator.") { dir, up, down, status, fund };
    }

    private static async Task<Sandbox.Sandbox> StartAsync(SandboxOptions options, CliContext ctx, CancellationToken ct)
    {
        await ctx.Out.WriteLineAsync($"starting the RPOI sandbox in {options.Directory}").ConfigureAwait(false);
        try
        {
            return await Sandbox.Sandbox.StartAsync(options, ctx.Out, ct).ConfigureAwait(false);
        }
        catch (Kube.ApiServer.SnapshotException e)
        {
            // Its message names the file and the fix; say also what deleting it means for π's ledger.
            throw new CliException(ExitCodes.Conflict, $"{e.Message}. π's ledger keeps the pledges of leases that were in it; 'rm -rf {options.Directory}' starts everything afresh", e);
        }
        catch (IOException e)
        {
            throw new CliException(ExitCodes.Unreachable, $"the sandbox could not start: {e.Message}; is a port taken (--api-port/--escrow-port) or the directory not writable?", e);
        }
    }

    /// <summary>Starts <c>sandbox up</c> again as a background process, waits until it has written sandbox.json, and returns.</summary>
    private static async Task<int> DetachAsync(CliContext ctx, string directory, int apiPort, int escrowPort, int saveIntervalSeconds, int timeoutSeconds, CancellationToken ct)
    {
        Directory.CreateDirectory(directory);
        var log = Path.Combine(directory, "sandbox.log");
        if (OperatingSystem.IsWindows() || !File.Exists("/bin/sh"))
        {
            throw new CliException(ExitCodes.Usage, "--detach needs a Unix shell; run 'sandbox up' in its own terminal instead");
        }

        var (file, prefix) = SelfCommand();
        // sh gives the child /dev/null and the log file as stdio (never this process's pipes, which would keep a
        // caller reading our output waiting forever) and setsid detaches it from this terminal's signals.
        var start = new ProcessStartInfo
        {
            FileName = "/bin/sh",
            UseShellExecute = false,
            WorkingDirectory = ctx.Env.WorkingDirectory,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(File.Exists("/usr/bin/setsid") ? "exec /usr/bin/setsid \"$@\" </dev/null >>\"$RPOI_SANDBOX_LOG\" 2>&1" : "exec \"$@\" </dev/null >>\"$RPOI_SANDBOX_LOG\" 2>&1");
        start.ArgumentList.Add("sh");
        start.ArgumentList.Add(file);
        foreach (var a in prefix)
        {
            start.ArgumentList.Add(a);
        }

        foreach (var a in new[] { "sandbox", "--dir", directory, "up", "--api-port", apiPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "--escrow-port", escrowPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "--save-interval", saveIntervalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["RPOI_SANDBOX_LOG"] = log;
        File.Delete(SandboxState.PathIn(directory));
        using var child = Process.Start(start) ?? throw new CliException(ExitCodes.Internal, $"could not start {file}");
        var deadline = ctx.Time.GetUtcNow().AddSeconds(timeoutSeconds);
        while (true)
        {
            if (SandboxState.Load(directory) is { } state && IsAlive(state.Pid))
            {
                PrintNext(ctx.Out, state, ctx.Env.WorkingDirectory);
                await ctx.Out.WriteLineAsync($"running in the background (pid {state.Pid}, log {log}); stop it with 'kubectl rpoi sandbox down'").ConfigureAwait(false);
                return ExitCodes.Ok;
            }

            if (child.HasExited && child.ExitCode != 0)
            {
                throw new CliException(ExitCodes.Internal, $"the background sandbox exited with code {child.ExitCode}; see {log}");
            }

            if (ctx.Time.GetUtcNow() > deadline)
            {
                throw new CliException(ExitCodes.Timeout, $"the background sandbox did not come up within {timeoutSeconds}s; see {log}");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(200), ctx.Time, ct).ConfigureAwait(false);
        }
    }

    /// <summary>How to run this program again: the apphost itself, or <c>dotnet kubectl-rpoi.dll</c>.</summary>
    private static (string File, string[] Prefix) SelfCommand()
    {
        var process = Environment.ProcessPath ?? throw new CliException(ExitCodes.Internal, "cannot tell this program's path to start it in the background; run 'sandbox up' without --detach");
        var name = Path.GetFileNameWithoutExtension(process);
        return name == "dotnet" ? (process, [typeof(Cli).Assembly.Location]) : (process, []);
    }

    private static SandboxState? Running(string directory) =>
        SandboxState.Load(directory) is { } state && IsAlive(state.Pid) ? state : null;

    private static bool IsAlive(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static void Terminate(int pid)
    {
        // SIGTERM, not Kill: the sandbox shuts down cleanly (π's database closed, state file removed).
        if (OperatingSystem.IsWindows() || Kill(pid, 15) != 0)
        {
            using var p = Process.GetProcessById(pid);
            p.Kill();
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    private static async Task<bool> ProbeAsync(HttpClient http, string url, CancellationToken ct)
    {
        try
        {
            using var response = await http.GetAsync(new Uri(url), ct).ConfigureAwait(false);
            return response.IsSuccessStatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }

    private static void PrintNext(TextWriter w, SandboxState s, string workingDirectory)
    {
        var kc = Path.GetRelativePath(workingDirectory, s.Kubeconfig);
        var key = Path.GetRelativePath(workingDirectory, s.RenterKey);
        w.WriteLine();
        w.WriteLine($"sandbox ready: renter {s.RenterAddress} is funded on π; its key is {key}");
        w.WriteLine("next:");
        w.WriteLine($"  export KUBECONFIG={kc} RPOI_KEY={key}");
        w.WriteLine("  kubectl get nodes -L cloud.google.com/gke-tpu-accelerator,cloud.google.com/gke-tpu-topology");
        w.WriteLine("  kubectl rpoi offers");
        w.WriteLine($"  kubectl rpoi request --name train-1 -n {s.RenterNamespace} --accelerator tpu-v5-lite-podslice --topology 2x4 --chips 8 --duration 1h --deposit 1500000uusd --rent 9000000uusd --apply");
        w.WriteLine($"  kubectl rpoi access train-1 -n {s.RenterNamespace} --wait");
        w.WriteLine("  (no kubectl-rpoi on PATH? use 'dotnet run --project operator/Rpoi.Cli --' instead of 'kubectl rpoi')");
        w.WriteLine();
    }
}
