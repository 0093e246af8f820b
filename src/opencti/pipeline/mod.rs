//! The message pipeline: what happens to one enrichment message between its transport
//! ([`super::transport`]) and the platform ([`super::protocol`]).
//!
//! - [`handler`]: the orchestration: parse, redelivery guard, work received, enrichment,
//!   results sent, work processed; the [`handler::Disposition`] the transport applies;
//! - [`enrichment`]: the entity, the scope, the platform's markings, then the enrichment;
//! - [`gate`]: the TLP gate, pure (nothing reaches [`crate::enrich`] without passing it);
//! - [`results`]: the bundle to the push exchange or through `stixBundlePush`;
//! - [`playbook`]: playbook steps go on with the received bundle, merged or unchanged;
//! - [`work`]: failure reports (retried) and work pings;
//! - [`redelivery`]: the guard that drops a message in progress at two stops;
//! - [`failure`]: what a message can fail with ([`failure::Failure`]) or be skipped for
//!   ([`failure::Skip`]), with the texts the platform shows.

pub mod enrichment;
pub mod failure;
pub mod gate;
pub mod handler;
pub mod playbook;
pub mod redelivery;
pub mod results;
pub mod work;
