using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using Rpoi.Protocol.Keys;
using Rpoi.Protocol.Messages;

namespace Rpoi.Protocol.Tests;

/// <summary>Shared parties and builders so each test reads as the story it checks.</summary>
internal static class Fixture
{
    public static readonly DateTimeOffset Now = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    public static readonly PartyKeyPair Renter = PartyKeyPair.Generate(PartyRole.Renter);
    public static readonly PartyKeyPair Leaser = PartyKeyPair.Generate(PartyRole.Leaser);
    public static readonly PartyKeyPair Escrow = PartyKeyPair.Generate(PartyRole.Escrow);
    public static readonly PartyKeyPair Stranger = PartyKeyPair.Generate(PartyRole.Renter);

    public static FakeTimeProvider Clock() => new(Now);

    public static LeaseRequest Request(int chips = 8, string ns = "team-a", string name = "train-1", PartyKeyPair? renter = null) =>
        Requests.New(
            (renter ?? Renter).Identity,
            Leaser.Identity.Address,
            Escrow.Identity.Address,
            "tpu-v5-lite-podslice",
            "2x4",
            chips,
            3600,
            Now,
            new Money("1500000", "uusd"),
            new Money("9000000", "uusd"),
            new LeaseRef(ns, name));

    public static Signed<LeaseRequest> SignedRequest(LeaseRequest? m = null) =>
        RpoiEquations.SignRequest(m ?? Request(), Renter);

    public static AccessGrant Grant() => new(
        ["gke-tpu-a", "gke-tpu-b"],
        "tpu-pool-1",
        "tpu-v5-lite-podslice",
        "2x4",
        new Dictionary<string, string> { ["rpoi.io/lease"] = "team-a.train-1", ["cloud.google.com/gke-tpu-topology"] = "2x4" },
        new Toleration("rpoi.io/lease", "Equal", "team-a.train-1", "NoSchedule"),
        "apiVersion: v1\nkind: Config\nusers:\n- name: lease\n  user:\n    token: secret-token\n",
        JsonDocument.Parse("""{"spec":{"containers":[{"name":"main","image":"python:3.12"}]}}""").RootElement.Clone(),
        Now,
        Now.AddHours(1));

    public static Rating Rating(int score) => new(score, "ok", Now.AddHours(2));
}
