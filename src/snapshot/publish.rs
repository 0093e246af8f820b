//! Building a generation and publishing it atomically.

use super::layout::{self, DataDir};
use super::manifest::Manifest;
use super::SnapshotError;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Private copies older than this are removed when a generation is published.
const STALE_PRIVATE_COPY: Duration = Duration::from_secs(24 * 3600);

/// A generation being built. Holds the data directory's build lock until dropped;
/// dropping it without [`GenerationBuilder::publish`] removes the partial generation.
pub struct GenerationBuilder {
    data: DataDir,
    name: String,
    dir: PathBuf,
    _lock: File,
    published: bool,
}

impl GenerationBuilder {
    /// Takes the build lock (waiting for another builder if needed), removes what
    /// crashed builds left, and creates an empty `.building` directory.
    pub fn start(data: &DataDir) -> Result<GenerationBuilder, SnapshotError> {
        GenerationBuilder::start_as(data, None)
    }

    /// Like [`GenerationBuilder::start`], for a generation that keeps the name another
    /// data directory gave it (a fetched generation, see `distribute`). Fails when a
    /// generation of that name exists here: a published generation is never written.
    pub fn start_named(data: &DataDir, name: &str) -> Result<GenerationBuilder, SnapshotError> {
        if !layout::is_generation_name(name) {
            return Err(SnapshotError::BadGenerationName {
                name: name.chars().take(80).collect(),
            });
        }
        GenerationBuilder::start_as(data, Some(name))
    }

    fn start_as(data: &DataDir, name: Option<&str>) -> Result<GenerationBuilder, SnapshotError> {
        let root = data.root();
        for dir in [root.to_owned(), data.generations(), data.tmp()] {
            fs::create_dir_all(&dir).map_err(|e| SnapshotError::io(&dir, e))?;
        }
        let lock_path = data.lock_file();
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| SnapshotError::io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                tracing::info!(data_dir = %root.display(), "another ivre-sync is building a snapshot here; waiting for it to finish");
                lock.lock().map_err(|e| SnapshotError::io(&lock_path, e))?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(SnapshotError::io(&lock_path, e)),
        }
        remove_leftovers(data)?;
        let name = match name {
            Some(name) => {
                let existing = data.generation(name);
                if existing.exists() {
                    return Err(SnapshotError::GenerationExists {
                        name: name.to_owned(),
                        path: existing,
                    });
                }
                name.to_owned()
            }
            None => new_generation_name(data),
        };
        let dir = data
            .generations()
            .join(format!("{name}{}", layout::BUILDING_SUFFIX));
        fs::create_dir(&dir).map_err(|e| SnapshotError::io(&dir, e))?;
        Ok(GenerationBuilder {
            data: data.clone(),
            name,
            dir,
            _lock: lock,
            published: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn index_path(&self) -> PathBuf {
        self.dir.join(layout::INDEX)
    }

    pub fn geoip_path(&self) -> PathBuf {
        self.dir.join(layout::GEOIP)
    }

    /// The `.building` directory (its manifest goes to `manifest.json` here).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the manifest, makes everything durable, renames the generation into
    /// place, then atomically points `CURRENT` at it and prunes old generations
    /// (the new one and the one it replaces are kept).
    pub fn publish(self, manifest: &Manifest) -> Result<PathBuf, SnapshotError> {
        pause_point("manifest");
        let manifest_path = self.dir.join(layout::MANIFEST);
        let text =
            serde_json::to_string_pretty(manifest).map_err(|e| SnapshotError::BadManifest {
                path: manifest_path.clone(),
                reason: e.to_string(),
            })?;
        write_durably(&manifest_path, text.as_bytes())?;
        self.publish_as_built()
    }

    /// Publishes the directory as it is, its `manifest.json` included (written by the
    /// caller, e.g. unpacked from a fetched archive): fsync, rename, `CURRENT`, prune.
    pub fn publish_as_built(mut self) -> Result<PathBuf, SnapshotError> {
        sync_tree(&self.dir)?;
        pause_point("rename");
        let final_dir = self.data.generation(&self.name);
        fs::rename(&self.dir, &final_dir).map_err(|e| SnapshotError::io(&final_dir, e))?;
        sync_dir(&self.data.generations())?;
        self.published = true;
        pause_point("current");
        let previous = super::open::current_name(&self.data).ok();
        let tmp = self.data.root().join(format!("{}.tmp", layout::CURRENT));
        write_durably(&tmp, format!("{}\n", self.name).as_bytes())?;
        let current = self.data.current_file();
        fs::rename(&tmp, &current).map_err(|e| SnapshotError::io(&current, e))?;
        sync_dir(self.data.root())?;
        tracing::info!(generation = %self.name, "published");
        pause_point("prune");
        prune(&self.data, &self.name, previous.as_deref());
        Ok(final_dir)
    }
}

impl Drop for GenerationBuilder {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// `gen-<UTC time with microseconds>Z`, unique in the data directory.
fn new_generation_name(data: &DataDir) -> String {
    loop {
        let now = chrono::Utc::now();
        let name = format!("gen-{}", now.format("%Y%m%dT%H%M%S%6fZ"));
        let taken = data.generation(&name).exists()
            || data
                .generations()
                .join(format!("{name}{}", layout::BUILDING_SUFFIX))
                .exists();
        if !taken {
            return name;
        }
        std::thread::sleep(Duration::from_micros(10));
    }
}

/// Removes `.building` directories of crashed builds (the caller holds the lock).
fn remove_leftovers(data: &DataDir) -> Result<(), SnapshotError> {
    let gens = data.generations();
    let entries = fs::read_dir(&gens).map_err(|e| SnapshotError::io(&gens, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(layout::BUILDING_SUFFIX) {
            tracing::warn!(path = %entry.path().display(), "removing a generation left unfinished by an interrupted build");
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// Keeps `current` and `previous`, removes every other generation and stale private
/// copies. Failures are logged: pruning never fails a publish.
fn prune(data: &DataDir, current: &str, previous: Option<&str>) {
    if let Ok(entries) = fs::read_dir(data.generations()) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == current || Some(name.as_str()) == previous {
                continue;
            }
            if layout::is_generation_name(&name) {
                match fs::remove_dir_all(entry.path()) {
                    Ok(()) => tracing::info!(generation = %name, "pruned old generation"),
                    Err(e) => {
                        tracing::warn!(generation = %name, error = %e, "cannot prune old generation")
                    }
                }
            }
        }
    }
    if let Ok(entries) = fs::read_dir(data.tmp()) {
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > STALE_PRIVATE_COPY);
            if old {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Writes a file and fsyncs it.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), SnapshotError> {
    let mut file = File::create(path).map_err(|e| SnapshotError::io(path, e))?;
    file.write_all(bytes)
        .map_err(|e| SnapshotError::io(path, e))?;
    file.sync_all().map_err(|e| SnapshotError::io(path, e))
}

/// Fsyncs a directory (its entries).
fn sync_dir(path: &Path) -> Result<(), SnapshotError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| SnapshotError::io(path, e))
}

/// Fsyncs every file and directory under `root`.
fn sync_tree(root: &Path) -> Result<(), SnapshotError> {
    let entries = fs::read_dir(root).map_err(|e| SnapshotError::io(root, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| SnapshotError::io(root, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| SnapshotError::io(&path, e))?;
        if kind.is_dir() {
            sync_tree(&path)?;
        } else if kind.is_file() {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| SnapshotError::io(&path, e))?;
        }
    }
    sync_dir(root)
}

/// Test hook (cargo feature `test-hooks` only): with `IVRE_SYNC_PAUSE_AT=<stage>`, the
/// build stops at that stage (so a test can kill the process there). Stages: `records`,
/// `manifest`, `rename`, `current`, `prune`.
#[cfg(feature = "test-hooks")]
pub(crate) fn pause_point(stage: &str) {
    if std::env::var("IVRE_SYNC_PAUSE_AT").is_ok_and(|s| s == stage) {
        eprintln!("ivre-sync: paused at {stage}");
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// Without the `test-hooks` feature (release builds): nothing.
#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub(crate) fn pause_point(_stage: &str) {}
