//! The enrichment's metrics: how long an enrichment takes, how lookups were answered,
//! the live fallback's breaker, how platform messages ended and the record values
//! skipped while building bundles.

use std::time::Duration;

use prometheus::{Histogram, IntCounter, IntGauge};

use super::family::{Builder, CounterFamily};
use super::labels::{LookupOutcome, MessageResult};
use super::{names, Metrics, MetricsError};

/// Buckets of `enrichment_duration_seconds`: 10 µs to 10 s, 1-2.5-5 per decade.
pub const ENRICHMENT_BUCKETS: [f64; 19] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The enrichment's metrics.
pub(super) struct EnrichmentMetrics {
    duration: Histogram,
    lookups: CounterFamily<LookupOutcome>,
    breaker_open: IntGauge,
    messages: CounterFamily<MessageResult>,
    skipped_values: IntCounter,
}

impl EnrichmentMetrics {
    pub(super) fn new(b: &Builder<'_>) -> Result<EnrichmentMetrics, MetricsError> {
        Ok(EnrichmentMetrics {
            duration: b.histogram(
                names::ENRICHMENT_DURATION,
                "Time to enrich one observable, from message to bundle",
                &ENRICHMENT_BUCKETS,
            )?,
            lookups: b.counter_family(
                names::LOOKUPS,
                "Observable lookups, by how they were answered",
            )?,
            breaker_open: b.int_gauge(
                names::FALLBACK_BREAKER_OPEN,
                "1 while the circuit breaker of the live IVRE fallback is open, else 0",
            )?,
            messages: b.counter_family(names::MESSAGES, "Platform messages handled, by result")?,
            skipped_values: b.counter(
                names::SKIPPED_VALUES,
                "IVRE record values skipped while building bundles (not valid names or fields)",
            )?,
        })
    }
}

impl Metrics {
    fn enrichment(&self) -> &EnrichmentMetrics {
        &self.inner.enrichment
    }

    /// One enrichment took `d`.
    pub fn observe_enrichment(&self, d: Duration) {
        self.enrichment().duration.observe(d.as_secs_f64());
    }

    /// One lookup answered with `outcome`.
    pub fn lookup(&self, outcome: LookupOutcome) {
        self.enrichment().lookups.inc(outcome);
    }

    /// The fallback circuit breaker opened (`true`) or closed.
    pub fn set_breaker_open(&self, open: bool) {
        self.enrichment().breaker_open.set(i64::from(open));
    }

    /// One platform message ended with `result`.
    pub fn message(&self, result: MessageResult) {
        self.enrichment().messages.inc(result);
    }

    /// Record values skipped while building one bundle.
    pub fn skipped_values(&self, count: u64) {
        self.enrichment().skipped_values.inc_by(count);
    }
}
