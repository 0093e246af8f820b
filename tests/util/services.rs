//! The services the integration tests need, and one clear line when they are missing.
//!
//! `bash scripts/test` installs and starts them (a private RabbitMQ, IVRE 0.9.20's web API
//! on PostgreSQL, moto's S3 server, a Python venv with the STIX validator) and exports
//! their addresses. Plain `cargo test` without them stops the integration binary at once,
//! before any test runs, with one line naming `bash scripts/test` instead of dozens of
//! confusing failures (the unit tests, `cargo test --lib`, need no service).

use std::io::Write;

/// The variables `scripts/test` exports (scripts/lib/services.sh, scripts/ivre-lab).
pub const REQUIRED: &[&str] = &[
    "IVRE_TEST_PYTHON",
    "IVRE_TEST_AMQP_URL",
    "IVRE_TEST_RABBITMQCTL",
    "IVRE_TEST_WEB_URL",
    "IVRE_TEST_WEB_URL_UNPATCHED",
    "IVRE_TEST_IVRE_CONF",
    "IVRE_TEST_IVRE_BIN",
    "IVRE_TEST_S3_ENDPOINT",
];

/// The line printed when some are missing.
pub fn missing_line(missing: &[&str]) -> String {
    format!(
        "the integration tests need the services `bash scripts/test` installs and starts \
         (RabbitMQ, IVRE on PostgreSQL, S3, the STIX validator): run `bash scripts/test` \
         (unit tests alone: `cargo test --lib`); not set: {}",
        missing.join(", ")
    )
}

/// Runs before the test harness (a constructor): without the services, writes
/// [`missing_line`] to stderr and exits with status 1. Only the environment, stderr and
/// `exit` are used, which the C runtime has set up before constructors run.
#[ctor::ctor(unsafe)]
fn services_or_stop() {
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|v| std::env::var_os(v).is_none_or(|s| s.is_empty()))
        .collect();
    if !missing.is_empty() {
        let _ = writeln!(std::io::stderr(), "error: {}", missing_line(&missing));
        std::process::exit(1);
    }
}
