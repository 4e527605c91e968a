namespace Rpoi.Chaos;

/// <summary>Finds the build output of an operator project (Rpoi.Operator, Rpoi.Escrow) to run it as a child process.</summary>
internal static class Outputs
{
    public static string Dll(string project)
    {
        // A referenced Exe project is copied next to us with its runtimeconfig; failing that, its own bin folder.
        var here = Path.Combine(AppContext.BaseDirectory, project + ".dll");
        if (File.Exists(here) && File.Exists(Path.ChangeExtension(here, ".runtimeconfig.json")))
        {
            return here;
        }

        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent?.Name ?? "Debug";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "operator", project, "bin", configuration, "net10.0", project + ".dll");
            if (File.Exists(Path.Combine(dir.FullName, "Rpoi.Operator.sln")) && File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException($"cannot find the build of {project} (looked for {here} with its runtimeconfig, and operator/{project}/bin/{configuration}/net10.0); run 'dotnet build Rpoi.Operator.sln' first");
    }
}
