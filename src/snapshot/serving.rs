//! The snapshot a long-running process serves, swapped without a restart.
//!
//! - A newly published generation (`CURRENT` changed) is opened off the request path,
//!   checked, and swapped in atomically; lookups in progress finish on the generation they
//!   started with, which closes when the last of them drops it. A generation that fails to
//!   open is logged and the served one stays.
//! - With a live MaxMind directory (`IVRE_GEOIP_DIR`, e.g. the one `geoipupdate` keeps),
//!   its `.mmdb` files replace the generation's; when one is replaced (write then rename, as
//!   `geoipupdate` does) the directory is read again, verified, and swapped in.
//!
//! - A process may start before any generation exists ([`Serving::open_or_empty`]: the
//!   daemon building or fetching its first snapshot); the first one published is opened
//!   as any new one is.
//!
//! Changes are seen through notify (the data and MaxMind directories are watched, not the
//! files, which renames replace) and, as a fallback for lost events, by polling.

use super::layout::{self, DataDir};
use super::open::{current_name, OpenOptions, Snapshot};
use super::SnapshotError;
use crate::geo::Geo;
use arc_swap::ArcSwapOption;
use notify::RecursiveMode;
use notify_debouncer_full::new_debouncer;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A published generation that failed to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenFailure {
    pub generation: String,
    /// The error, naming the file (and record).
    pub error: String,
    /// RFC 3339, when it first failed.
    pub at: String,
}

/// The served snapshot and how to refresh it.
pub struct Serving {
    data: DataDir,
    geoip_dir: Option<PathBuf>,
    options: OpenOptions,
    current: ArcSwapOption<Snapshot>,
    /// The published generation that does not open (cleared by the next swap).
    failure: std::sync::Mutex<Option<OpenFailure>>,
    /// Failures so far (each generation and error once).
    failures: std::sync::atomic::AtomicU64,
}

impl Serving {
    /// Opens the served generation (and the live MaxMind directory, if any).
    pub fn open(
        data: &DataDir,
        geoip_dir: Option<PathBuf>,
        options: OpenOptions,
    ) -> Result<Serving, SnapshotError> {
        let snapshot = Snapshot::open_with(data, &options)?;
        if let Some(dir) = &geoip_dir {
            snapshot.geo.store(Arc::new(Geo::open_dir(dir)?));
        }
        Ok(Serving {
            data: data.clone(),
            geoip_dir,
            options,
            current: ArcSwapOption::from_pointee(snapshot),
            failure: Default::default(),
            failures: Default::default(),
        })
    }

    /// Like [`Serving::open`], but a data directory without a published generation (or
    /// without the directory itself) gives a `Serving` with no snapshot yet, which
    /// [`Serving::reload`] fills once one is published. Other errors (a generation that
    /// cannot be opened) are errors.
    pub fn open_or_empty(
        data: &DataDir,
        geoip_dir: Option<PathBuf>,
        options: OpenOptions,
    ) -> Result<Serving, SnapshotError> {
        match Serving::open(data, geoip_dir.clone(), options.clone()) {
            Err(SnapshotError::NoSnapshot { .. } | SnapshotError::NoDataDir { .. }) => {
                Ok(Serving {
                    data: data.clone(),
                    geoip_dir,
                    options,
                    current: ArcSwapOption::empty(),
                    failure: Default::default(),
                    failures: Default::default(),
                })
            }
            other => other,
        }
    }

    /// The snapshot to answer one request with (kept alive while the caller holds it);
    /// `None` before the first one is published.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    /// The published generation that failed to open, while it is the published one.
    pub fn open_failure(&self) -> Option<OpenFailure> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    /// How many times a published generation failed to open (each generation and
    /// error once).
    pub fn open_failures(&self) -> u64 {
        self.failures.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Swaps to the published generation if it changed; `Ok(true)` when it did. When it
    /// does not open, the served one stays: the failure is logged (once per generation
    /// and error), counted and kept for health ([`Serving::open_failure`]), and
    /// returned.
    pub fn reload(&self) -> Result<bool, SnapshotError> {
        let result = self.try_reload();
        match &result {
            Ok(true) => self.set_failure(None),
            Ok(false) => {}
            Err(e) => {
                let generation = current_name(&self.data).unwrap_or_else(|_| "?".to_owned());
                let served = self.current.load_full().map(|s| s.name.clone());
                let error = e.to_string();
                let known = self
                    .open_failure()
                    .is_some_and(|f| f.generation == generation && f.error == error);
                if known {
                    tracing::debug!(%generation, %error, "the published generation still does not open");
                } else {
                    self.failures
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::error!(
                        %generation,
                        %error,
                        served = served.as_deref().unwrap_or("none"),
                        "the published generation does not open; still serving the previous one"
                    );
                    self.set_failure(Some(OpenFailure {
                        generation,
                        error,
                        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    }));
                }
            }
        }
        result
    }

    fn set_failure(&self, failure: Option<OpenFailure>) {
        if let Ok(mut slot) = self.failure.lock() {
            *slot = failure;
        }
    }

    fn try_reload(&self) -> Result<bool, SnapshotError> {
        let served = self.current.load_full();
        let name = match current_name(&self.data) {
            Ok(name) => name,
            // Nothing published yet: nothing to swap.
            Err(SnapshotError::NoSnapshot { .. } | SnapshotError::NoDataDir { .. })
                if served.is_none() =>
            {
                return Ok(false)
            }
            Err(e) => return Err(e),
        };
        if served.as_ref().is_some_and(|s| s.name == name) {
            // Published again after a failure (a rollback to the served one).
            self.set_failure(None);
            return Ok(false);
        }
        let snapshot = Snapshot::open_with(&self.data, &self.options)?;
        if let Some(dir) = &self.geoip_dir {
            // The live MaxMind files stay in use.
            match &served {
                Some(served) => snapshot.geo.store(served.geo.load_full()),
                None => snapshot.geo.store(Arc::new(Geo::open_dir(dir)?)),
            }
        }
        tracing::info!(generation = %snapshot.name, built_at = %snapshot.manifest.built_at, "now serving a new snapshot");
        self.current.store(Some(Arc::new(snapshot)));
        Ok(true)
    }

    /// Reads the live MaxMind directory again and swaps it in.
    pub fn reload_geo(&self) -> Result<(), SnapshotError> {
        let Some(dir) = &self.geoip_dir else {
            return Ok(());
        };
        let geo = Geo::open_dir(dir)?;
        tracing::info!(dir = %dir.display(), files = geo.files().len(), "MaxMind files reloaded");
        if let Some(served) = self.current.load_full() {
            served.geo.store(Arc::new(geo));
        }
        Ok(())
    }

    /// Watches for new generations and MaxMind files until `shutdown`; polls every
    /// `poll` in case an event is lost.
    pub async fn watch(self: Arc<Self>, poll: Duration, shutdown: CancellationToken) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
        let geoip_dir = self.geoip_dir.clone();
        let data_root = self.data.root().to_owned();
        let debouncer = {
            let tx = tx.clone();
            let geoip_dir = geoip_dir.clone();
            new_debouncer(
                Duration::from_millis(500),
                None,
                move |result: notify_debouncer_full::DebounceEventResult| {
                    let Ok(events) = result else { return };
                    for event in events {
                        for path in &event.paths {
                            if path.file_name().is_some_and(|n| n == layout::CURRENT) {
                                let _ = tx.send(false);
                            } else if is_mmdb(path)
                                && geoip_dir.as_deref().is_some_and(|g| path.starts_with(g))
                            {
                                let _ = tx.send(true);
                            }
                        }
                    }
                },
            )
        };
        let _debouncer = match debouncer {
            Ok(mut d) => {
                if let Err(e) = d.watch(&data_root, RecursiveMode::NonRecursive) {
                    tracing::warn!(dir = %data_root.display(), error = %e, "cannot watch the data directory; polling only");
                }
                if let Some(dir) = &geoip_dir {
                    if let Err(e) = d.watch(dir, RecursiveMode::NonRecursive) {
                        tracing::warn!(dir = %dir.display(), error = %e, "cannot watch the MaxMind directory; polling only");
                    }
                }
                Some(d)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch files; polling only");
                None
            }
        };
        let mut geo_stamp = geoip_dir.as_deref().map(dir_stamp);
        loop {
            let geo_event = tokio::select! {
                _ = shutdown.cancelled() => return,
                event = rx.recv() => event.unwrap_or(false),
                _ = tokio::time::sleep(poll) => {
                    let stamp = geoip_dir.as_deref().map(dir_stamp);
                    let changed = stamp != geo_stamp;
                    geo_stamp = stamp;
                    changed
                }
            };
            let serving = self.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                let reloaded = serving.reload();
                let geo = if geo_event {
                    serving.reload_geo()
                } else {
                    Ok(())
                };
                (reloaded, geo)
            })
            .await;
            match outcome {
                Ok((Err(e), _)) => {
                    // Logged by `reload`, once per generation and error.
                    tracing::debug!(error = %e, "cannot open the new snapshot; still serving the previous one")
                }
                Ok((_, Err(e))) => {
                    tracing::error!(error = %e, "cannot load the new MaxMind files; still using the previous ones")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "reload crashed; still serving the previous snapshot")
                }
            }
        }
    }
}

fn is_mmdb(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mmdb"))
}

/// Names, sizes and modification times of the `.mmdb` files of a directory.
fn dir_stamp(dir: &Path) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| is_mmdb(&e.path()))
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((e.path(), m.len(), m.modified().ok()))
        })
        .collect();
    out.sort();
    out
}
