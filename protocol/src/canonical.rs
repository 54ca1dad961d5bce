//! The one byte encoding of entry content (`docs/protocol.md` §2), also
//! used for bids (§10).

use crate::entry::EntryContent;
use crate::error::DecodeError;
use crate::limits::ENTRY_BYTES_MAX;
use bincode::config::{Configuration, Fixint, Limit, LittleEndian};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The version byte that starts every entry's content.
pub const FORMAT_VERSION: u8 = 1;

/// Prepended to the content bytes before signing and hashing, so a
/// signature over an entry can never be replayed as one over anything else.
pub const ENTRY_DOMAIN: &[u8] = b"buildmesh/entry/v1\0";

/// bincode 2.0.1, little-endian, fixed-width integers, and an allocation
/// limit so hostile lengths cannot exhaust memory while decoding.
type Config = Configuration<LittleEndian, Fixint, Limit<ENTRY_BYTES_MAX>>;

fn config() -> Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<ENTRY_BYTES_MAX>()
}

/// The content bytes: the version byte, then the content's fields.
pub(crate) fn encode(content: &EntryContent) -> Result<Vec<u8>, DecodeError> {
    encode_value(content)
}

/// The version byte, then `value`'s fields: the encoding of §2 for any
/// signed value (entry content, a bid).
pub(crate) fn encode_value<T: Serialize>(value: &T) -> Result<Vec<u8>, DecodeError> {
    bincode::serde::encode_to_vec((FORMAT_VERSION, value), config())
        .map_err(|e| DecodeError::Malformed(e.to_string()))
}

/// Decodes content bytes without the canonical re-encoding check, for
/// bytes this process encoded or checked itself.
pub(crate) fn decode_trusted(bytes: &[u8]) -> Result<EntryContent, DecodeError> {
    let ((_, content), _): ((u8, EntryContent), usize) =
        bincode::serde::decode_from_slice(bytes, config())
            .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    Ok(content)
}

/// Decodes content bytes, refusing anything but the canonical encoding of a
/// supported version.
pub(crate) fn decode(bytes: &[u8]) -> Result<EntryContent, DecodeError> {
    decode_value(bytes)
}

/// [`decode`] for any signed value: the version byte, then `T`'s fields,
/// in their one canonical encoding and nothing after them.
pub(crate) fn decode_value<T: Serialize + DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, DecodeError> {
    let version = *bytes.first().ok_or(DecodeError::TooShort(0))?;
    if version != FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let ((_, value), read): ((u8, T), usize) =
        bincode::serde::decode_from_slice(bytes, config())
            .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if read != bytes.len() {
        return Err(DecodeError::TrailingBytes(bytes.len() - read));
    }
    if encode_value(&value)? != bytes {
        return Err(DecodeError::NotCanonical);
    }
    Ok(value)
}
