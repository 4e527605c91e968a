using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Rpoi.Escrow.Client;

namespace Rpoi.Escrow.Tests;

/// <summary>The typed client against a scripted server: retries on transient failures only, typed errors, timeouts.</summary>
public sealed class EscrowClientTests : IAsyncLifetime
{
    private readonly WebApplication _app;
    private int _identityCalls;
    private int _failFirst;

    public EscrowClientTests()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _app = builder.Build();
        _app.MapGet("/v1/identity", () =>
        {
            var call = Interlocked.Increment(ref _identityCalls);
            return call <= _failFirst
                ? Results.StatusCode(503)
                : Results.Json(new EscrowIdentity("rpoi1aaaa", "k", "s", "e"));
        });
        _app.MapPost("/v1/deposits", () =>
        {
            Interlocked.Increment(ref _identityCalls);
            return Results.Json(
                new { type = "x", title = "bad", status = 400, detail = "must be positive", reason = EscrowReasons.InvalidField, errors = new Dictionary<string, string[]> { ["amount.amount"] = ["must be positive"] } },
                contentType: "application/problem+json",
                statusCode: 400);
        });
        _app.MapGet("/v1/pledges/{h}", () => Results.Json(new { reason = EscrowReasons.PledgeNotFound }, statusCode: 404));
        // Never answers: holds the request until the client gives up.
        _app.MapGet("/v1/ledger/verify", async (HttpContext http) => await Task.Delay(Timeout.Infinite, http.RequestAborted));
    }

    public Task InitializeAsync() => _app.StartAsync();

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private EscrowClient Client(int attempts, TimeSpan? timeout = null, Uri? address = null) =>
        new(new HttpClient(), new EscrowClientOptions
        {
            BaseAddress = address ?? new Uri(_app.Urls.Single() + "/"),
            MaxAttempts = attempts,
            InitialBackoff = TimeSpan.FromMilliseconds(5),
            AttemptTimeout = timeout ?? TimeSpan.FromSeconds(10),
        });

    [Fact]
    public async Task Transient_failures_are_retried_with_backoff()
    {
        _failFirst = 2;
        var id = await Client(attempts: 4).GetIdentityAsync();
        Assert.Equal("rpoi1aaaa", id.Address);
        Assert.Equal(3, _identityCalls);
    }

    [Fact]
    public async Task Transient_failures_give_up_after_max_attempts()
    {
        _failFirst = 100;
        var ex = await Assert.ThrowsAsync<EscrowException>(() => Client(attempts: 3).GetIdentityAsync());
        Assert.Equal(503, ex.Status);
        Assert.True(ex.IsTransient);
        Assert.Equal(3, _identityCalls);
    }

    [Fact]
    public async Task A_refusal_is_not_retried_and_carries_reason_and_field()
    {
        var ex = await Assert.ThrowsAsync<EscrowException>(() => Client(attempts: 4).DepositAsync(new DepositRequest("d", "a", new EscrowAmount("0", "uusd"))));
        Assert.Equal((400, EscrowReasons.InvalidField, "amount.amount"), (ex.Status, ex.Reason, ex.Field));
        Assert.Equal("must be positive", ex.Message);
        Assert.False(ex.IsTransient);
        Assert.Equal(1, _identityCalls);
    }

    [Fact]
    public async Task A_missing_pledge_reads_as_null()
    {
        Assert.Null(await Client(attempts: 1).GetPledgeAsync(new string('a', 64)));
    }

    [Fact]
    public async Task An_attempt_that_times_out_is_a_transient_error()
    {
        var ex = await Assert.ThrowsAsync<EscrowException>(() => Client(attempts: 2, timeout: TimeSpan.FromMilliseconds(200)).VerifyLedgerAsync());
        Assert.Equal(("Timeout", 0), (ex.Reason, ex.Status));
        Assert.True(ex.IsTransient);
    }

    [Fact]
    public async Task An_unreachable_escrow_is_a_transient_error()
    {
        // A port that was just free: nothing listens on it.
        using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        var port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var ex = await Assert.ThrowsAsync<EscrowException>(() => Client(attempts: 2, address: new Uri($"http://127.0.0.1:{port}/")).GetIdentityAsync());
        Assert.Equal(("Unreachable", 0), (ex.Reason, ex.Status));
    }
}
