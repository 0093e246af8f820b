//! What long operations (an import, a pull) report as they go. The library only reports;
//! whoever runs them shows it: `ivre-sync` as a progress bar with rate and ETA on a
//! terminal (`sync/src/progress.rs`), the daemon not at all.

/// The unit of a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes of input read (compressed bytes for gzip files).
    Bytes,
    /// Records received.
    Records,
}

/// A receiver of progress reports. Called from the threads doing the work: cheap, and
/// never blocking.
pub trait Progress: Send + Sync + std::fmt::Debug {
    /// A new phase: `what` (e.g. `importing 3 files`), of `total` units when known.
    fn start(&self, what: &str, unit: Unit, total: Option<u64>);
    /// `done` units of the current phase so far.
    fn set(&self, done: u64);
    /// The operation is over (success or not).
    fn finish(&self);
}
