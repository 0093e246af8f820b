//! The record files, shared by the writers and the reader: `<kind>.bin` (a full import's
//! records) and `<kind>.delta.bin` (records added by updates), each a sequence of
//! `[length prefix][stored record]` (both encoded by [`codec`]) in the order written.
//! Writers append ([`RecordAppender`]); the reader and the update writer read a record
//! back from its location with positioned reads ([`RecordFile`], [`read_record_into`]).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::codec::{self, CodecError, Location, MAX_STORED_BYTES};
use super::IndexError;
use crate::ivre::RecordKind;

/// A records file opened for reading, and its length.
pub struct RecordFile {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    pub(crate) len: u64,
}

impl RecordFile {
    /// Reads the record at `location` (the delta bit ignored) into `buf`.
    pub fn read_into(&self, location: Location, buf: &mut Vec<u8>) -> Result<(), CodecError> {
        read_record_into(
            &self.file,
            self.len,
            codec::without_delta_bit(location),
            buf,
        )
    }
}

/// A records file appended to: a full import's `<kind>.bin`, or an update's
/// `<kind>.delta.bin` (whose locations carry [`codec::DELTA_OFFSET`]).
pub struct RecordAppender {
    kind: RecordKind,
    path: PathBuf,
    file: BufWriter<File>,
    /// The file's length, records buffered included.
    offset: u64,
    delta: bool,
}

impl RecordAppender {
    /// Opens (or creates) `path` to append records of `kind` after what it holds.
    pub fn open(path: &Path, kind: RecordKind, delta: bool) -> Result<RecordAppender, IndexError> {
        let file = File::options()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| IndexError::io(path, e))?;
        let offset = file.metadata().map_err(|e| IndexError::io(path, e))?.len();
        Ok(RecordAppender {
            kind,
            path: path.to_owned(),
            file: BufWriter::with_capacity(1 << 20, file),
            offset,
            delta,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends record `id`'s encoded bytes; returns its location.
    pub fn append(&mut self, id: u64, bytes: &[u8]) -> Result<Location, IndexError> {
        let len = u32::try_from(bytes.len()).map_err(|_| IndexError::Codec {
            path: self.path.clone(),
            kind: self.kind,
            id,
            source: CodecError::Truncated,
        })?;
        let location = Location {
            offset: (self.offset + codec::LENGTH_PREFIX)
                | if self.delta { codec::DELTA_OFFSET } else { 0 },
            len,
        };
        self.file
            .write_all(&codec::encode_length_prefix(len))
            .and_then(|()| self.file.write_all(bytes))
            .map_err(|e| IndexError::io(&self.path, e))?;
        self.offset += codec::LENGTH_PREFIX + u64::from(len);
        Ok(location)
    }

    /// Reads back record `id`, appended earlier, into a new buffer.
    pub fn read(&mut self, id: u64, location: Location) -> Result<Vec<u8>, IndexError> {
        self.file
            .flush()
            .map_err(|e| IndexError::io(&self.path, e))?;
        let mut buf = Vec::new();
        read_record_into(
            self.file.get_ref(),
            self.offset,
            codec::without_delta_bit(location),
            &mut buf,
        )
        .map_err(|source| IndexError::Codec {
            path: self.path.clone(),
            kind: self.kind,
            id,
            source,
        })?;
        Ok(buf)
    }

    /// Empties the file (a replaced kind).
    pub fn truncate(&mut self) -> Result<(), IndexError> {
        self.file
            .flush()
            .map_err(|e| IndexError::io(&self.path, e))?;
        self.file
            .get_ref()
            .set_len(0)
            .map_err(|e| IndexError::io(&self.path, e))?;
        self.offset = 0;
        Ok(())
    }

    /// Flushes and syncs the file; returns its length.
    pub fn finish(self) -> Result<u64, IndexError> {
        let file = self
            .file
            .into_inner()
            .map_err(|e| IndexError::io(&self.path, e.into_error()))?;
        file.sync_all().map_err(|e| IndexError::io(&self.path, e))?;
        Ok(self.offset)
    }
}

/// Reads the record at `loc` from a records file of `file_len` bytes (see
/// [`codec::pack_location`] for a length of `0`). The length is checked against the file and
/// [`MAX_STORED_BYTES`] before the buffer is allocated.
pub fn read_record(
    file: &std::fs::File,
    file_len: u64,
    loc: Location,
) -> Result<Vec<u8>, CodecError> {
    let mut buf = Vec::new();
    read_record_into(file, file_len, loc, &mut buf)?;
    Ok(buf)
}

/// [`read_record`] into `buf` (cleared first; its allocation is reused).
pub fn read_record_into(
    file: &std::fs::File,
    file_len: u64,
    loc: Location,
    buf: &mut Vec<u8>,
) -> Result<(), CodecError> {
    use std::os::unix::fs::FileExt;
    let len = if loc.len == 0 {
        if loc.offset < codec::LENGTH_PREFIX || loc.offset > file_len {
            return Err(CodecError::OutOfFile {
                offset: loc.offset,
                len: 4,
                file_len,
            });
        }
        let mut prefix = [0u8; 4];
        file.read_exact_at(&mut prefix, loc.offset - codec::LENGTH_PREFIX)
            .map_err(CodecError::Read)?;
        codec::decode_length_prefix(prefix)
    } else {
        loc.len
    };
    if u64::from(len) > MAX_STORED_BYTES {
        return Err(CodecError::TooLarge {
            declared: u64::from(len),
            limit: MAX_STORED_BYTES,
        });
    }
    if loc
        .offset
        .checked_add(u64::from(len))
        .is_none_or(|end| end > file_len)
    {
        return Err(CodecError::OutOfFile {
            offset: loc.offset,
            len: u64::from(len),
            file_len,
        });
    }
    buf.clear();
    buf.resize(len as usize, 0);
    file.read_exact_at(buf, loc.offset)
        .map_err(CodecError::Read)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn records_too_long_for_a_packed_length_are_read_from_their_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let file_path = dir.path().join("records");
        let mut body = vec![7u8; 100];
        body[0] = 1;
        let mut bytes = (body.len() as u32).to_le_bytes().to_vec();
        bytes.extend_from_slice(&body);
        std::fs::write(&file_path, &bytes).unwrap();
        let file = File::open(&file_path).unwrap();
        let packed = codec::pack_location(Location { offset: 4, len: 0 }).unwrap();
        let len = bytes.len() as u64;
        let read = read_record(&file, len, codec::unpack_location(packed)).unwrap();
        assert_eq!(read, body);
    }

    #[test]
    fn appended_records_are_read_back_by_location() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passive.delta.bin");
        std::fs::write(&path, b"0123").unwrap();
        let mut appender = RecordAppender::open(&path, RecordKind::Passive, true).unwrap();
        let first = appender.append(7, b"first record").unwrap();
        let second = appender.append(8, b"second").unwrap();
        // After what the file held, each behind its length prefix; the delta bit set.
        assert_eq!(first.offset, codec::DELTA_OFFSET | 8);
        assert_eq!(second.offset, codec::DELTA_OFFSET | (8 + 12 + 4));
        assert_eq!((first.len, second.len), (12, 6));
        assert_eq!(appender.read(8, second).unwrap(), b"second");
        assert_eq!(appender.finish().unwrap(), 4 + 4 + 12 + 4 + 6);
        let file = RecordFile {
            path: path.clone(),
            file: File::open(&path).unwrap(),
            len: 30,
        };
        let mut buf = Vec::new();
        file.read_into(first, &mut buf).unwrap();
        assert_eq!(buf, b"first record");
        // A length of 0 is read from the prefix; past the end is an error.
        let unpacked = Location { offset: 8, len: 0 };
        file.read_into(unpacked, &mut buf).unwrap();
        assert_eq!(buf, b"first record");
        let beyond = Location { offset: 28, len: 6 };
        assert!(matches!(
            file.read_into(beyond, &mut buf),
            Err(CodecError::OutOfFile { .. })
        ));
    }
}
