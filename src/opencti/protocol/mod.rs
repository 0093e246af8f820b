//! The platform's side of the conversation, as pycti 6.x/7.x and the platform speak it
//! (`docs/opencti-protocol.md`):
//!
//! - [`message`]: the enrichment messages the platform sends (four shapes);
//! - [`graphql`]: the GraphQL client; [`api`]: the operations the connector uses
//!   (registration, work reporting, reading entities and markings, bundles, playbooks);
//! - [`split`]: pycti's bundle splitting, dependencies first;
//! - [`push_plan`]: whole bundles or pieces, per platform version; [`push`]: publishing on
//!   the push exchange with publisher confirms.

pub mod api;
pub mod graphql;
pub mod message;
pub mod push;
pub mod push_plan;
pub mod split;
