//! The integration tests: one binary (one link step), one module per concern.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on purpose
#![allow(clippy::await_holding_lock)] // the IVRE lab lock is held for a whole test

/// Helpers: temporary data directories, the binaries, fixture paths.
mod util;

/// Importing IVRE's exports and looking up every value in them gives exactly the
/// records IVRE's own searches return.
mod import_lookup;

/// Generations: atomic publish, kills at every stage, pruning, sled's lock, strict mode,
/// malformed lines, geo files carried forward.
mod generations;

/// The command lines: observable syntax, stdin, exit codes, clear errors.
mod cli;

/// Plain `cargo test` without the services stops at once, naming `bash scripts/test`.
mod newcomer;

/// Enrichment: the objects, relationships and labels of each fixture observable, STIX
/// validity (OASIS validator, stix2 library), determinism, provenance, switches, TLP gate.
mod enrich;

/// Record values that cannot be STIX values are skipped and counted; IPv4-mapped IPv6
/// observables.
mod record_values;

/// The OpenCTI platform double itself, on the real RabbitMQ.
mod platform_double;

/// `ivre-connector run` against the platform double on RabbitMQ: the protocol's
/// conformance checklist.
mod daemon;

/// The push publisher on the real RabbitMQ: order, confirms, refused pieces.
mod push;

/// The real IVRE 0.9.20 web API (PostgreSQL) the live tests use.
mod ivre_lab;

/// Snapshots and MaxMind files swapped while serving.
mod hot_reload;

/// Live IVRE: the fallback against the real IVRE web API, breaker, rate limits.
mod live;

/// `ivre-sync pull` from the real IVRE web API.
mod pull;

/// `ivre-sync watch`: the drop folder.
mod watch;

/// The daemon keeps its own snapshot (pull, drop folder), answers live until the first
/// one, and reports its health (`/health`, `/ready`, `ivre-connector health`).
mod upkeep;

/// The container image started from its environment alone (ignored: `scripts/test-image`
/// runs it against the image it built).
mod image;

/// Three `run` replicas on one listen queue, one killed with SIGKILL halfway: nothing lost,
/// nothing done twice but the killed replica's unacknowledged messages.
mod replicas;

/// Scale-out: `ivre-sync publish` / `fetch` / `--publish` through moto's S3 server and a
/// `file://` store; tampered archives refused.
mod distribute;

// A damaged generation published into a running daemon: it stays on the previous one and
// says so in its logs, metrics and health (docs/reliability/integrity.md).
mod integrity;

/// Faults, with nothing lost: SIGKILLs at random points, the broker restarted under load,
/// the platform and IVRE's web API failing, a full disk, malformed messages
/// (`docs/reliability/faults.md`; long versions: `scripts/faults`).
mod faults;

/// The network edges: the daemon's HTTP servers under 2,000 idle connections, TLS with
/// private CAs, the warning when verification is off.
mod network;

/// Secrets never written out: every command of both binaries with secrets in the OpenCTI
/// and IVRE URLs, failing sources and `-vv`; outputs and files searched
/// (`docs/reliability/secrets.md`).
mod secrets;
