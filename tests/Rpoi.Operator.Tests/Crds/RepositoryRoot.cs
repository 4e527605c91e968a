namespace Rpoi.Operator.Tests.Crds;

/// <summary>Finds the repository root: the folder holding Rpoi.Operator.sln, above the test assembly.</summary>
internal static class RepositoryRoot
{
    public static string Path { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "Rpoi.Operator.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No Rpoi.Operator.sln above {AppContext.BaseDirectory}.");
    }
}
