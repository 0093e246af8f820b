//! The OpenCTI platform test double: the platform side of the connector protocol (pycti
//! 6.x/7.x; sections cited as §N are those of `docs/opencti-protocol.md`), shared by the
//! integration tests (`tests/`) and the benchmarks (`benches/perf/daemon.rs`).
//!
//! One [`PlatformDouble`] plays the platform for one connector id:
//!
//! * a GraphQL endpoint (`POST {url}/graphql`, axum on `127.0.0.1:0`; `http`) that
//!   understands the operations a connector sends (`about`, introspection,
//!   `registerConnector`, `pingConnector`, `workEdit`, `stixBundlePush`,
//!   `playbookStepExecution`, entity reads; `resolvers`), parses them with
//!   `apollo-parser` (`graphql`), validates them like graphql-js/Apollo against the field
//!   set of the advertised version (`schema`, `validate`, `coerce`), and records every
//!   request (`state`);
//! * the RabbitMQ topology the platform declares (§4.1; `broker`), on the real broker of
//!   `IVRE_TEST_AMQP_URL`, with the platform's publisher (listen queue) and a worker-like
//!   consumer of the push queue that splits multi-object messages (`worker`);
//! * the worker's HTTP caller for the API listen mode (§5), with platform-like JWTs (7.x;
//!   `jwt`);
//! * switchable outages of the GraphQL endpoint ([`faults`]).
//!
//! The queues are deleted by [`PlatformDouble::stop`] or when the double is dropped; the
//! exchanges are shared by every double with the same prefix and are left in place.
//!
//! It panics, failing the test, on what a test must not survive: no broker, or a protocol
//! error of the connector that the platform's worker would reject.

mod broker;
mod coerce;
mod execute;
pub mod faults;
mod graphql;
mod http;
mod jwt;
mod options;
mod platform;
mod records;
mod resolvers;
mod schema;
mod state;
mod validate;
mod worker;

pub use options::{DoubleOptions, QueueNames};
pub use platform::PlatformDouble;
pub use records::{GraphqlCall, Pushed, Reject, WorkProgress};

/// The version a double advertises unless told otherwise.
pub const DEFAULT_VERSION: &str = "7.261026.0";
/// `connector_user_id` returned by `registerConnector` (the user of the connector's token).
pub const CONNECTOR_USER_ID: &str = "2c8a5f34-91d6-4b0e-a7f3-6e1d9b4c8a52";
/// `kid` of the double's Ed25519 key in the JWKS and in the JWT headers.
pub const JWT_KID: &str = "opencti-double-ed25519-1";
/// The environment variable naming the test broker.
pub const AMQP_URL_VAR: &str = "IVRE_TEST_AMQP_URL";

/// The broker URL of the tests, or a panic telling how to run them.
pub fn amqp_url_from_env() -> String {
    require_amqp_url(std::env::var(AMQP_URL_VAR).ok().filter(|v| !v.is_empty()))
}

/// [`amqp_url_from_env`] on a given value (testable without touching the environment).
pub fn require_amqp_url(value: Option<String>) -> String {
    value.unwrap_or_else(|| {
        panic!("IVRE_TEST_AMQP_URL is not set: run the tests with `bash scripts/test`")
    })
}
