//! Wiring of the daemon. Signals are the binary's: it cancels the `shutdown` token that
//! [`run`] is given (and ends the process on a second signal).

use super::health::{self, Health};
use super::keeper::{self, UpkeepPlan};
use super::ping;
use crate::config::daemon::{ListenProtocol, QueueProtocol, Settings};
use crate::metrics::{Metrics, State as RunState};
use crate::opencti::pipeline::handler::{Disposition, Handler};
use crate::opencti::pipeline::redelivery::RedeliveryGuard;
use crate::opencti::protocol::api::Api;
use crate::opencti::protocol::push::{broker_uri, Pusher};
use crate::opencti::protocol::push_plan::PushMode;
use crate::opencti::transport::amqp::{self, ListenTarget};
use crate::opencti::transport::http_callback::{
    self, CallbackAuth, CallbackSettings, NotProcessed,
};
use crate::opencti::transport::jwt::Jwks;
use crate::snapshot::serving::Serving;
use crate::snapshot::{DataDir, OpenOptions, SnapshotError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// Why the daemon did not start, or stopped on an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Stopped by `shutdown` before `0` (not a failure of the daemon's own).
    #[error("stopped before {0}")]
    Stopped(&'static str),
    /// No snapshot, and no way to make one configured.
    #[error("no snapshot in {root}; to get one, {NO_SNAPSHOT_SOURCE}")]
    NoSnapshot { root: std::path::PathBuf },
    /// `what` failed (its cause as the source).
    #[error("{what}")]
    Failed {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl DaemonError {
    /// `what` failed because of `source` (for `map_err`).
    fn failed<E: std::error::Error + Send + Sync + 'static>(
        what: impl Into<String>,
    ) -> impl FnOnce(E) -> DaemonError {
        let what = what.into();
        move |source| DaemonError::Failed {
            what,
            source: Box::new(source),
        }
    }
}

type Result<T, E = DaemonError> = std::result::Result<T, E>;

/// Reaches the platform (`about { version }`), waiting while it is unreachable.
async fn platform_version(api: &Api, shutdown: &CancellationToken) -> Result<String> {
    loop {
        match api.version().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() => {
                tracing::error!(error = %e, "OpenCTI API is not reachable. Waiting for OpenCTI API to start or check your configuration...");
                tokio::select! {
                    _ = shutdown.cancelled() => return Err(DaemonError::Stopped("OpenCTI could be reached")),
                    _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                }
            }
            Err(e) => {
                return Err(DaemonError::failed(
                    "OpenCTI refused the connector's token or request",
                )(e))
            }
        }
    }
}

/// `RegisterConnectorInput` fields and `jwks` by platform version (`docs/opencti-protocol.md` §0).
fn fields_for_version(version: &str) -> (Vec<String>, bool) {
    let parts: Vec<u64> = version
        .split('.')
        .map(|p| p.trim().parse().unwrap_or(0))
        .collect();
    let at_least = |major: u64, minor: u64| {
        (
            parts.first().copied().unwrap_or(0),
            parts.get(1).copied().unwrap_or(0),
        ) >= (major, minor)
    };
    let mut fields: Vec<String> = [
        "id",
        "name",
        "type",
        "scope",
        "auto",
        "only_contextual",
        "playbook_compatible",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if at_least(6, 5) {
        fields.push("listen_callback_uri".into());
    }
    if at_least(6, 8) {
        fields.extend(["auto_update".into(), "enrichment_resolution".into()]);
    }
    if at_least(7, 261_026) {
        fields.extend(["version".into(), "slug".into()]);
    }
    (fields, at_least(7, 0))
}

/// The one line said when there is no snapshot and nothing configured to make one.
pub const NO_SNAPSHOT_SOURCE: &str = "set IVRE_DB_URL (the daemon pulls from live IVRE), IVRE_DROP_DIR (it imports exports dropped into that folder) or IVRE_SNAPSHOT_SOURCE (it fetches the generations another ivre-sync or daemon publishes), or build one with `ivre-sync import`";

/// Opens the served snapshot, or none yet when `plan` can make one.
async fn open_serving(settings: &Settings, plan: &UpkeepPlan, data: &DataDir) -> Result<Serving> {
    let (data2, geoip, can_wait) = (data.clone(), settings.geoip_dir.clone(), !plan.is_empty());
    if can_wait {
        std::fs::create_dir_all(data.root()).map_err(DaemonError::failed(format!(
            "cannot create the data directory {}",
            data.root().display()
        )))?;
    }
    let opened = tokio::task::spawn_blocking(move || {
        if can_wait {
            Serving::open_or_empty(&data2, geoip, OpenOptions::default())
        } else {
            Serving::open(&data2, geoip, OpenOptions::default())
        }
    })
    .await
    .map_err(DaemonError::failed("opening the snapshot crashed"))?;
    match opened {
        Ok(serving) => Ok(serving),
        Err(SnapshotError::NoSnapshot { root } | SnapshotError::NoDataDir { root }) => {
            Err(DaemonError::NoSnapshot { root })
        }
        Err(e) => Err(DaemonError::failed(format!(
            "cannot open the snapshot in {}",
            data.root().display()
        ))(e)),
    }
}

/// Waits until a snapshot is served (no fallback can answer before).
async fn first_snapshot(serving: &Serving, shutdown: &CancellationToken) -> Result<()> {
    if serving.snapshot().is_some() {
        return Ok(());
    }
    tracing::warn!("no snapshot yet and no live IVRE fallback: waiting for the first snapshot before taking messages");
    while serving.snapshot().is_none() {
        tokio::select! {
            _ = shutdown.cancelled() => return Err(DaemonError::Stopped("the first snapshot was published")),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
    Ok(())
}

/// Runs the daemon until `shutdown` is cancelled (the binary does on SIGTERM / SIGINT);
/// returns when everything stopped.
pub async fn run(
    settings: Settings,
    plan: UpkeepPlan,
    data: DataDir,
    shutdown: CancellationToken,
) -> Result<()> {
    let settings = Arc::new(settings);
    let metrics = Metrics::new(&settings.metrics_namespace, &settings.metrics_subsystem).map_err(
        DaemonError::failed("invalid CONNECTOR_METRICS_NAMESPACE / CONNECTOR_METRICS_SUBSYSTEM"),
    )?;
    metrics.set_state(RunState::Idle);
    metrics.set_identity(
        &settings.connector_id,
        &settings.connector_name,
        "INTERNAL_ENRICHMENT",
        &settings.scope.join(","),
    );

    let serving = Arc::new(open_serving(&settings, &plan, &data).await?);
    tokio::spawn(
        serving
            .clone()
            .watch(settings.reload_poll, shutdown.clone()),
    );
    match serving.snapshot() {
        Some(snapshot) => {
            tracing::info!(generation = %snapshot.name, built_at = %snapshot.manifest.built_at, "serving snapshot")
        }
        None => tracing::warn!(
            data_dir = %data.root().display(),
            fallback = settings.fallback.enabled,
            "no snapshot yet: building the first one in the background; until it is published, enrichment asks live IVRE"
        ),
    }
    let fallback = settings.fallback.enabled.then(|| {
        Arc::new(crate::live::fallback::Fallback::new(
            settings.fallback.clone(),
            Some(metrics.clone()),
        ))
    });
    let health = Arc::new(Health::new(
        serving.clone(),
        fallback.clone(),
        metrics.clone(),
        &plan.sources(),
    ));
    tokio::spawn(health::maintain(health.clone(), shutdown.clone()));
    {
        let bind = SocketAddr::new(settings.health_bind, settings.metrics_port);
        let (h, s) = (health.clone(), shutdown.clone());
        let m = settings.expose_metrics.then(|| metrics.clone());
        let limits = settings.net.servers;
        match tokio::net::TcpListener::bind(bind).await {
            Ok(listener) => {
                tokio::spawn(async move {
                    if let Err(e) = health::serve(listener, h, m, limits, s).await {
                        tracing::error!(error = %e, port = bind.port(), "health server failed");
                    }
                });
            }
            Err(e) => {
                tracing::error!(error = %e, port = bind.port(), "cannot serve /health, /ready and /metrics on this port (CONNECTOR_METRICS_PORT)")
            }
        }
    }
    let upkeep = keeper::spawn(
        plan,
        data.clone(),
        serving.clone(),
        health.clone(),
        shutdown.clone(),
    );

    let api =
        Api::new(&settings).map_err(DaemonError::failed("cannot build the OpenCTI client"))?;
    let version = platform_version(&api, &shutdown).await?;
    // The fields this platform knows: by introspection, else from its version.
    let input = api.type_fields("RegisterConnectorInput").await;
    let connector = api.type_fields("Connector").await;
    let (input_fields, with_jwks) = match (input, connector) {
        (Ok(input), Ok(connector)) if !input.is_empty() => {
            let jwks = connector.iter().any(|f| f == "jwks");
            (input, jwks)
        }
        (Err(e), _) | (_, Err(e)) if e.is_transient() => {
            return Err(DaemonError::failed("cannot introspect the platform")(e))
        }
        _ => {
            tracing::warn!(platform_version = %version, "introspection unavailable: choosing registration fields from the platform version");
            fields_for_version(&version)
        }
    };
    let registration = api
        .register(&settings, &input_fields, with_jwks)
        .await
        .map_err(DaemonError::failed("registration failed"))?;
    tracing::info!(platform_version = %version, connector_id = %registration.id, listen = ?settings.listen, "registered");
    health.set_registered();

    let state: ping::PingState = Arc::new(Mutex::new(ping::normalize(
        registration.connector_state.clone(),
    )));
    let pinger = tokio::spawn(ping::run(
        api.clone(),
        settings.connector_id.clone(),
        state,
        settings.ping_interval,
        metrics.clone(),
        shutdown.clone(),
    ));

    let uri = broker_uri(&registration.config.connection, &settings.mq);
    let pusher =
        (settings.queue_protocol == QueueProtocol::Amqp && settings.send_to_queue).then(|| {
            Pusher::new(
                uri.clone(),
                registration.config.push_exchange.clone(),
                registration.config.push_routing.clone(),
                settings.reconnect_delay,
                settings.concurrency,
            )
        });
    let push_mode = PushMode::for_platform(settings.push_strategy, &version);
    if settings.queue_protocol == QueueProtocol::Amqp {
        tracing::info!(
            platform_version = %version,
            strategy = ?settings.push_strategy,
            whole_bundles = push_mode.bundle,
            "bundles go to the push queue {}",
            if push_mode.bundle { "as one message each (the platform's worker splits them)" } else { "as one message per object" }
        );
    }
    let handler = Arc::new(Handler {
        settings: settings.clone(),
        api: api.clone(),
        serving: serving.clone(),
        pusher,
        push_mode,
        registration: registration.clone(),
        metrics: metrics.clone(),
        redelivery: RedeliveryGuard::new(data.root().join("daemon").join("inflight")),
        fallback,
    });
    if handler.fallback.is_none() {
        // Pings go on meanwhile: the platform sees the connector alive.
        first_snapshot(&serving, &shutdown).await?;
    }
    metrics.set_state(RunState::Running);
    match settings.listen {
        ListenProtocol::Amqp => {
            let target = ListenTarget {
                uri,
                queue: registration.config.listen.clone(),
                consumer_tag: format!("ivre-connector-{}", settings.connector_id),
                concurrency: settings.concurrency,
                reconnect_delay: settings.reconnect_delay,
                drain_timeout: settings.shutdown_timeout,
            };
            amqp::listen(target, handler, shutdown.clone()).await;
        }
        ListenProtocol::Api => {
            let auth = match registration.jwks.as_deref().filter(|j| !j.is_empty()) {
                Some(jwks) => CallbackAuth::TokenOrJwks(
                    settings.opencti_token.clone(),
                    Jwks::parse(jwks)
                        .map_err(DaemonError::failed("the platform's jwks is unreadable"))?
                        .with_audiences([
                            settings.connector_id.clone(),
                            format!("{}{}", settings.api_listen.uri, settings.api_listen.path),
                        ]),
                ),
                None => CallbackAuth::Token(settings.opencti_token.clone()),
            };
            let callback = CallbackSettings {
                bind: SocketAddr::new(settings.api_listen.bind, settings.api_listen.port),
                path: settings.api_listen.path.clone(),
            };
            let listener = http_callback::bind(&callback)
                .await
                .map_err(DaemonError::failed(format!(
                    "cannot listen on {}",
                    callback.bind
                )))?;
            let semaphore = Arc::new(tokio::sync::Semaphore::new(settings.concurrency));
            let h = handler.clone();
            let handle: http_callback::ProcessBody = Arc::new(move |body: Vec<u8>| {
                let (h, semaphore) = (h.clone(), semaphore.clone());
                Box::pin(async move {
                    let _permit = semaphore
                        .acquire_owned()
                        .await
                        .map_err(|_| NotProcessed::Stopping)?;
                    match h.handle(&body, false).await {
                        Disposition::Ack => Ok(()),
                        // The worker requeues on anything but 202.
                        Disposition::Requeue => Err(NotProcessed::Temporary),
                    }
                })
            });
            // CONNECTOR_SHUTDOWN_TIMEOUT bounds the stop as in AMQP mode: requests in flight
            // get that long to finish; after it, they are dropped unanswered and the
            // platform's worker requeues their messages.
            let limits = settings.net.servers;
            let serve = http_callback::serve(
                listener,
                callback.path,
                auth,
                handle,
                limits,
                shutdown.clone(),
            );
            tokio::pin!(serve);
            let drain_timeout = settings.shutdown_timeout;
            let stopped = async {
                shutdown.cancelled().await;
                tokio::time::sleep(drain_timeout).await;
            };
            tokio::select! {
                served = &mut serve => served.map_err(DaemonError::failed("HTTP callback server failed"))?,
                _ = stopped => tracing::warn!(
                    timeout_s = drain_timeout.as_secs(),
                    "stopping with callback requests still running (CONNECTOR_SHUTDOWN_TIMEOUT); the worker will requeue their messages"
                ),
            }
        }
    }
    shutdown.cancel();
    let _ = pinger.await;
    for task in upkeep {
        let _ = task.await;
    }
    metrics.set_state(RunState::Stopped);
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_follow_the_version_matrix() {
        let (f, jwks) = fields_for_version("6.4.11");
        assert!(!f.contains(&"listen_callback_uri".to_string()) && !jwks);
        let (f, jwks) = fields_for_version("6.8.17");
        assert!(
            f.contains(&"enrichment_resolution".to_string())
                && !f.contains(&"slug".to_string())
                && !jwks
        );
        let (f, jwks) = fields_for_version("7.261026.0");
        assert!(f.contains(&"slug".to_string()) && jwks);
    }
}
