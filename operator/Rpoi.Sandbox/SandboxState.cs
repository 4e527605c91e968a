using System.Text.Json;
using System.Text.Json.Serialization;

namespace Rpoi.Sandbox;

/// <summary>
/// <c>sandbox.json</c>: what a running sandbox tells other commands (<c>sandbox status|down</c>, tests): its process,
/// its URLs and files. Written once everything is up; removed on a clean shutdown.
/// </summary>
/// <param name="Pid">The process hosting the sandbox.</param>
/// <param name="ApiServer">The Kubernetes API server URL.</param>
/// <param name="Escrow">π's URL.</param>
/// <param name="Kubeconfig">The admin kubeconfig.</param>
/// <param name="RenterKey">The funded demo renter's key file.</param>
/// <param name="RenterAddress">The demo renter's address.</param>
/// <param name="LeaserAddress">β's address.</param>
/// <param name="EscrowAddress">π's address.</param>
/// <param name="RenterNamespace">The demo renter's namespace.</param>
/// <param name="OperatorNamespace">The operator's namespace.</param>
/// <param name="OperatorRunning">Whether the Lease reconciler runs in this sandbox.</param>
/// <param name="StartedAt">When it came up.</param>
public sealed record SandboxState(
    [property: JsonPropertyName("pid")] int Pid,
    [property: JsonPropertyName("apiServer")] string ApiServer,
    [property: JsonPropertyName("escrow")] string Escrow,
    [property: JsonPropertyName("kubeconfig")] string Kubeconfig,
    [property: JsonPropertyName("renterKey")] string RenterKey,
    [property: JsonPropertyName("renterAddress")] string RenterAddress,
    [property: JsonPropertyName("leaserAddress")] string LeaserAddress,
    [property: JsonPropertyName("escrowAddress")] string EscrowAddress,
    [property: JsonPropertyName("renterNamespace")] string RenterNamespace,
    [property: JsonPropertyName("operatorNamespace")] string OperatorNamespace,
    [property: JsonPropertyName("operatorRunning")] bool OperatorRunning,
    [property: JsonPropertyName("startedAt")] DateTimeOffset StartedAt)
{
    /// <summary>Whether the operator runs phase II, so leases settle with π after the ratings.</summary>
    [JsonPropertyName("settles")]
    public bool Settles { get; init; }

    /// <summary>The state file's name in the sandbox directory.</summary>
    public const string FileName = "sandbox.json";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>The state file of the sandbox in <paramref name="directory"/>.</summary>
    public static string PathIn(string directory) => System.IO.Path.Combine(directory, FileName);

    /// <summary>Writes the state file atomically (a reader never sees half of it).</summary>
    public void Save(string directory)
    {
        var path = PathIn(directory);
        var temp = path + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(this, Json));
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>The state of the sandbox in <paramref name="directory"/>, or null when none was written (or it is unreadable).</summary>
    public static SandboxState? Load(string directory)
    {
        var path = PathIn(directory);
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize<SandboxState>(File.ReadAllText(path), Json);
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            return null;
        }
    }
}
