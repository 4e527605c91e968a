namespace Rpoi.Operator.CrdGeneration;

/// <summary>
/// The <c>generate-crds &lt;dir&gt;...</c> command: writes the CRDs of the entity types into each
/// directory (the repository writes <c>crds/</c> and the chart's copy, <c>charts/rpoi-operator/crds/</c>).
/// </summary>
public static class GenerateCrdsCommand
{
    /// <summary>Runs the command; returns the process exit code.</summary>
    public static int Run(IReadOnlyList<string> directories, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(directories);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        try
        {
            var generator = CrdGenerator.ForThisAssembly();
            foreach (var directory in directories)
            {
                foreach (var path in generator.WriteAll(directory))
                {
                    output.WriteLine($"wrote {path}");
                }
            }

            return 0;
        }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException or IOException or UnauthorizedAccessException)
        {
            error.WriteLine($"generate-crds failed: {e.Message}");
            return 1;
        }
    }
}
