//! Prometheus metrics (`docs/metrics.md`), in the connector's own registry, rendered by the
//! health server's `/metrics` (`daemon::health`).
//!
//! - `names.rs`: every metric name, the only place they are written;
//! - `labels.rs`: the label values, one enum per label (`label_enum!`): a metric takes only
//!   values of its own label set, every series is created at zero;
//! - `family.rs`: how metrics are named and registered; counters by label set, enum gauges;
//! - `pycti.rs`: pycti's metrics (`docs/opencti-protocol.md` §12.2): `bundles_sent_total`,
//!   `records_sent_total`, `ping_api_total`, `ping_api_errors_total`, `errors_total`,
//!   `client_errors_total`, the enum `state` ∈ {idle, running, stopped}, rendered as
//!   `prometheus_client` renders an `Enum` (`state{state="idle"} 1`, …), the info
//!   `identity_info`;
//! - `enrichment.rs`: `enrichment_duration_seconds`, `lookups_total{outcome}`,
//!   `fallback_breaker_open`, `messages_total{result}`, `skipped_values_total`;
//! - `upkeep.rs`: `snapshot_age_seconds`, `snapshot_served`, `snapshot_open_failures_total`,
//!   `snapshot_open_failed`, and the daemon's own snapshot upkeep:
//!   `sync_runs_total{source,outcome}`, `sync_last_success_timestamp_seconds`.
//!
//! Names get the prefix `<namespace>_<subsystem>_` (`CONNECTOR_METRICS_NAMESPACE`,
//! `CONNECTOR_METRICS_SUBSYSTEM`; an empty part is left out), as `prometheus_client` does.
//!
//! Labels only take values from the enums of `labels.rs` (plus the connector's own
//! configuration in `identity_info`): never an observable value, so cardinality stays
//! bounded and no TLP-marked data ends up in a metric.

use std::sync::Arc;

use prometheus::{Registry, TextEncoder};

use crate::config::table;

mod enrichment;
mod family;
pub mod labels;
pub mod names;
mod pycti;
#[cfg(test)]
mod tests;
mod upkeep;

pub use enrichment::ENRICHMENT_BUCKETS;
pub use labels::{Label, LabelSet, LookupOutcome, MessageResult, State, SyncOutcome, SyncSource};

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

/// The connector's metrics, in their own registry. Cheap to clone (shared inside). The
/// methods that feed them are next to each group (`pycti.rs`, `enrichment.rs`, `upkeep.rs`).
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
    pycti: pycti::Pycti,
    enrichment: enrichment::EnrichmentMetrics,
    upkeep: upkeep::Upkeep,
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
        let registry = Registry::new();
        let builder = family::Builder {
            registry: &registry,
            namespace,
            subsystem,
        };
        let pycti = pycti::Pycti::new(&builder)?;
        let enrichment = enrichment::EnrichmentMetrics::new(&builder)?;
        let upkeep = upkeep::Upkeep::new(&builder)?;
        Ok(Metrics {
            inner: Arc::new(Inner {
                registry,
                pycti,
                enrichment,
                upkeep,
            }),
        })
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
