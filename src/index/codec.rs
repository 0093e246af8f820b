//! The only place that turns stored values into bytes and back.
//!
//! Every value is `[FORMAT_VERSION][payload]`. A stored record's payload is one zstd
//! frame (level [`ZSTD_LEVEL`]) of `[u32 LE length][export-form JSON][bincode summary]`:
//! the JSON and the summary repeat each other's strings, and compressing them together
//! stores them once; zstd's entropy coding also halves the hex and base64 that fill
//! certificate records, which LZ4 (the first format) left as they were. Other values are
//! plain bincode. bincode runs with its standard configuration (little-endian,
//! variable-length integers). bincode is pinned at 2.0.1 and unmaintained
//! (RUSTSEC-2025-0141, no further releases): keeping it behind this module, with a
//! version byte, means switching to another encoding (postcard, …) changes this file
//! and the version number, and nothing else. A reader refuses values written with
//! another version instead of misreading them.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cell::RefCell;

/// Version of the value encoding (and of the snapshot format, see the manifest).
pub const FORMAT_VERSION: u8 = 2;

/// zstd level of stored records: 1 compresses at several hundred MB/s, and higher levels
/// gained little on IVRE records (measured on the scale data).
pub const ZSTD_LEVEL: i32 = 1;

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
    #[error("truncated record")]
    Truncated,
    #[error("cannot compress record: {0}")]
    Compress(std::io::Error),
    #[error("cannot decompress record: {0}")]
    Decompress(std::io::Error),
    #[error("record JSON is not UTF-8")]
    NotUtf8,
}

/// The most bytes one decoded value may claim (strings, byte vectors): bincode allocates a
/// declared length before reading it, so without a limit a corrupt length asks for exabytes
/// (found by fuzzing, target `codec`). Summaries hold a few KiB; [`encode_record`] refuses
/// a summary over the limit, so that every value written can be read.
pub const MAX_DECODED_BYTES: usize = 64 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_DECODED_BYTES>()
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

thread_local! {
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
    static PLAIN: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Encodes a stored record (its export-form JSON and its summary) into `out`.
pub fn encode_record<T: Serialize>(
    json: &str,
    summary: &T,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let len = u32::try_from(json.len()).map_err(|_| {
        CodecError::Encode(bincode::error::EncodeError::Other(
            "record JSON larger than 4 GiB",
        ))
    })?;
    PLAIN.with_borrow_mut(|plain| {
        plain.clear();
        plain.extend_from_slice(&len.to_le_bytes());
        plain.extend_from_slice(json.as_bytes());
        bincode::serde::encode_into_std_write(summary, plain, config())?;
        if plain.len() - 4 - json.len() > MAX_DECODED_BYTES {
            return Err(CodecError::Encode(bincode::error::EncodeError::Other(
                "record summary larger than MAX_DECODED_BYTES",
            )));
        }
        let compressed = COMPRESSOR.with_borrow_mut(|slot| {
            let compressor = match slot {
                Some(c) => c,
                None => slot.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
            };
            compressor.compress(plain)
        });
        let compressed = compressed.map_err(CodecError::Compress)?;
        out.clear();
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&compressed);
        Ok(())
    })
}

/// The most a zstd frame can expand: each block has a header of 3 bytes and decodes to
/// at most 128 KiB (2^17 / 3 < 2^16 bytes per byte of frame).
const MAX_EXPANSION: u64 = 1 << 16;

/// Decompresses a stored record and hands its JSON and encoded summary to `f`.
fn with_record_parts<R>(
    bytes: &[u8],
    f: impl FnOnce(&[u8], &[u8]) -> Result<R, CodecError>,
) -> Result<R, CodecError> {
    let (&version, frame) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::Version { found: version });
    }
    let size = zstd::zstd_safe::get_frame_content_size(frame)
        .ok()
        .flatten()
        .ok_or(CodecError::Truncated)?;
    // The declared size comes from the file: bound it by what the frame can hold before
    // allocating it (a block, at least 3 bytes, decodes to at most 128 KiB; found by
    // fuzzing: a flipped size byte asked for exabytes).
    if size > (frame.len() as u64).saturating_mul(MAX_EXPANSION) {
        return Err(CodecError::Truncated);
    }
    let plain = DECOMPRESSOR.with_borrow_mut(|slot| {
        let decompressor = match slot {
            Some(d) => d,
            None => slot.insert(zstd::bulk::Decompressor::new()?),
        };
        decompressor.decompress(frame, size as usize)
    });
    let plain = plain.map_err(CodecError::Decompress)?;
    let len_bytes: [u8; 4] = plain
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or(CodecError::Truncated)?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    let json = plain.get(4..4 + len).ok_or(CodecError::Truncated)?;
    f(json, &plain[4 + len..])
}

/// The export-form JSON of a stored record.
pub fn decode_record_json(bytes: &[u8]) -> Result<String, CodecError> {
    with_record_parts(bytes, |json, _| {
        String::from_utf8(json.to_vec()).map_err(|_| CodecError::NotUtf8)
    })
}

/// The summary of a stored record.
pub fn decode_record_summary<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    with_record_parts(bytes, |_, summary| {
        let (value, _) = bincode::serde::decode_from_slice(summary, config())?;
        Ok(value)
    })
}

/// Where a record lives in the records file: offset and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub offset: u64,
    pub len: u32,
}

/// Offsets of records in a kind's delta file (`scans.delta.bin`, appended by updates,
/// see [`super::delta_records_file`]) carry this bit; others are in the base file.
pub const DELTA_OFFSET: u64 = 1 << 63;

/// The location in its own file (without [`DELTA_OFFSET`]).
pub fn without_delta_bit(loc: Location) -> Location {
    Location {
        offset: loc.offset & !DELTA_OFFSET,
        len: loc.len,
    }
}

/// Largest record offset a packed location holds (1 TiB).
const PACKED_OFFSET_LIMIT: u64 = 1 << 40;
/// Lengths from this one up are read from the record's own length prefix.
const PACKED_LEN_LIMIT: u32 = 1 << 24;

/// A location packed in the `u64` value of a base (fst) entry: the offset in the high
/// 40 bits, the length in the low 24 (`0` when it does not fit: the reader takes it from
/// the `u32` length written before the record). `None` past 1 TiB of records.
pub fn pack_location(loc: Location) -> Option<u64> {
    if loc.offset >= PACKED_OFFSET_LIMIT {
        return None;
    }
    let len = if loc.len < PACKED_LEN_LIMIT {
        loc.len
    } else {
        0
    };
    Some(loc.offset << 24 | u64::from(len))
}

/// The inverse of [`pack_location`] (a length of `0` means "read the prefix").
pub fn unpack_location(value: u64) -> Location {
    Location {
        offset: value >> 24,
        len: (value & u64::from(PACKED_LEN_LIMIT - 1)) as u32,
    }
}

/// Reads the record at `loc` from a records file (see [`pack_location`] for a length
/// of `0`).
pub fn read_record(file: &std::fs::File, loc: Location) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let len = if loc.len == 0 {
        let mut prefix = [0u8; 4];
        file.read_exact_at(&mut prefix, loc.offset.saturating_sub(4))?;
        u32::from_le_bytes(prefix)
    } else {
        loc.len
    };
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, loc.offset)?;
    Ok(buf)
}

/// Length of an encoded [`Location`].
pub const LOCATION_LEN: usize = 12;

/// `[offset u64 BE][len u32 BE]`: the value of every search entry.
pub fn encode_location(loc: Location) -> [u8; LOCATION_LEN] {
    let mut out = [0u8; LOCATION_LEN];
    out[..8].copy_from_slice(&loc.offset.to_be_bytes());
    out[8..].copy_from_slice(&loc.len.to_be_bytes());
    out
}

pub fn decode_location(bytes: &[u8]) -> Result<Location, CodecError> {
    let offset: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or(CodecError::Truncated)?;
    let len: [u8; 4] = bytes
        .get(8..LOCATION_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or(CodecError::Truncated)?;
    Ok(Location {
        offset: u64::from_be_bytes(offset),
        len: u32::from_be_bytes(len),
    })
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

    #[test]
    fn records_round_trip_by_parts() {
        let json = r#"{"addr": "192.0.2.10", "value": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#;
        let mut out = Vec::new();
        encode_record(json, &(7u32, Some("x".to_owned())), &mut out).unwrap();
        assert!(out.len() < json.len() + 8, "the JSON is compressed");
        assert_eq!(decode_record_json(&out).unwrap(), json);
        assert_eq!(
            decode_record_summary::<(u32, Option<String>)>(&out).unwrap(),
            (7, Some("x".to_owned()))
        );
        for cut in [0, 1, 3, 6, out.len() - 1] {
            let broken = &out[..cut];
            assert!(
                decode_record_json(broken).is_err()
                    || decode_record_summary::<(u32, Option<String>)>(broken).is_err()
            );
        }
        out[0] = 0;
        assert!(matches!(
            decode_record_json(&out),
            Err(CodecError::Version { found: 0 })
        ));
    }

    /// Fuzzing (`fuzz/`, target `codec`): a frame header declaring exabytes of content
    /// made the decoder allocate that much (and abort) before reading the frame.
    #[test]
    fn declared_size_is_bounded_by_the_frame() {
        // Magic, single segment with an 8-byte content size of 2^60, no block.
        let mut frame = vec![FORMAT_VERSION, 0x28, 0xb5, 0x2f, 0xfd, 0xe0];
        frame.extend_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(matches!(
            decode_record_json(&frame),
            Err(CodecError::Truncated)
        ));
        // A real record still decodes: its frame declares what it holds.
        let json = "{}".repeat(50_000);
        let mut out = Vec::new();
        encode_record(&json, &0u8, &mut out).unwrap();
        assert!(out.len() < 1000, "{}", out.len());
        assert_eq!(decode_record_json(&out).unwrap(), json);
    }

    /// Fuzzing (`fuzz/`, target `codec`, input in `fuzz/corpus/codec`): a string whose
    /// declared length was 1441203719096313859 bytes aborted the process (allocation
    /// failure) instead of being an error.
    #[test]
    fn declared_lengths_are_bounded() {
        let crash = hex::decode(
            "0220fd0328b58d252f0014055e0000007b2261646472223a22376666663a66222c22666972737473\
             65656e223a31652b3330302c2272656372223a22376666663a66222c2266697273747365656e223a\
             31652b3330302c227265636f6e74797065223a223e4e535f6e2621e41206",
        )
        .unwrap();
        assert!(matches!(
            decode::<Vec<String>>(&crash),
            Err(CodecError::Decode(_))
        ));
        // The same length inside a record's summary.
        let mut summary = Vec::new();
        encode_record("{}", &vec![String::from("x")], &mut summary).unwrap();
        assert_eq!(
            decode_record_summary::<Vec<String>>(&summary).unwrap(),
            ["x"]
        );
        let mut plain = vec![2, 0, 0, 0, b'{', b'}', 1, 0xfd];
        plain.extend_from_slice(&(1u64 << 60).to_le_bytes());
        let mut forged = vec![FORMAT_VERSION];
        forged.extend_from_slice(&zstd::bulk::compress(&plain, 1).unwrap());
        assert!(matches!(
            decode_record_summary::<Vec<String>>(&forged),
            Err(CodecError::Decode(_))
        ));
    }

    #[test]
    fn locations_round_trip() {
        let loc = Location {
            offset: 1 << 40,
            len: 77,
        };
        assert_eq!(decode_location(&encode_location(loc)).unwrap(), loc);
        assert!(decode_location(&[0; 11]).is_err());
        let small = Location {
            offset: 12345,
            len: 77,
        };
        assert_eq!(unpack_location(pack_location(small).unwrap()), small);
        let big = Location {
            offset: 4,
            len: 1 << 24,
        };
        assert_eq!(unpack_location(pack_location(big).unwrap()).len, 0);
        assert_eq!(pack_location(loc), None);
    }
}
