//! The OpenCTI platform protocol (as pycti 6.x/7.x and the platform speak it), for an
//! internal-enrichment connector.
//!
//! - [`protocol`]: the messages, the GraphQL operations, pycti's splitting and the push
//!   exchange;
//! - [`handler`]: one message in, work reported and results pushed; [`gate`]: the TLP gate;
//! - [`transport`]: how messages arrive: the listen queue ([`transport::amqp`]) or HTTP
//!   callbacks ([`transport::http_callback`], with the 7.x tokens of [`transport::jwt`]).

pub mod gate;
pub mod handler;
pub mod protocol;
pub mod transport;
