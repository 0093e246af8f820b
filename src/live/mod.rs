//! Live IVRE: the sources a snapshot is pulled from and the cache-miss fallback asks.
//!
//! - [`mongo`]: IVRE's MongoDB (`mongodb://…`), queried with IVRE's own filters;
//! - [`web`]: IVRE's web API (`http(s)://host/cgi#Header=value&…`).

pub mod mongo;
pub mod web;
