//! Settings of snapshot synchronisation: pulls from live IVRE, the drop folder and
//! published generations (read by the daemon and by `ivre-sync`).

use super::table;
use super::{ConfigFile, Problems, SettingsError};
use std::path::PathBuf;
use std::time::Duration;

/// Where generations are published or fetched: `s3://bucket/prefix` or `file:///path`
/// (`IVRE_SNAPSHOT_PUBLISH`, `IVRE_SNAPSHOT_SOURCE`; parsed by the distribution module).
pub use crate::distribute::StoreUrl as SnapshotLocation;

/// `IVRE_SYNC_*`, `IVRE_DROP_*`, `IVRE_SNAPSHOT_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    /// Incremental pull period (`IVRE_SYNC_INTERVAL`, default 1 h); `None` (`off`): the
    /// daemon does not pull.
    pub interval: Option<Duration>,
    /// Full pull period (`IVRE_SYNC_FULL_INTERVAL`, default 1 d).
    pub full_interval: Duration,
    /// The watched drop folder (`IVRE_DROP_DIR`).
    pub drop_dir: Option<PathBuf>,
    /// Whether a dropped file waits for its `<name>.ready` marker, at start-up too
    /// (`IVRE_DROP_READY_MARKER`, default false).
    pub drop_ready_marker: bool,
    /// Where built generations are published (`IVRE_SNAPSHOT_PUBLISH`).
    pub publish: Option<SnapshotLocation>,
    /// Where a replica fetches generations (`IVRE_SNAPSHOT_SOURCE`).
    pub source: Option<SnapshotLocation>,
    /// How often a replica looks at `source` (`IVRE_SNAPSHOT_POLL`, default 1 min).
    pub poll: Duration,
}

impl Default for SyncSettings {
    /// The table's defaults.
    fn default() -> Self {
        Problems::defaults(SyncSettings::read)
    }
}

impl SyncSettings {
    /// Reads and validates the settings; all problems are reported together.
    pub fn from_config(config: &ConfigFile) -> Result<SyncSettings, SettingsError> {
        Problems::collect(|p| SyncSettings::read(config, p))
    }

    /// Reads the settings, recording problems in `problems`.
    pub fn read(config: &ConfigFile, problems: &mut Problems) -> SyncSettings {
        let mut location = |setting: &table::Setting| {
            config
                .value(setting)
                .and_then(|v| match v.parse::<SnapshotLocation>() {
                    Ok(l) => Some(l),
                    Err(e) => {
                        problems.push(format!("{}: {e}", setting.label()));
                        None
                    }
                })
        };
        let publish = location(&table::IVRE_SNAPSHOT_PUBLISH);
        let source = location(&table::IVRE_SNAPSHOT_SOURCE);
        SyncSettings {
            interval: problems.or_default(config.period(&table::IVRE_SYNC_INTERVAL)),
            full_interval: problems.or_default(config.duration(&table::IVRE_SYNC_FULL_INTERVAL)),
            drop_dir: config.path(&table::IVRE_DROP_DIR),
            drop_ready_marker: problems.or_default(config.flag(&table::IVRE_DROP_READY_MARKER)),
            publish,
            source,
            poll: problems.or_default(config.duration(&table::IVRE_SNAPSHOT_POLL)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let none = SyncSettings::from_config(&ConfigFile::default()).unwrap();
        assert_eq!(none, SyncSettings::default());
        let env = [
            ("IVRE_SYNC_INTERVAL", "30m"),
            ("IVRE_SYNC_FULL_INTERVAL", "0"),
            ("IVRE_SNAPSHOT_PUBLISH", "ftp://x"),
            ("IVRE_SNAPSHOT_SOURCE", "s3://bucket/gen"),
        ];
        let config = ConfigFile::from_env(
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let err = SyncSettings::from_config(&config).unwrap_err().to_string();
        assert!(
            err.contains("IVRE_SYNC_FULL_INTERVAL") && err.contains("IVRE_SNAPSHOT_PUBLISH"),
            "{err}"
        );
        let ok =
            ConfigFile::parse("ivre:\n  sync_interval: 30m\n  drop_dir: /drop\n", None).unwrap();
        let s = SyncSettings::from_config(&ok).unwrap();
        assert_eq!(s.interval, Some(Duration::from_secs(1800)));
        assert_eq!(s.drop_dir, Some(PathBuf::from("/drop")));
    }
}
