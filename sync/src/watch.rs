//! `ivre-sync watch --drop-dir DIR`: air-gapped sites drop IVRE exports (and MaxMind
//! files) into a folder; each complete file is imported and moved to `done/` (or
//! `failed/`, with a `.error.txt` saying why).
//!
//! - Complete files only: a file renamed into the folder (write elsewhere or under a
//!   hidden/`.tmp`/`.part` name, then rename), or any file with a `<name>.ready` marker
//!   next to it. Files present when the watcher starts are taken as complete.
//! - The kind comes from the records: passive records have `recontype`; hosts have an
//!   address, ports or host names (`source` a list: view, else scans); `.mmdb` files are
//!   MaxMind data.
//! - `*.delta.jsonl[.gz]` is merged into the served snapshot (hosts by identity, passive
//!   records by IVRE's aggregation key, counts summed and first/last seen widened); any
//!   other export replaces the records of its kind (the other kinds are kept); MaxMind
//!   files replace the snapshot's file of the same role.

use anyhow::{bail, Context, Result};
use ivre_connector::index::writer::MergeMode;
use ivre_connector::ivre::RecordKind;
use ivre_connector::snapshot::ndjson::LineReader;
use ivre_connector::snapshot::{self, DataDir, ImportOptions};
use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::RecursiveMode;
use std::path::{Path, PathBuf};

const MARKER: &str = ".ready";

/// Names that are not (yet) a complete export.
fn ignored(name: &str) -> bool {
    name.starts_with('.')
        || [
            ".tmp",
            ".part",
            ".partial",
            ".temporary",
            MARKER,
            ".error.txt",
        ]
        .iter()
        .any(|s| name.ends_with(s))
}

/// What a dropped file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    Records { kind: RecordKind, delta: bool },
    Mmdb,
}

/// Reads the file's first record to tell its kind.
pub fn classify(path: &Path) -> Result<Dropped> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if name.ends_with(".mmdb") {
        return Ok(Dropped::Mmdb);
    }
    let delta = name.ends_with(".delta.jsonl") || name.ends_with(".delta.jsonl.gz");
    let mut reader =
        LineReader::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let Some((line_no, line)) = reader
        .next_line()
        .with_context(|| format!("cannot read {}", path.display()))?
    else {
        bail!("{} holds no record", path.display());
    };
    let line = line.map_err(|e| anyhow::anyhow!("{}:{line_no}: {e}", path.display()))?;
    let first: serde_json::Value = serde_json::from_str(line)
        .with_context(|| format!("{}:{line_no}: not a JSON record", path.display()))?;
    let kind = if first.get("recontype").is_some() {
        RecordKind::Passive
    } else if ["addr", "addr_0", "ports", "hostnames", "starttime"]
        .iter()
        .any(|k| first.get(*k).is_some())
    {
        if first.get("source").is_some_and(serde_json::Value::is_array) {
            RecordKind::View
        } else {
            RecordKind::Scan
        }
    } else {
        bail!(
            "{}:{line_no}: cannot tell whether these are passive, scan or view records",
            path.display()
        );
    };
    Ok(Dropped::Records { kind, delta })
}

/// Imports one dropped file.
fn apply(data: &DataDir, path: &Path) -> Result<String> {
    let dropped = classify(path)?;
    let served = snapshot::open::current_generation(data).ok();
    let mut options = ImportOptions {
        strict: false,
        source_kind: Some("drop".into()),
        ..Default::default()
    };
    match dropped {
        Dropped::Mmdb => {
            let (_, dir) =
                served.context("no snapshot to add MaxMind data to: drop exports first")?;
            // The served files, the dropped one replacing any of the same role.
            let staging =
                tempfile::tempdir_in(data.tmp()).context("cannot create a staging directory")?;
            for entry in std::fs::read_dir(dir.join("geoip"))
                .into_iter()
                .flatten()
                .flatten()
            {
                std::fs::copy(entry.path(), staging.path().join(entry.file_name()))?;
            }
            std::fs::copy(
                path,
                staging.path().join(path.file_name().unwrap_or_default()),
            )?;
            let geo = ivre_connector::geo::Geo::open_dir(staging.path())?;
            for file in geo.files() {
                tracing::info!(role = %file.role, file = %file.path.display(), "MaxMind role");
            }
            // Remove files that lost their role to the dropped one.
            for entry in std::fs::read_dir(staging.path())?.flatten() {
                if !geo.files().iter().any(|f| f.path == entry.path()) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
            options.geoip_dir = Some(staging.path().to_owned());
            options.update = Some(MergeMode::Replace);
            options.source_mode = Some("geo".into());
            let report = snapshot::import(data, &options)?;
            Ok(report.manifest.generation)
        }
        Dropped::Records { kind, delta } => {
            options.inputs = vec![(kind, path.to_owned())];
            if served.is_some() {
                options.update = Some(if delta {
                    MergeMode::Accumulate
                } else {
                    MergeMode::Replace
                });
                if !delta {
                    options.replace_kinds = vec![kind];
                }
            }
            options.source_mode = Some(if delta { "delta" } else { "replace" }.into());
            let report = snapshot::import(data, &options)?;
            Ok(report.manifest.generation)
        }
    }
}

/// Imports `path` and moves it to `done/` or `failed/`.
fn process(data: &DataDir, drop_dir: &Path, path: &Path) {
    let name = path.file_name().unwrap_or_default().to_owned();
    let marker = drop_dir.join(format!("{}{MARKER}", name.to_string_lossy()));
    match apply(data, path) {
        Ok(generation) => {
            tracing::info!(file = %path.display(), %generation, "dropped file imported");
            crate::distribute::after_publish(data);
            let _ = std::fs::rename(path, drop_dir.join("done").join(&name));
        }
        Err(e) => {
            tracing::error!(file = %path.display(), error = format!("{e:#}"), "dropped file failed; nothing published");
            let failed = drop_dir.join("failed");
            let _ = std::fs::write(
                failed.join(format!("{}.error.txt", name.to_string_lossy())),
                format!("{e:#}\n"),
            );
            let _ = std::fs::rename(path, failed.join(&name));
        }
    }
    let _ = std::fs::remove_file(marker);
}

/// The files of the folder to import now: with a marker, or all (`initial`).
fn ready_files(drop_dir: &Path, initial: bool) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(drop_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if ignored(&name) {
                return None;
            }
            let has_marker = drop_dir.join(format!("{name}{MARKER}")).exists();
            (initial || has_marker).then(|| e.path())
        })
        .collect();
    out.sort();
    out
}

/// Watches `drop_dir` until interrupted.
pub fn watch(data: &DataDir, drop_dir: &Path) -> Result<()> {
    for sub in ["done", "failed"] {
        std::fs::create_dir_all(drop_dir.join(sub))
            .with_context(|| format!("cannot create {}", drop_dir.join(sub).display()))?;
    }
    std::fs::create_dir_all(data.tmp())
        .with_context(|| format!("cannot create {}", data.tmp().display()))?;
    // The raw watcher, not a debouncer: a debouncer reports a file created then renamed
    // within its window as created, hiding the rename that says the file is complete.
    let (tx, rx) = std::sync::mpsc::channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |result: notify::Result<notify::Event>| {
        let Ok(event) = result else { return };
        let renamed_in = matches!(
            event.kind,
            EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
        );
        let created = matches!(event.kind, EventKind::Create(_));
        // With RenameMode::Both the last path is the destination.
        let Some(path) = event.paths.last() else {
            return;
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(target) = name.strip_suffix(MARKER) {
            if created || renamed_in {
                let _ = tx.send(path.with_file_name(target));
            }
        } else if renamed_in && !ignored(&name) {
            let _ = tx.send(path.clone());
        }
    })
    .context("cannot watch files")?;
    notify::Watcher::watch(&mut watcher, drop_dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("cannot watch {}", drop_dir.display()))?;
    tracing::info!(dir = %drop_dir.display(), "watching the drop folder");
    for path in ready_files(drop_dir, true) {
        process(data, drop_dir, &path);
    }
    for path in rx {
        if path.is_file() {
            process(data, drop_dir, &path);
        }
    }
    Ok(())
}
