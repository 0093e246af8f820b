//! OpenCTI's side of the daemon: the connector protocol as pycti 6.x/7.x and the platform
//! speak it (`docs/opencti-protocol.md`), for an internal-enrichment connector. By
//! concern, in the order a message goes through them:
//!
//! - [`transport`]: how messages arrive: the listen queue ([`transport::amqp`]) or HTTP
//!   callbacks ([`transport::http_callback`], with the 7.x tokens of [`transport::jwt`]);
//! - [`pipeline`]: one message in, work reported and results pushed: the orchestration
//!   ([`pipeline::handler`]), the TLP gate, playbook steps, the redelivery guard, work
//!   reports, and what a message can fail with ([`pipeline::failure`]);
//! - [`protocol`]: the platform's messages, the GraphQL client and operations, pycti's
//!   splitting, push planning and publishing.
//!
//! The daemon's settings are in [`crate::config::daemon`].

pub mod pipeline;
pub mod protocol;
pub mod transport;
