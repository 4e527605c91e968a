namespace Rpoi.Cli;

/// <summary>The "Examples:" section of each command's --help, keyed by the command's path.</summary>
internal static class Examples
{
    private static readonly Dictionary<string, string[]> ByCommand = new(StringComparer.Ordinal)
    {
        ["kubectl rpoi"] = ["kubectl rpoi sandbox up --detach", "kubectl rpoi offers", "kubectl rpoi request --name train-1 -n team-a --accelerator tpu-v5-lite-podslice --topology 2x4 --chips 8 --duration 1h --deposit 1500000uusd --rent 9000000uusd --apply"],
        ["kubectl rpoi keygen"] = ["kubectl rpoi keygen", "kubectl rpoi keygen -o ~/.rpoi/team-b.key --identity-out team-b.identity.json"],
        ["kubectl rpoi keys"] = ["kubectl rpoi keys new"],
        ["kubectl rpoi keys new"] = ["kubectl rpoi keys new -o ~/.rpoi/renter.key"],
        ["kubectl rpoi request"] = ["kubectl rpoi request --name train-1 -n team-a --accelerator tpu-v5-lite-podslice --topology 2x4 --chips 8 --duration 1h --deposit 1500000uusd --rent 9000000uusd > lease.yaml", "kubectl rpoi request --name train-1 -n team-a --accelerator tpu-v5-lite-podslice --topology 2x4 --chips 8 --duration 4h --deposit 1500000uusd --rent 9000000uusd --apply"],
        ["kubectl rpoi access"] = ["kubectl rpoi access train-1 -n team-a --wait --timeout 2m", "kubectl rpoi access train-1 -n team-a --pod-template-out pod.yaml"],
        ["kubectl rpoi rate"] = ["kubectl rpoi rate train-1 -n team-a --score 5 --apply", "kubectl rpoi rate train-1 -n team-a --score 4 --comment 'slow start' > rating.yaml"],
        ["kubectl rpoi return"] = ["kubectl rpoi return train-1 -n team-a", "kubectl rpoi return train-1 -n team-a --wait --timeout 2m"],
        ["kubectl rpoi cancel"] = ["kubectl rpoi cancel train-1 -n team-a"],
        ["kubectl rpoi status"] = ["kubectl rpoi status train-1 -n team-a", "kubectl rpoi status train-1 -n team-a --escrow-identity escrow.identity.json", "kubectl rpoi status train-1 -n team-a -o json"],
        ["kubectl rpoi claim"] = ["kubectl rpoi claim train-1 -n team-a", "kubectl rpoi claim train-1 -n team-a --score 4 -o json"],
        ["kubectl rpoi list"] = ["kubectl rpoi list", "kubectl rpoi list -A", "kubectl rpoi list -A --all", "kubectl rpoi list -A -o json"],
        ["kubectl rpoi balance"] = ["kubectl rpoi balance", "kubectl rpoi balance --leaser", "kubectl rpoi balance --address rpoi1..."],
        ["kubectl rpoi offers"] = ["kubectl rpoi offers", "kubectl rpoi offers --operator-namespace rpoi-system"],
        ["kubectl rpoi proof"] = ["kubectl rpoi proof train-1 -n team-a -o bundle.json", "kubectl rpoi proof train-1 -n team-a > bundle.json", "kubectl rpoi proof train-1 -n team-a --escrow-identity escrow.identity.json -o bundle.json"],
        ["kubectl rpoi verify"] = ["kubectl rpoi verify bundle.json", "kubectl rpoi verify bundle.json && echo \"lease proven\""],
        ["kubectl rpoi completion"] = ["source <(kubectl rpoi completion bash)", "source <(kubectl rpoi completion zsh)", "kubectl rpoi completion fish | source"],
        ["kubectl rpoi demo"] = ["kubectl rpoi demo", "kubectl rpoi demo --samples ./samples"],
        ["kubectl rpoi sandbox"] = ["kubectl rpoi sandbox up --detach", "kubectl rpoi sandbox status", "kubectl rpoi sandbox down"],
        ["kubectl rpoi sandbox up"] = ["kubectl rpoi sandbox up --detach --timeout 2m", "kubectl rpoi sandbox up --api-port 6443"],
        ["kubectl rpoi sandbox down"] = ["kubectl rpoi sandbox down --timeout 90s"],
        ["kubectl rpoi sandbox status"] = ["kubectl rpoi sandbox status"],
        ["kubectl rpoi sandbox fund"] = ["kubectl rpoi sandbox fund --address rpoi1... --amount 100000000uusd"],
    };

    /// <summary>The examples for <paramref name="commandPath"/> ("kubectl rpoi access"), or none.</summary>
    public static string[]? For(string commandPath) => ByCommand.GetValueOrDefault(commandPath);

    /// <summary>Every command path that has examples (tests check each command has some).</summary>
    public static IEnumerable<string> Paths => ByCommand.Keys;
}
