//! Snapshot generations in a data directory.
//!
//! A generation is built in a `.building` directory by one process holding the data
//! directory's lock ([`publish`]), made durable, renamed, then published by atomically
//! replacing the `CURRENT` pointer. Readers ([`open`]) only ever open the generation
//! `CURRENT` names, so a crash at any moment leaves the last published generation
//! served. See [`layout`] for the directory structure.

pub mod import;
pub mod layout;
pub mod manifest;
pub mod ndjson;
pub mod open;
mod pipeline;
pub mod progress;
pub mod publish;
pub mod serving;
pub mod verify;

#[cfg(test)]
mod integrity_tests;

pub use import::{import, ImportOptions, ImportReport};
pub use layout::DataDir;
pub use manifest::Manifest;
pub use open::{current_generation, OpenOptions, Snapshot};

use crate::geo::GeoError;
use crate::index::IndexError;
use std::path::{Path, PathBuf};

/// Why a snapshot could not be built, published or opened.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("data directory {root} does not exist: build a snapshot with `ivre-sync import --data-dir {root} --scans FILE --passive FILE`, or try `ivre-connector demo`")]
    NoDataDir { root: PathBuf },
    #[error("no snapshot has been published in {root} (no CURRENT file): build one with `ivre-sync import --data-dir {root} --scans FILE --passive FILE`")]
    NoSnapshot { root: PathBuf },
    #[error("{path} does not name a generation (found {content:?})")]
    BadCurrent { path: PathBuf, content: String },
    #[error("CURRENT names generation {name}, but {path} is missing")]
    MissingGeneration { name: String, path: PathBuf },
    #[error("manifest {path} is unreadable: {reason}")]
    BadManifest { path: PathBuf, reason: String },
    #[error("generation {name} has format version {found}; this build reads version {supported}: rebuild it with `ivre-sync import`")]
    UnsupportedFormat {
        name: String,
        found: u8,
        supported: u8,
    },
    #[error("generation {name} does not open (checked against {manifest}): {source}")]
    Open {
        name: String,
        manifest: PathBuf,
        #[source]
        source: Box<SnapshotError>,
    },
    #[error("generation {name} has no index ({path} is missing)")]
    MissingIndex { name: String, path: PathBuf },
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Geo(#[from] GeoError),
    #[error("cannot read {path}: {source}")]
    Input {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: read error after line {line}: {source} (nothing was published)")]
    ReadFailed {
        path: PathBuf,
        line: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason} (--strict: nothing was published)")]
    Strict {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error("{path} is a JSON document, not NDJSON (one record per line): convert it first, e.g. `jq -c '.[]' FILE` for an array (nothing was published)")]
    NotNdjson { path: PathBuf },
    #[error("nothing to import: give at least one --scans, --view or --passive file")]
    NothingToImport,
    #[error("{name:?} is not a generation name (gen-…)")]
    BadGenerationName { name: String },
    #[error(
        "generation {name} already exists at {path}; a published generation is never written again"
    )]
    GenerationExists { name: String, path: PathBuf },
    #[error("the index writer stopped unexpectedly")]
    WriterStopped,
}

impl SnapshotError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> SnapshotError {
        SnapshotError::Io {
            path: path.to_owned(),
            source,
        }
    }
}
