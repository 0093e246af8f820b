//! How enrichment messages reach the connector (`CONNECTOR_LISTEN_PROTOCOL`,
//! `docs/opencti-protocol.md` §4.2, §5):
//!
//! - [`amqp`]: consuming the listen queue, acknowledged only once the outcome is recorded;
//! - [`http_callback`]: the HTTP listen mode (the platform's workers POST each message),
//!   with its bearer check ([`http_callback::authorize`]);
//! - [`jwt`]: the 7.x callback tokens: loading the platform's keys, verifying a token.
//!
//! A transport hands each message body to [`super::pipeline::handler::Handler::handle`] and
//! acknowledges, requeues or answers by the [`super::pipeline::handler::Disposition`] it returns.

pub mod amqp;
pub mod http_callback;
pub mod jwt;
