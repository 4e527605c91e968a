using Rpoi.Operator.CrdGeneration;

// Commands are dispatched here; keep each one a single call so the operator host can be added beside them.
// No arguments runs the operator, as the chart's Deployment starts it.
return args switch
{
    [] => await Rpoi.Operator.Hosting.OperatorApp.RunAsync([]),
    ["run", .. var rest] => await Rpoi.Operator.Hosting.OperatorApp.RunAsync(rest),
    ["generate-crds", .. var directories] when directories.Length > 0 => GenerateCrdsCommand.Run(directories, Console.Out, Console.Error),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Rpoi.Operator [run [flags]]                      run the operator (flags: docs/phase-one.md)");
    Console.Error.WriteLine("       Rpoi.Operator generate-crds <directory> [<directory>...]");
    Console.Error.WriteLine("  writes rpoi.io_leases.yaml and rpoi.io_ratings.yaml into each directory");
    return 2;
}
