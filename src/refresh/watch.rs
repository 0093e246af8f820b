//! The drop folder (`ivre-sync watch --drop-dir DIR`, or the daemon with
//! `IVRE_DROP_DIR`): air-gapped sites drop IVRE exports (and MaxMind files) into a
//! folder; each complete file is imported and moved to `done/` (or `failed/`, with a
//! `.error.txt` saying why).
//!
//! - Complete files only: a file renamed into the folder (write elsewhere or under a
//!   hidden/`.tmp`/`.part` name, then rename), or any file with a `<name>.ready` marker
//!   next to it. Files present when the watcher starts are taken as complete, unless
//!   the marker convention is required (`IVRE_DROP_READY_MARKER`, `ivre-sync watch
//!   --ready-marker`): then a file is imported only once its marker exists, at start-up
//!   and for events alike (a file still being written when the watcher starts waits for
//!   its marker); the marker is removed once the file is moved to `done/` or `failed/`.
//! - The kind comes from the records: passive records have `recontype`; hosts have an
//!   address, ports or host names (`source` a list: view, else scans); `.mmdb` files are
//!   MaxMind data.
//! - `*.delta.jsonl[.gz]` is merged into the served snapshot (hosts by identity, passive
//!   records by IVRE's aggregation key, counts summed and first/last seen widened); any
//!   other export replaces the records of its kind (the other kinds are kept); MaxMind
//!   files replace the snapshot's file of the same role.

use crate::geo::GeoError;
use crate::ivre::MergeMode;
use crate::ivre::RecordKind;
use crate::snapshot::manifest::SOURCE_DROP;
use crate::snapshot::ndjson::LineReader;
use crate::snapshot::progress::Progress;
use crate::snapshot::SnapshotError;
use crate::snapshot::{self, DataDir, ImportOptions};
use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::RecursiveMode;
use std::path::{Path, PathBuf};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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

/// Why a dropped file was not imported, or the folder cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// `what` says what was being done to `path` (`cannot read`, `cannot create`…).
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no record")]
    Empty { path: PathBuf },
    #[error("{path}:{line}: {reason}")]
    BadLine {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error("{path}:{line}: not a JSON record")]
    NotJson {
        path: PathBuf,
        line: u64,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}:{line}: cannot tell whether these are passive, scan or view records")]
    UnknownKind { path: PathBuf, line: u64 },
    #[error("no snapshot to add MaxMind data to: drop exports first")]
    NoSnapshot,
    #[error(
        "{path} is not a directory (a symbolic link or a file): remove it, the watcher creates it"
    )]
    NotADirectory { path: PathBuf },
    #[error("cannot watch {path}")]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Geo(#[from] GeoError),
}

impl WatchError {
    fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> WatchError {
        let path = path.to_owned();
        move |source| WatchError::Io { what, path, source }
    }
}

type Result<T, E = WatchError> = std::result::Result<T, E>;

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
    let file = crate::snapshot::ndjson::open_input(path, true)
        .map_err(WatchError::io("cannot read", path))?;
    let mut reader = LineReader::from_file(path, file, Default::default())
        .map_err(WatchError::io("cannot read", path))?;
    let Some((line_no, line)) = reader
        .next_line()
        .map_err(WatchError::io("cannot read", path))?
    else {
        return Err(WatchError::Empty {
            path: path.to_owned(),
        });
    };
    let line = line.map_err(|e| WatchError::BadLine {
        path: path.to_owned(),
        line: line_no,
        reason: e.to_string(),
    })?;
    let first: serde_json::Value =
        serde_json::from_str(line).map_err(|source| WatchError::NotJson {
            path: path.to_owned(),
            line: line_no,
            source,
        })?;
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
        return Err(WatchError::UnknownKind {
            path: path.to_owned(),
            line: line_no,
        });
    };
    Ok(Dropped::Records { kind, delta })
}

/// Imports one dropped file.
fn apply(data: &DataDir, path: &Path, progress: Option<&Arc<dyn Progress>>) -> Result<String> {
    let dropped = classify(path)?;
    let served = snapshot::open::current_generation(data).ok();
    let mut options = ImportOptions {
        strict: false,
        source_kind: Some(SOURCE_DROP.into()),
        regular_files_only: true,
        progress: progress.cloned(),
        ..Default::default()
    };
    match dropped {
        Dropped::Mmdb => {
            let (_, dir) = served.ok_or(WatchError::NoSnapshot)?;
            // The served files, the dropped one replacing any of the same role.
            let staging = tempfile::tempdir_in(data.tmp()).map_err(WatchError::io(
                "cannot create a staging directory in",
                &data.tmp(),
            ))?;
            for entry in std::fs::read_dir(dir.join("geoip"))
                .into_iter()
                .flatten()
                .flatten()
            {
                std::fs::copy(entry.path(), staging.path().join(entry.file_name()))
                    .map_err(WatchError::io("cannot copy", &entry.path()))?;
            }
            std::fs::copy(
                path,
                staging.path().join(path.file_name().unwrap_or_default()),
            )
            .map_err(WatchError::io("cannot copy", path))?;
            let geo = crate::geo::Geo::open_dir(staging.path())?;
            for file in geo.files() {
                tracing::info!(role = %file.role, file = %file.path.display(), "MaxMind role");
            }
            // Remove files that lost their role to the dropped one.
            for entry in std::fs::read_dir(staging.path())
                .map_err(WatchError::io("cannot read", staging.path()))?
                .flatten()
            {
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

/// What became of one dropped file: the generation it published, or why it failed.
pub type Outcome = Result<String, WatchError>;

/// Imports `path`, moves it to `done/` or `failed/` and returns what happened.
fn process(
    data: &DataDir,
    drop_dir: &Path,
    path: &Path,
    progress: Option<&Arc<dyn Progress>>,
) -> Outcome {
    let name = path.file_name().unwrap_or_default().to_owned();
    let marker = drop_dir.join(format!("{}{MARKER}", name.to_string_lossy()));
    let outcome = apply(data, path, progress);
    if let Some(progress) = progress {
        progress.finish();
    }
    match &outcome {
        Ok(generation) => {
            tracing::info!(file = %path.display(), %generation, "dropped file imported");
            let _ = std::fs::rename(path, drop_dir.join("done").join(&name));
        }
        Err(e) => {
            let text = crate::logging::chain(e);
            tracing::error!(file = %path.display(), error = %text, "dropped file failed; nothing published");
            let failed = drop_dir.join("failed");
            if let Err(report) =
                write_report(&failed, &name.to_string_lossy(), &format!("{text}\n"))
            {
                tracing::error!(dir = %failed.display(), error = %report, "cannot write the error report");
            }
            // rename() moves a symlink itself, never what it points to.
            let _ = std::fs::rename(path, failed.join(&name));
        }
    }
    let _ = std::fs::remove_file(marker);
    outcome
}

/// Writes `<name>.error.txt` (or `<name>.<n>.error.txt` when taken) in `dir` with
/// `create_new` and `O_NOFOLLOW`: never through an existing path, a symlink planted
/// there included.
fn write_report(dir: &Path, name: &str, text: &str) -> std::io::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    for n in 0..100 {
        let file_name = if n == 0 {
            format!("{name}.error.txt")
        } else {
            format!("{name}.{n}.error.txt")
        };
        let path = dir.join(file_name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(mut file) => {
                file.write_all(text.as_bytes())?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "100 error reports of that name already exist",
    ))
}

/// Creates `dir` (the watcher's `done/` or `failed/`), or checks that the existing one
/// is a real directory: a symlink there is refused, never followed.
fn own_dir(dir: &Path) -> Result<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta =
                std::fs::symlink_metadata(dir).map_err(WatchError::io("cannot check", dir))?;
            if meta.file_type().is_dir() {
                Ok(())
            } else {
                Err(WatchError::NotADirectory {
                    path: dir.to_owned(),
                })
            }
        }
        Err(e) => Err(WatchError::io("cannot create", dir)(e)),
    }
}

/// Whether `path` has its `<name>.ready` marker next to it (the marker itself is looked
/// at with `lstat`: any kind of entry counts, nothing is followed).
fn has_marker(path: &Path) -> bool {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(MARKER);
    std::fs::symlink_metadata(path.with_file_name(name)).is_ok()
}

/// The files of the folder to import now: those with a marker; at start-up (`initial`)
/// all of them, unless `ready_marker` requires the marker.
fn ready_files(drop_dir: &Path, initial: bool, ready_marker: bool) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(drop_dir)
        .into_iter()
        .flatten()
        .flatten()
        // DirEntry::file_type does not follow symlinks: links, FIFOs, devices are left.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if ignored(&name) {
                return None;
            }
            let path = e.path();
            ((initial && !ready_marker) || has_marker(&path)).then_some(path)
        })
        .collect();
    out.sort();
    out
}

/// Watches `drop_dir` until `stop` is cancelled (checked twice a second), calling
/// `on_file` with the outcome of each file imported. With `ready_marker`, a file is
/// imported only once its `<name>.ready` marker exists (see the module documentation).
/// `progress` receives the bytes read of each import.
pub fn watch(
    data: &DataDir,
    drop_dir: &Path,
    ready_marker: bool,
    stop: &CancellationToken,
    progress: Option<Arc<dyn Progress>>,
    mut on_file: impl FnMut(&Path, &Outcome),
) -> Result<()> {
    for sub in ["done", "failed"] {
        own_dir(&drop_dir.join(sub))?;
    }
    std::fs::create_dir_all(data.tmp()).map_err(WatchError::io("cannot create", &data.tmp()))?;
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
    .map_err(|source| WatchError::Watch {
        path: drop_dir.to_owned(),
        source,
    })?;
    notify::Watcher::watch(&mut watcher, drop_dir, RecursiveMode::NonRecursive).map_err(
        |source| WatchError::Watch {
            path: drop_dir.to_owned(),
            source,
        },
    )?;
    tracing::info!(dir = %drop_dir.display(), ready_marker, "watching the drop folder");
    for path in ready_files(drop_dir, true, ready_marker) {
        if stop.is_cancelled() {
            return Ok(());
        }
        let outcome = process(data, drop_dir, &path, progress.as_ref());
        on_file(&path, &outcome);
    }
    while !stop.is_cancelled() {
        let path = match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(path) => path,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if ready_marker && !has_marker(&path) {
            tracing::debug!(file = %path.display(), "waiting for its .ready marker");
            continue;
        }
        // lstat: a symlink renamed in is not followed (open_input checks again).
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file()) {
            let outcome = process(data, drop_dir, &path, progress.as_ref());
            on_file(&path, &outcome);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(format!(
            "{}/tests/data/ivre-0.9.20/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
    }

    /// Symlinks (to a valid export) and FIFOs are never imported: each fails with
    /// "not a regular file", nothing is published, a FIFO does not block; a symlink
    /// planted at the error report's path is not followed.
    #[test]
    fn only_regular_files_are_imported_and_reports_never_follow_links() {
        let dir = tempfile::tempdir().unwrap();
        let drop_dir = dir.path().join("drop");
        std::fs::create_dir(&drop_dir).unwrap();
        for sub in ["done", "failed"] {
            own_dir(&drop_dir.join(sub)).unwrap();
        }
        let data = DataDir::new(dir.path().join("data"));
        std::fs::create_dir_all(data.tmp()).unwrap();
        let outside = dir.path().join("outside.jsonl");
        std::fs::copy(fixture("ipinfo.jsonl"), &outside).unwrap();

        let link = drop_dir.join("linked.jsonl");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let fifo = drop_dir.join("fifo.jsonl");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // A symlink planted where the report of `linked.jsonl` goes.
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, "untouched").unwrap();
        std::os::unix::fs::symlink(&victim, drop_dir.join("failed/linked.jsonl.error.txt"))
            .unwrap();

        // Neither is listed at start-up.
        assert!(ready_files(&drop_dir, true, false).is_empty());
        for path in [&link, &fifo] {
            let err = crate::logging::chain(&process(&data, &drop_dir, path, None).unwrap_err());
            assert!(err.contains("not a regular file"), "{err}");
        }
        assert!(
            snapshot::open::current_generation(&data).is_err(),
            "something was published"
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        let report =
            std::fs::read_to_string(drop_dir.join("failed/linked.jsonl.1.error.txt")).unwrap();
        assert!(report.contains("symbolic link"), "{report}");
        // The link itself was moved, its target left where it was.
        assert!(
            std::fs::symlink_metadata(drop_dir.join("failed/linked.jsonl"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(outside.is_file());

        // A regular file is imported.
        let real = drop_dir.join("real.jsonl");
        std::fs::copy(fixture("ipinfo.jsonl"), &real).unwrap();
        process(&data, &drop_dir, &real, None).unwrap();
        assert!(drop_dir.join("done/real.jsonl").is_file());
    }

    /// With the `.ready` convention required, a file present at start-up without its
    /// marker (still being written: here, half of an export) is left alone, and so is a
    /// file renamed in without one; each is imported once its marker appears, and the
    /// marker goes with it. Without the setting, start-up files are taken as complete.
    #[test]
    fn with_ready_markers_required_files_wait_for_their_marker() {
        let dir = tempfile::tempdir().unwrap();
        let drop_dir = dir.path().join("drop");
        std::fs::create_dir(&drop_dir).unwrap();
        let data = DataDir::new(dir.path().join("data"));
        let export = std::fs::read_to_string(fixture("ipinfo.jsonl")).unwrap();
        let lines: Vec<&str> = export.lines().collect();
        assert!(lines.len() >= 4, "the fixture is too small");
        let half = lines[..lines.len() / 2].join("\n") + "\n";
        // Being written at start-up: half the lines, no marker.
        let partial = drop_dir.join("partial.jsonl");
        std::fs::write(&partial, &half).unwrap();
        // Complete, with its marker.
        let complete = drop_dir.join("complete.jsonl");
        std::fs::write(&complete, &export).unwrap();
        std::fs::write(drop_dir.join("complete.jsonl.ready"), "").unwrap();

        // Without the setting, both are taken at start-up; with it, only the marked one.
        assert_eq!(
            ready_files(&drop_dir, true, false),
            vec![complete.clone(), partial.clone()]
        );
        assert_eq!(ready_files(&drop_dir, true, true), vec![complete.clone()]);
        assert_eq!(ready_files(&drop_dir, false, true), vec![complete.clone()]);

        let stop = CancellationToken::new();
        let (tx, rx) = std::sync::mpsc::channel::<(PathBuf, bool)>();
        std::thread::scope(|scope| {
            let watcher = scope.spawn(|| {
                watch(&data, &drop_dir, true, &stop, None, |path, outcome| {
                    tx.send((path.to_owned(), outcome.is_ok())).unwrap();
                })
            });
            let next = || rx.recv_timeout(Duration::from_secs(60)).unwrap();
            let quiet = || rx.recv_timeout(Duration::from_millis(1500)).is_err();
            assert_eq!(next(), (complete.clone(), true));
            assert!(!drop_dir.join("complete.jsonl.ready").exists());
            assert!(drop_dir.join("done/complete.jsonl").is_file());
            // The half-written file is not taken, even when written to again.
            assert!(quiet(), "a file without its marker was imported");
            std::fs::write(&partial, &export).unwrap();
            // A file renamed in without its marker waits too.
            let staged = dir.path().join("renamed.jsonl");
            std::fs::write(&staged, &export).unwrap();
            let renamed = drop_dir.join("renamed.jsonl");
            std::fs::rename(&staged, &renamed).unwrap();
            assert!(quiet(), "a file without its marker was imported");
            assert!(partial.is_file() && renamed.is_file());
            // Markers: each file is imported whole.
            std::fs::write(drop_dir.join("partial.jsonl.ready"), "").unwrap();
            assert_eq!(next(), (partial.clone(), true));
            std::fs::write(drop_dir.join("renamed.jsonl.ready"), "").unwrap();
            assert_eq!(next(), (renamed.clone(), true));
            stop.cancel();
            watcher.join().unwrap().unwrap();
        });
        for name in ["partial.jsonl", "renamed.jsonl"] {
            assert!(drop_dir.join("done").join(name).is_file(), "{name}");
            assert!(!drop_dir.join(format!("{name}.ready")).exists(), "{name}");
        }
        // The last import replaced the passive records with the whole export.
        let manifest = snapshot::open::current_generation(&data).unwrap().1;
        let manifest = std::fs::read_to_string(manifest.join("manifest.json")).unwrap();
        let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
        assert_eq!(
            manifest["counts"]["passive"].as_u64().unwrap() as usize,
            lines.len(),
            "{manifest}"
        );
    }

    #[test]
    fn a_symlinked_report_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let failed = dir.path().join("failed");
        std::os::unix::fs::symlink(&elsewhere, &failed).unwrap();
        let err = own_dir(&failed).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
        own_dir(&dir.path().join("done")).unwrap();
        own_dir(&dir.path().join("done")).unwrap();
    }
}
