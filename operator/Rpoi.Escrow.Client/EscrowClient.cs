using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Escrow.Client;

/// <summary>How the client authenticates its write calls.</summary>
public abstract record EscrowCredentials
{
    private EscrowCredentials()
    {
    }

    /// <summary>No credential: reads and the renter's own claim only.</summary>
    public static EscrowCredentials None { get; } = new NoCredentials();

    /// <summary>Calls signed with the leaser β's Ed25519 key (the operator).</summary>
    public static EscrowCredentials Leaser(PartyKeyPair keys) => new LeaserKeys(keys);

    /// <summary>The admin bearer token (on-ramp, adjudication).</summary>
    public static EscrowCredentials Admin(string token) => new AdminToken(token);

    internal sealed record NoCredentials : EscrowCredentials;

    internal sealed record LeaserKeys(PartyKeyPair Keys) : EscrowCredentials;

    internal sealed record AdminToken(string Token) : EscrowCredentials;
}

/// <summary>Client settings.</summary>
public sealed class EscrowClientOptions
{
    /// <summary>π's base address, e.g. <c>http://127.0.0.1:5080/</c>.</summary>
    public required Uri BaseAddress { get; init; }

    /// <summary>The credential for write calls.</summary>
    public EscrowCredentials Credentials { get; init; } = EscrowCredentials.None;

    /// <summary>Timeout of one attempt.</summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Attempts per call, the first included.</summary>
    public int MaxAttempts { get; init; } = 4;

    /// <summary>Backoff before the second attempt; doubles each time, with jitter.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Clock for call signatures and backoff.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
}

/// <summary>
/// The <see cref="IEscrowClient"/> over HttpClient. Retries with exponential backoff on transport
/// errors, timeouts, 408, 429 and 5xx: safe because π applies every call at most once (by deposit
/// id or H) and answers a repeat with the first result.
/// </summary>
public sealed class EscrowClient(HttpClient http, EscrowClientOptions options) : IEscrowClient
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <inheritdoc />
    public Task<EscrowIdentity> GetIdentityAsync(CancellationToken ct = default) =>
        SendAsync<EscrowIdentity>(HttpMethod.Get, "v1/identity", null, ct)!;

    /// <inheritdoc />
    public Task<DepositReceipt> DepositAsync(DepositRequest request, CancellationToken ct = default) =>
        SendAsync<DepositReceipt>(HttpMethod.Post, "v1/deposits", JsonSerializer.SerializeToUtf8Bytes(request, Json), ct)!;

    /// <inheritdoc />
    public Task<AccountView> GetAccountAsync(string address, CancellationToken ct = default) =>
        SendAsync<AccountView>(HttpMethod.Get, "v1/accounts/" + Uri.EscapeDataString(address), null, ct)!;

    /// <inheritdoc />
    public Task<PledgeView> PledgeAsync(Signed<LeaseRequest> signedRequest, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(signedRequest);
        return SendAsync<PledgeView>(HttpMethod.Post, "v1/pledges", Wrap("signedRequest", signedRequest.ToJson()), ct)!;
    }

    /// <inheritdoc />
    public Task<PledgeView?> GetPledgeAsync(string h, CancellationToken ct = default) =>
        SendAsync<PledgeView>(HttpMethod.Get, "v1/pledges/" + Uri.EscapeDataString(h), null, ct, nullOn404: true);

    /// <inheritdoc />
    public Task<SettlementView> SettleAsync(SealedMessage final, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(final);
        return SendAsync<SettlementView>(HttpMethod.Post, "v1/settlements", Wrap("final", final.ToJson()), ct)!;
    }

    /// <inheritdoc />
    public Task<SettlementView?> GetSettlementAsync(string h, CancellationToken ct = default) =>
        SendAsync<SettlementView>(HttpMethod.Get, "v1/settlements/" + Uri.EscapeDataString(h), null, ct, nullOn404: true);

    /// <inheritdoc />
    public Task<SettlementView> ClaimAsync(Signed<RenterRating> renterRating, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(renterRating);
        return SendAsync<SettlementView>(HttpMethod.Post, "v1/claims", Wrap("renterRating", renterRating.ToJson()), ct)!;
    }

    /// <inheritdoc />
    public Task<SettlementView> NeverServedAsync(Signed<NeverServedNotice> notice, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(notice);
        return SendAsync<SettlementView>(HttpMethod.Post, "v1/never-served", Wrap("notice", notice.ToJson()), ct)!;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<WithheldView>> GetWithheldAsync(CancellationToken ct = default) =>
        (await SendAsync<List<WithheldView>>(HttpMethod.Get, "v1/withheld", null, ct))!;

    /// <inheritdoc />
    public Task<WithheldView> ReleaseWithheldAsync(ReleaseRequest request, CancellationToken ct = default) =>
        SendAsync<WithheldView>(HttpMethod.Post, "v1/withheld/release", JsonSerializer.SerializeToUtf8Bytes(request, Json), ct)!;

    /// <inheritdoc />
    public Task<LedgerPage> GetLedgerAsync(long after = 0, int limit = 100, CancellationToken ct = default) =>
        SendAsync<LedgerPage>(HttpMethod.Get, string.Create(CultureInfo.InvariantCulture, $"v1/ledger?after={after}&limit={limit}"), null, ct)!;

    /// <inheritdoc />
    public Task<LedgerAudit> VerifyLedgerAsync(CancellationToken ct = default) =>
        SendAsync<LedgerAudit>(HttpMethod.Get, "v1/ledger/verify", null, ct)!;

    private static byte[] Wrap(string name, string json) => Encoding.UTF8.GetBytes("{\"" + name + "\":" + json + "}");

    private async Task<T?> SendAsync<T>(HttpMethod method, string relative, byte[]? body, CancellationToken ct, bool nullOn404 = false)
        where T : class
    {
        var uri = new Uri(options.BaseAddress, relative);
        var backoff = options.InitialBackoff;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await AttemptAsync<T>(method, uri, body, nullOn404, ct);
            }
            catch (EscrowException ex) when (ex.IsTransient && attempt < options.MaxAttempts && !ct.IsCancellationRequested)
            {
                // Full jitter keeps many clients from retrying in step after π restarts.
                var delay = TimeSpan.FromTicks((long)(backoff.Ticks * (0.5 + (Random.Shared.NextDouble() / 2))));
                await Task.Delay(delay, options.Time, ct);
                backoff *= 2;
            }
        }
    }

    private async Task<T?> AttemptAsync<T>(HttpMethod method, Uri uri, byte[]? body, bool nullOn404, CancellationToken ct)
        where T : class
    {
        using var request = new HttpRequestMessage(method, uri);
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }

        switch (options.Credentials)
        {
            case EscrowCredentials.LeaserKeys leaser when method != HttpMethod.Get:
                request.Headers.TryAddWithoutValidation("Authorization", EscrowCall.Authorization(leaser.Keys, method.Method, uri.PathAndQuery, body ?? [], options.Time.GetUtcNow()));
                break;
            case EscrowCredentials.AdminToken admin:
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", admin.Token);
                break;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(options.AttemptTimeout);
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, timeout.Token);
        }
        catch (OperationCanceledException ex) when (!ct.IsCancellationRequested)
        {
            throw new EscrowException(0, "Timeout", null, $"π did not answer {method} {uri.AbsolutePath} within {options.AttemptTimeout.TotalSeconds:F0} s", ex);
        }
        catch (HttpRequestException ex)
        {
            throw new EscrowException(0, "Unreachable", null, $"π at {options.BaseAddress} is unreachable: {ex.Message}", ex);
        }

        using (response)
        {
            if (response.IsSuccessStatusCode)
            {
                await using var stream = await response.Content.ReadAsStreamAsync(ct);
                return await JsonSerializer.DeserializeAsync<T>(stream, Json, ct)
                    ?? throw new EscrowException((int)response.StatusCode, EscrowReasons.Internal, null, "π answered with an empty body");
            }

            var text = await response.Content.ReadAsStringAsync(ct);
            var (reason, field, detail) = ParseProblem(text);
            if (nullOn404 && response.StatusCode == HttpStatusCode.NotFound)
            {
                return null;
            }

            throw new EscrowException((int)response.StatusCode, reason ?? $"Http{(int)response.StatusCode}", field, detail ?? $"π answered {(int)response.StatusCode} {response.ReasonPhrase}");
        }
    }

    private static (string? Reason, string? Field, string? Detail) ParseProblem(string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            var root = doc.RootElement;
            var reason = root.TryGetProperty("reason", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
            var detail = root.TryGetProperty("detail", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
            string? field = null;
            if (root.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Object)
            {
                field = errors.EnumerateObject().Select(p => p.Name).FirstOrDefault();
            }

            return (reason, field, detail);
        }
        catch (JsonException)
        {
            return (null, null, text.Length > 200 ? text[..200] : text);
        }
    }
}
