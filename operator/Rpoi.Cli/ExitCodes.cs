namespace Rpoi.Cli;

/// <summary>The plugin's exit codes (docs/cli.md lists them); scripts branch on them, so they never change meaning.</summary>
public static class ExitCodes
{
    /// <summary>Done.</summary>
    public const int Ok = 0;

    /// <summary>A bug or an unexpected failure; the message says what happened.</summary>
    public const int Internal = 1;

    /// <summary>Bad command line: unknown or missing flag, bad value.</summary>
    public const int Usage = 2;

    /// <summary>Something named does not exist (Lease, Secret, key file, discovery ConfigMap).</summary>
    public const int NotFound = 3;

    /// <summary>A signature, binding, seal or receipt did not verify, or the wrong key was used.</summary>
    public const int VerificationFailed = 4;

    /// <summary>The escrow π refused the call.</summary>
    public const int EscrowRefused = 5;

    /// <summary>Waited longer than <c>--timeout</c>.</summary>
    public const int Timeout = 6;

    /// <summary>The cluster or π could not be reached, or refused our credentials.</summary>
    public const int Unreachable = 7;

    /// <summary>The object already exists (or changed under us).</summary>
    public const int Conflict = 8;

    /// <summary>The Lease is in phase Failed.</summary>
    public const int LeaseFailed = 9;

    /// <summary>The Lease has ended (returned or settled): what was asked for no longer exists and never will again.</summary>
    public const int LeaseEnded = 10;

    /// <summary>Interrupted (Ctrl-C).</summary>
    public const int Interrupted = 130;
}

/// <summary>A failure to report to the user: <see cref="Exception.Message"/> says what was wrong and what to do.</summary>
public sealed class CliException : Exception
{
    /// <summary>Creates the failure.</summary>
    public CliException(int exitCode, string message)
        : base(message) => ExitCode = exitCode;

    /// <summary>Creates the failure with its cause.</summary>
    public CliException(int exitCode, string message, Exception inner)
        : base(message, inner) => ExitCode = exitCode;

    /// <summary>One of <see cref="ExitCodes"/>.</summary>
    public int ExitCode { get; }
}
