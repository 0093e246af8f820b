//! Prometheus metrics: every metric name of the connector is in this file (see
//! `docs/metrics.md`).
//!
//! - pycti's (`docs/opencti-protocol.md` §12.2): the counters `bundles_sent_total`, `records_sent_total`,
//!   `runs_total`, `ping_api_total`, `ping_api_errors_total`, `errors_total`,
//!   `client_errors_total`; the enum `state` ∈ {idle, running, stopped}, rendered as
//!   `prometheus_client` renders an `Enum`: a gauge whose label has the metric's own full name,
//!   `state{state="idle"} 1`, `state{state="running"} 0`, …; the info `identity_info`.
//! - ours: `enrichment_duration_seconds` (histogram), `lookups_total{outcome}`,
//!   `fallback_breaker_open`, `snapshot_age_seconds`, `messages_total{result}`, and the
//!   daemon's own snapshot upkeep: `snapshot_served`, `sync_runs_total{source,outcome}`,
//!   `sync_last_success_timestamp_seconds`.
//!
//! Names get the prefix `<namespace>_<subsystem>_` (`CONNECTOR_METRICS_NAMESPACE`,
//! `CONNECTOR_METRICS_SUBSYSTEM`; an empty part is left out), as `prometheus_client` does.
//!
//! Labels only take values from the enums below (plus the connector's own configuration in
//! `identity_info`): never an observable value, so cardinality stays bounded and no
//! TLP-marked data ends up in a metric.

use crate::config::table;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State as AxumState;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The metric names, before the namespace/subsystem prefix.
pub mod names {
    /// Counter: bundles sent (pycti).
    pub const BUNDLES_SENT: &str = "bundles_sent_total";
    /// Counter: records (objects, or split pieces) sent (pycti).
    pub const RECORDS_SENT: &str = "records_sent_total";
    /// Counter: runs (pycti).
    pub const RUNS: &str = "runs_total";
    /// Counter: successful `pingConnector` calls (pycti).
    pub const PING_API: &str = "ping_api_total";
    /// Counter: failed `pingConnector` calls (pycti).
    pub const PING_API_ERRORS: &str = "ping_api_errors_total";
    /// Counter: errors (pycti).
    pub const ERRORS: &str = "errors_total";
    /// Counter: client errors (pycti).
    pub const CLIENT_ERRORS: &str = "client_errors_total";
    /// Enum (gauge per state): the connector's state (pycti).
    pub const STATE: &str = "state";
    /// Info (gauge at 1): the connector's identity (pycti).
    pub const IDENTITY: &str = "identity_info";
    /// Histogram: time to enrich one observable.
    pub const ENRICHMENT_DURATION: &str = "enrichment_duration_seconds";
    /// Counter by `outcome`: snapshot lookups.
    pub const LOOKUPS: &str = "lookups_total";
    /// Gauge: 1 while the fallback circuit breaker is open.
    pub const FALLBACK_BREAKER_OPEN: &str = "fallback_breaker_open";
    /// Gauge: age of the snapshot generation in use.
    pub const SNAPSHOT_AGE: &str = "snapshot_age_seconds";
    /// Counter by `result`: platform messages handled.
    pub const MESSAGES: &str = "messages_total";
    /// Gauge: 1 while a snapshot generation is served, 0 before the first one.
    pub const SNAPSHOT_SERVED: &str = "snapshot_served";
    /// Counter by `source` and `outcome`: the daemon's own snapshot upkeep runs.
    pub const SYNC_RUNS: &str = "sync_runs_total";
    /// Gauge: Unix time of the last successful upkeep run (0: none yet).
    pub const SYNC_LAST_SUCCESS: &str = "sync_last_success_timestamp_seconds";
    /// Counter: published generations that failed to open (each generation and error
    /// once); the previous generation stays served.
    pub const SNAPSHOT_OPEN_FAILURES: &str = "snapshot_open_failures_total";
    /// Gauge: 1 while `CURRENT` names a generation that fails to open.
    pub const SNAPSHOT_OPEN_FAILED: &str = "snapshot_open_failed";
    /// Counter: IVRE record values skipped while building bundles (not valid domain
    /// names, MAC addresses or certificate fields).
    pub const SKIPPED_VALUES: &str = "skipped_values_total";

    /// Every name above.
    pub const ALL: [&str; 20] = [
        BUNDLES_SENT,
        RECORDS_SENT,
        RUNS,
        PING_API,
        PING_API_ERRORS,
        ERRORS,
        CLIENT_ERRORS,
        STATE,
        IDENTITY,
        ENRICHMENT_DURATION,
        LOOKUPS,
        FALLBACK_BREAKER_OPEN,
        SNAPSHOT_AGE,
        MESSAGES,
        SNAPSHOT_SERVED,
        SYNC_RUNS,
        SYNC_LAST_SUCCESS,
        SNAPSHOT_OPEN_FAILURES,
        SNAPSHOT_OPEN_FAILED,
        SKIPPED_VALUES,
    ];
}

/// Buckets of `enrichment_duration_seconds`: 10 µs to 10 s, 1-2.5-5 per decade.
pub const ENRICHMENT_BUCKETS: [f64; 19] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// pycti's connector states (the `state` enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Waiting for work (the initial state).
    Idle,
    /// Processing.
    Running,
    /// Shut down.
    Stopped,
}

impl State {
    /// Every state, in pycti's order.
    pub const ALL: [State; 3] = [State::Idle, State::Running, State::Stopped];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Running => "running",
            State::Stopped => "stopped",
        }
    }
}

/// How a snapshot lookup was answered (`lookups_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LookupOutcome {
    /// The snapshot had data for the observable.
    Hit,
    /// The snapshot had nothing.
    Miss,
    /// Answered by the fallback (live IVRE) instead of the snapshot.
    Fallback,
}

impl LookupOutcome {
    /// Every outcome.
    pub const ALL: [LookupOutcome; 3] = [
        LookupOutcome::Hit,
        LookupOutcome::Miss,
        LookupOutcome::Fallback,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            LookupOutcome::Hit => "hit",
            LookupOutcome::Miss => "miss",
            LookupOutcome::Fallback => "fallback",
        }
    }
}

/// How a platform message ended (`messages_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageResult {
    /// Processed, results pushed.
    Ok,
    /// Processing failed (reported to the work).
    Error,
    /// Not a valid message (not JSON, missing fields).
    Invalid,
    /// A redelivered message that failed again, reported and dropped.
    Redelivered,
    /// The entity type is not in the connector's scope.
    OutOfScope,
    /// The entity's TLP is above the configured maximum.
    TlpRefused,
}

impl MessageResult {
    /// Every result.
    pub const ALL: [MessageResult; 6] = [
        MessageResult::Ok,
        MessageResult::Error,
        MessageResult::Invalid,
        MessageResult::Redelivered,
        MessageResult::OutOfScope,
        MessageResult::TlpRefused,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageResult::Ok => "ok",
            MessageResult::Error => "error",
            MessageResult::Invalid => "invalid",
            MessageResult::Redelivered => "redelivered",
            MessageResult::OutOfScope => "out_of_scope",
            MessageResult::TlpRefused => "tlp_refused",
        }
    }
}

/// What the daemon ran to keep its snapshot (`sync_runs_total{source}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncSource {
    /// A pull from live IVRE (`IVRE_DB_URL*`).
    Pull,
    /// A file of the drop folder (`IVRE_DROP_DIR`).
    Drop,
    /// A generation fetched from a publisher (`IVRE_SNAPSHOT_SOURCE`).
    Fetch,
    /// A generation published to a store (`IVRE_SNAPSHOT_PUBLISH`).
    Publish,
}

impl SyncSource {
    /// Every source.
    pub const ALL: [SyncSource; 4] = [
        SyncSource::Pull,
        SyncSource::Drop,
        SyncSource::Fetch,
        SyncSource::Publish,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncSource::Pull => "pull",
            SyncSource::Drop => "drop",
            SyncSource::Fetch => "fetch",
            SyncSource::Publish => "publish",
        }
    }
}

/// Why the metrics could not be created.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The namespace or subsystem is not `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[error("invalid metrics {which} `{value}` ({var}): expected letters, digits and `_`, not starting with a digit")]
    InvalidPrefix {
        /// `namespace` or `subsystem`.
        which: &'static str,
        /// The environment variable it comes from.
        var: &'static str,
        /// The value as given.
        value: String,
    },
    /// The Prometheus library refused a metric.
    #[error("cannot create metric")]
    Prometheus(#[from] prometheus::Error),
}

/// The connector's metrics, in their own registry. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

struct Inner {
    registry: Registry,
    bundles_sent: IntCounter,
    records_sent: IntCounter,
    runs: IntCounter,
    ping_api: IntCounter,
    ping_api_errors: IntCounter,
    errors: IntCounter,
    client_errors: IntCounter,
    /// One gauge per [`State::ALL`] entry.
    state: [IntGauge; 3],
    /// Serialises [`Metrics::set_state`].
    state_lock: Mutex<()>,
    identity: IntGaugeVec,
    enrichment_duration: Histogram,
    /// One counter per [`LookupOutcome::ALL`] entry.
    lookups: [IntCounter; 3],
    breaker_open: IntGauge,
    snapshot_age: Gauge,
    /// One counter per [`MessageResult::ALL`] entry.
    messages: [IntCounter; 6],
    snapshot_served: IntGauge,
    /// Every `source` × `outcome` series created at zero.
    sync_runs: IntCounterVec,
    sync_last_success: Gauge,
    snapshot_open_failures: IntCounter,
    snapshot_open_failed: IntGauge,
    skipped_values: IntCounter,
}

/// Checks a namespace or subsystem.
fn check_prefix(which: &'static str, var: &'static str, value: &str) -> Result<(), MetricsError> {
    let mut chars = value.chars();
    let ok = match chars.next() {
        None => true,
        Some(first) => {
            (first.is_ascii_alphabetic() || first == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
    };
    if ok {
        Ok(())
    } else {
        Err(MetricsError::InvalidPrefix {
            which,
            var,
            value: value.to_owned(),
        })
    }
}

/// Registers `collector` in `registry` and gives it back.
fn register<C>(registry: &Registry, collector: C) -> Result<C, MetricsError>
where
    C: prometheus::core::Collector + Clone + 'static,
{
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

impl Metrics {
    /// Creates the metrics, named `<namespace>_<subsystem>_<name>` (`""` parts left out), with
    /// every labelled series present at zero and `state` at `idle`.
    ///
    /// Deviation from an infallible constructor: the namespace and subsystem come from the
    /// configuration, so they are checked here (`[a-zA-Z_][a-zA-Z0-9_]*`).
    pub fn new(namespace: &str, subsystem: &str) -> Result<Metrics, MetricsError> {
        check_prefix(
            "namespace",
            table::CONNECTOR_METRICS_NAMESPACE.env,
            namespace,
        )?;
        check_prefix(
            "subsystem",
            table::CONNECTOR_METRICS_SUBSYSTEM.env,
            subsystem,
        )?;
        let opts = |name: &str, help: &str| {
            Opts::new(name, help)
                .namespace(namespace)
                .subsystem(subsystem)
        };
        let registry = Registry::new();
        let counter = |name: &str, help: &str| -> Result<IntCounter, MetricsError> {
            register(&registry, IntCounter::with_opts(opts(name, help))?)
        };

        let bundles_sent = counter(names::BUNDLES_SENT, "Number of bundles sent")?;
        let records_sent = counter(
            names::RECORDS_SENT,
            "Number of records (objects per bundle) sent",
        )?;
        let runs = counter(names::RUNS, "Number of runs")?;
        let ping_api = counter(names::PING_API, "Number of pings to the API")?;
        let ping_api_errors = counter(
            names::PING_API_ERRORS,
            "Number of errors when pinging the API",
        )?;
        let errors = counter(names::ERRORS, "Number of errors")?;
        let client_errors = counter(names::CLIENT_ERRORS, "Number of client errors")?;

        // prometheus_client's Enum: the label is named after the metric's full name.
        let state_opts = opts(names::STATE, "State of connector");
        let state_label = state_opts.fq_name();
        let state_vec = register(
            &registry,
            IntGaugeVec::new(state_opts, &[state_label.as_str()])?,
        )?;
        let state = [
            state_vec.get_metric_with_label_values(&[State::Idle.as_str()])?,
            state_vec.get_metric_with_label_values(&[State::Running.as_str()])?,
            state_vec.get_metric_with_label_values(&[State::Stopped.as_str()])?,
        ];
        state[0].set(1);

        let identity = register(
            &registry,
            IntGaugeVec::new(
                opts(
                    names::IDENTITY,
                    "Identity and configuration of the connector",
                ),
                &["id", "name", "type", "scope"],
            )?,
        )?;

        let enrichment_duration = register(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    names::ENRICHMENT_DURATION,
                    "Time to enrich one observable, from message to bundle",
                )
                .namespace(namespace)
                .subsystem(subsystem)
                .buckets(ENRICHMENT_BUCKETS.to_vec()),
            )?,
        )?;

        let lookups_vec = register(
            &registry,
            IntCounterVec::new(
                opts(
                    names::LOOKUPS,
                    "Observable lookups, by how they were answered",
                ),
                &["outcome"],
            )?,
        )?;
        let lookups = [
            lookups_vec.get_metric_with_label_values(&[LookupOutcome::Hit.as_str()])?,
            lookups_vec.get_metric_with_label_values(&[LookupOutcome::Miss.as_str()])?,
            lookups_vec.get_metric_with_label_values(&[LookupOutcome::Fallback.as_str()])?,
        ];

        let breaker_open = register(
            &registry,
            IntGauge::with_opts(opts(
                names::FALLBACK_BREAKER_OPEN,
                "1 while the circuit breaker of the live IVRE fallback is open, else 0",
            ))?,
        )?;
        let snapshot_age = register(
            &registry,
            Gauge::with_opts(opts(
                names::SNAPSHOT_AGE,
                "Age in seconds of the snapshot generation in use",
            ))?,
        )?;

        let messages_vec = register(
            &registry,
            IntCounterVec::new(
                opts(names::MESSAGES, "Platform messages handled, by result"),
                &["result"],
            )?,
        )?;
        let messages = [
            messages_vec.get_metric_with_label_values(&[MessageResult::Ok.as_str()])?,
            messages_vec.get_metric_with_label_values(&[MessageResult::Error.as_str()])?,
            messages_vec.get_metric_with_label_values(&[MessageResult::Invalid.as_str()])?,
            messages_vec.get_metric_with_label_values(&[MessageResult::Redelivered.as_str()])?,
            messages_vec.get_metric_with_label_values(&[MessageResult::OutOfScope.as_str()])?,
            messages_vec.get_metric_with_label_values(&[MessageResult::TlpRefused.as_str()])?,
        ];

        let snapshot_served = register(
            &registry,
            IntGauge::with_opts(opts(
                names::SNAPSHOT_SERVED,
                "1 while a snapshot generation is served, 0 before the first one",
            ))?,
        )?;
        let sync_runs = register(
            &registry,
            IntCounterVec::new(
                opts(
                    names::SYNC_RUNS,
                    "Snapshot upkeep runs of the daemon, by source and outcome",
                ),
                &["source", "outcome"],
            )?,
        )?;
        for source in SyncSource::ALL {
            for outcome in ["ok", "error"] {
                sync_runs.get_metric_with_label_values(&[source.as_str(), outcome])?;
            }
        }
        let sync_last_success = register(
            &registry,
            Gauge::with_opts(opts(
                names::SYNC_LAST_SUCCESS,
                "Unix time of the last successful snapshot upkeep run (0: none yet)",
            ))?,
        )?;

        let snapshot_open_failures = register(
            &registry,
            IntCounter::with_opts(opts(
                names::SNAPSHOT_OPEN_FAILURES,
                "Published snapshot generations that failed to open (the previous one stays served)",
            ))?,
        )?;
        let snapshot_open_failed = register(
            &registry,
            IntGauge::with_opts(opts(
                names::SNAPSHOT_OPEN_FAILED,
                "1 while the published snapshot generation fails to open, else 0",
            ))?,
        )?;

        let skipped_values = counter(
            names::SKIPPED_VALUES,
            "IVRE record values skipped while building bundles (not valid names or fields)",
        )?;

        Ok(Metrics {
            inner: Arc::new(Inner {
                registry,
                bundles_sent,
                records_sent,
                runs,
                ping_api,
                ping_api_errors,
                errors,
                client_errors,
                state,
                state_lock: Mutex::new(()),
                identity,
                enrichment_duration,
                lookups,
                breaker_open,
                snapshot_age,
                messages,
                snapshot_served,
                sync_runs,
                sync_last_success,
                snapshot_open_failures,
                snapshot_open_failed,
                skipped_values,
            }),
        })
    }

    /// Failures to open a published generation: `total` so far (the counter follows it),
    /// and whether the published one fails now.
    pub fn set_snapshot_open_failures(&self, total: u64, failing: bool) {
        let counter = &self.inner.snapshot_open_failures;
        counter.inc_by(total.saturating_sub(counter.get()));
        self.inner.snapshot_open_failed.set(i64::from(failing));
    }

    /// Whether a snapshot is served (`snapshot_served`).
    pub fn set_snapshot_served(&self, served: bool) {
        self.inner.snapshot_served.set(i64::from(served));
    }

    /// One upkeep run of `source` ended; `ok` also sets the last success time.
    pub fn sync_run(&self, source: SyncSource, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        if let Ok(counter) = self
            .inner
            .sync_runs
            .get_metric_with_label_values(&[source.as_str(), outcome])
        {
            counter.inc();
        }
        if ok {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.inner.sync_last_success.set(now);
        }
    }

    /// One bundle sent, made of `records` records (pycti's `bundle_send` + `record_send`).
    pub fn bundle_sent(&self, records: u64) {
        self.inner.bundles_sent.inc();
        self.inner.records_sent.inc_by(records);
    }

    /// Record values skipped while building one bundle.
    pub fn skipped_values(&self, count: u64) {
        self.inner.skipped_values.inc_by(count);
    }

    /// One run (pycti's `run_count`).
    pub fn run(&self) {
        self.inner.runs.inc();
    }

    /// One `pingConnector`: `ping_api_total` if it succeeded, else `ping_api_errors_total`
    /// (as pycti counts them).
    pub fn ping(&self, ok: bool) {
        if ok {
            self.inner.ping_api.inc();
        } else {
            self.inner.ping_api_errors.inc();
        }
    }

    /// One error (pycti's `error_count`).
    pub fn error(&self) {
        self.inner.errors.inc();
    }

    /// One client error (pycti's `client_error_count`).
    pub fn client_error(&self) {
        self.inner.client_errors.inc();
    }

    /// Sets the `state` enum: the gauge of `s` at 1, the others at 0.
    pub fn set_state(&self, s: State) {
        let _serialised = self
            .inner
            .state_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (state, gauge) in State::ALL.iter().zip(&self.inner.state) {
            gauge.set(i64::from(*state == s));
        }
    }

    /// Sets `identity_info{id,name,type,scope} 1` (pycti's `set_info`), replacing any
    /// previous identity. These are configuration values, one series.
    pub fn set_identity(&self, id: &str, name: &str, connector_type: &str, scope: &str) {
        self.inner.identity.reset();
        match self
            .inner
            .identity
            .get_metric_with_label_values(&[id, name, connector_type, scope])
        {
            Ok(gauge) => gauge.set(1),
            Err(error) => tracing::error!(%error, "cannot set the identity metric"),
        }
    }

    /// One enrichment took `d`.
    pub fn observe_enrichment(&self, d: Duration) {
        self.inner.enrichment_duration.observe(d.as_secs_f64());
    }

    /// One lookup answered with `outcome`.
    pub fn lookup(&self, outcome: LookupOutcome) {
        let index = match outcome {
            LookupOutcome::Hit => 0,
            LookupOutcome::Miss => 1,
            LookupOutcome::Fallback => 2,
        };
        self.inner.lookups[index].inc();
    }

    /// The fallback circuit breaker opened (`true`) or closed.
    pub fn set_breaker_open(&self, open: bool) {
        self.inner.breaker_open.set(i64::from(open));
    }

    /// The snapshot generation in use is `secs` seconds old.
    pub fn set_snapshot_age(&self, secs: f64) {
        self.inner.snapshot_age.set(secs);
    }

    /// One platform message ended with `result`.
    pub fn message(&self, result: MessageResult) {
        let index = match result {
            MessageResult::Ok => 0,
            MessageResult::Error => 1,
            MessageResult::Invalid => 2,
            MessageResult::Redelivered => 3,
            MessageResult::OutOfScope => 4,
            MessageResult::TlpRefused => 5,
        };
        self.inner.messages[index].inc();
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        match TextEncoder::new().encode_to_string(&self.inner.registry.gather()) {
            Ok(text) => text,
            Err(error) => {
                tracing::error!(%error, "cannot render the metrics");
                String::new()
            }
        }
    }
}

/// Binds the metrics socket (port `0` picks a free one).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `GET /metrics` (and `GET /`) on `bind` until `shutdown` is cancelled
/// (`CONNECTOR_EXPOSE_METRICS`, `CONNECTOR_METRICS_PORT`; pycti binds all interfaces).
pub async fn serve(
    bind: SocketAddr,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_on(self::bind(bind).await?, metrics, shutdown).await
}

/// [`serve`] on an already bound listener.
pub async fn serve_on(
    listener: TcpListener,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "metrics server listening");
    let app = Router::new()
        .route("/metrics", get(exposition))
        .route("/", get(exposition))
        .with_state(metrics);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    tracing::info!(%addr, "metrics server stopped");
    result
}

async fn exposition(AxumState(metrics): AxumState<Metrics>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
        metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn names_without_prefix() {
        let m = Metrics::new("", "").unwrap();
        let text = m.render();
        for line in [
            "# TYPE bundles_sent_total counter",
            "bundles_sent_total 0",
            "records_sent_total 0",
            "runs_total 0",
            "ping_api_total 0",
            "ping_api_errors_total 0",
            "errors_total 0",
            "client_errors_total 0",
            "# TYPE state gauge",
            "state{state=\"idle\"} 1",
            "state{state=\"running\"} 0",
            "state{state=\"stopped\"} 0",
            "# TYPE enrichment_duration_seconds histogram",
            "enrichment_duration_seconds_bucket{le=\"0.00001\"} 0",
            "enrichment_duration_seconds_bucket{le=\"10\"} 0",
            "enrichment_duration_seconds_bucket{le=\"+Inf\"} 0",
            "enrichment_duration_seconds_count 0",
            "lookups_total{outcome=\"hit\"} 0",
            "lookups_total{outcome=\"miss\"} 0",
            "lookups_total{outcome=\"fallback\"} 0",
            "fallback_breaker_open 0",
            "snapshot_age_seconds 0",
            "messages_total{result=\"ok\"} 0",
            "messages_total{result=\"error\"} 0",
            "messages_total{result=\"invalid\"} 0",
            "messages_total{result=\"redelivered\"} 0",
            "messages_total{result=\"out_of_scope\"} 0",
            "messages_total{result=\"tlp_refused\"} 0",
        ] {
            assert!(has_line(&text, line), "missing {line:?} in\n{text}");
        }
        // No identity until it is set.
        assert!(!text.contains("identity_info{"), "{text}");
    }

    #[test]
    fn names_with_prefix() {
        let text = Metrics::new("opencti", "connector").unwrap().render();
        assert!(
            has_line(&text, "opencti_connector_bundles_sent_total 0"),
            "{text}"
        );
        assert!(
            has_line(
                &text,
                "opencti_connector_state{opencti_connector_state=\"idle\"} 1"
            ),
            "{text}"
        );
        assert!(
            has_line(&text, "opencti_connector_lookups_total{outcome=\"hit\"} 0"),
            "{text}"
        );
        let text = Metrics::new("ns", "").unwrap().render();
        assert!(has_line(&text, "ns_runs_total 0"), "{text}");
        assert!(has_line(&text, "ns_state{ns_state=\"idle\"} 1"), "{text}");
        let text = Metrics::new("", "sub").unwrap().render();
        assert!(has_line(&text, "sub_runs_total 0"), "{text}");
        assert!(has_line(&text, "sub_snapshot_age_seconds 0"), "{text}");
        for (ns, sub) in [("my-ns", ""), ("", "1sub"), ("a:b", ""), ("é", "")] {
            let err = Metrics::new(ns, sub).unwrap_err();
            assert!(matches!(err, MetricsError::InvalidPrefix { .. }), "{err}");
            assert!(err.to_string().contains("CONNECTOR_METRICS_"), "{err}");
        }
    }

    #[test]
    fn updates() {
        let m = Metrics::new("", "").unwrap();
        let clone = m.clone();
        m.bundle_sent(3);
        clone.bundle_sent(2);
        m.run();
        m.ping(true);
        m.ping(true);
        m.ping(false);
        m.error();
        m.client_error();
        m.set_state(State::Running);
        m.observe_enrichment(Duration::from_micros(20));
        m.observe_enrichment(Duration::from_secs(20));
        m.lookup(LookupOutcome::Hit);
        m.lookup(LookupOutcome::Fallback);
        m.lookup(LookupOutcome::Fallback);
        m.set_breaker_open(true);
        m.set_snapshot_age(3600.5);
        for r in MessageResult::ALL {
            m.message(r);
        }
        m.message(MessageResult::TlpRefused);
        m.set_identity("c1", "IVRE", "INTERNAL_ENRICHMENT", "ipv4-addr,ipv6-addr");
        m.set_identity("c2", "IVRE", "INTERNAL_ENRICHMENT", "ipv4-addr");
        let text = m.render();
        for line in [
            "bundles_sent_total 2",
            "records_sent_total 5",
            "runs_total 1",
            "ping_api_total 2",
            "ping_api_errors_total 1",
            "errors_total 1",
            "client_errors_total 1",
            "state{state=\"idle\"} 0",
            "state{state=\"running\"} 1",
            "state{state=\"stopped\"} 0",
            "enrichment_duration_seconds_bucket{le=\"0.00001\"} 0",
            "enrichment_duration_seconds_bucket{le=\"0.000025\"} 1",
            "enrichment_duration_seconds_bucket{le=\"10\"} 1",
            "enrichment_duration_seconds_bucket{le=\"+Inf\"} 2",
            "enrichment_duration_seconds_count 2",
            "lookups_total{outcome=\"hit\"} 1",
            "lookups_total{outcome=\"miss\"} 0",
            "lookups_total{outcome=\"fallback\"} 2",
            "fallback_breaker_open 1",
            "snapshot_age_seconds 3600.5",
            "messages_total{result=\"ok\"} 1",
            "messages_total{result=\"tlp_refused\"} 2",
            "identity_info{id=\"c2\",name=\"IVRE\",scope=\"ipv4-addr\",type=\"INTERNAL_ENRICHMENT\"} 1",
        ] {
            assert!(has_line(&text, line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("id=\"c1\""), "{text}");
        m.set_state(State::Stopped);
        m.set_breaker_open(false);
        let text = m.render();
        assert!(has_line(&text, "state{state=\"stopped\"} 1"));
        assert!(has_line(&text, "state{state=\"running\"} 0"));
        assert!(has_line(&text, "fallback_breaker_open 0"));
    }

    #[test]
    fn docs_list_every_metric() {
        let doc = include_str!("../docs/metrics.md");
        for name in names::ALL {
            assert!(
                doc.contains(&format!("`{name}`")),
                "docs/metrics.md does not document `{name}`"
            );
        }
        for label in MessageResult::ALL
            .map(MessageResult::as_str)
            .into_iter()
            .chain(LookupOutcome::ALL.map(LookupOutcome::as_str))
            .chain(State::ALL.map(State::as_str))
        {
            assert!(
                doc.contains(&format!("`{label}`")),
                "docs/metrics.md does not list `{label}`"
            );
        }
    }

    #[tokio::test]
    async fn serves_over_http() {
        let m = Metrics::new("ivre", "").unwrap();
        m.run();
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve_on(listener, m.clone(), shutdown.clone()));
        let client = reqwest::Client::new();
        for path in ["/metrics", "/"] {
            let response = client.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(response.status().as_u16(), 200);
            assert_eq!(
                response.headers()["content-type"].to_str().unwrap(),
                "text/plain; version=0.0.4"
            );
            let text = response.text().await.unwrap();
            assert!(has_line(&text, "ivre_runs_total 1"), "{text}");
        }
        let missing = client.get(format!("{base}/nope")).send().await.unwrap();
        assert_eq!(missing.status().as_u16(), 404);
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(client.get(format!("{base}/metrics")).send().await.is_err());
    }
}
