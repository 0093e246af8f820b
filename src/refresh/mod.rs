//! Keeping a snapshot fresh: pulls from live IVRE ([`pull`]) and the drop folder
//! ([`watch`]). `ivre-sync` runs them from the command line and the daemon on its own
//! (`daemon::keeper`): one code path, so a snapshot built either way is the same.
//!
//! Both build generations through [`crate::snapshot::import()`], under the data
//! directory's build lock: a pull and a dropped file never build at the same time, and
//! neither writes a published generation.

pub mod pull;
pub mod watch;

pub use pull::{pull_once, Targets};
