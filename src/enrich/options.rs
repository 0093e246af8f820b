//! Enrichment settings, read like the Python connector's (environment, then YAML).

use crate::config::{table, ConfigFile, Problems, SettingsError};

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
    /// `IVRE_NOTE` (true): add the Note saying what the answer was made of.
    pub note: bool,
    /// `CONNECTOR_NAME` ("IVRE"): the author Organization.
    pub author_name: String,
}

impl Default for EnrichOptions {
    /// The table's defaults.
    fn default() -> Self {
        Problems::defaults(EnrichOptions::read)
    }
}

impl EnrichOptions {
    /// Reads the settings; unlike the Python connector, the `ivre.use_*` YAML keys work.
    /// Every problem is reported.
    pub fn from_config(config: &ConfigFile) -> Result<EnrichOptions, SettingsError> {
        Problems::collect(|p| EnrichOptions::read(config, p))
    }

    /// Reads the settings, recording problems in `problems`.
    pub fn read(config: &ConfigFile, problems: &mut Problems) -> EnrichOptions {
        let mut flag = |setting: &table::Setting| problems.or_default(config.flag(setting));
        let use_data = flag(&table::IVRE_USE_DATA);
        let use_passive = flag(&table::IVRE_USE_PASSIVE);
        let use_passive_as = flag(&table::IVRE_USE_PASSIVE_AS);
        let use_passive_domain = flag(&table::IVRE_USE_PASSIVE_DOMAIN);
        let use_scans = flag(&table::IVRE_USE_SCANS);
        let use_scans_as = flag(&table::IVRE_USE_SCANS_AS);
        let use_scans_domain = flag(&table::IVRE_USE_SCANS_DOMAIN);
        let relationship_times = flag(&table::IVRE_RELATIONSHIP_TIMES);
        let note = flag(&table::IVRE_NOTE);
        let max_records = problems.or_default(config.integer(&table::IVRE_MAX_RECORDS));
        let max_records = usize::try_from(max_records).unwrap_or(usize::MAX);
        EnrichOptions {
            use_data,
            use_passive,
            use_passive_as,
            use_passive_domain,
            use_scans,
            use_scans_as,
            use_scans_domain,
            relationship_times,
            max_records,
            note,
            author_name: config.string(&table::CONNECTOR_NAME).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported() {
        let config = ConfigFile::parse(
            "ivre:\n  use_scans: maybe\n  use_data: 'no'\n  max_records: 0\n  use_passive: perhaps\n",
            None,
        )
        .unwrap();
        let err = EnrichOptions::from_config(&config).unwrap_err().to_string();
        for needle in ["IVRE_USE_SCANS", "IVRE_MAX_RECORDS", "IVRE_USE_PASSIVE"] {
            assert!(err.contains(needle), "{needle} missing in {err}");
        }
        let ok = ConfigFile::parse("ivre:\n  use_data: 'no'\n  max_records: 5\n", None).unwrap();
        let o = EnrichOptions::from_config(&ok).unwrap();
        assert!(!o.use_data && o.max_records == 5 && o.author_name == "IVRE");
    }
}
