//! The only place that turns stored values into bytes and back.
//!
//! Every value is `[FORMAT_VERSION][bincode 2.0.1 payload]` (standard configuration:
//! little-endian, variable-length integers). bincode is pinned at 2.0.1 and unmaintained
//! (RUSTSEC-2025-0141, no further releases): keeping it behind this module, with a
//! version byte, means switching to another encoding (postcard, …) changes this file
//! and the version number, and nothing else. A reader refuses values written with
//! another version instead of misreading them.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Version of the value encoding (and of the snapshot format, see the manifest).
pub const FORMAT_VERSION: u8 = 1;

/// Why a stored value could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty value")]
    Empty,
    #[error("value written with format version {found}, this build reads version {FORMAT_VERSION}: rebuild the snapshot with `ivre-sync import`")]
    Version { found: u8 },
    #[error("cannot decode value: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    #[error("cannot encode value: {0}")]
    Encode(#[from] bincode::error::EncodeError),
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes `value`, appending to `out` (cleared first).
pub fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    out.clear();
    out.push(FORMAT_VERSION);
    bincode::serde::encode_into_std_write(value, out, config())?;
    Ok(())
}

/// Encodes `value` into a new buffer.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Decodes a value written by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, payload) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::Version { found: version });
    }
    let (value, _) = bincode::serde::decode_from_slice(payload, config())?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_version_check() {
        let v = (String::from("x"), Some(3u64), vec![1u8, 2]);
        let bytes = encode(&v).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<(String, Option<u64>, Vec<u8>)>(&bytes).unwrap(), v);
        let mut other = bytes.clone();
        other[0] = FORMAT_VERSION + 1;
        assert!(matches!(
            decode::<(String, Option<u64>, Vec<u8>)>(&other),
            Err(CodecError::Version { .. })
        ));
        assert!(matches!(decode::<u8>(&[]), Err(CodecError::Empty)));
        assert!(decode::<String>(&bytes[..2]).is_err());
    }
}
