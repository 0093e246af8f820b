//! pycti's metrics (`docs/opencti-protocol.md` §12.2), with its names and meanings: bundles
//! and records sent, pings, errors, client errors, the `state` enum and `identity_info`.
//! pycti's `runs_total` is not exported: an enrichment connector has no scheduled runs
//! (the daemon's upkeep runs are `sync_runs_total`).

use prometheus::{IntCounter, IntGaugeVec};

use super::family::{Builder, EnumGauge};
use super::labels::State;
use super::{names, Metrics, MetricsError};

/// pycti's metrics.
pub(super) struct Pycti {
    bundles_sent: IntCounter,
    records_sent: IntCounter,
    ping_api: IntCounter,
    ping_api_errors: IntCounter,
    errors: IntCounter,
    client_errors: IntCounter,
    state: EnumGauge<State>,
    identity: IntGaugeVec,
}

impl Pycti {
    pub(super) fn new(b: &Builder<'_>) -> Result<Pycti, MetricsError> {
        Ok(Pycti {
            bundles_sent: b.counter(names::BUNDLES_SENT, "Number of bundles sent")?,
            records_sent: b.counter(
                names::RECORDS_SENT,
                "Number of records (objects per bundle) sent",
            )?,
            ping_api: b.counter(names::PING_API, "Number of pings to the API")?,
            ping_api_errors: b.counter(
                names::PING_API_ERRORS,
                "Number of errors when pinging the API",
            )?,
            errors: b.counter(names::ERRORS, "Number of errors")?,
            client_errors: b.counter(names::CLIENT_ERRORS, "Number of client errors")?,
            state: b.enum_gauge(names::STATE, "State of connector", State::Idle)?,
            identity: b.gauge_vec(
                names::IDENTITY,
                "Identity and configuration of the connector",
                &["id", "name", "type", "scope"],
            )?,
        })
    }
}

impl Metrics {
    fn pycti(&self) -> &Pycti {
        &self.inner.pycti
    }

    /// One bundle sent, made of `records` records (pycti's `bundle_send` + `record_send`).
    pub fn bundle_sent(&self, records: u64) {
        self.pycti().bundles_sent.inc();
        self.pycti().records_sent.inc_by(records);
    }

    /// One `pingConnector`: `ping_api_total` if it succeeded, else `ping_api_errors_total`
    /// (as pycti counts them).
    pub fn ping(&self, ok: bool) {
        if ok {
            self.pycti().ping_api.inc();
        } else {
            self.pycti().ping_api_errors.inc();
        }
    }

    /// One error (pycti's `error_count`): a message whose processing failed or was
    /// interrupted.
    pub fn error(&self) {
        self.pycti().errors.inc();
    }

    /// One client error (pycti's `client_error_count`, which connectors count when their
    /// data source fails): a query to live IVRE that failed or timed out.
    pub fn client_error(&self) {
        self.pycti().client_errors.inc();
    }

    /// Sets the `state` enum: the gauge of `s` at 1, the others at 0.
    pub fn set_state(&self, s: State) {
        self.pycti().state.set(s);
    }

    /// Sets `identity_info{id,name,type,scope} 1` (pycti's `set_info`), replacing any
    /// previous identity. These are configuration values, one series.
    pub fn set_identity(&self, id: &str, name: &str, connector_type: &str, scope: &str) {
        let identity = &self.pycti().identity;
        identity.reset();
        match identity.get_metric_with_label_values(&[id, name, connector_type, scope]) {
            Ok(gauge) => gauge.set(1),
            Err(error) => tracing::error!(%error, "cannot set the identity metric"),
        }
    }
}
