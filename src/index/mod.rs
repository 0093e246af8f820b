//! The on-disk format of a snapshot ([`keys`], [`codec`]) and the [`writer`] and
//! [`reader`] that use it. No other module knows about sled or bytes; another engine
//! would replace this module only.
//!
//! An index is a directory holding:
//! - `scans.bin`, `view.bin`, `passive.bin`: the records of each kind, appended in import
//!   order, each `[u32 LE length][record]` with the record encoded by
//!   [`codec::encode_record`] (compressed export-form JSON + typed summary); read with
//!   positioned reads (in sequence too: each record carries its length).
//! - a sled database: search entries, one tree per kind (`scans.idx`, …): key
//!   `field | term | record id`, value the record's location; record identities
//!   (`scans.ids`, …: key `identity | record id`, see [`identity`]), which incremental
//!   updates use to replace or merge a record; and a `meta` tree (record counts).
//!
//! Keeping record bodies out of sled keeps sled's work (and its space amplification,
//! 2-2.5x measured on large values) to small keys.

pub mod codec;
pub mod identity;
pub mod keys;
pub mod reader;
pub mod writer;

pub use keys::{CertHash, Query};
pub use reader::{Found, IndexReader};
pub use writer::{IndexStats, IndexWriter};

use crate::ivre::RecordKind;
use std::path::PathBuf;

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

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> IndexError {
        IndexError::Io {
            path: path.to_owned(),
            source,
        }
    }
}
