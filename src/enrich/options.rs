//! Enrichment settings, read like the Python connector's (environment, then YAML).

use crate::config::{ConfigError, ConfigFile};

/// Default `IVRE_MAX_RECORDS`: records used per search and observable.
pub const DEFAULT_MAX_RECORDS: usize = 1000;

/// What the enrichment uses and produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrichOptions {
    /// `IVRE_USE_DATA` (true): MaxMind data for addresses.
    pub use_data: bool,
    /// `IVRE_USE_PASSIVE` (true).
    pub use_passive: bool,
    /// `IVRE_USE_PASSIVE_AS` (true).
    pub use_passive_as: bool,
    /// `IVRE_USE_PASSIVE_DOMAIN` (true).
    pub use_passive_domain: bool,
    /// `IVRE_USE_SCANS` (true).
    pub use_scans: bool,
    /// `IVRE_USE_SCANS_AS` (false).
    pub use_scans_as: bool,
    /// `IVRE_USE_SCANS_DOMAIN` (false).
    pub use_scans_domain: bool,
    /// `IVRE_RELATIONSHIP_TIMES` (false): put IVRE's first/last seen in relationships'
    /// `start_time`/`stop_time` (ids unchanged) instead of only in their description.
    pub relationship_times: bool,
    /// `IVRE_MAX_RECORDS` (1000): records used per search.
    pub max_records: usize,
    /// `CONNECTOR_NAME` ("IVRE"): the author Organization.
    pub author_name: String,
}

impl Default for EnrichOptions {
    fn default() -> Self {
        EnrichOptions {
            use_data: true,
            use_passive: true,
            use_passive_as: true,
            use_passive_domain: true,
            use_scans: true,
            use_scans_as: false,
            use_scans_domain: false,
            relationship_times: false,
            max_records: DEFAULT_MAX_RECORDS,
            author_name: "IVRE".to_owned(),
        }
    }
}

impl EnrichOptions {
    /// Reads the settings; unlike the Python connector, the `ivre.use_*` YAML keys work.
    pub fn from_config(config: &ConfigFile) -> Result<EnrichOptions, ConfigError> {
        let d = EnrichOptions::default();
        let flag = |env: &str, key: &str, default: bool| config.get_bool(env, "ivre", key, default);
        let max_records = match config.get("IVRE_MAX_RECORDS", "ivre", "max_records") {
            None => d.max_records,
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError::Invalid {
                    key: "ivre.max_records".into(),
                    env: "IVRE_MAX_RECORDS".into(),
                    expected: "a positive integer",
                    found: v.clone(),
                })?,
        };
        Ok(EnrichOptions {
            use_data: flag("IVRE_USE_DATA", "use_data", d.use_data)?,
            use_passive: flag("IVRE_USE_PASSIVE", "use_passive", d.use_passive)?,
            use_passive_as: flag("IVRE_USE_PASSIVE_AS", "use_passive_as", d.use_passive_as)?,
            use_passive_domain: flag(
                "IVRE_USE_PASSIVE_DOMAIN",
                "use_passive_domain",
                d.use_passive_domain,
            )?,
            use_scans: flag("IVRE_USE_SCANS", "use_scans", d.use_scans)?,
            use_scans_as: flag("IVRE_USE_SCANS_AS", "use_scans_as", d.use_scans_as)?,
            use_scans_domain: flag(
                "IVRE_USE_SCANS_DOMAIN",
                "use_scans_domain",
                d.use_scans_domain,
            )?,
            relationship_times: flag(
                "IVRE_RELATIONSHIP_TIMES",
                "relationship_times",
                d.relationship_times,
            )?,
            max_records,
            author_name: config
                .get("CONNECTOR_NAME", "connector", "name")
                .unwrap_or(d.author_name),
        })
    }
}
