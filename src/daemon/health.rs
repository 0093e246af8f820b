//! What the daemon knows of its own health: `GET /health` (liveness), `GET /ready`
//! (readiness) and, when asked, `GET /metrics`, on `CONNECTOR_METRICS_PORT` in every
//! listen mode; `ivre-connector health` asks `/ready` for a container `HEALTHCHECK`.
//!
//! Ready means: registered with the platform, and able to answer, i.e. a snapshot is
//! served, or none yet but the live IVRE fallback answered its last probe. Both routes
//! answer the same JSON document (status, platform, snapshot and its age, fallback,
//! the last run of each snapshot upkeep source); `/health` answers 200 as long as the
//! process serves HTTP, `/ready` 200 or 503.

use crate::live::fallback::Fallback;
use crate::metrics::{Metrics, SyncSource};
use crate::snapshot::serving::Serving;
use axum::extract::State as AxumState;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How often live IVRE is probed while no snapshot is served.
const PROBE_PERIOD: Duration = Duration::from_secs(10);

/// The last run of one upkeep source.
#[derive(Debug, Clone, Default)]
struct RunStatus {
    /// RFC 3339 time the last run ended.
    at: Option<String>,
    ok: Option<bool>,
    /// The generation published, or why the run failed.
    message: String,
    consecutive_failures: u32,
    last_success: Option<String>,
    next_attempt: Option<String>,
    running: bool,
}

/// The daemon's health, shared by its tasks and the health server.
pub struct Health {
    serving: Arc<Serving>,
    fallback: Option<Arc<Fallback>>,
    metrics: Metrics,
    registered: AtomicBool,
    runs: Mutex<BTreeMap<&'static str, RunStatus>>,
    /// The last fallback probe: when, and its error if it failed.
    probe: Mutex<Option<(String, Option<String>)>>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Health {
    /// `sources`: the upkeep sources configured (listed even before their first run).
    pub fn new(
        serving: Arc<Serving>,
        fallback: Option<Arc<Fallback>>,
        metrics: Metrics,
        sources: &[SyncSource],
    ) -> Health {
        let runs = sources
            .iter()
            .map(|s| (s.as_str(), RunStatus::default()))
            .collect();
        Health {
            serving,
            fallback: fallback.filter(|f| f.enabled()),
            metrics,
            registered: AtomicBool::new(false),
            runs: Mutex::new(runs),
            probe: Mutex::new(None),
        }
    }

    /// The platform accepted the registration.
    pub fn set_registered(&self) {
        self.registered.store(true, Ordering::Relaxed);
    }

    /// A run of `source` started.
    pub fn run_started(&self, source: SyncSource) {
        if let Ok(mut runs) = self.runs.lock() {
            runs.entry(source.as_str()).or_default().running = true;
        }
    }

    /// A run of `source` ended: `Ok(what it did)` or `Err(why it failed)`; `next` is
    /// when it runs again, if scheduled.
    pub fn run_ended(
        &self,
        source: SyncSource,
        outcome: Result<String, String>,
        next: Option<Duration>,
    ) {
        self.metrics.sync_run(source, outcome.is_ok());
        let Ok(mut runs) = self.runs.lock() else {
            return;
        };
        let run = runs.entry(source.as_str()).or_default();
        let at = now();
        run.running = false;
        run.ok = Some(outcome.is_ok());
        match outcome {
            Ok(message) => {
                run.message = message;
                run.consecutive_failures = 0;
                run.last_success = Some(at.clone());
            }
            Err(message) => {
                run.message = message;
                run.consecutive_failures += 1;
            }
        }
        run.next_attempt = next
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .map(|d| (chrono::Utc::now() + d).to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        run.at = Some(at);
    }

    /// Probes live IVRE now if no snapshot is served (or never probed), and keeps the
    /// outcome for readiness.
    pub async fn probe_fallback(&self) {
        let Some(fallback) = &self.fallback else {
            return;
        };
        let probed = self.probe.lock().is_ok_and(|p| p.is_some());
        if self.serving.snapshot().is_some() && probed {
            return;
        }
        let error = fallback.probe().await.err().map(|e| e.to_string());
        if let Ok(mut probe) = self.probe.lock() {
            *probe = Some((now(), error));
        }
    }

    /// Refreshes the metrics of state (`snapshot_served`, `snapshot_age_seconds`, the
    /// open failures, `fallback_breaker_open`).
    pub fn update_metrics(&self) {
        if let Some(fallback) = &self.fallback {
            fallback.update_metrics();
        }
        let snapshot = self.serving.snapshot();
        self.metrics.set_snapshot_served(snapshot.is_some());
        self.metrics.set_snapshot_open_failures(
            self.serving.open_failures(),
            self.serving.open_failure().is_some(),
        );
        if let Some(age) = snapshot.and_then(|s| age_seconds(&s.manifest.built_at)) {
            self.metrics.set_snapshot_age(age);
        }
    }

    /// Whether the daemon can take work, and the document saying why.
    pub fn report(&self) -> (bool, Value) {
        let registered = self.registered.load(Ordering::Relaxed);
        let snapshot = self.serving.snapshot();
        let probe = self.probe.lock().ok().and_then(|p| p.clone());
        let fallback_ok = probe.as_ref().is_some_and(|(_, error)| error.is_none());
        let failure = self.serving.open_failure();
        let mut reasons = Vec::new();
        if !registered {
            reasons.push("not registered with OpenCTI yet".to_owned());
        }
        if snapshot.is_none() {
            match (&self.fallback, &probe) {
                (None, _) => reasons
                    .push("no snapshot served yet and no live IVRE fallback configured".into()),
                (Some(_), None) => {
                    reasons.push("no snapshot served yet; live IVRE not probed yet".into())
                }
                (Some(_), Some((_, Some(e)))) => reasons.push(format!(
                    "no snapshot served yet and live IVRE does not answer: {e}"
                )),
                (Some(_), Some((_, None))) => {}
            }
        }
        let ready = reasons.is_empty();
        let runs = self
            .runs
            .lock()
            .map(|runs| {
                runs.iter()
                    .map(|(source, run)| {
                        (
                            source.to_string(),
                            json!({
                                "running": run.running,
                                "last_run": run.at,
                                "ok": run.ok,
                                "message": run.message,
                                "consecutive_failures": run.consecutive_failures,
                                "last_success": run.last_success,
                                "next_attempt": run.next_attempt,
                            }),
                        )
                    })
                    .collect::<serde_json::Map<_, _>>()
            })
            .unwrap_or_default();
        let document = json!({
            "status": if ready { "ready" } else { "not ready" },
            "reasons": reasons,
            "platform": if registered { "registered" } else { "connecting" },
            "snapshot": snapshot.map(|s| json!({
                "generation": s.name,
                "built_at": s.manifest.built_at,
                "age_seconds": age_seconds(&s.manifest.built_at).map(|a| a.round()),
                "source": s.manifest.source.kind,
                "records": s.manifest.total_records(),
            })),
            "fallback": {
                "enabled": self.fallback.is_some(),
                "last_probe": probe.as_ref().map(|(at, _)| at),
                "reachable": probe.as_ref().map(|_| fallback_ok),
                "error": probe.and_then(|(_, e)| e),
            },
            "sync": runs,
            // Readiness does not change: the previous generation (or live IVRE) serves.
            "snapshot_open_failure": failure.map(|f| json!({
                "generation": f.generation,
                "error": f.error,
                "since": f.at,
            })),
        });
        (ready, document)
    }
}

/// Seconds since an RFC 3339 time.
fn age_seconds(rfc3339: &str) -> Option<f64> {
    let built = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?;
    let age = chrono::Utc::now() - built.with_timezone(&chrono::Utc);
    Some(age.num_milliseconds() as f64 / 1000.0)
}

/// Keeps the snapshot metrics current and probes live IVRE while no snapshot is served.
pub async fn maintain(health: Arc<Health>, shutdown: CancellationToken) {
    loop {
        health.update_metrics();
        health.probe_fallback().await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(if health.serving.snapshot().is_some() {
                Duration::from_secs(15)
            } else {
                PROBE_PERIOD
            }) => {}
        }
    }
}

#[derive(Clone)]
struct ServerState {
    health: Arc<Health>,
    metrics: Option<Metrics>,
}

/// Serves `/health`, `/ready` and (with `metrics`) `/metrics` and `/` on `listener`
/// until `shutdown` is cancelled, within `limits` (`crate::net::server`: capped
/// connections, idle ones evicted for new ones, request heads with a deadline).
pub async fn serve(
    listener: TcpListener,
    health: Arc<Health>,
    metrics: Option<Metrics>,
    limits: crate::net::ServerLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, metrics = metrics.is_some(), "health server listening");
    let mut app = Router::new()
        .route("/health", get(liveness))
        .route("/ready", get(readiness));
    if metrics.is_some() {
        app = app
            .route("/metrics", get(exposition))
            .route("/", get(exposition));
    }
    let app = app.with_state(ServerState { health, metrics });
    let result = crate::net::server::serve("health", listener, app, limits, shutdown).await;
    tracing::info!(%addr, "health server stopped");
    result
}

async fn liveness(AxumState(state): AxumState<ServerState>) -> impl IntoResponse {
    let (_, document) = state.health.report();
    (StatusCode::OK, axum::Json(document))
}

async fn readiness(AxumState(state): AxumState<ServerState>) -> impl IntoResponse {
    let (ready, document) = state.health.report();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(document))
}

async fn exposition(AxumState(state): AxumState<ServerState>) -> impl IntoResponse {
    state.health.update_metrics();
    let text = state.metrics.map(|m| m.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text)
}
