//! `ivre-connector run`: the OpenCTI connector daemon.
//!
//! Start-up: settings validated, snapshot opened, platform reached (`about`), the
//! registration input limited to the fields the platform knows (introspection), then
//! registration. Running: a ping task (every `CONNECTOR_PING_INTERVAL`, adopting a state
//! the platform reset), the listener (AMQP or HTTP callback), metrics when asked. Stop
//! (SIGTERM, SIGINT): no new message is taken, in-flight ones finish (up to
//! `CONNECTOR_SHUTDOWN_TIMEOUT`) and are acknowledged; a second signal exits at once.

mod ping;
mod run;

pub use run::run;
