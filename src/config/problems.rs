//! Collecting every configuration problem, so that all are reported at once: every
//! sub-configuration's `read(config, &mut Problems)` records into the same [`Problems`].

use super::{ConfigError, ConfigFile};

/// Every problem found in the configuration.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct SettingsError(pub Vec<String>);

/// The problems found so far while reading settings.
#[derive(Debug, Default)]
pub struct Problems(Vec<String>);

impl Problems {
    /// Runs `read` and gives its result, or every problem it recorded.
    pub fn collect<T>(read: impl FnOnce(&mut Problems) -> T) -> Result<T, SettingsError> {
        let mut problems = Problems::default();
        let value = read(&mut problems);
        problems.finish(value)
    }

    /// The value of `r`, or `T::default()` with the error recorded. The placeholder is
    /// never a setting's default: a value read with a problem recorded is never used
    /// ([`Problems::finish`] gives the problems instead), and defaults come from the
    /// table alone ([`super::table`]).
    pub fn or_default<T: Default>(&mut self, r: Result<T, ConfigError>) -> T {
        r.unwrap_or_else(|e| {
            self.push(e);
            T::default()
        })
    }

    /// The value of `r`, or `None` with the error recorded.
    pub fn ok<T>(&mut self, r: Result<T, ConfigError>) -> Option<T> {
        r.map_err(|e| self.push(e)).ok()
    }

    pub fn push(&mut self, problem: impl ToString) {
        self.0.push(problem.to_string());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What `read` gives for an empty configuration: every setting at the table's default
    /// (what the `Default` of each sub-configuration is).
    pub fn defaults<T>(read: impl FnOnce(&ConfigFile, &mut Problems) -> T) -> T {
        read(&ConfigFile::default(), &mut Problems::default())
    }

    /// `value` when nothing was recorded.
    pub fn finish<T>(self, value: T) -> Result<T, SettingsError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(SettingsError(self.0))
        }
    }
}
