//! The heartbeat: `pingConnector` right after registration, then every interval; a
//! state the platform changed (for instance reset to `""` by an administrator) replaces
//! the local one (`docs/opencti-protocol.md` §3).

use crate::metrics::Metrics;
use crate::opencti::protocol::api::Api;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// The connector state, as a JSON string (`None` = no state, sent as `"null"`).
pub type PingState = Arc<Mutex<Option<String>>>;

/// `""`, `"null"` and null all mean "no state".
pub fn normalize(state: Option<String>) -> Option<String> {
    state.filter(|s| !s.is_empty() && s != "null")
}

/// Pings until `shutdown`.
pub async fn run(
    api: Api,
    connector_id: String,
    state: PingState,
    interval: Duration,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    loop {
        let local = state.lock().await.clone();
        match api.ping(&connector_id, local.as_deref()).await {
            Ok(remote) => {
                metrics.ping(true);
                let remote = normalize(remote);
                if remote != local {
                    tracing::info!("connector state has been remotely updated");
                    *state.lock().await = remote;
                }
            }
            Err(e) => {
                metrics.ping(false);
                tracing::error!(error = %e, "ping failed; retrying at the next tick");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
