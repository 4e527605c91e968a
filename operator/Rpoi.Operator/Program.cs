using Rpoi.Operator.CrdGeneration;

// Commands are dispatched here; keep each one a single call so the operator host can be added beside them.
return args switch
{
    ["generate-crds", .. var directories] when directories.Length > 0 => GenerateCrdsCommand.Run(directories, Console.Out, Console.Error),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: Rpoi.Operator generate-crds <directory> [<directory>...]");
    Console.Error.WriteLine("  writes rpoi.io_leases.yaml and rpoi.io_ratings.yaml into each directory");
    return 2;
}
