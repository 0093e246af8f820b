//! Collecting every configuration problem, so that all are reported at once.

use super::ConfigError;

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

    /// The value of `r`, or `fallback` with the error recorded.
    pub fn take<T>(&mut self, r: Result<T, ConfigError>, fallback: T) -> T {
        r.unwrap_or_else(|e| {
            self.push(e);
            fallback
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

    /// `value` when nothing was recorded.
    pub fn finish<T>(self, value: T) -> Result<T, SettingsError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(SettingsError(self.0))
        }
    }
}
