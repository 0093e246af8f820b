//! Publishing the served generation to a store: archive, upload, manifest, `LATEST`
//! last, then prune the store.

use super::archive;
use super::store::{archive_key, manifest_key, Latest, Store, KEEP, LATEST};
use super::DistributeError;
use crate::snapshot::{layout, DataDir, Manifest};
use serde::{Deserialize, Serialize};

/// Archives at least this large are uploaded in parts.
pub const MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;
/// Size of one part (S3 wants at least 5 MiB, except for the last).
pub const PART_SIZE: usize = 16 * 1024 * 1024;

/// A generation's `.json` in the store: its manifest and its archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredManifest {
    #[serde(flatten)]
    pub manifest: Manifest,
    pub archive: String,
    pub sha256: String,
    pub bytes: u64,
    pub published_at: String,
}

/// The outcome of [`publish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub generation: String,
    /// Key of the archive, relative to the store's prefix.
    pub archive: String,
    pub sha256: String,
    pub bytes: u64,
    /// False when `LATEST` already named this generation with the same archive.
    pub uploaded: bool,
}

/// Publishes the generation `CURRENT` names to `store` (reading it only): its archive,
/// its `.json`, then `LATEST`; then deletes all but the [`KEEP`] newest generations of
/// the store. Does nothing when `LATEST` already names it (same index checksum, archive
/// present).
pub async fn publish(data: &DataDir, store: &Store) -> Result<Published, DistributeError> {
    publish_with(data, store, MULTIPART_THRESHOLD, PART_SIZE).await
}

/// [`publish`] with the multipart threshold and part size given.
pub async fn publish_with(
    data: &DataDir,
    store: &Store,
    multipart_threshold: u64,
    part_size: usize,
) -> Result<Published, DistributeError> {
    let (name, dir, manifest) = crate::snapshot::open::current_manifest(data)?;
    if let Some(published) = already_published(store, &name, &manifest).await {
        tracing::info!(generation = %name, store = %store.shown(), "already published");
        return Ok(published);
    }
    let tmp_dir = data.tmp();
    std::fs::create_dir_all(&tmp_dir).map_err(|e| DistributeError::io(&tmp_dir, e))?;
    // Removed when dropped, whatever happens below.
    let tmp = tempfile::Builder::new()
        .prefix("publish-")
        .suffix(".tar.zst")
        .tempfile_in(&tmp_dir)
        .map_err(|e| DistributeError::io(&tmp_dir, e))?;
    let tmp_path = tmp.path().to_owned();
    let out = tmp
        .as_file()
        .try_clone()
        .map_err(|e| DistributeError::io(&tmp_path, e))?;
    let written = {
        let (dir, tmp_path) = (dir.clone(), tmp_path.clone());
        tokio::task::spawn_blocking(move || archive::write(&dir, out, &tmp_path))
            .await
            .map_err(|e| DistributeError::Task {
                url: store.shown().to_owned(),
                what: "archive",
                reason: e.to_string(),
            })?
    }
    .map_err(|e| DistributeError::BadArchive {
        url: store.shown().to_owned(),
        key: archive_key(&name),
        reason: format!("cannot archive {}: {e}", dir.display()),
    })?;
    let archive = archive_key(&name);
    let mut published = Published {
        generation: name.clone(),
        archive: archive.clone(),
        sha256: written.sha256.clone(),
        bytes: written.bytes,
        uploaded: false,
    };
    tracing::info!(generation = %name, store = %store.shown(), bytes = written.bytes, "uploading the generation");
    store
        .put_file(&archive, &tmp_path, multipart_threshold, part_size)
        .await?;
    drop(tmp);
    let published_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let stored = StoredManifest {
        manifest,
        archive: archive.clone(),
        sha256: written.sha256.clone(),
        bytes: written.bytes,
        published_at: published_at.clone(),
    };
    let manifest_rel = manifest_key(&name);
    store
        .put_small(&manifest_rel, to_json(store, &manifest_rel, &stored)?)
        .await?;
    let latest = Latest {
        generation: name.clone(),
        archive,
        manifest: manifest_rel,
        sha256: written.sha256,
        bytes: written.bytes,
        published_at,
    };
    // Last, with one put: readers see the previous generation or this one, whole.
    store
        .put_small(LATEST, to_json(store, LATEST, &latest)?)
        .await?;
    tracing::info!(generation = %name, store = %store.shown(), sha256 = %latest.sha256, "published to the store");
    published.uploaded = true;
    prune(store, &name).await;
    Ok(published)
}

/// `Some` when `LATEST` already names generation `name`, with the same index checksum in
/// its `.json` and its whole archive in the store. (The archive's bytes are not compared:
/// sled rewrites parts of its files whenever a database is opened, so archiving the same
/// generation again after a lookup gives other bytes for the same content.)
async fn already_published(store: &Store, name: &str, manifest: &Manifest) -> Option<Published> {
    let latest = Latest::read(store).await.ok()??;
    if latest.generation != name {
        return None;
    }
    let stored = store.get_small(&latest.manifest).await.ok()??;
    let stored: StoredManifest = serde_json::from_slice(&stored).ok()?;
    let same = stored.manifest.checksum == manifest.checksum
        && stored.manifest.generation == name
        && stored.sha256 == latest.sha256
        && store.size(&latest.archive).await.ok()? == Some(latest.bytes);
    same.then_some(Published {
        generation: latest.generation,
        archive: latest.archive,
        sha256: latest.sha256,
        bytes: latest.bytes,
        uploaded: false,
    })
}

fn to_json<T: Serialize>(store: &Store, key: &str, value: &T) -> Result<Vec<u8>, DistributeError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| DistributeError::BadLatest {
        url: store.shown().to_owned(),
        key: key.to_owned(),
        reason: e.to_string(),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Deletes the generations of the store older than the [`KEEP`] newest (names sort by
/// time), never `latest`. Failures are logged: pruning never fails a publish.
async fn prune(store: &Store, latest: &str) {
    let names = match store.generations().await {
        Ok(names) => names,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the store's generations to prune them");
            return;
        }
    };
    let old = names.len().saturating_sub(KEEP);
    for name in names.iter().take(old).filter(|n| *n != latest) {
        debug_assert!(layout::is_generation_name(name));
        // The archive last: a listed `.json` always has its archive.
        for key in [manifest_key(name), archive_key(name)] {
            if let Err(e) = store.delete(&key).await {
                tracing::warn!(error = %e, "cannot prune an old generation from the store");
            }
        }
        tracing::info!(generation = %name, store = %store.shown(), "pruned from the store");
    }
}
