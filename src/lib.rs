//! ivre-connector: enrich OpenCTI observables from a local snapshot of IVRE data.
//!
//! # Layout
//!
//! - [`config`]: every setting (one table), where the data directory and configuration come
//!   from; the daemon's settings, validated all at once ([`config::daemon`]).
//! - [`net`]: proxies and extra CA certificates of outgoing connections; the bounded
//!   accept loop of the daemon's HTTP servers.
//! - [`redact`]: URLs with their secrets hidden, for logs, manifests and errors.
//! - [`observable`]: parsing `TYPE:VALUE` observables as the CLI and the platform give them.
//! - [`ivre`]: IVRE 0.9.20 records (scan and view hosts, passive records) in every shape IVRE
//!   writes them, normalized to the `ivre ... --json` export form.
//! - [`geo`]: MaxMind `.mmdb` files and IVRE's `infos_byip`.
//! - [`index`]: the on-disk format of a snapshot (keys, codec, record files, the base and
//!   update writers, the reader).
//! - [`snapshot`]: generations in a data directory: import, publish, open, prune.
//! - [`refresh`]: keeping a snapshot fresh: pulls from live IVRE and the drop folder.
//! - [`lookup`]: answering an observable from a snapshot, as IVRE's searches would.
//! - [`opencti`]: OpenCTI's side of the daemon: transports (listen queue, HTTP callback),
//!   the platform protocol (messages, GraphQL, splitting, pushing) and the message pipeline
//!   (TLP gate, playbooks, redelivery guard, work reports).
//! - [`metrics`]: the Prometheus metrics: names, label enums, the methods that feed them.
//! - [`logging`]: the one logging setup of every command; pycti-shaped JSON logs.
//! - [`exit_code`]: the exit codes of every command of both binaries.
//! - [`help_examples`]: the check of the "Examples:" blocks of both command lines' help.
//! - [`daemon`]: the `run` command: registration, the message pipeline's wiring, the
//!   snapshot upkeep, health and metrics endpoints.
//! - [`distribute`]: publishing generations to an S3 or `file://` store and fetching them.
//! - [`enrich`]: an observable and its records in, one STIX 2.1 bundle out.
//! - [`live`]: live IVRE (web API, MongoDB) and the cache-miss fallback.
//! - [`stix`]: STIX ids, objects, bundles and markings.
//!
//! The command lines (`ivre-connector`: `src/bin/ivre-connector/`, `ivre-sync`: `sync/`)
//! are binaries of their own, and so is the global allocator: the library sets none.

pub mod config;
pub mod daemon;
pub mod distribute;
pub mod enrich;
pub mod exit_code;
pub mod geo;
pub mod help_examples;
pub mod index;
pub mod ivre;
pub mod live;
pub mod logging;
pub mod lookup;
pub mod metrics;
pub mod net;
pub mod observable;
pub mod opencti;
pub mod redact;
pub mod refresh;
pub mod snapshot;
pub mod stix;

#[cfg(test)]
mod standalone_tests;
