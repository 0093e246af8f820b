//! The served snapshot's metrics: whether one is served and its age, generations that
//! failed to open, and the daemon's own upkeep runs (pull, drop, fetch, publish).

use prometheus::{Gauge, IntCounter, IntGauge};

use super::family::{Builder, CounterFamily};
use super::labels::{SyncOutcome, SyncSource};
use super::{names, Metrics, MetricsError};

/// The served snapshot's metrics.
pub(super) struct Upkeep {
    snapshot_age: Gauge,
    snapshot_served: IntGauge,
    sync_runs: CounterFamily<(SyncSource, SyncOutcome)>,
    sync_last_success: Gauge,
    open_failures: IntCounter,
    open_failed: IntGauge,
}

impl Upkeep {
    pub(super) fn new(b: &Builder<'_>) -> Result<Upkeep, MetricsError> {
        Ok(Upkeep {
            snapshot_age: b.gauge(
                names::SNAPSHOT_AGE,
                "Age in seconds of the snapshot generation in use",
            )?,
            snapshot_served: b.int_gauge(
                names::SNAPSHOT_SERVED,
                "1 while a snapshot generation is served, 0 before the first one",
            )?,
            sync_runs: b.counter_family(
                names::SYNC_RUNS,
                "Snapshot upkeep runs of the daemon, by source and outcome",
            )?,
            sync_last_success: b.gauge(
                names::SYNC_LAST_SUCCESS,
                "Unix time of the last successful snapshot upkeep run (0: none yet)",
            )?,
            open_failures: b.counter(
                names::SNAPSHOT_OPEN_FAILURES,
                "Published snapshot generations that failed to open (the previous one stays served)",
            )?,
            open_failed: b.int_gauge(
                names::SNAPSHOT_OPEN_FAILED,
                "1 while the published snapshot generation fails to open, else 0",
            )?,
        })
    }
}

impl Metrics {
    fn upkeep(&self) -> &Upkeep {
        &self.inner.upkeep
    }

    /// The snapshot generation in use is `secs` seconds old.
    pub fn set_snapshot_age(&self, secs: f64) {
        self.upkeep().snapshot_age.set(secs);
    }

    /// Whether a snapshot is served (`snapshot_served`).
    pub fn set_snapshot_served(&self, served: bool) {
        self.upkeep().snapshot_served.set(i64::from(served));
    }

    /// Failures to open a published generation: `total` so far (the counter follows it),
    /// and whether the published one fails now.
    pub fn set_snapshot_open_failures(&self, total: u64, failing: bool) {
        let counter = &self.upkeep().open_failures;
        counter.inc_by(total.saturating_sub(counter.get()));
        self.upkeep().open_failed.set(i64::from(failing));
    }

    /// One upkeep run of `source` ended; `ok` also sets the last success time.
    pub fn sync_run(&self, source: SyncSource, ok: bool) {
        self.upkeep().sync_runs.inc((source, SyncOutcome::of(ok)));
        if ok {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.upkeep().sync_last_success.set(now);
        }
    }
}
