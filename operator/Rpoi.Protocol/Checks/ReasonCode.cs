namespace Rpoi.Protocol.Checks;

/// <summary>Why a protocol check refused its input. Stable names: they appear in API replies, Lease
/// conditions and Rating status, so add new values rather than renaming.</summary>
public enum ReasonCode
{
    /// <summary>The text is not JSON, not UTF-8, or not the expected structure (missing, unknown or mistyped field).</summary>
    MalformedMessage = 1,

    /// <summary>A field has the right type but an invalid value (bad format, empty, out of pattern).</summary>
    InvalidField,

    /// <summary>A base64 or hex field is not canonical base64/hex.</summary>
    InvalidEncoding,

    /// <summary>A key has the wrong length or is not a valid public key.</summary>
    InvalidKey,

    /// <summary>The message's <c>kind</c> or version is not the one expected here.</summary>
    WrongKind,

    /// <summary>The Ed25519 signature does not verify over the canonical payload.</summary>
    BadSignature,

    /// <summary>The message is signed by a key other than the party that must sign it.</summary>
    SignerMismatch,

    /// <summary>The signed request names another Lease namespace/name than the object carrying it.</summary>
    LeaseBindingMismatch,

    /// <summary>The request names another leaser or escrow address than the one checking it.</summary>
    PartyMismatch,

    /// <summary>The request timestamp is older than the allowed age.</summary>
    RequestTooOld,

    /// <summary>The request timestamp is further in the future than the allowed clock skew.</summary>
    RequestFromFuture,

    /// <summary>The nonce was already used by this renter.</summary>
    NonceReplayed,

    /// <summary>An amount is not a positive integer string or overflows.</summary>
    InvalidAmount,

    /// <summary>Deposit and rent use different denominations.</summary>
    DenominationMismatch,

    /// <summary>Chip count is not positive.</summary>
    InvalidChips,

    /// <summary>Duration is not positive.</summary>
    InvalidDuration,

    /// <summary>A rating score is outside 1..5.</summary>
    RatingOutOfRange,

    /// <summary>The SHA-256 digest of the access grant σ does not match.</summary>
    GrantDigestMismatch,

    /// <summary>The transaction hash H does not match the signed request or the expected lease.</summary>
    HashMismatch,

    /// <summary>HPKE open failed: wrong key, wrong H (associated data) or tampered ciphertext.</summary>
    DecryptionFailed,

    /// <summary>The sealed message is addressed to another recipient key.</summary>
    WrongRecipient,

    /// <summary>The sealed message was made for another purpose (HPKE info).</summary>
    WrongPurpose,

    /// <summary>The sealed message uses a cipher suite this version does not support.</summary>
    UnsupportedSuite,

    /// <summary>A key file could not be read or is inconsistent.</summary>
    KeyFileInvalid,
}
