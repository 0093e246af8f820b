//! Configuration sources and the rules every command shares.
//!
//! Every setting is declared once in [`table`] (environment variable, YAML key, kind,
//! default, description, secrecy); the readers of [`ConfigFile`] take a [`table::Setting`].
//! The settings of each part ([`daemon`] for `ivre-connector run`, [`sync`], [`s3`], and
//! the enrichment, network and fallback settings next to their code) are read with
//! `read(config, &mut Problems)`, so the daemon's are validated together and every problem
//! is reported at once ([`Problems`]); their `Default` is what an empty configuration
//! reads ([`Problems::defaults`]).
//!
//! A value comes from, in order (pycti's `get_config_variable`): the environment
//! variable when it is set (an empty one counts as unset), else the `section.key` of the
//! YAML configuration when the key exists, else the table's default. The configuration
//! file is `--config FILE`, else `./config.yml` when present.
//!
//! The process environment is read here only, through [`process_env`], by [`GlobalArgs`]
//! ([`GlobalArgs::load`], and the logging and colour setup: `IVRE_LOG`, `NO_COLOR`), the
//! test hooks of the `test-hooks` feature aside; a [`ConfigFile`] holds the environment it
//! was given, so tests pass an explicit map.
//!
//! The data directory: `--data-dir`, else `IVRE_DATA_DIR` / `ivre.data_dir`, else
//! `./ivre-data`.

pub mod daemon;
#[cfg(test)]
mod daemon_tests;
pub mod generate;
mod problems;
mod read;
pub mod s3;
pub mod sync;
pub mod table;

pub use problems::{Problems, SettingsError};
pub use read::{check, parse_bool, parse_duration, parse_list, DurationError};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Default data directory, relative to the working directory (`IVRE_DATA_DIR`'s default in
/// the table).
pub const DEFAULT_DATA_DIR: &str = match table::IVRE_DATA_DIR.default {
    Some(dir) => dir,
    None => panic!("IVRE_DATA_DIR has a default in the table"),
};
/// Configuration file read when `--config` is not given and it exists.
pub const DEFAULT_CONFIG_FILE: &str = "./config.yml";

/// Environment variables by name.
pub type Env = BTreeMap<String, String>;

/// The process environment (UTF-8 variables only, as `std::env::var` reads them), with
/// the lower-case `http_proxy`, `https_proxy` and `no_proxy` standing in for their
/// upper-case spellings when those are unset.
pub fn process_env() -> Env {
    with_lower_case_proxies(
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
    )
}

/// See [`process_env`].
pub fn with_lower_case_proxies(mut env: Env) -> Env {
    for setting in [&table::HTTP_PROXY, &table::HTTPS_PROXY, &table::NO_PROXY] {
        if !env.contains_key(setting.env) {
            if let Some(v) = env.get(&setting.env.to_ascii_lowercase()).cloned() {
                env.insert(setting.env.to_owned(), v);
            }
        }
    }
    env
}

/// The options every command of both binaries takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GlobalArgs {
    /// Data directory holding the snapshots [default: IVRE_DATA_DIR, ivre.data_dir, ./ivre-data]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file [default: ./config.yml when present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// More logs on stderr (-v, -vv, -vvv); IVRE_LOG takes a tracing filter
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Errors only: no progress bars, no logs below `error`, no report lines
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Coloured logs: auto (on a terminal, unless NO_COLOR is set), always or never
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto")]
    pub color: crate::logging::Color,
}

impl GlobalArgs {
    /// Loads the configuration file with the process environment and resolves the data
    /// directory.
    pub fn load(&self) -> Result<(ConfigFile, crate::snapshot::DataDir), ConfigError> {
        let config = ConfigFile::load(self.config.as_deref())?.with_env(process_env());
        let data = crate::snapshot::DataDir::new(config.data_dir(self.data_dir.as_deref()));
        Ok((config, data))
    }

    /// Logs to stderr, as every command line does (`logging::init_cli`): `base` level,
    /// raised by each `-v`, `error` with `--quiet`; `IVRE_LOG` overrides (not
    /// `--quiet`); colours as `--color` and `NO_COLOR` say.
    pub fn init_logging(&self, base: tracing::Level) {
        let env = process_env();
        let ansi = self.ansi();
        let level = crate::logging::cli_level(base, self.verbose, self.quiet);
        // `--quiet` on the command line wins over IVRE_LOG. A second setup in one process
        // is a programming error; the first one stays.
        let ivre_log = env
            .get(table::IVRE_LOG.env)
            .filter(|_| !self.quiet)
            .map(String::as_str);
        let _ = crate::logging::init_cli(level, ivre_log, ansi);
    }

    /// Whether text on stderr may be coloured (`--color`, `NO_COLOR`, a terminal).
    pub fn ansi(&self) -> bool {
        self.color.ansi(
            process_env().get("NO_COLOR").map(String::as_str),
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
        )
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
    /// `setting` is a label such as `ivre.use_scans (IVRE_USE_SCANS)`.
    #[error("{setting}: expected {expected}, found {found:?}")]
    Invalid {
        setting: String,
        expected: &'static str,
        found: String,
    },
    #[error("{setting}: {found} is not {}", read::range_text(*.min, *.max))]
    OutOfRange {
        setting: String,
        found: u64,
        min: u64,
        max: u64,
    },
    #[error("{setting}: `{found}` is not {values}")]
    NotOneOf {
        setting: String,
        found: String,
        values: String,
    },
    #[error("{setting}: {source}")]
    Duration {
        setting: String,
        #[source]
        source: DurationError,
    },
    #[error("{setting} is required")]
    Required { setting: String },
}

/// The YAML configuration file, if any, and the environment.
#[derive(Clone, Default)]
pub struct ConfigFile {
    pub path: Option<PathBuf>,
    yaml: Option<serde_norway::Value>,
    env: Arc<Env>,
}

impl std::fmt::Debug for ConfigFile {
    /// The file and the names of the variables (values may be secret).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigFile")
            .field("path", &self.path)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ConfigFile {
    /// `--config FILE` (which must exist), else `./config.yml` when present, else none;
    /// with no environment (see [`ConfigFile::with_env`]).
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

    /// Parses YAML text (`path` is only used in messages), with no environment.
    pub fn parse(text: &str, path: Option<PathBuf>) -> Result<ConfigFile, ConfigError> {
        let yaml: serde_norway::Value =
            serde_norway::from_str(text).map_err(|e| ConfigError::Yaml {
                path: path.clone().unwrap_or_else(|| PathBuf::from("<config>")),
                reason: e.to_string(),
            })?;
        Ok(ConfigFile {
            path,
            yaml: Some(yaml),
            env: Arc::default(),
        })
    }

    /// No file, only environment variables.
    pub fn from_env(env: Env) -> ConfigFile {
        ConfigFile::default().with_env(env)
    }

    /// The same file read with the environment `env`.
    pub fn with_env(mut self, env: Env) -> ConfigFile {
        self.env = Arc::new(env);
        self
    }

    /// The environment this configuration was given.
    pub fn env(&self) -> &Env {
        &self.env
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

    /// The data directory: `cli` (from `--data-dir`), else `IVRE_DATA_DIR` /
    /// `ivre.data_dir`, else its default ([`DEFAULT_DATA_DIR`]).
    pub fn data_dir(&self, cli: Option<&Path>) -> PathBuf {
        if let Some(dir) = cli {
            return dir.to_owned();
        }
        self.path(&table::IVRE_DATA_DIR)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }
}

#[cfg(test)]
mod tests;
