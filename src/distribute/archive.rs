//! A generation as one `.tar.zst`: written deterministically (sorted entries, fixed
//! times and owners) while hashing, and unpacked defensively.

use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

/// zstd level of the archive (the record files are compressed already).
const ZSTD_LEVEL: i32 = 3;

/// Why an archive could not be written or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: only regular files and directories can be archived")]
    NotArchivable { path: PathBuf },
    #[error("unreadable archive: {0}")]
    Read(#[source] io::Error),
    #[error("unsafe archive entry {entry:?}: {reason}")]
    UnsafeEntry { entry: String, reason: &'static str },
    #[error("the archive unpacks to more than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the archive has more than {limit} entries")]
    TooManyEntries { limit: u64 },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A writer that hashes and counts what goes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The SHA-256 (lower-case hex) and size of a written archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub sha256: String,
    pub bytes: u64,
}

/// Archives the contents of `dir` (paths relative to it) into `out`, which is fsynced.
/// Only reads `dir`. The same directory gives the same bytes.
pub fn write(dir: &Path, out: File, out_path: &Path) -> Result<Written, ArchiveError> {
    let hashing = Hashing {
        inner: out,
        hasher: Sha256::new(),
        bytes: 0,
    };
    let encoder = zstd::Encoder::new(hashing, ZSTD_LEVEL).map_err(io_error(out_path))?;
    let mut tar = tar::Builder::new(encoder);
    tar.mode(tar::HeaderMode::Deterministic);
    tar.follow_symlinks(false);
    add_dir(&mut tar, dir, Path::new(""))?;
    let encoder = tar.into_inner().map_err(io_error(out_path))?;
    let mut hashing = encoder.finish().map_err(io_error(out_path))?;
    hashing.flush().map_err(io_error(out_path))?;
    hashing.inner.sync_all().map_err(io_error(out_path))?;
    Ok(Written {
        sha256: hex::encode(hashing.hasher.finalize()),
        bytes: hashing.bytes,
    })
}

fn add_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
) -> Result<(), ArchiveError> {
    let dir = root.join(rel);
    let mut entries = fs::read_dir(&dir)
        .map_err(io_error(&dir))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_error(&dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = rel.join(entry.file_name());
        let kind = entry.file_type().map_err(io_error(&path))?;
        if kind.is_dir() {
            tar.append_dir(&name, &path).map_err(io_error(&path))?;
            add_dir(tar, root, &name)?;
        } else if kind.is_file() {
            let mut file = File::open(&path).map_err(io_error(&path))?;
            tar.append_file(&name, &mut file).map_err(io_error(&path))?;
        } else {
            return Err(ArchiveError::NotArchivable { path });
        }
    }
    Ok(())
}

/// What [`unpack`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Total size of the files.
    pub max_bytes: u64,
    pub max_entries: u64,
}

/// Unpacks `archive` into the existing empty directory `dest`: regular files and
/// directories only, relative paths without `..`, no entry twice, within `limits`.
/// On error `dest` holds a partial tree (the caller removes it).
pub fn unpack(archive: &Path, dest: &Path, limits: UnpackLimits) -> Result<u64, ArchiveError> {
    let file = File::open(archive).map_err(io_error(archive))?;
    let decoder = zstd::Decoder::new(file).map_err(ArchiveError::Read)?;
    let mut tar = tar::Archive::new(decoder);
    let (mut total, mut count) = (0u64, 0u64);
    for entry in tar.entries().map_err(ArchiveError::Read)? {
        let mut entry = entry.map_err(ArchiveError::Read)?;
        count += 1;
        if count > limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                limit: limits.max_entries,
            });
        }
        let raw = entry.path().map_err(ArchiveError::Read)?.into_owned();
        let shown = raw.display().to_string();
        let unsafe_entry = |reason| ArchiveError::UnsafeEntry {
            entry: shown.chars().take(200).collect(),
            reason,
        };
        let rel = safe_relative(&raw).map_err(unsafe_entry)?;
        let target = dest.join(&rel);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                fs::create_dir_all(&target).map_err(io_error(&target))?;
            }
            tar::EntryType::Regular => {
                let size = entry.size();
                total = total.saturating_add(size);
                if total > limits.max_bytes {
                    return Err(ArchiveError::TooLarge {
                        limit: limits.max_bytes,
                    });
                }
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(io_error(parent))?;
                }
                // create_new: an entry given twice is refused, nothing is overwritten.
                let mut out = File::create_new(&target).map_err(|e| {
                    if e.kind() == io::ErrorKind::AlreadyExists {
                        unsafe_entry("given twice")
                    } else {
                        ArchiveError::Io {
                            path: target.clone(),
                            source: e,
                        }
                    }
                })?;
                let copied = io::copy(&mut io::Read::take(&mut entry, size), &mut out)
                    .map_err(ArchiveError::Read)?;
                if copied != size {
                    return Err(ArchiveError::Read(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{shown}: {copied} of {size} bytes"),
                    )));
                }
            }
            tar::EntryType::Symlink => return Err(unsafe_entry("a symbolic link")),
            tar::EntryType::Link => return Err(unsafe_entry("a hard link")),
            _ => return Err(unsafe_entry("not a regular file or a directory")),
        }
    }
    Ok(total)
}

/// `path` as plain relative components, or why not.
fn safe_relative(path: &Path) -> Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("a '..' path"),
            Component::RootDir | Component::Prefix(_) => return Err("an absolute path"),
        }
    }
    if out.as_os_str().is_empty() {
        return Err("an empty path");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: UnpackLimits = UnpackLimits {
        max_bytes: 1 << 20,
        max_entries: 100,
    };

    fn sample(dir: &Path) {
        fs::create_dir_all(dir.join("index/entries")).unwrap();
        fs::write(dir.join("manifest.json"), b"{}").unwrap();
        fs::write(dir.join("index/scans.bin"), vec![7u8; 10_000]).unwrap();
        fs::write(dir.join("index/entries/db"), b"sled").unwrap();
    }

    fn archive_of(dir: &Path, out: &Path) -> Written {
        write(dir, File::create(out).unwrap(), out).unwrap()
    }

    #[test]
    fn round_trip_is_deterministic() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        sample(&src);
        let a = archive_of(&src, &tmp.path().join("a.tar.zst"));
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = archive_of(&src, &tmp.path().join("b.tar.zst"));
        assert_eq!(a, b);
        assert_eq!(
            a.bytes,
            fs::metadata(tmp.path().join("a.tar.zst")).unwrap().len()
        );
        let dest = tmp.path().join("dest");
        fs::create_dir(&dest).unwrap();
        let total = unpack(&tmp.path().join("a.tar.zst"), &dest, LIMITS).unwrap();
        assert_eq!(total, 2 + 10_000 + 4);
        assert_eq!(
            fs::read(dest.join("index/scans.bin")).unwrap(),
            vec![7u8; 10_000]
        );
        assert_eq!(fs::read(dest.join("index/entries/db")).unwrap(), b"sled");
    }

    #[test]
    fn limits_are_enforced() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        sample(&src);
        let archive = tmp.path().join("a.tar.zst");
        archive_of(&src, &archive);
        for (limits, expected) in [
            (
                UnpackLimits {
                    max_bytes: 5_000,
                    ..LIMITS
                },
                "more than 5000 bytes",
            ),
            (
                UnpackLimits {
                    max_entries: 2,
                    ..LIMITS
                },
                "more than 2 entries",
            ),
        ] {
            let dest = tempfile::tempdir().unwrap();
            let err = unpack(&archive, dest.path(), limits)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn symlinks_are_not_archived() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        sample(&src);
        std::os::unix::fs::symlink("/etc/passwd", src.join("index/link")).unwrap();
        let out = tmp.path().join("a.tar.zst");
        let err = write(&src, File::create(&out).unwrap(), &out).unwrap_err();
        assert!(matches!(err, ArchiveError::NotArchivable { .. }), "{err}");
    }

    #[test]
    fn relative_paths_only() {
        assert!(safe_relative(Path::new("index/./a")).is_ok());
        assert!(safe_relative(Path::new("../a")).is_err());
        assert!(safe_relative(Path::new("index/../../a")).is_err());
        assert!(safe_relative(Path::new("/etc/passwd")).is_err());
        assert!(safe_relative(Path::new(".")).is_err());
    }
}
