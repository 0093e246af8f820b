//! ivre-sync: builds and publishes snapshots of IVRE data for `ivre-connector`.
//!
//! The snapshot format, the record model and the NDJSON import live in the
//! `ivre-connector` library (one owner for the bytes on disk), and so do the pulls from
//! live IVRE and the drop folder (`ivre_connector::refresh`, which the daemon runs too);
//! this crate holds the command line.

pub mod cli;
pub mod distribute;
