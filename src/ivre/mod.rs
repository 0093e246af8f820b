//! IVRE 0.9.20 records.
//!
//! A record is read from any of IVRE's outputs (CLI `--json`, web API, MongoDB
//! documents), brought to the export form of `ivre ... --json` by [`normalize`], and
//! summarized into the typed [`HostSummary`] / [`PassiveSummary`] that the index and the
//! enrichment use. The export-form JSON is kept verbatim next to the summary, so nothing
//! IVRE wrote is lost and unknown fields never fail a record.
//!
//! [`merge`] holds IVRE's rules for an update that meets a stored record of the same
//! identity (replace, or add passive records up).

pub mod cert;
pub mod date;
pub mod host;
pub mod merge;
pub mod normalize;
pub mod passive;

pub use cert::{CertShape, Certificate};
pub use date::Timestamp;
pub use host::{HostSummary, Hostname, Service};
pub use merge::MergeMode;
pub use passive::PassiveSummary;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// The three kinds of IVRE records a snapshot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// `nmap` purpose (`ivre scancli`, web `/cgi/scans`, MongoDB `hosts`).
    #[serde(rename = "scans")]
    Scan,
    /// `view` purpose (`ivre view`, web `/cgi/view`, MongoDB `views`).
    View,
    /// `passive` purpose (`ivre ipinfo`, web `/cgi/passive`, MongoDB `passive`).
    Passive,
}

impl RecordKind {
    pub const ALL: [RecordKind; 3] = [RecordKind::Scan, RecordKind::View, RecordKind::Passive];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Scan => "scans",
            RecordKind::View => "view",
            RecordKind::Passive => "passive",
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one record was rejected.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Normalize(#[from] normalize::NormalizeError),
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    #[error("invalid field `{field}`: {reason}")]
    BadField { field: &'static str, reason: String },
    #[error("this is a {found} record, not a {expected} record")]
    WrongKind {
        expected: RecordKind,
        found: &'static str,
    },
}

/// A record's typed summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Summary {
    Host(HostSummary),
    Passive(PassiveSummary),
}

impl Summary {
    /// The newest date the record carries (`endtime`, `lastseen`).
    pub fn newest(&self) -> Option<Timestamp> {
        match self {
            Summary::Host(h) => h.endtime.or(h.starttime),
            Summary::Passive(p) => p.lastseen.or(p.firstseen),
        }
    }
}

/// A record ready to be indexed: its summary and its export-form JSON.
#[derive(Debug, Clone)]
pub struct ParsedRecord {
    pub summary: Summary,
    pub json: String,
}

/// Parses one line of an export of the given kind.
pub fn parse_line(kind: RecordKind, line: &str) -> Result<ParsedRecord, RecordError> {
    let value: Value = serde_json::from_str(line)?;
    parse_value(kind, value)
}

/// Parses one record already decoded as JSON.
pub fn parse_value(kind: RecordKind, mut value: Value) -> Result<ParsedRecord, RecordError> {
    normalize::to_export_form(kind, &mut value)?;
    let map = value.as_object().ok_or(RecordError::MissingField("addr"))?;
    let summary = match kind {
        RecordKind::Scan | RecordKind::View => {
            if map.contains_key("recontype") {
                return Err(RecordError::WrongKind {
                    expected: kind,
                    found: "passive",
                });
            }
            Summary::Host(HostSummary::from_export(map)?)
        }
        RecordKind::Passive => {
            if !map.contains_key("recontype") && map.contains_key("ports") {
                return Err(RecordError::WrongKind {
                    expected: kind,
                    found: "host",
                });
            }
            Summary::Passive(PassiveSummary::from_export(map)?)
        }
    };
    Ok(ParsedRecord {
        summary,
        json: serde_json::to_string(&value)?,
    })
}

// Small lenient accessors shared by the record readers: a field of an unexpected type
// is treated as absent, never as an error.

pub(crate) fn get_str(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_owned)
}

pub(crate) fn get_u64(map: &Map<String, Value>, key: &str) -> Option<u64> {
    match map.get(key)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(crate) fn get_date(map: &Map<String, Value>, key: &str) -> Option<Timestamp> {
    map.get(key).and_then(Timestamp::from_json)
}

pub(crate) fn get_str_list(map: &Map<String, Value>, key: &str) -> Vec<String> {
    match map.get(key) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}
