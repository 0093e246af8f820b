//! The only place that turns stored values into bytes and back.
//!
//! Every value is `[FORMAT_VERSION][payload]`. A stored record is
//! `[FORMAT_VERSION][CRC-32 of the frame, u32 LE][zstd frame]`, the frame (level
//! [`ZSTD_LEVEL`], declaring its content size) holding
//! `[u32 LE length][export-form JSON][bincode summary]`: the JSON and the summary repeat
//! each other's strings, and compressing them together stores them once; zstd's entropy
//! coding also halves the hex and base64 that fill certificate records, which LZ4 (the
//! first format) left as they were. Other values are plain bincode. bincode runs with its
//! standard configuration (little-endian, variable-length integers) and a size limit. bincode is pinned at 2.0.1 and unmaintained
//! (RUSTSEC-2025-0141, no further releases): keeping it behind this module, with a
//! version byte, means switching to another encoding (postcard, …) changes this file
//! and the version number, and nothing else. A reader refuses values written with
//! another version instead of misreading them.
//!
//! Integrity (format 3): every record carries a CRC-32 (crc32fast) of its stored bytes,
//! checked before anything is decoded, so a flipped bit or a torn write is an error,
//! never a different record. A CRC of the stored bytes rather than zstd's own frame
//! checksum: it is checked before the frame is parsed (zstd's checksums the content, after
//! decompressing what a damaged header says), and the same crate checks the whole
//! files at open (see [`super::FileSum`]). It costs 4 bytes per record and a pass over
//! the compressed bytes (crc32fast runs at several GB/s). Every size a record declares is
//! bounded before it is allocated: the stored length by the file's length and
//! [`MAX_STORED_BYTES`], the content size the frame declares by [`MAX_PLAIN_BYTES`],
//! bincode's lengths by the same limit.
//!
//! Dictionaries (format 4): a zstd frame compressed alone carries its own entropy tables
//! and every string once, which for records of a few hundred bytes is most of the frame
//! and most of the decoding time (a table rebuilt per record). A full import trains one
//! [`RecordDictionary`] per record kind on the kind's first records and compresses every
//! record of the kind against it; readers load it once.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cell::RefCell;

/// Version of the value encoding (and of the snapshot format, see the manifest).
/// 3: records carry a CRC-32; the manifest lists every base file's size and CRC.
/// 4: records of a kind are compressed against the kind's dictionary when the index has
/// one ([`RecordDictionary`]).
/// 5: the base's search keys are key tables read on demand (`<tree>.keys`,
/// [`super::key_table`]), each key with its record's packed location, where format 4 read
/// an fst of them into memory. Records are encoded as in format 4.
pub const FORMAT_VERSION: u8 = 5;

/// zstd level of stored records: 1 compresses at several hundred MB/s, and higher levels
/// gained little on IVRE records (measured on the scale data).
pub const ZSTD_LEVEL: i32 = 1;

/// Largest decoded record (JSON, its length and its summary). An imported line is at
/// most 64 MiB (`snapshot::ndjson`) and its summary repeats part of it; a record that
/// would exceed this is refused when it is written, and a stored one that declares more
/// is refused before anything is allocated.
pub const MAX_PLAIN_BYTES: usize = 256 << 20;

/// Largest stored (compressed) record: zstd never grows its input by more than a
/// little, plus the version and CRC bytes.
pub const MAX_STORED_BYTES: u64 = MAX_PLAIN_BYTES as u64 + (1 << 20);

/// Bytes before a record's zstd frame: the version and the CRC.
const RECORD_HEADER: usize = 5;

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
    #[error("record checksum mismatch (stored {stored:08x}, computed {computed:08x}): the file is damaged")]
    Checksum { stored: u32, computed: u32 },
    #[error("record declares {declared} bytes, over the limit of {limit}")]
    TooLarge { declared: u64, limit: u64 },
    #[error("record summary has {0} trailing bytes")]
    Trailing(usize),
    #[error("cannot compress record: {0}")]
    Compress(std::io::Error),
    #[error("cannot decompress record: {0}")]
    Decompress(std::io::Error),
    #[error("record JSON is not UTF-8")]
    NotUtf8,
    #[error(
        "record at offset {offset} ({len} bytes) runs past the end of the file ({file_len} bytes)"
    )]
    OutOfFile {
        offset: u64,
        len: u64,
        file_len: u64,
    },
    #[error("cannot read record: {0}")]
    Read(std::io::Error),
}

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_PLAIN_BYTES>,
>;

fn config() -> Config {
    bincode::config::standard().with_limit::<MAX_PLAIN_BYTES>()
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
    /// The decompressed record being read: reused, so reading a record allocates no
    /// buffer once the thread has read one as large.
    static DECODED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Contexts for frames made against a dictionary (which is given per call).
    static CCTX: RefCell<zstd::zstd_safe::CCtx<'static>> = RefCell::new(zstd::zstd_safe::CCtx::create());
    static DCTX: RefCell<zstd::zstd_safe::DCtx<'static>> = RefCell::new(zstd::zstd_safe::DCtx::create());
}

fn zstd_error(code: usize) -> std::io::Error {
    std::io::Error::other(zstd::zstd_safe::get_error_name(code))
}

/// A record kind's zstd dictionary: trained by a full import on the kind's first
/// records, stored with the index (`<kind>.zdict`, see [`super::dictionary_file`]) and
/// used for every record of the kind that import and later updates write. Frames
/// compressed against it reuse its entropy tables and its common strings instead of
/// carrying and rebuilding their own: on IVRE records decompression runs 2-3x faster and
/// records come out 2-4x smaller (docs/benchmarks.md). zstd writes the dictionary's id
/// in each frame and refuses to decode it against another dictionary; a frame made
/// without one decodes with or without it.
pub struct RecordDictionary {
    bytes: Vec<u8>,
    /// Prepared on first use: a reader only decodes.
    encoder: std::sync::OnceLock<zstd::dict::EncoderDictionary<'static>>,
    decoder: zstd::dict::DecoderDictionary<'static>,
}

impl std::fmt::Debug for RecordDictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordDictionary")
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

impl RecordDictionary {
    /// Largest dictionary trained (zstd's default size).
    pub const MAX_BYTES: usize = 110 << 10;
    /// Fewer samples than this train no dictionary: small kinds compress alone.
    pub const MIN_SAMPLES: usize = 256;
    /// Largest dictionary file read back.
    pub const MAX_FILE_BYTES: u64 = 1 << 20;

    /// Trains a dictionary on plain records ([`plain_record`]); `None` when there are too
    /// few samples or zstd finds none (then records are compressed alone).
    pub fn train<S: AsRef<[u8]>>(samples: &[S]) -> Option<RecordDictionary> {
        if samples.len() < Self::MIN_SAMPLES {
            return None;
        }
        let total: usize = samples.iter().map(|s| s.as_ref().len()).sum();
        // zstd wants about 10x the dictionary's size in samples.
        let size = (total / 10).min(Self::MAX_BYTES);
        match zstd::dict::from_samples(samples, size) {
            Ok(bytes) => Self::from_bytes(bytes).ok(),
            Err(e) => {
                tracing::info!(samples = samples.len(), error = %e, "no zstd dictionary: records are compressed alone");
                None
            }
        }
    }

    /// A dictionary as stored.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<RecordDictionary, CodecError> {
        if bytes.is_empty() {
            return Err(CodecError::Empty);
        }
        if bytes.len() as u64 > Self::MAX_FILE_BYTES {
            return Err(CodecError::TooLarge {
                declared: bytes.len() as u64,
                limit: Self::MAX_FILE_BYTES,
            });
        }
        Ok(RecordDictionary {
            encoder: std::sync::OnceLock::new(),
            decoder: zstd::dict::DecoderDictionary::copy(&bytes),
            bytes,
        })
    }

    /// The bytes to store.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn encoder(&self) -> &zstd::dict::EncoderDictionary<'static> {
        self.encoder
            .get_or_init(|| zstd::dict::EncoderDictionary::copy(&self.bytes, ZSTD_LEVEL))
    }
}

/// The plain form of a record, as it is compressed: `[u32 LE length][JSON][summary]`
/// (what a dictionary is trained on, see [`RecordDictionary::train`]), appended to
/// `out` (cleared first).
pub fn plain_record<T: Serialize>(
    json: &str,
    summary: &T,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let len = u32::try_from(json.len()).map_err(|_| too_large(json.len()))?;
    out.clear();
    out.reserve(json.len() + 64);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(json.as_bytes());
    bincode::serde::encode_into_std_write(summary, out, config())?;
    if out.len() > MAX_PLAIN_BYTES {
        return Err(too_large(out.len()));
    }
    Ok(())
}

fn too_large(declared: usize) -> CodecError {
    CodecError::TooLarge {
        declared: declared as u64,
        limit: MAX_PLAIN_BYTES as u64,
    }
}

/// Encodes a stored record (its export-form JSON and its summary) into `out`,
/// compressed against `dictionary` when there is one (the record kind's, see
/// [`RecordDictionary`]).
pub fn encode_record<T: Serialize>(
    json: &str,
    summary: &T,
    dictionary: Option<&RecordDictionary>,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    PLAIN.with_borrow_mut(|plain| {
        plain_record(json, summary, plain)?;
        compress_record(plain, dictionary, out)
    })
}

/// Compresses a plain record ([`plain_record`]) into its stored form in `out`: what
/// [`encode_record`] gives for the same record and dictionary.
pub fn compress_record(
    plain: &[u8],
    dictionary: Option<&RecordDictionary>,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    if plain.len() > MAX_PLAIN_BYTES {
        return Err(too_large(plain.len()));
    }
    let compressed = match dictionary {
        None => COMPRESSOR.with_borrow_mut(|slot| {
            let compressor = match slot {
                Some(c) => c,
                None => slot.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
            };
            compressor.compress(plain)
        }),
        Some(dictionary) => CCTX.with_borrow_mut(|cctx| {
            let mut compressed = Vec::with_capacity(zstd::zstd_safe::compress_bound(plain.len()));
            cctx.compress_using_cdict(&mut compressed, plain, dictionary.encoder().as_cdict())
                .map_err(zstd_error)?;
            Ok(compressed)
        }),
    };
    let compressed = compressed.map_err(CodecError::Compress)?;
    out.clear();
    out.reserve(RECORD_HEADER + compressed.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&crc32fast::hash(&compressed).to_le_bytes());
    out.extend_from_slice(&compressed);
    Ok(())
}

/// Checks a stored record (version, CRC, declared size), decompresses it and hands its
/// JSON and encoded summary to `f`.
fn with_record_parts<R>(
    bytes: &[u8],
    dictionary: Option<&RecordDictionary>,
    f: impl FnOnce(&[u8], &[u8]) -> Result<R, CodecError>,
) -> Result<R, CodecError> {
    let (&version, rest) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::Version { found: version });
    }
    if bytes.len() < RECORD_HEADER {
        return Err(CodecError::Truncated);
    }
    let (crc, frame) = rest.split_at(RECORD_HEADER - 1);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let computed = crc32fast::hash(frame);
    if stored != computed {
        return Err(CodecError::Checksum { stored, computed });
    }
    let size = zstd::zstd_safe::get_frame_content_size(frame)
        .ok()
        .flatten()
        .ok_or(CodecError::Truncated)?;
    if size > MAX_PLAIN_BYTES as u64 {
        return Err(CodecError::TooLarge {
            declared: size,
            limit: MAX_PLAIN_BYTES as u64,
        });
    }
    DECODED.with_borrow_mut(|plain| {
        plain.clear();
        // Bounded just above.
        plain.reserve(size as usize);
        match dictionary {
            None => DECOMPRESSOR.with_borrow_mut(|slot| {
                let decompressor = match slot {
                    Some(d) => d,
                    None => slot.insert(zstd::bulk::Decompressor::new()?),
                };
                decompressor.decompress_to_buffer(frame, plain)
            }),
            Some(dictionary) => DCTX.with_borrow_mut(|dctx| {
                dctx.decompress_using_ddict(plain, frame, dictionary.decoder.as_ddict())
                    .map_err(zstd_error)
            }),
        }
        .map_err(CodecError::Decompress)?;
        let len_bytes: [u8; 4] = plain
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or(CodecError::Truncated)?;
        let len = u32::from_le_bytes(len_bytes) as usize;
        let json = plain
            .get(4..4usize.saturating_add(len))
            .ok_or(CodecError::Truncated)?;
        f(json, &plain[4 + len..])
    })
}

fn json_string(json: &[u8]) -> Result<String, CodecError> {
    String::from_utf8(json.to_vec()).map_err(|_| CodecError::NotUtf8)
}

fn summary_value<T: DeserializeOwned>(summary: &[u8]) -> Result<T, CodecError> {
    let (value, read) = bincode::serde::decode_from_slice(summary, config())?;
    if read != summary.len() {
        return Err(CodecError::Trailing(summary.len() - read));
    }
    Ok(value)
}

/// The export-form JSON of a stored record (compressed against `dictionary`, the
/// record kind's, when the index has one).
pub fn decode_record_json(
    bytes: &[u8],
    dictionary: Option<&RecordDictionary>,
) -> Result<String, CodecError> {
    with_record_parts(bytes, dictionary, |json, _| json_string(json))
}

/// The summary of a stored record.
pub fn decode_record_summary<T: DeserializeOwned>(
    bytes: &[u8],
    dictionary: Option<&RecordDictionary>,
) -> Result<T, CodecError> {
    with_record_parts(bytes, dictionary, |_, summary| summary_value(summary))
}

/// A whole stored record (as `super::record_file::read_record` returns it, without the
/// file's length prefix): its export-form JSON and its summary, every check applied.
/// The entry point for a fuzzer: any bytes give a record or an error, with or without
/// a dictionary.
pub fn decode_record<T: DeserializeOwned>(
    bytes: &[u8],
    dictionary: Option<&RecordDictionary>,
) -> Result<(String, T), CodecError> {
    with_record_parts(bytes, dictionary, |json, summary| {
        Ok((json_string(json)?, summary_value(summary)?))
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

/// A location packed in the `u64` value of a base key table entry: the offset in the high
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

/// Bytes of the length prefix of each record in a records file.
pub const LENGTH_PREFIX: u64 = 4;

/// The length prefix of a stored record in a records file: `u32 LE`.
pub fn encode_length_prefix(len: u32) -> [u8; 4] {
    len.to_le_bytes()
}

/// The inverse of [`encode_length_prefix`].
pub fn decode_length_prefix(prefix: [u8; 4]) -> u32 {
    u32::from_le_bytes(prefix)
}

/// Bytes of a packed location in a `.loc` file.
pub const PACKED_LOCATION_LEN: usize = 8;

/// A packed location ([`pack_location`]) as a `.loc` file stores it: `u64 LE`.
pub fn encode_packed_location(packed: u64) -> [u8; PACKED_LOCATION_LEN] {
    packed.to_le_bytes()
}

/// The packed locations of a `.loc` file; `None` when its length is not a multiple of
/// [`PACKED_LOCATION_LEN`].
pub fn decode_packed_locations(bytes: &[u8]) -> Option<Vec<u64>> {
    if !bytes.len().is_multiple_of(PACKED_LOCATION_LEN) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(PACKED_LOCATION_LEN)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect(),
    )
}

/// A count of the `meta` tree (records, next id, end of the base): `u64 BE`.
pub fn encode_count(value: u64) -> [u8; 8] {
    value.to_be_bytes()
}

/// The inverse of [`encode_count`]; `None` when `bytes` is not 8 bytes long.
pub fn decode_count(bytes: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(bytes).ok().map(u64::from_be_bytes)
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

/// The inverse of [`encode_location`]: exactly [`LOCATION_LEN`] bytes.
pub fn decode_location(bytes: &[u8]) -> Result<Location, CodecError> {
    if bytes.len() != LOCATION_LEN {
        return Err(CodecError::Truncated);
    }
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
        encode_record(json, &(7u32, Some("x".to_owned())), None, &mut out).unwrap();
        assert!(out.len() < json.len() + 8, "the JSON is compressed");
        assert_eq!(decode_record_json(&out, None).unwrap(), json);
        assert_eq!(
            decode_record_summary::<(u32, Option<String>)>(&out, None).unwrap(),
            (7, Some("x".to_owned()))
        );
        for cut in [0, 1, 3, 6, out.len() - 1] {
            let broken = &out[..cut];
            assert!(
                decode_record_json(broken, None).is_err()
                    || decode_record_summary::<(u32, Option<String>)>(broken, None).is_err()
            );
        }
        out[0] = 0;
        assert!(matches!(
            decode_record_json(&out, None),
            Err(CodecError::Version { found: 0 })
        ));
    }

    /// Records compressed against a trained dictionary read back whole with it, come out
    /// smaller than alone, and without it are an error, never another record.
    #[test]
    fn records_round_trip_with_a_dictionary() {
        let record = |i: usize| {
            let json = format!(
                r#"{{"addr": "192.0.2.{}", "recontype": "DNS_ANSWER", "sensor": "S", "source": "A-192.0.2.53-53", "value": "host{i}.example{}.com", "count": {i}, "firstseen": "2026-01-01 00:00:00", "lastseen": "2026-01-02 00:00:00"}}"#,
                i % 256,
                i % 17
            );
            (json, (i as u32, Some(format!("host{i}"))))
        };
        let samples: Vec<Vec<u8>> = (0..2000)
            .map(|i| {
                let (json, summary) = record(i);
                let mut plain = Vec::new();
                plain_record(&json, &summary, &mut plain).unwrap();
                plain
            })
            .collect();
        assert!(
            RecordDictionary::train(&samples[..10]).is_none(),
            "too few samples"
        );
        let dictionary = RecordDictionary::train(&samples).expect("a dictionary");
        let again = RecordDictionary::from_bytes(dictionary.bytes().to_vec()).unwrap();
        let (json, summary) = record(5000);
        let (mut alone, mut with) = (Vec::new(), Vec::new());
        encode_record(&json, &summary, None, &mut alone).unwrap();
        encode_record(&json, &summary, Some(&dictionary), &mut with).unwrap();
        assert!(
            with.len() < alone.len(),
            "{} vs {}",
            with.len(),
            alone.len()
        );
        assert_eq!(decode_record_json(&with, Some(&again)).unwrap(), json);
        assert_eq!(
            decode_record_summary::<(u32, Option<String>)>(&with, Some(&again)).unwrap(),
            summary
        );
        assert!(matches!(
            decode_record_json(&with, None),
            Err(CodecError::Decompress(_))
        ));
        // A record made without a dictionary still reads with one given.
        assert_eq!(decode_record_json(&alone, Some(&again)).unwrap(), json);
    }

    /// Fuzzing (`fuzz/`, target `codec`): a frame header declaring exabytes of content
    /// made the decoder allocate that much (and abort) before reading the frame.
    #[test]
    fn declared_size_is_bounded_by_the_frame() {
        // Magic, single segment with an 8-byte content size of 2^60, no block.
        let mut frame = vec![FORMAT_VERSION, 0x28, 0xb5, 0x2f, 0xfd, 0xe0];
        frame.extend_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(decode_record_json(&frame, None).is_err());
        // A real record still decodes: its frame declares what it holds.
        let json = "{}".repeat(50_000);
        let mut out = Vec::new();
        encode_record(&json, &0u8, None, &mut out).unwrap();
        assert!(out.len() < 1000, "{}", out.len());
        assert_eq!(decode_record_json(&out, None).unwrap(), json);
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
        // Found with format version 2; the same bytes under the current version.
        let mut crash = crash;
        crash[0] = FORMAT_VERSION;
        assert!(matches!(
            decode::<Vec<String>>(&crash),
            Err(CodecError::Decode(_))
        ));
        // The same length inside a record's summary.
        let mut summary = Vec::new();
        encode_record("{}", &vec![String::from("x")], None, &mut summary).unwrap();
        assert_eq!(
            decode_record_summary::<Vec<String>>(&summary, None).unwrap(),
            ["x"]
        );
        let mut plain = vec![2, 0, 0, 0, b'{', b'}', 1, 0xfd];
        plain.extend_from_slice(&(1u64 << 60).to_le_bytes());
        let mut forged = vec![FORMAT_VERSION];
        forged.extend_from_slice(&zstd::bulk::compress(&plain, 1).unwrap());
        assert!(decode_record_summary::<Vec<String>>(&forged, None).is_err());
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
