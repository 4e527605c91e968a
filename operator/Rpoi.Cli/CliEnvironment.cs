namespace Rpoi.Cli;

/// <summary>What the CLI takes from the process: the clock, environment variables and the working directory. Tests pass their own.</summary>
public sealed record CliEnvironment
{
    /// <summary>The clock (request timestamps, rating times, waits).</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Looks up an environment variable (HOME, KUBECONFIG, RPOI_HOME, RPOI_KEY).</summary>
    public Func<string, string?> Variable { get; init; } = Environment.GetEnvironmentVariable;

    /// <summary>Where relative paths and default output files go.</summary>
    public string WorkingDirectory { get; init; } = Directory.GetCurrentDirectory();

    /// <summary>How often <c>--wait</c> polls.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The process's environment.</summary>
    public static CliEnvironment Process { get; } = new();

    /// <summary>The user's home directory.</summary>
    public string Home => Variable("HOME") is { Length: > 0 } h ? h : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    /// <summary>The CLI's own directory: <c>$RPOI_HOME</c>, else <c>~/.rpoi</c>.</summary>
    public string RpoiHome => Variable("RPOI_HOME") is { Length: > 0 } r ? r : Path.Combine(Home, ".rpoi");

    /// <summary>The default key file: <c>$RPOI_KEY</c>, else <c>~/.rpoi/renter.key</c>.</summary>
    public string DefaultKeyPath => Variable("RPOI_KEY") is { Length: > 0 } k ? k : Path.Combine(RpoiHome, "renter.key");

    /// <summary>Resolves <paramref name="path"/> against the working directory (and <c>~</c> against home).</summary>
    public string Resolve(string path)
    {
        if (path == "~" || path.StartsWith("~/", StringComparison.Ordinal))
        {
            path = Path.Combine(Home, path.Length > 2 ? path[2..] : "");
        }

        return Path.GetFullPath(path, WorkingDirectory);
    }
}
