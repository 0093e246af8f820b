//! `ivre-connector run`: the OpenCTI connector daemon.
//!
//! Start-up: settings validated, snapshot opened (or, with a way to get one, none yet:
//! `keeper` builds it in the background while the live fallback answers), the health
//! server started (`health`), platform reached (`about`), the registration input limited
//! to the fields the platform knows (introspection), then registration. Running: a ping
//! task (`ping`, every `CONNECTOR_PING_INTERVAL`, adopting a state the platform reset), the
//! listener (AMQP or HTTP callback), the snapshot upkeep (`keeper`), `/health`, `/ready`
//! and metrics when asked. Stop (SIGTERM, SIGINT, watched by the binary, which cancels the
//! token [`run()`] is given): no new message is taken, in-flight ones finish (up to
//! `CONNECTOR_SHUTDOWN_TIMEOUT`) and are acknowledged; a second signal exits at once.

pub mod health;
pub mod keeper;
mod ping;
mod run;

pub use keeper::{PullPlan, UpkeepPlan};
pub use run::{run, DaemonError, NO_SNAPSHOT_SOURCE};
