//! Opening the served generation.
//!
//! sled 0.34.7 locks a database exclusively, even for readers. The process that
//! serves a generation (the daemon) opens it in place; another process (a CLI command
//! run next to the daemon) that finds it locked reads a private copy of the sled search
//! entries under `DATA_DIR/tmp/` (the record files and the base, which nothing locks, are
//! shared), removed when it is done. `ivre-sync` never opens a served generation's index:
//! it only reads its manifest and `.mmdb` files.

use super::layout::{self, DataDir};
use super::manifest::Manifest;
use super::SnapshotError;
use crate::geo::Geo;
use crate::index::{IndexError, IndexReader};
use arc_swap::ArcSwap;
use std::fs;
use std::path::{Path, PathBuf};

/// How to open a snapshot.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// sled page cache size.
    pub cache_bytes: u64,
    /// Read a private copy when another process holds the generation.
    pub private_copy_if_locked: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            cache_bytes: 64 * 1024 * 1024,
            private_copy_if_locked: true,
        }
    }
}

/// An open, published generation.
pub struct Snapshot {
    pub name: String,
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub index: IndexReader,
    /// The MaxMind data: the generation's files, or a live directory's (replaceable while
    /// serving, see [`super::serving`]).
    pub geo: ArcSwap<Geo>,
    private_copy: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("name", &self.name)
            .field("dir", &self.dir)
            .field("private_copy", &self.private_copy.is_some())
            .finish()
    }
}

/// Largest `CURRENT` file read (it holds one generation name and a new line).
pub const MAX_CURRENT_BYTES: u64 = 256;

/// `path` is a directory, not a symbolic link to one (the data directory's
/// `generations/`, a generation, its `index/`): nothing read through it leaves the data
/// directory.
pub(crate) fn is_real_dir(path: &Path) -> bool {
    path.symlink_metadata()
        .is_ok_and(|m| m.file_type().is_dir())
}

/// The name `CURRENT` holds: a regular file of at most [`MAX_CURRENT_BYTES`] holding a
/// generation name (letters, digits, `-` and `_`: no `/`, no `..`).
pub(crate) fn current_name(data: &DataDir) -> Result<String, SnapshotError> {
    let path = data.current_file();
    if !data.root().is_dir() {
        return Err(SnapshotError::NoDataDir {
            root: data.root().to_owned(),
        });
    }
    let content = match crate::index::read_capped(&path, MAX_CURRENT_BYTES) {
        Ok(c) => String::from_utf8_lossy(&c).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SnapshotError::NoSnapshot {
                root: data.root().to_owned(),
            })
        }
        Err(e) => return Err(SnapshotError::io(&path, e)),
    };
    let name = content.trim();
    if !layout::is_generation_name(name) {
        return Err(SnapshotError::BadCurrent {
            path,
            content: content.chars().take(80).collect(),
        });
    }
    Ok(name.to_owned())
}

/// The served generation's name and directory.
pub fn current_generation(data: &DataDir) -> Result<(String, PathBuf), SnapshotError> {
    let name = current_name(data)?;
    let dir = data.generation(&name);
    if !is_real_dir(&data.generations()) || !is_real_dir(&dir) {
        if dir.symlink_metadata().is_ok() {
            return Err(SnapshotError::io(
                &dir,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "not a directory of the data directory (a symbolic link?)",
                ),
            ));
        }
        return Err(SnapshotError::MissingGeneration { name, path: dir });
    }
    Ok((name, dir))
}

/// Reads and checks the served generation's manifest.
pub fn current_manifest(data: &DataDir) -> Result<(String, PathBuf, Manifest), SnapshotError> {
    let (name, dir) = current_generation(data)?;
    let path = dir.join(layout::MANIFEST);
    let manifest = Manifest::read(&path).map_err(|e| match e {
        SnapshotError::UnsupportedFormat {
            found, supported, ..
        } => SnapshotError::UnsupportedFormat {
            name: name.clone(),
            found,
            supported,
        },
        other => other,
    })?;
    if manifest.generation != name {
        return Err(SnapshotError::BadManifest {
            path,
            reason: format!(
                "it names generation {:?}, not {name}",
                manifest.generation.chars().take(80).collect::<String>()
            ),
        });
    }
    Ok((name, dir, manifest))
}

impl Snapshot {
    /// Opens the served generation with default options.
    pub fn open(data: &DataDir) -> Result<Snapshot, SnapshotError> {
        Snapshot::open_with(data, &OpenOptions::default())
    }

    pub fn open_with(data: &DataDir, options: &OpenOptions) -> Result<Snapshot, SnapshotError> {
        // A publish may prune the generation between reading CURRENT and opening it:
        // read CURRENT again once.
        match Snapshot::try_open(data, options) {
            Err(SnapshotError::MissingGeneration { .. })
            | Err(SnapshotError::MissingIndex { .. }) => Snapshot::try_open(data, options),
            other => other,
        }
    }

    fn try_open(data: &DataDir, options: &OpenOptions) -> Result<Snapshot, SnapshotError> {
        let (name, dir, manifest) = current_manifest(data)?;
        let manifest_path = dir.join(layout::MANIFEST);
        Snapshot::open_checked(data, options, name.clone(), dir, manifest).map_err(|e| match e {
            // What a caller retries or tells apart, as it is.
            e @ (SnapshotError::MissingIndex { .. } | SnapshotError::MissingGeneration { .. }) => e,
            e => SnapshotError::Open {
                name,
                manifest: manifest_path,
                source: Box::new(e),
            },
        })
    }

    fn open_checked(
        data: &DataDir,
        options: &OpenOptions,
        name: String,
        dir: PathBuf,
        manifest: Manifest,
    ) -> Result<Snapshot, SnapshotError> {
        let index_dir = dir.join(layout::INDEX);
        if !is_real_dir(&index_dir) {
            return Err(SnapshotError::MissingIndex {
                name,
                path: index_dir,
            });
        }
        let check = manifest.index_check();
        let (index, private_copy) = match IndexReader::open(&index_dir, &check, options.cache_bytes)
        {
            Ok(index) => (index, None),
            Err(IndexError::Locked { .. }) if options.private_copy_if_locked => {
                tracing::info!(generation = %name, "generation is open in another process (the daemon?): reading a private copy");
                let tmp = data.tmp();
                fs::create_dir_all(&tmp).map_err(|e| SnapshotError::io(&tmp, e))?;
                let copy = tempfile::Builder::new()
                    .prefix("private-")
                    .tempdir_in(&tmp)
                    .map_err(|e| SnapshotError::io(&tmp, e))?;
                // Only the sled database locks: copy it, share the record files and the base.
                let copy_entries = copy.path().join(crate::index::SLED_DIR);
                copy_dir(&index_dir.join(crate::index::SLED_DIR), &copy_entries)?;
                let index = IndexReader::open_parts(
                    &index_dir,
                    &copy_entries,
                    &check,
                    options.cache_bytes,
                )?;
                (index, Some(copy))
            }
            Err(e) => return Err(e.into()),
        };
        let geo_dir = dir.join(layout::GEOIP);
        let geo = if is_real_dir(&geo_dir) {
            check_geo_files(&geo_dir, &manifest)?;
            Geo::open_dir(&geo_dir)?
        } else if manifest.geoip.is_empty() {
            Geo::empty()
        } else {
            return Err(SnapshotError::Index(IndexError::Damaged {
                path: geo_dir,
                reason: "missing, the manifest lists MaxMind files".into(),
            }));
        };
        Ok(Snapshot {
            name,
            dir,
            manifest,
            index,
            geo: ArcSwap::from_pointee(geo),
            private_copy,
        })
    }

    /// True when this process reads a private copy of a generation another process holds.
    pub fn is_private_copy(&self) -> bool {
        self.private_copy.is_some()
    }
}

/// The generation's MaxMind files are those the manifest lists, with their size and
/// CRC-32 (a damaged data section that still parses would otherwise give different
/// answers).
fn check_geo_files(geo_dir: &Path, manifest: &Manifest) -> Result<(), SnapshotError> {
    let damaged = |path: &Path, reason: String| {
        SnapshotError::Index(IndexError::Damaged {
            path: path.to_owned(),
            reason,
        })
    };
    for entry in fs::read_dir(geo_dir).map_err(|e| SnapshotError::io(geo_dir, e))? {
        let entry = entry.map_err(|e| SnapshotError::io(geo_dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !manifest.geoip.iter().any(|g| g.file == name) {
            return Err(damaged(
                &entry.path(),
                "present but not in the manifest".into(),
            ));
        }
    }
    for listed in &manifest.geoip {
        let path = geo_dir.join(&listed.file);
        if listed.file.contains('/') || listed.file.starts_with('.') {
            return Err(damaged(&path, "not a file name".into()));
        }
        let bytes = crate::index::read_capped(&path, listed.bytes)
            .map_err(|e| SnapshotError::io(&path, e))?;
        let crc = format!("{:08x}", crc32fast::hash(&bytes));
        if bytes.len() as u64 != listed.bytes || crc != listed.crc32 {
            return Err(damaged(
                &path,
                format!(
                    "{} bytes, CRC-32 {crc}; the manifest says {} bytes, CRC-32 {}",
                    bytes.len(),
                    listed.bytes,
                    listed.crc32
                ),
            ));
        }
    }
    Ok(())
}

/// Copies a directory tree (files and subdirectories).
pub(crate) fn copy_dir(from: &Path, to: &Path) -> Result<(), SnapshotError> {
    fs::create_dir_all(to).map_err(|e| SnapshotError::io(to, e))?;
    let entries = fs::read_dir(from).map_err(|e| SnapshotError::io(from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| SnapshotError::io(from, e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().map_err(|e| SnapshotError::io(&src, e))?;
        if kind.is_dir() {
            copy_dir(&src, &dst)?;
        } else if kind.is_file() {
            // Base files are immutable once written: a hard link shares them between
            // generations (an update never writes them; clearing a kind unlinks).
            let immutable = crate::index::is_immutable_file(&entry.file_name());
            if !(immutable && fs::hard_link(&src, &dst).is_ok()) {
                fs::copy(&src, &dst).map_err(|e| SnapshotError::io(&src, e))?;
            }
        }
    }
    Ok(())
}
