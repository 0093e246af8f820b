//! Scale-out: one process publishes each snapshot generation to an object store (or a
//! directory) as one archive; replicas fetch it, verify it and install it as their own
//! generation, and the serving process swaps to it as it does after an import.
//!
//! Store layout, under the URL's prefix (`docs/distribution.md`):
//!
//! ```text
//! generations/<name>.tar.zst   the generation directory (manifest.json, index/, geoip/)
//! generations/<name>.json      its manifest plus archive key, sha256, bytes, published_at
//! LATEST                       {"generation", "archive", "manifest", "sha256", "bytes", …}
//! ```
//!
//! `LATEST` is written last, with a single put (atomic in object stores, a rename in a
//! directory): a reader never sees a half-published generation. The 3 newest generations
//! stay in the store.
//!
//! - [`store`]: `s3://bucket/prefix` and `file:///path` targets, S3 options, object keys.
//! - [`archive`]: `.tar.zst` writing (deterministic) and safe unpacking.
//! - [`publish`](fn@publish) and [`fetch`]: the two operations ([`install`] checks and
//!   installs a downloaded archive).

pub mod archive;
pub mod install;
pub mod publish;
pub mod store;

pub use install::{fetch, fetch_with, Limits};
pub use publish::{publish, publish_with, Published};
pub use store::{Latest, S3Options, Store, StoreUrl};

use crate::snapshot::SnapshotError;
use std::path::{Path, PathBuf};

/// Why a generation could not be published to or fetched from a store. Every variant
/// names the store (URL without credentials) and, where there is one, the object key.
#[derive(Debug, thiserror::Error)]
pub enum DistributeError {
    #[error("{url}: {reason} (expected s3://BUCKET/PREFIX or file:///ABSOLUTE/PATH)")]
    BadUrl { url: String, reason: String },
    #[error("S3 settings for {url}: {reason}")]
    Settings { url: String, reason: String },
    #[error("{url}: cannot {action} {key}: {source}")]
    Store {
        url: String,
        key: String,
        action: &'static str,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error("{url}: nothing published there yet ({key} is missing): run `ivre-sync publish --to {url}` on the publishing side")]
    NotPublished { url: String, key: String },
    #[error("{url}: {key} is invalid: {reason}")]
    BadLatest {
        url: String,
        key: String,
        reason: String,
    },
    #[error("{url}: {key} is missing although LATEST names it (a publish in progress or a pruned store?); nothing installed")]
    MissingArchive { url: String, key: String },
    #[error("{url}: {key} is larger than {limit} bytes; nothing installed")]
    TooLarge {
        url: String,
        key: String,
        limit: u64,
    },
    #[error("{url}: {key} has {found} bytes, LATEST announced {expected} (truncated or replaced?); nothing installed")]
    SizeMismatch {
        url: String,
        key: String,
        expected: u64,
        found: u64,
    },
    #[error("{url}: {key} has sha256 {found}, LATEST announced {expected} (corrupted or tampered with); nothing installed")]
    Checksum {
        url: String,
        key: String,
        expected: String,
        found: String,
    },
    #[error("{url}: {key}: {reason}; nothing installed")]
    BadArchive {
        url: String,
        key: String,
        reason: String,
    },
    #[error(
        "{url}: {key}: generation {name} does not match its manifest: {reason}; nothing installed"
    )]
    BadGeneration {
        url: String,
        key: String,
        name: String,
        reason: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("{url}: the {what} task stopped unexpectedly: {reason}")]
    Task {
        url: String,
        what: &'static str,
        reason: String,
    },
}

impl DistributeError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> DistributeError {
        DistributeError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

#[cfg(test)]
mod tests;
