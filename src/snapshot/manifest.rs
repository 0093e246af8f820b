//! `manifest.json`: what a generation holds and where it came from.

use super::SnapshotError;
use crate::geo::GeoFile;
use crate::index::{codec, IndexCheck, IndexFiles};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One input of an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    pub path: String,
    pub kind: String,
    pub records: u64,
    pub rejected: u64,
}

/// A rejected line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

/// [`Source::kind`] of an import of NDJSON files.
pub const SOURCE_NDJSON: &str = "ndjson";
/// [`Source::kind`] of a pull from live IVRE.
pub const SOURCE_PULL: &str = "pull";
/// [`Source::kind`] of a drop-folder import.
pub const SOURCE_DROP: &str = "drop";
/// The values of [`Source::kind`] `index verify` accepts: the three the tools write, and
/// `mongodb` and `web-api`, older names of pulls.
pub const SOURCE_KINDS: [&str; 5] = [
    SOURCE_NDJSON,
    SOURCE_PULL,
    SOURCE_DROP,
    "mongodb",
    "web-api",
];
/// The values of [`Source::mode`] the tools write.
pub const SOURCE_MODES: [&str; 5] = ["full", "incremental", "replace", "delta", "geo"];

/// Where the records came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// `ndjson` (files), `pull` (live IVRE: MongoDB or web API), `drop` (drop folder);
    /// `mongodb` and `web-api` are accepted as older names of pulls.
    pub kind: String,
    /// The IVRE URLs pulled from, without credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `full` or `incremental` (pulls), `replace`, `delta` or `geo` (drops).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The generation this one updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub based_on: Option<String>,
    #[serde(default)]
    pub files: Vec<SourceFile>,
}

/// A MaxMind file carried by the generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeoEntry {
    pub role: String,
    pub file: String,
    pub database_type: String,
    pub build_epoch: u64,
    /// Size and CRC-32 of the generation's copy, checked when it is opened.
    pub bytes: u64,
    pub crc32: String,
}

impl GeoEntry {
    /// The entry of `f`, whose copy in the generation is `copy`.
    pub fn from_file(f: &GeoFile, copy: &Path) -> Result<GeoEntry, SnapshotError> {
        let bytes = std::fs::read(copy).map_err(|e| SnapshotError::io(copy, e))?;
        Ok(GeoEntry {
            role: f.role.to_string(),
            file: f
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            database_type: f.database_type.clone(),
            build_epoch: f.build_epoch,
            bytes: bytes.len() as u64,
            crc32: format!("{:08x}", crc32fast::hash(&bytes)),
        })
    }
}

/// The manifest of a generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u8,
    pub generation: String,
    /// RFC 3339, UTC.
    pub built_at: String,
    pub build_seconds: f64,
    pub tool: String,
    pub source: Source,
    /// Records per kind (`scans`, `view`, `passive`).
    pub counts: BTreeMap<String, u64>,
    pub rejected: u64,
    /// The first rejected lines (at most [`MAX_REJECTION_SAMPLES`]).
    pub rejected_samples: Vec<Rejection>,
    /// The newest date found in the records (`endtime`, `lastseen`), IVRE's format.
    pub newest_record: Option<String>,
    /// Pulls: records changed after this (IVRE's date format) are fetched by the next
    /// incremental pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<String>,
    pub index_entries: u64,
    /// Size of the record file (compressed records).
    pub records_bytes: u64,
    /// `crc32:<record and base files>/<sled trees>`.
    pub checksum: String,
    /// Size and CRC-32 of every file of the index outside sled (checked when the
    /// generation is opened: see [`crate::index::IndexCheck`]).
    pub files: IndexFiles,
    /// `imported`, `carried-forward` or `none`.
    pub geoip_origin: String,
    pub geoip: Vec<GeoEntry>,
}

/// How many rejected lines the manifest lists.
pub const MAX_REJECTION_SAMPLES: usize = 100;

/// Largest manifest read (it lists at most [`MAX_REJECTION_SAMPLES`] rejections, whose
/// reasons are short, and a few dozen files).
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;

impl Manifest {
    /// Reads a manifest: a regular file (not a symbolic link) of at most
    /// [`MAX_MANIFEST_BYTES`], of this build's format version (another version is
    /// [`SnapshotError::UnsupportedFormat`], told before any other field is read).
    pub fn read(path: &Path) -> Result<Manifest, SnapshotError> {
        let bad = |reason: String| SnapshotError::BadManifest {
            path: path.to_owned(),
            reason,
        };
        let bytes = crate::index::read_capped(path, MAX_MANIFEST_BYTES)
            .map_err(|e| SnapshotError::io(path, e))?;
        #[derive(Deserialize)]
        struct Head {
            format_version: u8,
            #[serde(default)]
            generation: String,
        }
        let head: Head = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if head.format_version != codec::FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedFormat {
                name: head.generation.chars().take(80).collect(),
                found: head.format_version,
                supported: codec::FORMAT_VERSION,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))
    }

    /// What the index is checked against when it is opened.
    pub fn index_check(&self) -> IndexCheck {
        IndexCheck {
            files: self.files.clone(),
            checksum: self.checksum.clone(),
        }
    }

    pub fn total_records(&self) -> u64 {
        self.counts.values().sum()
    }
}
