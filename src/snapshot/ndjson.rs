//! Reading NDJSON exports line by line, gzip or not, with line numbers and bounded
//! memory (a line longer than [`MAX_LINE_BYTES`] is rejected, not loaded) and bounded
//! decompression (a gzip bomb is an error naming the file, see [`InputLimits`]).
//!
//! Compressed inputs: gzip only (detected from its magic bytes; concatenated members
//! are read). zstd, bzip2 or xz files are read as text and their lines rejected as
//! not UTF-8 or not JSON: decompress them first.

use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Longest accepted line.
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;
/// Decompressed bytes a gzip input may reach whatever its ratio (small, very
/// repetitive exports stay readable).
pub const DECOMPRESSED_FLOOR: u64 = 256 * 1024 * 1024;
/// Past [`DECOMPRESSED_FLOOR`], the most decompressed bytes per compressed byte read.
/// IVRE's NDJSON exports compress 3 to 30 times; deflate's maximum is about 1,032
/// (what a bomb uses).
pub const MAX_DECOMPRESSION_RATIO: u64 = 200;
/// Most decompressed bytes of one gzip input, whatever its ratio (1 TiB).
pub const MAX_DECOMPRESSED_BYTES: u64 = 1 << 40;

/// Bounds on what one input may make the reader hold or produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLimits {
    /// Longest accepted line (a longer one is a rejected line, skipped unread).
    pub max_line_bytes: usize,
    /// See [`DECOMPRESSED_FLOOR`].
    pub decompressed_floor: u64,
    /// See [`MAX_DECOMPRESSION_RATIO`].
    pub max_ratio: u64,
    /// See [`MAX_DECOMPRESSED_BYTES`].
    pub max_decompressed: u64,
}

impl Default for InputLimits {
    fn default() -> Self {
        InputLimits {
            max_line_bytes: MAX_LINE_BYTES,
            decompressed_floor: DECOMPRESSED_FLOOR,
            max_ratio: MAX_DECOMPRESSION_RATIO,
            max_decompressed: MAX_DECOMPRESSED_BYTES,
        }
    }
}

/// A line that cannot be a record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LineError {
    #[error("line longer than {0} bytes (skipped unread)")]
    TooLong(usize),
    #[error("line is not valid UTF-8")]
    NotUtf8,
}

/// Reads an export file (plain or gzip, detected from its first bytes).
pub struct LineReader {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    line_no: u64,
    buf: Vec<u8>,
    max_line: usize,
    /// Bytes read from the file so far (compressed bytes for gzip).
    read: Arc<AtomicU64>,
}

impl LineReader {
    /// Opens `path` (following symlinks) with the default limits.
    pub fn open(path: &Path) -> io::Result<LineReader> {
        Self::from_file(path, File::open(path)?, InputLimits::default())
    }

    /// Reads the already opened `file` (named `path` in errors) within `limits`.
    pub fn from_file(path: &Path, file: File, limits: InputLimits) -> io::Result<LineReader> {
        let compressed = Arc::new(AtomicU64::new(0));
        let counted = Counted {
            inner: file,
            count: compressed.clone(),
        };
        let read = compressed.clone();
        let mut file = BufReader::with_capacity(256 * 1024, counted);
        let gzip = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        let reader: Box<dyn BufRead + Send> = if gzip {
            Box::new(BufReader::with_capacity(
                256 * 1024,
                Bounded {
                    inner: MultiGzDecoder::new(file),
                    compressed,
                    produced: 0,
                    limits,
                },
            ))
        } else {
            Box::new(file)
        };
        Ok(LineReader {
            path: path.to_owned(),
            reader,
            line_no: 0,
            buf: Vec::new(),
            max_line: limits.max_line_bytes,
            read,
        })
    }

    /// Bytes read from the file so far (compressed bytes for a gzip file): the progress of
    /// an import.
    pub fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// The file's path, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next non-empty line and its number; `Ok(None)` at the end of the file. An
    /// I/O error (unreadable file, corrupt gzip) ends the file and is returned as `Err`.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Result<&str, LineError>)>> {
        loop {
            self.buf.clear();
            self.line_no += 1;
            let limit = self.max_line as u64 + 1;
            let n = self
                .reader
                .by_ref()
                .take(limit)
                .read_until(b'\n', &mut self.buf)?;
            if n == 0 {
                return Ok(None);
            }
            if self.buf.len() > self.max_line && self.buf.last() != Some(&b'\n') {
                self.buf = Vec::new();
                self.skip_rest_of_line()?;
                return Ok(Some((self.line_no, Err(LineError::TooLong(self.max_line)))));
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let line_no = self.line_no;
            return Ok(Some(match std::str::from_utf8(&self.buf) {
                Ok(s) => (line_no, Ok(s.trim())),
                Err(_) => (line_no, Err(LineError::NotUtf8)),
            }));
        }
    }

    fn skip_rest_of_line(&mut self) -> io::Result<()> {
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                return Ok(());
            }
            if let Some(pos) = available.iter().position(|&b| b == b'\n') {
                self.reader.consume(pos + 1);
                return Ok(());
            }
            let len = available.len();
            self.reader.consume(len);
        }
    }
}

/// Opens an input. With `regular_only` (the drop folder), the file is checked with
/// `lstat` first, opened with `O_NOFOLLOW` (a symlink is an error, never followed) and
/// `O_NONBLOCK` (a FIFO does not block the open), and the open file must be a regular
/// file: a FIFO, device, directory or socket is an error.
pub fn open_input(path: &Path, regular_only: bool) -> io::Result<File> {
    if !regular_only {
        return File::open(path);
    }
    let not_regular = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file ({what}): only regular files are imported"),
        )
    };
    let kind = |t: std::fs::FileType| {
        use std::os::unix::fs::FileTypeExt;
        if t.is_symlink() {
            "a symbolic link"
        } else if t.is_dir() {
            "a directory"
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_socket() {
            "a socket"
        } else if t.is_block_device() || t.is_char_device() {
            "a device"
        } else {
            "not a file"
        }
    };
    let before = std::fs::symlink_metadata(path)?;
    if !before.file_type().is_file() {
        return Err(not_regular(kind(before.file_type())));
    }
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                // O_NOFOLLOW on a symlink planted after the lstat.
                Some(libc::ELOOP) => not_regular("a symbolic link"),
                _ => e,
            })?
    };
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(not_regular(kind(meta.file_type())));
    }
    {
        use std::os::unix::fs::MetadataExt;
        if (meta.dev(), meta.ino()) != (before.dev(), before.ino()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the file was replaced while it was opened",
            ));
        }
    }
    Ok(file)
}

/// Counts the bytes read from the (compressed) file.
struct Counted<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A decompressor that fails once its output passes the limits.
struct Bounded<R> {
    inner: R,
    compressed: Arc<AtomicU64>,
    produced: u64,
    limits: InputLimits,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.produced += n as u64;
        let compressed = self.compressed.load(Ordering::Relaxed).max(1);
        let l = &self.limits;
        if self.produced > l.max_decompressed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "decompressed data passes {} bytes: refusing to read further (a gzip bomb, or split the export)",
                    l.max_decompressed
                ),
            ));
        }
        if self.produced > l.decompressed_floor && self.produced / compressed >= l.max_ratio {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "gzip data expands more than {} times ({} bytes from {compressed}): refusing it as a decompression bomb",
                    l.max_ratio, self.produced
                ),
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn lines_are_numbered_and_gzip_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.jsonl");
        std::fs::write(&plain, b"{\"a\":1}\n\n\xff\xfe\n{\"b\":2}").unwrap();
        let gz = dir.path().join("a.jsonl.gz");
        let mut enc =
            flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        enc.write_all(&std::fs::read(&plain).unwrap()).unwrap();
        enc.finish().unwrap();
        for path in [&plain, &gz] {
            let mut r = LineReader::open(path).unwrap();
            let mut got = Vec::new();
            while let Some((n, line)) = r.next_line().unwrap() {
                got.push((n, line.map(str::to_owned)));
            }
            assert_eq!(
                got,
                vec![
                    (1, Ok("{\"a\":1}".to_owned())),
                    (3, Err(LineError::NotUtf8)),
                    (4, Ok("{\"b\":2}".to_owned())),
                ]
            );
        }
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("t.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&b"{\"a\":1}\n".repeat(1000)).unwrap();
        let bytes = enc.finish().unwrap();
        std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
        let mut r = LineReader::open(&gz).unwrap();
        let result = loop {
            match r.next_line() {
                Ok(Some(_)) => continue,
                other => break other.map(|o| o.is_some()),
            }
        };
        assert!(result.is_err());
    }

    /// A gzip bomb (1 GiB in about 1 MiB: one member repeated, as gzip allows) fails
    /// with an error after reading little more than the floor.
    #[test]
    fn a_gzip_bomb_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("bomb.jsonl.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![b'x'; 1 << 20]).unwrap();
        let member = enc.finish().unwrap();
        let mut file = File::create(&gz).unwrap();
        for _ in 0..1024 {
            file.write_all(&member).unwrap();
        }
        drop(file);
        assert!(std::fs::metadata(&gz).unwrap().len() < 2 << 20);
        let read_all = |limits: InputLimits| {
            let mut r = LineReader::from_file(&gz, File::open(&gz).unwrap(), limits).unwrap();
            loop {
                match r.next_line() {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("the bomb was read to its end"),
                    Err(e) => break e.to_string(),
                }
            }
        };
        let err = read_all(InputLimits {
            decompressed_floor: 4 << 20,
            max_line_bytes: 1 << 20,
            ..InputLimits::default()
        });
        assert!(err.contains("decompression bomb"), "{err}");
        // The absolute cap applies whatever the ratio.
        let err = read_all(InputLimits {
            max_decompressed: 2 << 20,
            max_ratio: u64::MAX,
            max_line_bytes: 1 << 20,
            ..InputLimits::default()
        });
        assert!(err.contains("2097152 bytes"), "{err}");
    }

    /// A line over the limit is a rejected line and the next one is read: it is never
    /// held whole (the buffer stays at the limit).
    #[test]
    fn a_long_line_is_rejected_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.jsonl");
        let mut text = b"{\"a\":1}\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 5000));
        text.extend(b"\n{\"b\":2}\n");
        std::fs::write(&path, &text).unwrap();
        let limits = InputLimits {
            max_line_bytes: 1000,
            ..InputLimits::default()
        };
        let mut r = LineReader::from_file(&path, File::open(&path).unwrap(), limits).unwrap();
        let mut got = Vec::new();
        while let Some((n, line)) = r.next_line().unwrap() {
            got.push((n, line.map(str::to_owned)));
            assert!(r.buf.capacity() <= 4096, "{}", r.buf.capacity());
        }
        assert_eq!(
            got,
            vec![
                (1, Ok("{\"a\":1}".to_owned())),
                (2, Err(LineError::TooLong(1000))),
                (3, Ok("{\"b\":2}".to_owned())),
            ]
        );
    }
}
