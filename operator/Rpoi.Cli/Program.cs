using Rpoi.Cli;

// kubectl-rpoi: everything is in Cli.RunAsync so tests run the same code in-process.
return await Cli.RunAsync(args, Console.Out, Console.Error);
