//! Settings of snapshot synchronisation: pulls from live IVRE, the drop folder and
//! published generations (read by the daemon and by `ivre-sync`).

use super::table;
use super::{ConfigFile, Problems, SettingsError};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where generations are published or fetched (`IVRE_SNAPSHOT_PUBLISH`,
/// `IVRE_SNAPSHOT_SOURCE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotLocation {
    /// `s3://bucket/prefix` (the prefix without leading or trailing `/`, maybe empty).
    S3 { bucket: String, prefix: String },
    /// `file:///path`: a directory (local, or a shared mount).
    File(PathBuf),
}

impl SnapshotLocation {
    /// Parses `s3://bucket/prefix` or `file:///absolute/path`.
    pub fn parse(text: &str) -> Result<SnapshotLocation, String> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("`{text}` names no bucket (s3://bucket/prefix)"));
            }
            return Ok(SnapshotLocation::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            });
        }
        if let Some(path) = text.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "`{text}` is not an absolute file URI (file:///path)"
                ));
            }
            return Ok(SnapshotLocation::File(PathBuf::from(path)));
        }
        Err(format!(
            "`{text}` is neither s3://bucket/prefix nor file:///path"
        ))
    }
}

impl fmt::Display for SnapshotLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotLocation::S3 { bucket, prefix } if prefix.is_empty() => {
                write!(f, "s3://{bucket}")
            }
            SnapshotLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            SnapshotLocation::File(path) => write!(f, "file://{}", path.display()),
        }
    }
}

/// `IVRE_SYNC_*`, `IVRE_DROP_DIR`, `IVRE_SNAPSHOT_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    /// Incremental pull period (`IVRE_SYNC_INTERVAL`, default 1 h); `None` (`off`): the
    /// daemon does not pull.
    pub interval: Option<Duration>,
    /// Full pull period (`IVRE_SYNC_FULL_INTERVAL`, default 1 d).
    pub full_interval: Duration,
    /// The watched drop folder (`IVRE_DROP_DIR`).
    pub drop_dir: Option<PathBuf>,
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
        SyncSettings {
            interval: Some(Duration::from_secs(3600)),
            full_interval: Duration::from_secs(86400),
            drop_dir: None,
            publish: None,
            source: None,
            poll: Duration::from_secs(60),
        }
    }
}

impl SyncSettings {
    /// Reads and validates the settings; all problems are reported together.
    pub fn from_config(config: &ConfigFile) -> Result<SyncSettings, SettingsError> {
        Problems::collect(|p| SyncSettings::read(config, p))
    }

    /// Reads the settings, recording problems in `problems`.
    pub fn read(config: &ConfigFile, problems: &mut Problems) -> SyncSettings {
        let d = SyncSettings::default();
        let mut location = |setting: &table::Setting| {
            config
                .value(setting)
                .and_then(|v| match SnapshotLocation::parse(&v) {
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
            interval: problems.take(config.period(&table::IVRE_SYNC_INTERVAL), d.interval),
            full_interval: problems.take(
                config.duration(&table::IVRE_SYNC_FULL_INTERVAL),
                d.full_interval,
            ),
            drop_dir: config.path(&table::IVRE_DROP_DIR),
            publish,
            source,
            poll: problems.take(config.duration(&table::IVRE_SNAPSHOT_POLL), d.poll),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            SnapshotLocation::parse("s3://bucket/a/b/").unwrap(),
            SnapshotLocation::S3 {
                bucket: "bucket".into(),
                prefix: "a/b".into()
            }
        );
        assert_eq!(
            SnapshotLocation::parse("file:///srv/snap").unwrap(),
            SnapshotLocation::File(PathBuf::from("/srv/snap"))
        );
        for bad in ["s3:///x", "file://relative", "http://x"] {
            assert!(SnapshotLocation::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            SnapshotLocation::parse("s3://b").unwrap().to_string(),
            "s3://b"
        );
    }

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
