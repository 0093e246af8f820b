//! The OpenCTI platform protocol (as pycti 6.x/7.x and the platform speak it), for an
//! internal-enrichment connector.
//!
//! - [`graphql`]: the GraphQL client; [`api`]: the operations the connector uses;
//! - [`message`]: the enrichment messages the platform sends;
//! - [`handler`]: one message in, work reported and results pushed; [`gate`]: the TLP gate;
//! - [`split`]: pycti's bundle splitting; [`push`]: bundles to the workers (AMQP or API);
//! - [`amqp`]: consuming the listen queue; [`http_callback`]: the HTTP listen mode;
//!   [`jwt`]: the 7.x callback tokens.

pub mod amqp;
pub mod api;
pub mod gate;
pub mod graphql;
pub mod handler;
pub mod http_callback;
pub mod jwt;
pub mod message;
pub mod push;
pub mod split;
