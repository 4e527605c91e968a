namespace Rpoi.Operator.Tests.Support;

/// <summary>Paths inside the repository, found by walking up from the test binaries to the solution file.</summary>
public static class RepoPaths
{
    /// <summary>The repository root.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>The generated CRDs.</summary>
    public static string Crds => Path.Combine(Root, "crds");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Rpoi.Operator.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"Rpoi.Operator.sln not found above {AppContext.BaseDirectory}; run the tests from the repository");
    }
}
