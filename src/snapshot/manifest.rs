//! `manifest.json`: what a generation holds and where it came from.

use super::SnapshotError;
use crate::geo::GeoFile;
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

/// Where the records came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// `ndjson` (files), `mongodb` or `web-api` (pulls), `drop` (drop folder).
    pub kind: String,
    /// The IVRE URLs pulled from, without credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `full` or `incremental` (pulls), `replace` or `delta` (drops).
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
}

impl GeoEntry {
    pub fn from_file(f: &GeoFile) -> GeoEntry {
        GeoEntry {
            role: f.role.to_string(),
            file: f
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            database_type: f.database_type.clone(),
            build_epoch: f.build_epoch,
        }
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
    /// `crc32:<record file>/<search entries>`.
    pub checksum: String,
    /// `imported`, `carried-forward` or `none`.
    pub geoip_origin: String,
    pub geoip: Vec<GeoEntry>,
}

/// How many rejected lines the manifest lists.
pub const MAX_REJECTION_SAMPLES: usize = 100;

impl Manifest {
    pub fn read(path: &Path) -> Result<Manifest, SnapshotError> {
        let text = std::fs::read_to_string(path).map_err(|e| SnapshotError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| SnapshotError::BadManifest {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    pub fn total_records(&self) -> u64 {
        self.counts.values().sum()
    }
}
