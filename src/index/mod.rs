//! The on-disk format of a snapshot ([`keys`]: every key, [`codec`]: every encoded value)
//! and the code that uses it: [`record_file`] (the record files, appended and read by
//! location), [`entries`] (a record's search entries), [`record_identity`], [`sorted`],
//! [`key_table`] and [`identity_file`] (the base), the two writers, [`BaseWriter`] (a full import) and
//! [`UpdateWriter`] (a copy updated in place), sharing [`writer`], and the [`reader`]. No
//! other module knows about sled or bytes; another engine would replace this module only.
//!
//! An index is a directory holding:
//! - `scans.bin`, `view.bin`, `passive.bin`: the records of each kind, appended in import
//!   order, each `[u32 LE length][record]` ([`record_file`]) with the record encoded by
//!   [`codec::encode_record`] (compressed export-form JSON + typed summary); read with
//!   positioned reads (in sequence too: each record carries its length).
//! - the base, written once by a full import ([`sorted`]): per kind, the search keys
//!   (`scans.idx.keys`, …: `field | term | record id`), each with its record's packed
//!   location, as an immutable [`key_table`] read on demand, the records' packed
//!   locations by id (`scans.loc`), the record identities
//!   (`scans.ids.sorted`, …: see [`record_identity`] and [`identity_file`]) and, for a
//!   kind with enough records, the zstd dictionary every record of the kind is
//!   compressed against (`scans.zdict`, …: see [`codec::RecordDictionary`]; trained by
//!   the full import, used as it is by updates);
//! - a sled database (`entries/`): what incremental updates changed since the base:
//!   search entries and identities of added records (trees `scans.idx`, `scans.ids`, …,
//!   same keys, value the [`codec::encode_location`] location), base records they
//!   replaced (`scans.dead`, …: key the record id) and a `meta` tree (record counts,
//!   next id, where the base ends).
//!
//! A search reads the base and sled and drops dead records. Keeping record bodies out of
//! sled keeps its work (and its space amplification, 2-2.5x measured on large values) to
//! small keys; keeping the bulk of the entries out of sled makes a full import a sort
//! instead of millions of B-tree inserts (sled: 6–8 s and 3.7 GB of memory per million
//! small entries, measured here), and the base files are a few bytes per entry.

pub mod base_writer;
pub mod codec;
#[cfg(test)]
mod dictionary_tests;
pub mod entries;
pub mod identity_file;
pub mod key_table;
pub mod keys;
pub mod reader;
pub mod record_file;
pub mod record_identity;
pub mod sorted;
pub mod update_writer;
pub mod writer;

pub use base_writer::BaseWriter;
pub use keys::{CertHash, Query};
pub use reader::{Found, IndexReader};
pub use update_writer::UpdateWriter;
pub use writer::{IndexStats, Prepared};

use crate::ivre::RecordKind;
use std::fs::File;
use std::path::{Path, PathBuf};

/// File of record bodies of one kind inside an index directory.
pub fn records_file(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Scan => "scans.bin",
        RecordKind::View => "view.bin",
        RecordKind::Passive => "passive.bin",
    }
}

/// Name of the sled tree of record identities of one kind (see [`record_identity`]).
pub(crate) fn identity_tree_name(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Scan => "scans.ids",
        RecordKind::View => "view.ids",
        RecordKind::Passive => "passive.ids",
    }
}
/// Name of the sled tree of base records removed by updates, of one kind.
pub(crate) fn dead_tree_name(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Scan => "scans.dead",
        RecordKind::View => "view.dead",
        RecordKind::Passive => "passive.dead",
    }
}

/// File of a kind's base search entries (sorted, immutable, see [`key_table`]):
/// `<tree>.keys`.
pub fn base_file(tree: &str) -> String {
    format!("{tree}.keys")
}

/// File of a kind's base identities (see [`identity_file`]): `<ids tree>.sorted`.
pub fn base_identities_file(kind: RecordKind) -> String {
    format!("{}.sorted", identity_tree_name(kind))
}

/// File of the records of one kind added by updates (see [`codec::DELTA_OFFSET`]).
pub fn delta_records_file(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Scan => "scans.delta.bin",
        RecordKind::View => "view.delta.bin",
        RecordKind::Passive => "passive.delta.bin",
    }
}

/// File of a kind's base record locations (see [`sorted`]): `<kind>.loc`.
pub fn base_locations_file(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Scan => "scans.loc",
        RecordKind::View => "view.loc",
        RecordKind::Passive => "passive.loc",
    }
}

/// File of a kind's record dictionary (see [`codec::RecordDictionary`]): `<kind>.zdict`,
/// written by a full import when the kind has enough records to train one.
pub fn dictionary_file(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Scan => "scans.zdict",
        RecordKind::View => "view.zdict",
        RecordKind::Passive => "passive.zdict",
    }
}

/// Base files are written once and never changed: copies of an index may share them
/// (hard links).
pub fn is_immutable_file(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.ends_with(".keys")
        || name.ends_with(".sorted")
        || name.ends_with(".loc")
        || name.ends_with(".zdict")
        || RecordKind::ALL.iter().any(|k| name == records_file(*k))
}

/// sled database inside an index directory.
pub const SLED_DIR: &str = "entries";

/// Name of the sled tree of search entries of one record kind.
pub(crate) fn tree_name(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Scan => "scans.idx",
        RecordKind::View => "view.idx",
        RecordKind::Passive => "passive.idx",
    }
}

/// Why the index could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index {path} is open in another process (sled allows one process per database)")]
    Locked { path: PathBuf },
    #[error("index {path}: {source}")]
    Sled {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{kind} record {id} in {path}: {source}")]
    Codec {
        path: PathBuf,
        kind: RecordKind,
        id: u64,
        #[source]
        source: codec::CodecError,
    },
    #[error("{kind} record {id} holds invalid JSON: {reason}")]
    BadJson {
        kind: RecordKind,
        id: u64,
        reason: String,
    },
    #[error("cannot encode a {kind} record: {source}")]
    Encode {
        kind: RecordKind,
        #[source]
        source: codec::CodecError,
    },
    #[error("index base {path}: {source}")]
    Base {
        path: PathBuf,
        #[source]
        source: sorted::SortedError,
    },
    #[error("{path} is not an index (missing {missing})")]
    NotAnIndex {
        path: PathBuf,
        missing: &'static str,
    },
    #[error("{path}: {reason}: the snapshot is damaged, rebuild it (`ivre-sync import`) or fetch it again")]
    Damaged { path: PathBuf, reason: String },
}

impl IndexError {
    pub(crate) fn sled(path: &std::path::Path, source: sled::Error) -> IndexError {
        let locked = matches!(&source, sled::Error::Io(e) if e.to_string().contains("could not acquire lock"));
        if locked {
            IndexError::Locked {
                path: path.to_owned(),
            }
        } else {
            IndexError::Sled {
                path: path.to_owned(),
                source,
            }
        }
    }

    pub(crate) fn base(path: &std::path::Path, source: sorted::SortedError) -> IndexError {
        IndexError::Base {
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn damaged(path: &std::path::Path, reason: impl Into<String>) -> IndexError {
        IndexError::Damaged {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> IndexError {
        IndexError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Size and CRC-32 of one file of an index, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileSum {
    pub bytes: u64,
    /// CRC-32 (IEEE, crc32fast), 8 lower-case hex digits.
    pub crc32: String,
}

/// Every file of an index outside sled (record files, delta record files, base files),
/// by name.
pub type IndexFiles = std::collections::BTreeMap<String, FileSum>;

/// What the manifest says an index holds, checked when it is opened: each listed file
/// exists, is a regular file and has its size (base files loaded into memory: and its
/// CRC); no unlisted file of the index's names is there; sled's trees have the checksum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexCheck {
    pub files: IndexFiles,
    /// The manifest's `crc32:<files>/<sled trees>`.
    pub checksum: String,
}

impl IndexCheck {
    /// The sled half of the checksum.
    fn entries_checksum(&self) -> Option<&str> {
        self.checksum
            .strip_prefix("crc32:")?
            .split_once('/')
            .map(|(_, e)| e)
    }

    /// The expected size and CRC of `name`, checking that `path` is there exactly when
    /// the manifest lists it. `None`: neither listed nor present.
    pub(crate) fn expect(&self, path: &Path, name: &str) -> Result<Option<&FileSum>, IndexError> {
        let listed = self.files.get(name);
        let present = path.symlink_metadata().is_ok();
        match (listed, present) {
            (Some(_), false) => Err(IndexError::damaged(
                path,
                "listed in the manifest but missing",
            )),
            (None, true) => Err(IndexError::damaged(path, "present but not in the manifest")),
            (listed, _) => Ok(listed),
        }
    }

    /// Opens a listed file, checking that its size is the manifest's.
    pub(crate) fn open_file(
        &self,
        path: &Path,
        name: &str,
    ) -> Result<Option<(File, u64)>, IndexError> {
        let Some(sum) = self.expect(path, name)? else {
            return Ok(None);
        };
        let file = open_regular(path).map_err(|e| IndexError::io(path, e))?;
        let len = file.metadata().map_err(|e| IndexError::io(path, e))?.len();
        if len != sum.bytes {
            return Err(IndexError::damaged(
                path,
                format!("{len} bytes, the manifest says {}", sum.bytes),
            ));
        }
        Ok(Some((file, len)))
    }

    /// Reads a listed file into memory (size checked before reading, CRC after).
    pub(crate) fn read_file(&self, path: &Path, name: &str) -> Result<Option<Vec<u8>>, IndexError> {
        use std::io::Read;
        let Some((file, len)) = self.open_file(path, name)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        // `len` is the manifest's size, which the file has.
        bytes
            .try_reserve_exact(len as usize)
            .map_err(|e| IndexError::damaged(path, format!("cannot allocate {len} bytes: {e}")))?;
        file.take(len)
            .read_to_end(&mut bytes)
            .map_err(|e| IndexError::io(path, e))?;
        if bytes.len() as u64 != len {
            return Err(IndexError::damaged(
                path,
                format!("{} bytes read, the manifest says {len}", bytes.len()),
            ));
        }
        self.compare_crc(path, name, crc32fast::hash(&bytes))?;
        Ok(Some(bytes))
    }

    /// Opens a listed file and checks its size and CRC, reading it through a small buffer
    /// (its bytes go to the page cache, not to this process's memory).
    pub(crate) fn open_checked(
        &self,
        path: &Path,
        name: &str,
    ) -> Result<Option<(File, u64)>, IndexError> {
        use std::os::unix::fs::FileExt;
        let Some((file, len)) = self.open_file(path, name)? else {
            return Ok(None);
        };
        let mut hasher = crc32fast::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut offset = 0u64;
        while offset < len {
            let want = (len - offset).min(buf.len() as u64) as usize;
            file.read_exact_at(&mut buf[..want], offset)
                .map_err(|e| IndexError::io(path, e))?;
            hasher.update(&buf[..want]);
            offset += want as u64;
        }
        self.compare_crc(path, name, hasher.finalize())?;
        Ok(Some((file, len)))
    }

    /// Compares a file's CRC-32 with the manifest's (a file the manifest does not list
    /// was refused by [`IndexCheck::open_file`]).
    fn compare_crc(&self, path: &Path, name: &str, crc: u32) -> Result<(), IndexError> {
        let crc = format!("{crc:08x}");
        match self.files.get(name) {
            Some(sum) if sum.crc32 != crc => Err(IndexError::damaged(
                path,
                format!("CRC-32 {crc}, the manifest says {}", sum.crc32),
            )),
            _ => Ok(()),
        }
    }

    /// Compares sled's checksum with the manifest's.
    pub(crate) fn check_entries(&self, path: &Path, db: &sled::Db) -> Result<(), IndexError> {
        let actual = format!(
            "{:08x}",
            db.checksum().map_err(|e| IndexError::sled(path, e))?
        );
        match self.entries_checksum() {
            Some(expected) if expected == actual => Ok(()),
            expected => Err(IndexError::damaged(
                path,
                format!(
                    "search entries checksum {actual}, the manifest says {}",
                    expected.unwrap_or("nothing")
                ),
            )),
        }
    }
}

/// Opens `path` for reading only if it is a regular file, not a symbolic link (checked
/// before opening and, on the open file, that it is the same file).
pub fn open_regular(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::MetadataExt;
    let before = path.symlink_metadata()?;
    if !before.file_type().is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a regular file (a symbolic link, a directory or a device)",
        ));
    }
    let file = File::open(path)?;
    let after = file.metadata()?;
    if after.dev() != before.dev() || after.ino() != before.ino() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "replaced while being opened",
        ));
    }
    Ok(file)
}

/// Reads at most `cap` bytes of the regular file `path` ([`open_regular`]); a larger
/// file is an error, found before it is read.
pub fn read_capped(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = open_regular(path)?;
    let len = file.metadata()?.len();
    if len > cap {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{len} bytes, over the limit of {cap}"),
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("over the limit of {cap} bytes"),
        ));
    }
    Ok(bytes)
}

/// `crc32:<record and base files>/<sled trees>`: what the manifest records at build
/// time and `index verify` recomputes; with the size and CRC of each file.
pub(crate) fn checksum(path: &Path, db: &sled::Db) -> Result<(String, IndexFiles), IndexError> {
    let mut hasher = crc32fast::Hasher::new();
    let mut files = IndexFiles::new();
    let mut sum = |name: String, required: bool| -> Result<(), IndexError> {
        let file = path.join(&name);
        if required || file.symlink_metadata().is_ok() {
            let mut own = crc32fast::Hasher::new();
            let bytes = crc_file(&file, &mut hasher, &mut own)?;
            files.insert(
                name,
                FileSum {
                    bytes,
                    crc32: format!("{:08x}", own.finalize()),
                },
            );
        }
        Ok(())
    };
    for kind in RecordKind::ALL {
        sum(records_file(kind).to_owned(), true)?;
        sum(delta_records_file(kind).to_owned(), false)?;
    }
    for kind in RecordKind::ALL {
        for name in [
            base_file(tree_name(kind)),
            base_identities_file(kind),
            base_locations_file(kind).to_owned(),
            dictionary_file(kind).to_owned(),
        ] {
            sum(name, false)?;
        }
    }
    let entries = db.checksum().map_err(|e| IndexError::sled(path, e))?;
    Ok((
        format!("crc32:{:08x}/{:08x}", hasher.finalize(), entries),
        files,
    ))
}

/// `None` for a file that does not exist: the optional files of an index (base files of
/// a kind with no base, delta files before any update).
pub(crate) fn if_exists<T>(result: std::io::Result<T>) -> std::io::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Feeds a whole file to two CRCs; returns its length.
fn crc_file(
    path: &Path,
    hasher: &mut crc32fast::Hasher,
    own: &mut crc32fast::Hasher,
) -> Result<u64, IndexError> {
    use std::io::Read;
    let mut file = open_regular(path).map_err(|e| IndexError::io(path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0;
    loop {
        let n = file.read(&mut buf).map_err(|e| IndexError::io(path, e))?;
        if n == 0 {
            return Ok(len);
        }
        hasher.update(&buf[..n]);
        own.update(&buf[..n]);
        len += n as u64;
    }
}

/// The base record ids a dead tree marks (replaced or removed by updates).
fn dead_ids(tree: &sled::Tree) -> Result<std::collections::HashSet<u64>, sled::Error> {
    tree.iter()
        .keys()
        .map(|k| k.map(|k| keys::id_of(&k)))
        .filter_map(Result::transpose)
        .collect()
}
