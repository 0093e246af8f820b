//! The on-disk format of a snapshot: sled trees ([`keys`]), values ([`codec`]), and
//! the [`writer`] and [`reader`] that use them. No other module knows about sled or
//! bytes; another engine would replace this module only.

pub mod codec;
pub mod keys;
pub mod reader;
pub mod writer;

pub use keys::{CertHash, Query};
pub use reader::{Found, IndexReader};
pub use writer::{IndexStats, IndexWriter};

use crate::ivre::RecordKind;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A stored record: its export-form JSON (first, so it can be read alone) and its
/// typed summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored<T> {
    pub json: String,
    pub summary: T,
}

/// The same layout as [`Stored`], borrowed, for writing without copies.
#[derive(Serialize)]
struct StoredRef<'a, T> {
    json: &'a str,
    summary: &'a T,
}

/// Names of the sled trees of one record kind.
pub(crate) fn tree_names(kind: RecordKind) -> (&'static str, &'static str) {
    match kind {
        RecordKind::Scan => ("scans", "scans.idx"),
        RecordKind::View => ("view", "view.idx"),
        RecordKind::Passive => ("passive", "passive.idx"),
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
    #[error("index {path}: {kind} entry points to missing record {id}")]
    Dangling {
        path: PathBuf,
        kind: RecordKind,
        id: u64,
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
}
