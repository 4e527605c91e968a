using System.CommandLine;
using System.Text.Json;
using k8s;
using Rpoi.Cli.Support;
using Rpoi.Operator.Entities;
using Rpoi.Protocol;
using Rpoi.Protocol.Keys;

namespace Rpoi.Cli.Commands;

/// <summary><c>kubectl rpoi list</c>: the renter's leases (those whose E(m) their key signed), with phase, chips, expiry and money.</summary>
internal static class ListCommand
{
    public static Command Create(CommandFactory f)
    {
        var allNamespaces = new Option<bool>("--all-namespaces", "-A") { Description = "List leases in every namespace (default: the current namespace, or -n)." };
        var all = new Option<bool>("--all") { Description = "Also list other renters' leases (the platform team's view); adds a RENTER column." };
        var output = ReadOutput.Create();
        var command = new Command("list", "List your leases (signed by your key) with phase, chips, shape, expiry, deposit, rent, rating deadline and settlement.") { allNamespaces, all, output };
        f.Handle(command, async (ctx, parse, ct) =>
        {
            var everyone = parse.GetValue(all);
            var across = parse.GetValue(allNamespaces);

            // Without --all only leases whose request verifies under the renter's own key count as "mine".
            var me = everyone ? null : ctx.LoadKeys().Identity;
            var ns = across ? null : ctx.Namespace;
            var raw = await ctx.CallAsync(
                () => ns is null
                    ? ctx.Kube().CustomObjects.ListClusterCustomObjectAsync(Lease.Group, Lease.Version, Lease.Plural, cancellationToken: ct)
                    : ctx.Kube().CustomObjects.ListNamespacedCustomObjectAsync(Lease.Group, Lease.Version, ns, Lease.Plural, cancellationToken: ct),
                ns is null ? "leases in all namespaces" : $"leases in {ns}",
                "check -n, or use -A").ConfigureAwait(false);
            var element = raw is JsonElement e ? e : JsonSerializer.SerializeToElement(raw);
            var rows = new List<LeaseRow>();
            foreach (var item in element.TryGetProperty("items", out var items) ? items.EnumerateArray() : Enumerable.Empty<JsonElement>())
            {
                var lease = KubernetesJson.Deserialize<Lease>(item.GetRawText());
                if (Row(lease, me) is { } row)
                {
                    rows.Add(row);
                }
            }

            rows.Sort((a, b) => (string.CompareOrdinal(a.Namespace, b.Namespace), string.CompareOrdinal(a.Name, b.Name)) switch
            {
                (0, var n) => n,
                (var s, _) => s,
            });
            if (ReadOutput.TryWrite(ctx.Out, parse.GetValue(output), new LeaseListView(rows)))
            {
                return ExitCodes.Ok;
            }

            if (rows.Count == 0)
            {
                // As kubectl get: the "nothing" message goes to stderr, so stdout stays empty for scripts.
                var where = ns is null ? "any namespace" : $"namespace {ns}";
                var whose = everyone ? "" : $" signed by {me!.Address}";
                ctx.Err.WriteLine($"no leases{whose} in {where}{(ns is null ? "" : " (use -A for every namespace)")}");
                return ExitCodes.Ok;
            }

            WriteTable(ctx.Out, rows, everyone);
            return ExitCodes.Ok;
        });
        return command;
    }

    /// <summary>The lease as a row, or null when it is not <paramref name="me"/>'s (null <paramref name="me"/>: everyone's).</summary>
    internal static LeaseRow? Row(Lease lease, PartyIdentity? me)
    {
        var parsed = Protocol.Messages.Signed<Protocol.Messages.LeaseRequest>.Parse(JsonSerializer.Serialize(lease.Spec.Request));
        var verified = parsed.IsOk ? RpoiEquations.VerifyRequest(parsed.Value) : null;
        if (me is not null && (verified is not { IsOk: true } || verified.Value.Renter.Address != me.Address))
        {
            return null;
        }

        var status = lease.Status;
        var m = parsed.IsOk ? parsed.Value.Payload : null;
        var settlement = status?.Settlement is { SettledAt: not null } s
            ? new SettledView(s.Deposit?.ToString(), s.Rent?.ToString(), Utc(s.SettledAt))
            : null;
        return new LeaseRow(
            lease.Metadata.NamespaceProperty,
            lease.Metadata.Name,
            status?.Phase?.ToString() ?? "",
            verified is { IsOk: true } ? verified.Value.Renter.Address : "(invalid request)",
            m?.Chips ?? 0,
            m?.Accelerator ?? "",
            m?.Topology ?? "",
            m?.DurationSeconds ?? 0,
            Utc(status?.ExpiresAt),
            m is null ? null : new AmountView(m.Deposit.Amount, m.Deposit.Denom),
            m is null ? null : new AmountView(m.Rent.Amount, m.Rent.Denom),
            status?.Phase is LeasePhase.AwaitingRatings ? Utc(status.RatingDeadline) : null,
            settlement,
            status?.TransactionHash);
    }

    private static void WriteTable(TextWriter w, IReadOnlyList<LeaseRow> rows, bool withRenter)
    {
        string[] header = ["NAMESPACE", "NAME", "PHASE", "CHIPS", "SHAPE", "EXPIRES", "DEPOSIT", "RENT", "RATING DUE", "SETTLED", .. withRenter ? ["RENTER"] : Array.Empty<string>()];
        var cells = rows.Select(r => (string[])
        [
            r.Namespace, r.Name, r.Phase.Length > 0 ? r.Phase : "<new>", r.Chips.ToString(System.Globalization.CultureInfo.InvariantCulture),
            $"{r.Accelerator} {r.Topology}", r.ExpiresAt is { } x ? AccessCommand.UtcText(x) : "-",
            Money(r.Deposit), Money(r.Rent),
            r.RatingDeadline is { } d ? AccessCommand.UtcText(d) : "-",
            r.Settlement is { } s ? $"deposit {s.Deposit}, rent {s.Rent}" : "-",
            .. withRenter ? [r.Renter] : Array.Empty<string>(),
        ]).ToList();
        var widths = header.Select((h, i) => Math.Max(h.Length, cells.Count == 0 ? 0 : cells.Max(c => c[i].Length))).ToArray();
        w.WriteLine(string.Join("   ", header.Select((h, i) => h.PadRight(widths[i]))).TrimEnd());
        foreach (var c in cells)
        {
            w.WriteLine(string.Join("   ", c.Select((v, i) => v.PadRight(widths[i]))).TrimEnd());
        }
    }

    private static string Money(AmountView? a) => a is null ? "-" : a.Amount + a.Denom;

    private static DateTimeOffset? Utc(DateTime? t) => t is { } v ? new DateTimeOffset(DateTime.SpecifyKind(v, DateTimeKind.Utc)) : null;
}
