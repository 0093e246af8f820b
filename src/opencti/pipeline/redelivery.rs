//! The redelivery guard: a message that was being processed when the connector stopped
//! (crash, kill) comes back from the broker flagged as redelivered; it is tried once more,
//! and dropped (reported to its work) when it comes back again, so that a message that
//! kills the connector never loops.
//!
//! A first delivery needs no marker: the broker's flag says whether an attempt came
//! before. For a redelivered message, a marker under `DATA_DIR/daemon/inflight/`, named by
//! the body's CRC-32 and length, counts the attempts after the first; it is removed once
//! the message's outcome is recorded.

use std::path::{Path, PathBuf};

/// Where the markers are kept.
#[derive(Debug, Clone)]
pub struct RedeliveryGuard {
    dir: PathBuf,
}

/// The marker of one message body.
#[derive(Debug, Clone)]
pub struct Marker {
    path: PathBuf,
}

/// The guard's verdict on a redelivered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Try it (this attempt was counted).
    Proceed,
    /// It was in progress at two stops already: report it and drop it.
    GiveUp,
}

impl RedeliveryGuard {
    /// Markers in `dir` (created when the first one is written).
    pub fn new(dir: impl Into<PathBuf>) -> RedeliveryGuard {
        RedeliveryGuard { dir: dir.into() }
    }

    /// The directory of the markers.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The marker of `body`.
    pub fn marker(&self, body: &[u8]) -> Marker {
        let mut h = crc32fast::Hasher::new();
        h.update(body);
        Marker {
            path: self
                .dir
                .join(format!("{:08x}-{}", h.finalize(), body.len())),
        }
    }
}

impl Marker {
    /// Counts an attempt at a redelivered message. The marker is best effort: when it
    /// cannot be written, the message is tried (never dropped for a file-system error).
    pub fn attempt(&self) -> Attempt {
        let attempts = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(1);
        if attempts >= 2 {
            return Attempt::GiveUp;
        }
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(&self.path, (attempts + 1).to_string());
        Attempt::Proceed
    }

    /// The message's outcome is recorded: the marker goes.
    pub fn clear(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redelivered_message_is_tried_once_more_then_given_up() {
        let tmp = tempfile::tempdir().unwrap();
        let guard = RedeliveryGuard::new(tmp.path().join("inflight"));
        let marker = guard.marker(b"{\"event\":1}");
        let other = guard.marker(b"{\"event\":2}");
        assert_eq!(marker.attempt(), Attempt::Proceed, "first redelivery");
        assert_eq!(
            other.attempt(),
            Attempt::Proceed,
            "another body, another marker"
        );
        assert_eq!(
            marker.attempt(),
            Attempt::GiveUp,
            "in progress at two stops"
        );
        marker.clear();
        assert_eq!(marker.attempt(), Attempt::Proceed, "cleared: counted anew");
        assert_eq!(std::fs::read_dir(guard.dir()).unwrap().count(), 2);
    }
}
