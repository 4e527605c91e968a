using BenchmarkDotNet.Running;
using Rpoi.Benchmarks;

// RPOI phase I under load (PhaseOneBenchmark.cs): ... -- phase-one [leases] [workers,workers] [idleSeconds] [limitMinutes] [burst|kubectl] [bare] [split]
//   [--escrow sqlite|memory] [--rate N --duration S] [--raw-writes N] [--kubeconfig FILE [--fake-nodes]] (PhaseOneFlags.cs)
if (args.Length > 0 && args[0] == "phase-one")
{
    try
    {
        return await PhaseOneBenchmark.RunAsync(args[1..]);
    }
    catch (Exception e) when (e is ArgumentException or FormatException)
    {
        // A bad argument is the caller's to fix: the message says which and how, no stack trace.
        await Console.Error.WriteLineAsync($"phase-one: {e.Message}");
        return 2;
    }
}

// Not for direct use: the API server process that 'phase-one ... split' starts and drives over stdin (ApiServerProcess.cs).
if (args.Length > 0 && args[0] == PhaseOneServer.Subcommand)
{
    return await PhaseOneServer.RunAsync();
}

// For exercising 'phase-one --kubeconfig': the in-repo API server as a process of its own with the shipped CRDs
// installed; writes a kubeconfig for it to the given path, prints 'ready', and stops when stdin closes.
if (args.Length == 2 && args[0] == "api-server")
{
    await using var api = await Rpoi.Kube.ApiServer.KubeApiServer.StartAsync(PhaseOneServer.ServerOptions());
    foreach (var crd in Rpoi.Sandbox.Sandbox.LoadCrds())
    {
        api.RegisterCustomResourceDefinition(crd);
    }

    api.WriteKubeconfig(args[1], "default");
    Console.WriteLine($"ready {api.Url}");
    await Console.In.ReadToEndAsync();
    return 0;
}

// Escrow settlements/s with full verification (Stopwatch runner, EscrowBenchmark.cs): ... -- escrow [settlements,settlements] [concurrency]
if (args.Length > 0 && args[0] == "escrow")
{
    try
    {
        return await EscrowBenchmark.RunAsync(args[1..]);
    }
    catch (ArgumentException e)
    {
        await Console.Error.WriteLineAsync($"escrow: {e.Message}");
        return 2;
    }
}

// Where π's CPU goes per settlement, stage by stage, in process (EscrowProfile.cs): ... -- escrow-profile [settlements]
if (args.Length > 0 && args[0] == "escrow-profile")
{
    try
    {
        return await EscrowProfile.RunAsync(args[1..]);
    }
    catch (ArgumentException e)
    {
        await Console.Error.WriteLineAsync($"escrow-profile: {e.Message}");
        return 2;
    }
}

// Issue 14 item 1: RSS of the shipped operator with N Active Leases and N Nodes cached, each row checked ready (/readyz):
// ... -- memory [leases] [dir] [variants, e.g. shipped,chart,h96] [runs per variant] [--operator-dir DIR] (MemoryBenchmark.cs)
if (args.Length > 0 && args[0] == "memory")
{
    try
    {
        return await MemoryBenchmark.RunAsync(args[1..]);
    }
    catch (ArgumentException e)
    {
        await Console.Error.WriteLineAsync($"memory: {e.Message}");
        return 2;
    }
}

// Operator runtime throughput (Stopwatch runner, RuntimeBenchmark.cs): ... -- runtime [objects] [updates] [rounds]
if (args.Length > 0 && args[0] == "runtime")
{
    return await RuntimeBenchmark.RunAsync(args[1..]);
}

// Run with: dotnet run -c Release --project tests/Rpoi.Benchmarks -- --filter '*'
// Protocol CPU time per operation (robust on a busy machine): ... -- --protocol-cpu-time
if (args.Length > 0 && args[0] == "--protocol-cpu-time")
{
    return ProtocolCpuTime.Run(Console.Out);
}

BenchmarkSwitcher.FromAssembly(typeof(ProtocolBenchmarks).Assembly).Run(args);
return 0;
