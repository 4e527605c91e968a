using Rpoi.Operator.CrdGeneration;

namespace Rpoi.Operator.Tests.Crds;

/// <summary>
/// The checked-in CRDs (crds/ and the chart's copy) are exactly what the generator makes from the
/// entity types today: one source of truth, as Kueue's <c>git diff --exit-code</c> after regeneration.
/// </summary>
public sealed class CrdDriftTests : IDisposable
{
    private static readonly string[] CheckedInDirectories = ["crds", "charts/rpoi-operator/crds"];

    private readonly string temp = Directory.CreateTempSubdirectory("rpoi-crds-").FullName;

    public void Dispose() => Directory.Delete(temp, recursive: true);

    [Fact]
    public void Checked_in_crds_are_byte_identical_to_a_fresh_generation()
    {
        var exit = GenerateCrdsCommand.Run([temp], TextWriter.Null, TextWriter.Null);
        Assert.Equal(0, exit);
        var generated = Directory.GetFiles(temp, "*.yaml").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["rpoi.io_leases.yaml", "rpoi.io_ratings.yaml"], generated);

        var drift = new List<string>();
        foreach (var directory in CheckedInDirectories)
        {
            var checkedIn = Directory.GetFiles(Path.Combine(RepositoryRoot.Path, directory), "rpoi.io_*.yaml")
                .Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
            if (!checkedIn.SequenceEqual(generated))
            {
                drift.Add($"{directory}/ holds [{string.Join(", ", checkedIn)}], the generator makes [{string.Join(", ", generated)}]");
                continue;
            }

            foreach (var name in generated)
            {
                var expected = File.ReadAllBytes(Path.Combine(temp, name!));
                var actual = File.ReadAllBytes(Path.Combine(RepositoryRoot.Path, directory, name!));
                if (!expected.AsSpan().SequenceEqual(actual))
                {
                    drift.Add($"{directory}/{name} differs from the generated CRD");
                }
            }
        }

        Assert.True(drift.Count == 0,
            "The checked-in CRDs are out of date with operator/Rpoi.Operator/Entities:\n  " + string.Join("\n  ", drift) +
            $"\nRun from the repository root: {CrdGenerator.RegenerateCommand}");
    }

    [Fact]
    public void Generation_is_deterministic()
    {
        var generator = CrdGenerator.ForThisAssembly();
        foreach (var entity in CrdGenerator.Entities)
        {
            Assert.Equal(CrdGenerator.ToYaml(generator.Generate(entity)), CrdGenerator.ToYaml(generator.Generate(entity)));
        }
    }

    [Fact]
    public void The_kustomize_base_in_crds_lists_every_generated_file()
    {
        var kustomization = File.ReadAllText(Path.Combine(RepositoryRoot.Path, "crds", "kustomization.yaml"));
        foreach (var entity in CrdGenerator.Entities)
        {
            var name = CrdGenerator.FileName(CrdGenerator.ForThisAssembly().Generate(entity));
            Assert.Contains($"- {name}", kustomization, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_directory_that_cannot_be_written_fails_with_a_message()
    {
        var file = Path.Combine(temp, "not-a-directory");
        File.WriteAllText(file, "x");
        var error = new StringWriter();

        var exit = GenerateCrdsCommand.Run([file], TextWriter.Null, error);

        Assert.Equal(1, exit);
        Assert.StartsWith("generate-crds failed:", error.ToString(), StringComparison.Ordinal);
    }
}
