//! `ivre-connector index verify`: everything a served generation holds, checked.
//!
//! - `CURRENT` and the manifest (read as the serving process reads them: regular files,
//!   size caps, format version), then every manifest field;
//! - the index, opened with its checks (each file's size, the base files' CRCs, sled's
//!   checksum), then every file's CRC and every live record (read, CRC, decompressed,
//!   both parts decoded);
//! - the MaxMind files: opened, probed with lookups and verified ([`Geo::open_dir`]),
//!   and compared with what the manifest lists.
//!
//! Each problem names the file (and the record or field); none stops the others.

use super::layout::{self, DataDir};
use super::manifest::{Manifest, MAX_REJECTION_SAMPLES};
use super::open::{current_manifest, OpenOptions, Snapshot};
use crate::geo::Geo;
use crate::index::codec::{self, CodecError, RecordDictionary};
use crate::ivre::{HostSummary, PassiveSummary, RecordKind, Timestamp};

/// What `index verify` found.
#[derive(Debug, Default)]
pub struct Report {
    pub generation: String,
    /// Records read and decoded.
    pub records: u64,
    /// MaxMind files opened and probed.
    pub geo_files: usize,
    /// Each problem, naming the file (and record or field).
    pub problems: Vec<String>,
}

/// Checks the served generation of `data`. `Err` only when there is no generation to
/// check (no `CURRENT`, a manifest that cannot be read at all).
pub fn verify(data: &DataDir) -> Result<Report, super::SnapshotError> {
    let (name, dir, manifest) = current_manifest(data)?;
    let mut report = Report {
        generation: name.clone(),
        ..Report::default()
    };
    let manifest_path = dir.join(layout::MANIFEST);
    for problem in manifest_problems(&manifest, &name) {
        report
            .problems
            .push(format!("{}: {problem}", manifest_path.display()));
    }
    let options = OpenOptions {
        cache_bytes: 16 * 1024 * 1024,
        private_copy_if_locked: true,
    };
    match Snapshot::open_with(data, &options) {
        Ok(snapshot) => {
            let verified = snapshot.index.verify(decode_summary)?;
            report.records = verified.records;
            report.problems.extend(verified.problems);
            let live = manifest.total_records();
            if verified.records != live {
                report.problems.push(format!(
                    "{}: counts add up to {live} records, the index holds {}",
                    manifest_path.display(),
                    verified.records
                ));
            }
        }
        Err(e) => report
            .problems
            .push(format!("the index does not open: {e}")),
    }
    let geo_dir = dir.join(layout::GEOIP);
    if geo_dir.symlink_metadata().is_ok() {
        match Geo::open_dir(&geo_dir) {
            Ok(geo) => {
                report.geo_files = geo.files().len();
                for entry in &manifest.geoip {
                    let found = geo.files().iter().find(|f| {
                        f.path.file_name().and_then(|n| n.to_str()) == Some(entry.file.as_str())
                    });
                    let path = geo_dir.join(&entry.file);
                    match found {
                        None => report.problems.push(format!(
                            "{}: listed in the manifest ({} database) but missing or unused",
                            path.display(),
                            entry.role
                        )),
                        Some(f) => {
                            if f.role.to_string() != entry.role
                                || f.database_type != entry.database_type
                                || f.build_epoch != entry.build_epoch
                            {
                                report.problems.push(format!(
                                    "{}: a {} {} database built at {}, the manifest says {} {} built at {}",
                                    path.display(),
                                    f.role,
                                    f.database_type,
                                    f.build_epoch,
                                    entry.role,
                                    entry.database_type,
                                    entry.build_epoch
                                ));
                            }
                        }
                    }
                }
                if geo.files().len() != manifest.geoip.len() {
                    report.problems.push(format!(
                        "{}: {} MaxMind files serve a role, the manifest lists {}",
                        geo_dir.display(),
                        geo.files().len(),
                        manifest.geoip.len()
                    ));
                }
            }
            Err(e) => report.problems.push(e.to_string()),
        }
    } else if !manifest.geoip.is_empty() {
        report.problems.push(format!(
            "{}: missing, the manifest lists {} MaxMind files",
            geo_dir.display(),
            manifest.geoip.len()
        ));
    }
    Ok(report)
}

/// Decodes a record's summary with the type of its kind.
fn decode_summary(
    kind: RecordKind,
    bytes: &[u8],
    dictionary: Option<&RecordDictionary>,
) -> Result<(), CodecError> {
    match kind {
        RecordKind::Passive => {
            codec::decode_record_summary::<PassiveSummary>(bytes, dictionary).map(drop)
        }
        _ => codec::decode_record_summary::<HostSummary>(bytes, dictionary).map(drop),
    }
}

/// Every field of a manifest that is not what this build writes (the generation's
/// directory name is `name`).
pub fn manifest_problems(m: &Manifest, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut bad = |field: &str, why: String| out.push(format!("field {field}: {why}"));
    if m.generation != name || !layout::is_generation_name(&m.generation) {
        bad(
            "generation",
            format!("{:?} is not the generation's name {name}", m.generation),
        );
    }
    if chrono::DateTime::parse_from_rfc3339(&m.built_at).is_err() {
        bad(
            "built_at",
            format!("{:?} is not an RFC 3339 time", m.built_at),
        );
    }
    if !(m.build_seconds.is_finite() && m.build_seconds >= 0.0) {
        bad(
            "build_seconds",
            format!("{} is not a duration", m.build_seconds),
        );
    }
    if m.tool.trim().is_empty() {
        bad("tool", "empty".into());
    }
    if !super::manifest::SOURCE_KINDS.contains(&m.source.kind.as_str()) {
        bad("source.kind", format!("unknown kind {:?}", m.source.kind));
    }
    if let Some(mode) = &m.source.mode {
        if !super::manifest::SOURCE_MODES.contains(&mode.as_str()) {
            bad("source.mode", format!("unknown mode {mode:?}"));
        }
    }
    if let Some(based_on) = &m.source.based_on {
        if !layout::is_generation_name(based_on) {
            bad(
                "source.based_on",
                format!("{based_on:?} is not a generation name"),
            );
        }
    }
    for kind in m.counts.keys() {
        if !RecordKind::ALL.iter().any(|k| k.as_str() == kind) {
            bad("counts", format!("unknown kind {kind:?}"));
        }
    }
    let sampled = m.rejected_samples.len();
    if sampled > MAX_REJECTION_SAMPLES || (sampled as u64) > m.rejected {
        bad(
            "rejected_samples",
            format!("{sampled} samples for {} rejected lines", m.rejected),
        );
    }
    for (field, value) in [
        ("newest_record", &m.newest_record),
        ("watermark", &m.watermark),
    ] {
        if let Some(v) = value {
            if Timestamp::parse_str(v).is_none() {
                bad(field, format!("{v:?} is not a date"));
            }
        }
    }
    let files_bytes: u64 = m
        .files
        .iter()
        .filter(|(n, _)| n.ends_with(".bin"))
        .map(|(_, s)| s.bytes)
        .sum();
    if files_bytes != m.records_bytes {
        bad(
            "records_bytes",
            format!(
                "{} bytes, the record files listed hold {files_bytes}",
                m.records_bytes
            ),
        );
    }
    let well_formed = m
        .checksum
        .strip_prefix("crc32:")
        .and_then(|c| c.split_once('/'))
        .is_some_and(|(a, b)| {
            [a, b]
                .iter()
                .all(|h| h.len() == 8 && h.bytes().all(|c| c.is_ascii_hexdigit()))
        });
    if !well_formed {
        bad(
            "checksum",
            format!("{:?} is not crc32:XXXXXXXX/XXXXXXXX", m.checksum),
        );
    }
    for (file, sum) in &m.files {
        // Record files (`.bin`, updates' `.delta.bin`) and the base's immutable files.
        let known = file.ends_with(".bin")
            || crate::index::is_immutable_file(std::ffi::OsStr::new(file.as_str()));
        if !known || file.contains('/') || file.starts_with('.') {
            bad("files", format!("{file:?} is not a file of an index"));
        }
        if sum.crc32.len() != 8 || !sum.crc32.bytes().all(|c| c.is_ascii_hexdigit()) {
            bad("files", format!("{file}: {:?} is not a CRC-32", sum.crc32));
        }
    }
    if !["imported", "carried-forward", "none"].contains(&m.geoip_origin.as_str()) {
        bad(
            "geoip_origin",
            format!("unknown origin {:?}", m.geoip_origin),
        );
    }
    if (m.geoip_origin == "none") != m.geoip.is_empty() {
        bad(
            "geoip",
            format!("{} files with origin {:?}", m.geoip.len(), m.geoip_origin),
        );
    }
    for entry in &m.geoip {
        if entry.file.contains('/') || !entry.file.to_ascii_lowercase().ends_with(".mmdb") {
            bad(
                "geoip",
                format!("{:?} is not a MaxMind file name", entry.file),
            );
        }
    }
    out
}
