//! Fetching the generation `LATEST` names: download (capped), SHA-256 check, safe
//! unpacking into a `.building` directory under the build lock, manifest and index
//! checks, then the same publish as an import (rename, `CURRENT` swap, prune).

use super::archive::{self, UnpackLimits};
use super::store::{Latest, Store, LATEST};
use super::DistributeError;
use crate::index::{codec, IndexReader};
use crate::snapshot::publish::GenerationBuilder;
use crate::snapshot::{layout, DataDir, Manifest, SnapshotError};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

/// What a fetch accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest archive downloaded, whatever `LATEST` announces.
    pub max_archive_bytes: u64,
    /// Largest total size of the unpacked files.
    pub max_unpacked_bytes: u64,
    /// Most entries (files and directories) in an archive.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_archive_bytes: 64 << 30,
            max_unpacked_bytes: 256 << 30,
            max_entries: 100_000,
        }
    }
}

/// Installs the generation `LATEST` names in `store` as the served generation of
/// `data`. `Ok(None)` when it is already served or installed here; `Ok(Some(name))`
/// once it is published. On any error nothing is published, the temporary files are
/// removed and the previously served generation stays.
pub async fn fetch(data: &DataDir, store: &Store) -> Result<Option<String>, DistributeError> {
    fetch_with(data, store, &Limits::default()).await
}

/// [`fetch`] with the given limits.
pub async fn fetch_with(
    data: &DataDir,
    store: &Store,
    limits: &Limits,
) -> Result<Option<String>, DistributeError> {
    let Some(latest) = Latest::read(store).await? else {
        return Err(DistributeError::NotPublished {
            url: store.shown().to_owned(),
            key: LATEST.to_owned(),
        });
    };
    let name = latest.generation.clone();
    let served = crate::snapshot::open::current_name(data).ok();
    if served.as_deref() == Some(name.as_str()) || data.generation(&name).is_dir() {
        tracing::debug!(generation = %name, "the store's latest generation is already here");
        return Ok(None);
    }
    let url = store.shown().to_owned();
    let key = latest.archive.clone();
    if latest.bytes > limits.max_archive_bytes {
        return Err(DistributeError::TooLarge {
            url,
            key,
            limit: limits.max_archive_bytes,
        });
    }

    let tmp_dir = data.tmp();
    std::fs::create_dir_all(&tmp_dir).map_err(|e| DistributeError::io(&tmp_dir, e))?;
    // Removed when dropped, whatever happens below.
    let tmp = tempfile::Builder::new()
        .prefix("fetch-")
        .suffix(".tar.zst")
        .tempfile_in(&tmp_dir)
        .map_err(|e| DistributeError::io(&tmp_dir, e))?;
    let tmp_path = tmp.path().to_owned();
    tracing::info!(generation = %name, store = %url, bytes = latest.bytes, "downloading the generation");
    let mut hasher = Sha256::new();
    let mut file = tmp
        .as_file()
        .try_clone()
        .map_err(|e| DistributeError::io(&tmp_path, e))?;
    let mut sink = |chunk: &[u8]| {
        hasher.update(chunk);
        file.write_all(chunk)
    };
    // At most the announced size: anything longer is not what was published.
    let got = match store.get_to(&key, latest.bytes, &mut sink, &tmp_path).await {
        Ok(Some(n)) => n,
        Ok(None) => return Err(DistributeError::MissingArchive { url, key }),
        Err(DistributeError::TooLarge { .. }) => {
            return Err(DistributeError::SizeMismatch {
                url,
                key,
                expected: latest.bytes,
                found: latest.bytes.saturating_add(1),
            })
        }
        Err(e) => return Err(e),
    };
    if got != latest.bytes {
        return Err(DistributeError::SizeMismatch {
            url,
            key,
            expected: latest.bytes,
            found: got,
        });
    }
    let found = hex::encode(hasher.finalize());
    if found != latest.sha256 {
        return Err(DistributeError::Checksum {
            url,
            key,
            expected: latest.sha256,
            found,
        });
    }
    file.sync_all()
        .map_err(|e| DistributeError::io(&tmp_path, e))?;

    let (data, limits) = (data.clone(), *limits);
    let task_url = url.clone();
    let installed = tokio::task::spawn_blocking(move || {
        let result = install(&data, &tmp_path, &latest, &task_url, &limits);
        drop(tmp);
        result
    })
    .await
    .map_err(|e| DistributeError::Task {
        url,
        what: "install",
        reason: e.to_string(),
    })??;
    Ok(installed.then_some(name))
}

/// Unpacks a verified archive as generation `latest.generation` and publishes it.
/// False when another process installed it first.
fn install(
    data: &DataDir,
    archive_path: &Path,
    latest: &Latest,
    url: &str,
    limits: &Limits,
) -> Result<bool, DistributeError> {
    let name = &latest.generation;
    let builder = match GenerationBuilder::start_named(data, name) {
        Ok(b) => b,
        Err(SnapshotError::GenerationExists { .. }) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let bad_archive = |reason: String| DistributeError::BadArchive {
        url: url.to_owned(),
        key: latest.archive.clone(),
        reason,
    };
    let bad_generation = |reason: String| DistributeError::BadGeneration {
        url: url.to_owned(),
        key: latest.archive.clone(),
        name: name.clone(),
        reason,
    };
    let unpack_limits = UnpackLimits {
        max_bytes: limits.max_unpacked_bytes,
        max_entries: limits.max_entries,
    };
    // On any error below, dropping the builder removes the `.building` directory.
    archive::unpack(archive_path, builder.dir(), unpack_limits)
        .map_err(|e| bad_archive(e.to_string()))?;

    let manifest = Manifest::read(&builder.dir().join(layout::MANIFEST))
        .map_err(|e| bad_generation(e.to_string()))?;
    if manifest.generation != *name {
        return Err(bad_generation(format!(
            "its manifest names generation {:?}",
            manifest.generation.chars().take(80).collect::<String>()
        )));
    }
    if manifest.format_version != codec::FORMAT_VERSION {
        return Err(bad_generation(format!(
            "format version {}, this build reads version {}",
            manifest.format_version,
            codec::FORMAT_VERSION
        )));
    }
    let index_dir = builder.index_path();
    let checksum = {
        let index = IndexReader::open(&index_dir, &manifest.index_check(), 16 * 1024 * 1024)
            .map_err(|e| bad_generation(format!("the index does not open: {e}")))?;
        index
            .checksum()
            .map_err(|e| bad_generation(format!("the index is unreadable: {e}")))?
    };
    if checksum != manifest.checksum {
        return Err(bad_generation(format!(
            "index checksum {checksum}, the manifest says {}",
            manifest.checksum
        )));
    }
    let geo_dir = builder.geoip_path();
    if geo_dir.is_dir() {
        crate::geo::Geo::open_dir(&geo_dir)
            .map_err(|e| bad_generation(format!("its MaxMind files: {e}")))?;
    }
    builder.publish_as_built()?;
    tracing::info!(generation = %name, store = %url, "fetched and installed");
    Ok(true)
}
