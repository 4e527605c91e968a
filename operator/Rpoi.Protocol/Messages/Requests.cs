using System.Security.Cryptography;
using Rpoi.Protocol.Encoding;
using Rpoi.Protocol.Keys;

namespace Rpoi.Protocol.Messages;

/// <summary>Builds request payloads with a fresh nonce and the renter's keys filled in.</summary>
public static class Requests
{
    /// <summary>A new request m for <paramref name="renter"/>, timestamped <paramref name="now"/> (whole seconds), with a 16-byte random nonce.</summary>
    public static LeaseRequest New(
        PartyIdentity renter,
        string leaserAddress,
        string escrowAddress,
        string accelerator,
        string topology,
        int chips,
        long durationSeconds,
        DateTimeOffset now,
        Money deposit,
        Money rent,
        LeaseRef lease)
    {
        ArgumentNullException.ThrowIfNull(renter);
        var seconds = DateTimeOffset.FromUnixTimeSeconds(now.ToUnixTimeSeconds());
        return new LeaseRequest(
            MessageKinds.Request,
            renter.ToPublicKeys(),
            leaserAddress,
            escrowAddress,
            accelerator,
            topology,
            chips,
            durationSeconds,
            seconds,
            Codec.ToBase64(RandomNumberGenerator.GetBytes(16)),
            deposit,
            rent,
            lease);
    }
}
