using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rpoi.Cli.Support;

/// <summary><c>-o json|yaml</c> for the read commands: the view as a document with the field names docs/cli.md lists.</summary>
internal static class ReadOutput
{
    private static readonly JsonSerializerOptions Options = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = true };

    public static Option<string?> Create()
    {
        var option = new Option<string?>("--output", "-o") { Description = "Print format: json or yaml (default: a table for people)." };
        option.Validators.Add(r =>
        {
            var text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : "";
            if (text is not ("json" or "yaml"))
            {
                r.AddError($"--output: '{text}' is not json or yaml");
            }
        });
        return option;
    }

    /// <summary>Writes <paramref name="view"/> as JSON or YAML; false when the table is wanted.</summary>
    public static bool TryWrite<T>(TextWriter w, string? format, T view)
    {
        if (format is null)
        {
            return false;
        }

        var node = JsonSerializer.SerializeToNode(view, Options)!;
        w.Write(format == "json" ? node.ToJsonString(Options) + "\n" : Yaml.Write(node));
        return true;
    }
}

/// <summary>balance -o: the account, π's URL and the free balances.</summary>
internal sealed record BalanceView(string Account, string Escrow, IReadOnlyList<AmountView> Balances);

/// <summary>An amount in the smallest unit and its denomination.</summary>
internal sealed record AmountView(string Amount, string Denom);

/// <summary>offers -o: the parties, when capacity was measured, and each shape on offer.</summary>
internal sealed record OffersView(string Leaser, string Escrow, string EscrowUrl, DateTimeOffset UpdatedAt, IReadOnlyList<OfferView> Offers);

/// <summary>One accelerator/topology on offer.</summary>
internal sealed record OfferView(string Accelerator, string Topology, int ChipsPerSlice, int HostsPerSlice, int FreeChips, int FreeSlices, int TotalChips);
