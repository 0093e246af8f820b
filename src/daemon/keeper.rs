//! The daemon keeps its own snapshot, so that a container started with nothing but its
//! environment (IVRE URLs, no data volume) serves from a local snapshot soon after start.
//!
//! - **Pull** (`IVRE_DB_URL*` set): a first pull at start (full when nothing is served
//!   from these sources), then an incremental pull every `IVRE_SYNC_INTERVAL` and a full
//!   one every `IVRE_SYNC_FULL_INTERVAL`: the code of `ivre-sync pull`
//!   ([`crate::refresh::pull_once`]).
//! - **Drop folder** (`IVRE_DROP_DIR`): the code of `ivre-sync watch`, on a blocking
//!   thread.
//! - **Fetch** (`IVRE_SNAPSHOT_SOURCE`, a replica): every `IVRE_SNAPSHOT_POLL`, the
//!   generation another process published is downloaded, verified and installed
//!   ([`crate::distribute::fetch`]); a replica does not pull.
//! - **Publish** (`IVRE_SNAPSHOT_PUBLISH`): each generation this daemon builds is
//!   published to the store ([`crate::distribute::publish()`]) before it opens it.
//!
//! Every generation is built by this process under the data directory's build lock
//! (so a pull and a dropped file, or an `ivre-sync` next to the daemon, take turns) in
//! `generations/<name>.building/`, then published; the daemon's own `Serving` swaps to
//! it. A served generation is never written. A failed run publishes nothing, never stops
//! enrichment, is logged, counted (`sync_runs_total{outcome="error"}`), shown by
//! `/health`, and retried with backoff: 30 s, doubling, at most the run's period.

use super::health::Health;
use crate::distribute::{self, DistributeError, S3Options, Store};
use crate::metrics::SyncSource;
use crate::refresh::{self, Targets};
use crate::snapshot::serving::Serving;
use crate::snapshot::{self, DataDir};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// First retry delay after a failed run.
const FIRST_RETRY: Duration = Duration::from_secs(30);

/// Pulls from live IVRE.
#[derive(Debug, Clone)]
pub struct PullPlan {
    pub targets: Targets,
    /// Incremental pulls (`IVRE_SYNC_INTERVAL`).
    pub interval: Duration,
    /// Full pulls (`IVRE_SYNC_FULL_INTERVAL`).
    pub full_interval: Duration,
}

/// What the daemon does to keep its snapshot.
#[derive(Debug, Default)]
pub struct UpkeepPlan {
    pub pull: Option<PullPlan>,
    /// `IVRE_DROP_DIR`.
    pub drop_dir: Option<PathBuf>,
    /// `IVRE_DROP_READY_MARKER`: dropped files wait for their `.ready` marker.
    pub drop_ready_marker: bool,
    /// `IVRE_SNAPSHOT_SOURCE` and `IVRE_SNAPSHOT_POLL`: a replica fetching the generations
    /// another process publishes (no pulls then).
    pub fetch: Option<(Store, Duration)>,
    /// `IVRE_SNAPSHOT_PUBLISH`: where each generation this daemon builds is published.
    pub publish: Option<Store>,
}

impl UpkeepPlan {
    /// The sources this plan runs (for health and metrics).
    pub fn sources(&self) -> Vec<SyncSource> {
        let mut out = Vec::new();
        if self.pull.is_some() {
            out.push(SyncSource::Pull);
        }
        if self.drop_dir.is_some() {
            out.push(SyncSource::Drop);
        }
        if self.fetch.is_some() {
            out.push(SyncSource::Fetch);
        }
        if self.publish.is_some() {
            out.push(SyncSource::Publish);
        }
        out
    }

    /// The plan of the daemon's settings: pulls when an IVRE scans or passive URL is set
    /// (unless `IVRE_SYNC_INTERVAL` is `off`, or `IVRE_SNAPSHOT_SOURCE` makes this daemon a
    /// replica), the drop folder when `IVRE_DROP_DIR` is set, fetches from
    /// `IVRE_SNAPSHOT_SOURCE`, publishes to `IVRE_SNAPSHOT_PUBLISH`.
    pub fn from_settings(
        settings: &crate::config::daemon::Settings,
    ) -> Result<UpkeepPlan, DistributeError> {
        let sync = &settings.sync;
        let s3 = S3Options::from(&settings.s3);
        let fetch = match &sync.source {
            Some(url) => Some((Store::open(url, &s3)?, sync.poll)),
            None => None,
        };
        let publish = match &sync.publish {
            Some(url) => Some(Store::open(url, &s3)?),
            None => None,
        };
        let interval = sync.interval.filter(|_| fetch.is_none());
        let pull = interval.and_then(|interval| {
            let targets = Targets::new(&settings.fallback, settings.geoip_dir.clone()).ok()?;
            Some(PullPlan {
                targets,
                interval,
                full_interval: sync.full_interval,
            })
        });
        Ok(UpkeepPlan {
            pull,
            drop_dir: sync.drop_dir.clone(),
            drop_ready_marker: sync.drop_ready_marker,
            fetch,
            publish,
        })
    }

    /// Whether the plan can produce a snapshot at all.
    pub fn is_empty(&self) -> bool {
        self.pull.is_none() && self.drop_dir.is_none() && self.fetch.is_none()
    }
}

/// The delay before retrying after `failures` consecutive failures.
pub fn backoff(failures: u32, period: Duration) -> Duration {
    let doubled = FIRST_RETRY.saturating_mul(1 << failures.saturating_sub(1).min(16));
    doubled.min(period)
}

/// Starts the plan's tasks; they stop when `shutdown` is cancelled.
pub fn spawn(
    plan: UpkeepPlan,
    data: DataDir,
    serving: Arc<Serving>,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    let publish = plan.publish.map(Arc::new);
    if let Some(pull) = plan.pull {
        tasks.push(tokio::spawn(pull_loop(
            pull,
            data.clone(),
            serving.clone(),
            health.clone(),
            publish.clone(),
            shutdown.clone(),
        )));
    }
    if let Some((store, poll)) = plan.fetch {
        tasks.push(tokio::spawn(fetch_loop(
            store,
            poll,
            data.clone(),
            serving.clone(),
            health.clone(),
            shutdown.clone(),
        )));
    }
    if let Some(dir) = plan.drop_dir {
        let ready_marker = plan.drop_ready_marker;
        tasks.push(tokio::spawn(drop_loop(
            dir,
            ready_marker,
            data,
            serving,
            health,
            publish,
            shutdown,
        )));
    }
    tasks
}

/// Swaps to the newly published generation now rather than at the next file event.
async fn swap(serving: &Arc<Serving>) {
    let serving = serving.clone();
    match tokio::task::spawn_blocking(move || serving.reload()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            // Logged, counted and shown by health in `reload`.
            tracing::debug!(error = %e, "cannot open the new snapshot; still serving the previous one")
        }
        Err(e) => tracing::error!(error = %e, "opening the new snapshot crashed"),
    }
}

/// Publishes the generation just built to the store, before this process opens it.
async fn publish_built(data: &DataDir, store: &Store, health: &Health) {
    health.run_started(SyncSource::Publish);
    let outcome = match distribute::publish(data, store).await {
        Ok(p) => Ok(format!("{} in {}", p.generation, store.shown())),
        Err(e) => {
            tracing::error!(store = %store.shown(), error = %e, "daemon: publishing the snapshot failed; it stays served here");
            Err(e.to_string())
        }
    };
    health.run_ended(SyncSource::Publish, outcome, None);
}

/// Fetches the generations another process publishes, every `poll`.
async fn fetch_loop(
    store: Store,
    poll: Duration,
    data: DataDir,
    serving: Arc<Serving>,
    health: Arc<Health>,
    shutdown: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        health.run_started(SyncSource::Fetch);
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return,
            outcome = distribute::fetch(&data, &store) => outcome,
        };
        let next = match outcome {
            Ok(installed) => {
                failures = 0;
                let message = match installed {
                    Some(generation) => {
                        tracing::info!(%generation, store = %store.shown(), "daemon: fetched a new snapshot");
                        swap(&serving).await;
                        format!("installed {generation} from {}", store.shown())
                    }
                    None => format!("up to date with {}", store.shown()),
                };
                health.run_ended(SyncSource::Fetch, Ok(message), Some(poll));
                poll
            }
            Err(e) => {
                failures += 1;
                let retry = backoff(failures, poll.max(FIRST_RETRY));
                tracing::error!(store = %store.shown(), error = %e, retry_in_s = retry.as_secs(), "daemon: fetching the snapshot failed; the served one stays");
                health.run_ended(SyncSource::Fetch, Err(e.to_string()), Some(retry));
                retry
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(next) => {}
        }
    }
}

/// When the served snapshot was last fully pulled from these targets, if it was.
fn last_full_pull(data: &DataDir, targets: &Targets) -> Option<Instant> {
    let (_, _, manifest) = snapshot::open::current_manifest(data).ok()?;
    let same = manifest.source.kind == crate::snapshot::manifest::SOURCE_PULL
        && manifest.source.url.as_deref() == Some(targets.label());
    if !same {
        return None;
    }
    if manifest.source.mode.as_deref() != Some("full") {
        // Incremental on top of an earlier full pull: count from now.
        return Some(Instant::now());
    }
    let built = chrono::DateTime::parse_from_rfc3339(&manifest.built_at).ok()?;
    let age = (chrono::Utc::now() - built.with_timezone(&chrono::Utc))
        .to_std()
        .unwrap_or_default();
    Instant::now().checked_sub(age)
}

async fn pull_loop(
    plan: PullPlan,
    data: DataDir,
    serving: Arc<Serving>,
    health: Arc<Health>,
    publish: Option<Arc<Store>>,
    shutdown: CancellationToken,
) {
    let mut last_full = last_full_pull(&data, &plan.targets);
    let mut failures = 0u32;
    loop {
        let full = last_full.is_none_or(|t| t.elapsed() >= plan.full_interval);
        tracing::info!(sources = %plan.targets.label(), full, "daemon: pulling from live IVRE");
        health.run_started(SyncSource::Pull);
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return,
            outcome = refresh::pull_once(&data, &plan.targets, full, None) => outcome,
        };
        let next = match outcome {
            Ok(report) => {
                failures = 0;
                if full {
                    last_full = Some(Instant::now());
                }
                let m = &report.manifest;
                tracing::info!(generation = %m.generation, mode = m.source.mode.as_deref().unwrap_or(""), records = m.total_records(), rejected = m.rejected, "daemon: pulled snapshot published");
                if let Some(store) = &publish {
                    publish_built(&data, store, &health).await;
                }
                swap(&serving).await;
                health.run_ended(
                    SyncSource::Pull,
                    Ok(format!(
                        "published {} ({})",
                        m.generation,
                        m.source.mode.as_deref().unwrap_or("full")
                    )),
                    Some(plan.interval),
                );
                plan.interval
            }
            Err(e) => {
                failures += 1;
                let retry = backoff(failures, plan.interval);
                tracing::error!(
                    error = crate::logging::chain(&e),
                    retry_in_s = retry.as_secs(),
                    failures,
                    "daemon: pull failed; nothing published, enrichment goes on"
                );
                health.run_ended(
                    SyncSource::Pull,
                    Err(crate::logging::chain(&e)),
                    Some(retry),
                );
                retry
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(next) => {}
        }
    }
}

async fn drop_loop(
    dir: PathBuf,
    ready_marker: bool,
    data: DataDir,
    serving: Arc<Serving>,
    health: Arc<Health>,
    publish: Option<Arc<Store>>,
    shutdown: CancellationToken,
) {
    let mut failures = 0u32;
    let handle = tokio::runtime::Handle::current();
    loop {
        let (d, dd, h, s, stop, rt, store) = (
            data.clone(),
            dir.clone(),
            health.clone(),
            serving.clone(),
            shutdown.clone(),
            handle.clone(),
            publish.clone(),
        );
        // Returns when stopped, or when the folder cannot be watched.
        let result = tokio::task::spawn_blocking(move || {
            refresh::watch::watch(&d, &dd, ready_marker, &stop, None, |path, outcome| {
                h.run_started(SyncSource::Drop);
                let name = path.display();
                let outcome = match outcome {
                    Ok(generation) => {
                        if let Some(store) = &store {
                            rt.block_on(publish_built(&d, store, &h));
                        }
                        rt.block_on(swap(&s));
                        Ok(format!("{name}: published {generation}"))
                    }
                    Err(e) => Err(format!("{name}: {}", crate::logging::chain(e))),
                };
                h.run_ended(SyncSource::Drop, outcome, None);
            })
        })
        .await;
        if shutdown.is_cancelled() {
            return;
        }
        failures += 1;
        let retry = backoff(failures, Duration::from_secs(600));
        let error = match result {
            Ok(Ok(())) => "the drop folder watcher stopped".to_owned(),
            Ok(Err(e)) => crate::logging::chain(&e),
            Err(e) => format!("the drop folder watcher crashed: {e}"),
        };
        tracing::error!(dir = %dir.display(), error = %error, retry_in_s = retry.as_secs(), "daemon: cannot watch the drop folder");
        health.run_ended(SyncSource::Drop, Err(error), Some(retry));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(retry) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_period() {
        let hour = Duration::from_secs(3600);
        assert_eq!(backoff(1, hour), Duration::from_secs(30));
        assert_eq!(backoff(2, hour), Duration::from_secs(60));
        assert_eq!(backoff(5, hour), Duration::from_secs(480));
        assert_eq!(backoff(8, hour), hour);
        assert_eq!(backoff(60, hour), hour);
        assert_eq!(backoff(3, Duration::from_secs(45)), Duration::from_secs(45));
    }
}
