//! The on-disk format of a snapshot ([`keys`], [`codec`]) and the [`writer`] and
//! [`reader`] that use it. No other module knows about sled or bytes; another engine
//! would replace this module only.
//!
//! An index is a directory holding:
//! - `scans.bin`, `view.bin`, `passive.bin`: the records of each kind, appended in import
//!   order, each `[u32 LE length][record]` with the record encoded by
//!   [`codec::encode_record`] (compressed export-form JSON + typed summary); read with
//!   positioned reads (in sequence too: each record carries its length).
//! - the base, written once by a full import ([`sorted`]): per kind, the search keys
//!   (`scans.idx.fst`, …: `field | term | record id`) as an immutable sorted [`fst`] set,
//!   the records' packed locations by id (`scans.loc`), and the record identities
//!   (`scans.ids.sorted`, …: see [`identity`] and [`identities`]);
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

pub mod codec;
pub mod identities;
pub mod identity;
pub mod keys;
pub mod reader;
pub mod sorted;
pub mod writer;

pub use keys::{CertHash, Query};
pub use reader::{Found, IndexReader};
pub use writer::{IndexStats, IndexWriter};

use crate::ivre::RecordKind;
use std::path::{Path, PathBuf};

/// File of record bodies of one kind inside an index directory.
pub fn records_file(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Scan => "scans.bin",
        RecordKind::View => "view.bin",
        RecordKind::Passive => "passive.bin",
    }
}

/// Name of the sled tree of record identities of one kind (see [`identity`]).
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

/// File of a kind's base search entries (sorted, immutable): `<tree>.fst`.
pub fn base_file(tree: &str) -> String {
    format!("{tree}.fst")
}

/// File of a kind's base identities (see [`identities`]): `<ids tree>.sorted`.
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

/// Base files are written once and never changed: copies of an index may share them
/// (hard links).
pub fn is_immutable_file(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.ends_with(".fst")
        || name.ends_with(".sorted")
        || name.ends_with(".loc")
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

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> IndexError {
        IndexError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// `crc32:<record files and base files>/<sled trees>`: what the manifest records at build
/// time and `index verify` recomputes.
pub(crate) fn checksum(path: &Path, db: &sled::Db) -> Result<String, IndexError> {
    let mut hasher = crc32fast::Hasher::new();
    for kind in RecordKind::ALL {
        crc_file(&path.join(records_file(kind)), &mut hasher)?;
        let delta = path.join(delta_records_file(kind));
        if delta.is_file() {
            crc_file(&delta, &mut hasher)?;
        }
    }
    for kind in RecordKind::ALL {
        for name in [
            base_file(tree_name(kind)),
            base_identities_file(kind),
            base_locations_file(kind).to_owned(),
        ] {
            let file = path.join(name);
            if file.is_file() {
                crc_file(&file, &mut hasher)?;
            }
        }
    }
    let entries = db.checksum().map_err(|e| IndexError::sled(path, e))?;
    Ok(format!("crc32:{:08x}/{:08x}", hasher.finalize(), entries))
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

/// Feeds a whole file to a CRC.
fn crc_file(path: &Path, hasher: &mut crc32fast::Hasher) -> Result<(), IndexError> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| IndexError::io(path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| IndexError::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
    }
}
