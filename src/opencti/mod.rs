//! The OpenCTI platform protocol (as pycti 6.x/7.x and the platform speak it), for an
//! internal-enrichment connector.
//!
//! - [`graphql`]: the GraphQL client; [`api`]: the operations the connector uses;
//! - [`message`]: the enrichment messages the platform sends;
//! - [`handler`]: one message in, work reported and results pushed; [`gate`]: the TLP gate;
//! - [`split`]: pycti's bundle splitting; [`push`]: bundles to the workers (AMQP or API);
//! - [`transport`]: how messages arrive: the listen queue ([`transport::amqp`]) or HTTP
//!   callbacks ([`transport::http_callback`], with the 7.x tokens of [`transport::jwt`]).

pub mod api;
pub mod gate;
pub mod graphql;
pub mod handler;
pub mod message;
pub mod push;
pub mod split;
pub mod transport;
