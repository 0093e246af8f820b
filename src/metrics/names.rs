//! The metric names, before the namespace/subsystem prefix: the only place they are
//! written (`docs/metrics.md` lists each; a unit test keeps it so).

/// Counter: bundles sent (pycti).
pub const BUNDLES_SENT: &str = "bundles_sent_total";
/// Counter: records (objects, or split pieces) sent (pycti).
pub const RECORDS_SENT: &str = "records_sent_total";
/// Counter: successful `pingConnector` calls (pycti).
pub const PING_API: &str = "ping_api_total";
/// Counter: failed `pingConnector` calls (pycti).
pub const PING_API_ERRORS: &str = "ping_api_errors_total";
/// Counter: errors (pycti).
pub const ERRORS: &str = "errors_total";
/// Counter: client errors (pycti): failed queries to the data source, live IVRE.
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
pub const ALL: [&str; 19] = [
    BUNDLES_SENT,
    RECORDS_SENT,
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
