//! Reading NDJSON exports line by line, gzip or not, with line numbers and bounded
//! memory (a line longer than [`MAX_LINE_BYTES`] is rejected, not loaded).

use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Longest accepted line.
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// A line that cannot be a record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LineError {
    #[error("line longer than {MAX_LINE_BYTES} bytes")]
    TooLong,
    #[error("line is not valid UTF-8")]
    NotUtf8,
}

/// Reads an export file (plain or gzip, detected from its first bytes).
pub struct LineReader {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    line_no: u64,
    buf: Vec<u8>,
}

impl LineReader {
    pub fn open(path: &Path) -> io::Result<LineReader> {
        let mut file = BufReader::with_capacity(256 * 1024, File::open(path)?);
        let gzip = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        let reader: Box<dyn BufRead + Send> = if gzip {
            Box::new(BufReader::with_capacity(
                256 * 1024,
                MultiGzDecoder::new(file),
            ))
        } else {
            Box::new(file)
        };
        Ok(LineReader {
            path: path.to_owned(),
            reader,
            line_no: 0,
            buf: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next non-empty line and its number; `Ok(None)` at the end of the file. An
    /// I/O error (unreadable file, corrupt gzip) ends the file and is returned as `Err`.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Result<&str, LineError>)>> {
        loop {
            self.buf.clear();
            self.line_no += 1;
            let limit = (MAX_LINE_BYTES + 1) as u64;
            let n = self
                .reader
                .by_ref()
                .take(limit)
                .read_until(b'\n', &mut self.buf)?;
            if n == 0 {
                return Ok(None);
            }
            if self.buf.len() > MAX_LINE_BYTES && self.buf.last() != Some(&b'\n') {
                self.skip_rest_of_line()?;
                return Ok(Some((self.line_no, Err(LineError::TooLong))));
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
}
