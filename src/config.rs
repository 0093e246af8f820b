//! Configuration sources and the rules every command shares.
//!
//! A value comes from, in order (pycti's `get_config_variable`): the environment
//! variable when it is set, else the `section.key` of the YAML configuration when the
//! key exists, else the default. The configuration file is `--config FILE`, else
//! `./config.yml` when present.
//!
//! The data directory: `--data-dir`, else `IVRE_DATA_DIR` / `ivre.data_dir`, else
//! `./ivre-data`.

use std::path::{Path, PathBuf};

/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./ivre-data";
/// Configuration file read when `--config` is not given and it exists.
pub const DEFAULT_CONFIG_FILE: &str = "./config.yml";

/// The options every command of both binaries takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GlobalArgs {
    /// Data directory holding the snapshots [default: IVRE_DATA_DIR, ivre.data_dir, ./ivre-data]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file [default: ./config.yml when present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// More logs on stderr (-v, -vv); IVRE_LOG takes a tracing filter
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl GlobalArgs {
    /// Loads the configuration file and resolves the data directory.
    pub fn load(&self) -> Result<(ConfigFile, crate::snapshot::DataDir), ConfigError> {
        let config = ConfigFile::load(self.config.as_deref())?;
        let data = crate::snapshot::DataDir::new(config.data_dir(self.data_dir.as_deref()));
        Ok((config, data))
    }

    /// Logs to stderr: `base` level, raised by each `-v`; `IVRE_LOG` overrides.
    pub fn init_logging(&self, base: tracing::Level) {
        let levels = [
            tracing::Level::ERROR,
            tracing::Level::WARN,
            tracing::Level::INFO,
            tracing::Level::DEBUG,
            tracing::Level::TRACE,
        ];
        let start = levels.iter().position(|l| *l == base).unwrap_or(1);
        let level = levels[(start + usize::from(self.verbose)).min(levels.len() - 1)];
        let filter = tracing_subscriber::EnvFilter::try_from_env("IVRE_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level.as_str()));
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration {path} is not valid YAML: {reason}")]
    Yaml { path: PathBuf, reason: String },
    #[error("{key} ({env}): expected {expected}, found {found:?}")]
    Invalid {
        key: String,
        env: String,
        expected: &'static str,
        found: String,
    },
}

/// The YAML configuration file, if any.
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    pub path: Option<PathBuf>,
    yaml: Option<serde_norway::Value>,
}

impl ConfigFile {
    /// `--config FILE` (which must exist), else `./config.yml` when present, else none.
    pub fn load(explicit: Option<&Path>) -> Result<ConfigFile, ConfigError> {
        let path = match explicit {
            Some(p) => p.to_owned(),
            None => {
                let default = PathBuf::from(DEFAULT_CONFIG_FILE);
                if !default.is_file() {
                    return Ok(ConfigFile::default());
                }
                default
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        ConfigFile::parse(&text, Some(path))
    }

    /// Parses YAML text (`path` is only used in messages).
    pub fn parse(text: &str, path: Option<PathBuf>) -> Result<ConfigFile, ConfigError> {
        let yaml: serde_norway::Value =
            serde_norway::from_str(text).map_err(|e| ConfigError::Yaml {
                path: path.clone().unwrap_or_else(|| PathBuf::from("<config>")),
                reason: e.to_string(),
            })?;
        Ok(ConfigFile {
            path,
            yaml: Some(yaml),
        })
    }

    /// The YAML value at `section.key`: `None` when the key is absent, `Some(None)`
    /// when it is present but empty (pycti then returns null, not the default).
    fn yaml(&self, section: &str, key: &str) -> Option<Option<String>> {
        let value = self.yaml.as_ref()?.get(section)?.get(key)?;
        Some(match value {
            serde_norway::Value::Null => None,
            serde_norway::Value::String(s) => Some(s.clone()),
            serde_norway::Value::Bool(b) => Some(b.to_string()),
            serde_norway::Value::Number(n) => Some(n.to_string()),
            other => serde_norway::to_string(other)
                .ok()
                .map(|s| s.trim().to_owned()),
        })
    }

    /// A string setting: environment variable `env` when set, else `section.key`.
    /// An empty value counts as unset.
    pub fn get(&self, env: &str, section: &str, key: &str) -> Option<String> {
        if let Ok(v) = std::env::var(env) {
            return Some(v).filter(|v| !v.is_empty());
        }
        self.yaml(section, key).flatten().filter(|v| !v.is_empty())
    }

    /// A boolean setting, parsed as pycti does (`yes`/`true`/`True`, `no`/`false`/`False`).
    pub fn get_bool(
        &self,
        env: &str,
        section: &str,
        key: &str,
        default: bool,
    ) -> Result<bool, ConfigError> {
        match self.get(env, section, key) {
            None => Ok(default),
            Some(v) => match v.as_str() {
                "yes" | "true" | "True" => Ok(true),
                "no" | "false" | "False" => Ok(false),
                _ => Err(ConfigError::Invalid {
                    key: format!("{section}.{key}"),
                    env: env.to_owned(),
                    expected: "true or false",
                    found: v,
                }),
            },
        }
    }

    /// An unsigned integer setting.
    pub fn get_u64(
        &self,
        env: &str,
        section: &str,
        key: &str,
        default: u64,
    ) -> Result<u64, ConfigError> {
        match self.get(env, section, key) {
            None => Ok(default),
            Some(v) => v.trim().parse::<u64>().map_err(|_| ConfigError::Invalid {
                key: format!("{section}.{key}"),
                env: env.to_owned(),
                expected: "a non-negative integer",
                found: v,
            }),
        }
    }

    /// The data directory: `cli` (from `--data-dir`), else `IVRE_DATA_DIR` /
    /// `ivre.data_dir`, else [`DEFAULT_DATA_DIR`].
    pub fn data_dir(&self, cli: Option<&Path>) -> PathBuf {
        if let Some(dir) = cli {
            return dir.to_owned();
        }
        self.get("IVRE_DATA_DIR", "ivre", "data_dir")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_keys_and_pycti_booleans() {
        let c = ConfigFile::parse(
            "ivre:\n  data_dir: /srv/ivre\n  use_scans: 'no'\n  empty:\nopencti:\n  url: http://x\n",
            None,
        )
        .unwrap();
        assert_eq!(
            c.get("TEST_CFG_UNSET_1", "ivre", "data_dir").as_deref(),
            Some("/srv/ivre")
        );
        assert_eq!(c.data_dir(None), PathBuf::from("/srv/ivre"));
        assert_eq!(c.data_dir(Some(Path::new("/cli"))), PathBuf::from("/cli"));
        assert!(!c
            .get_bool("TEST_CFG_UNSET_2", "ivre", "use_scans", true)
            .unwrap());
        assert!(c
            .get_bool("TEST_CFG_UNSET_3", "ivre", "missing", true)
            .unwrap());
        assert_eq!(c.get("TEST_CFG_UNSET_4", "ivre", "empty"), None);
        let bad = ConfigFile::parse("ivre:\n  use_scans: 'TRUE'\n", None).unwrap();
        let err = bad
            .get_bool("TEST_CFG_UNSET_5", "ivre", "use_scans", true)
            .unwrap_err();
        assert!(err.to_string().contains("ivre.use_scans"), "{err}");
    }

    #[test]
    fn the_sample_configuration_parses() {
        let c = ConfigFile::parse(include_str!("../config.yml.sample"), None).unwrap();
        assert_eq!(
            c.get("TEST_CFG_UNSET_6", "ivre", "data_dir").as_deref(),
            Some("./ivre-data")
        );
        assert!(!c
            .get_bool("TEST_CFG_UNSET_7", "ivre", "use_scans_as", true)
            .unwrap());
        assert!(c
            .get_bool("TEST_CFG_UNSET_8", "ivre", "use_passive", false)
            .unwrap());
        assert_eq!(c.get("TEST_CFG_UNSET_9", "ivre", "db_url"), None);
        // With the required values filled in, the sample is a valid daemon configuration.
        let filled = include_str!("../config.yml.sample").replace(
            "id: 'ChangeMe'",
            "id: '6c3f2a4e-8d2b-4a7e-9a36-1b2c3d4e5f60'",
        );
        let settings = crate::opencti::settings::Settings::from_config(
            &ConfigFile::parse(&filled, None).unwrap(),
        );
        assert!(
            settings.is_ok(),
            "{:?}",
            settings.err().map(|e| e.to_string())
        );
    }

    #[test]
    fn bad_yaml_names_the_file() {
        let err = ConfigFile::parse("ivre: [", Some(PathBuf::from("x.yml"))).unwrap_err();
        assert!(err.to_string().contains("x.yml"));
    }
}
