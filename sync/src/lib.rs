//! ivre-sync: builds and publishes snapshots of IVRE data for `ivre-connector`.
//!
//! The snapshot format, the record model and the NDJSON import live in the
//! `ivre-connector` library (one owner for the bytes on disk); this crate holds the
//! command line and, later, the live sources (MongoDB, web API) and the drop folder.

pub mod cli;
pub mod distribute;
pub mod pull;
pub mod watch;
