using System.Collections.Concurrent;

namespace Rpoi.Protocol.Checks;

/// <summary>
/// Remembers which request nonces a renter has used. Recording the same (renter, nonce) for the same H
/// again is allowed (pledges are idempotent by H); the same nonce under another H is a replay.
/// </summary>
public interface INonceStore
{
    /// <summary>Records the nonce; returns false when it was already used for a different H.</summary>
    /// <param name="renterKeyId">Key id of the renter.</param>
    /// <param name="nonce">The request nonce.</param>
    /// <param name="h">Hex H of the request carrying it.</param>
    /// <param name="expiresAt">After this instant the request is too old anyway, so the entry may be forgotten.</param>
    /// <param name="cancellationToken">Cancellation.</param>
    ValueTask<bool> TryRecordAsync(string renterKeyId, string nonce, string h, DateTimeOffset expiresAt, CancellationToken cancellationToken = default);
}

/// <summary>In-memory <see cref="INonceStore"/>; expired entries are pruned using the injected clock.</summary>
public sealed class InMemoryNonceStore(TimeProvider timeProvider) : INonceStore
{
    private readonly ConcurrentDictionary<(string, string), (string H, DateTimeOffset ExpiresAt)> _seen = new();
    private long _calls;

    /// <summary>Number of remembered nonces.</summary>
    public int Count => _seen.Count;

    /// <inheritdoc/>
    public ValueTask<bool> TryRecordAsync(string renterKeyId, string nonce, string h, DateTimeOffset expiresAt, CancellationToken cancellationToken = default)
    {
        var now = timeProvider.GetUtcNow();
        if (Interlocked.Increment(ref _calls) % 1024 == 0)
        {
            Prune(now);
        }

        var entry = _seen.GetOrAdd((renterKeyId, nonce), (h, expiresAt));
        if (entry.ExpiresAt < now)
        {
            // The old request has aged out; the age check refuses requests that old, so this is a new use.
            _seen[(renterKeyId, nonce)] = (h, expiresAt);
            return ValueTask.FromResult(true);
        }

        return ValueTask.FromResult(string.Equals(entry.H, h, StringComparison.Ordinal));
    }

    /// <summary>Forgets nonces whose requests are too old to be accepted anyway.</summary>
    public void Prune(DateTimeOffset now)
    {
        foreach (var kv in _seen)
        {
            if (kv.Value.ExpiresAt < now)
            {
                _seen.TryRemove(kv);
            }
        }
    }
}
