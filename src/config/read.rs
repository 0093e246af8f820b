//! Typed readers of a [`Setting`]: the value (environment, then YAML, as pycti) or the
//! table's default, parsed by the setting's kind.

use super::table::{Kind, Setting};
use super::{ConfigError, ConfigFile};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("invalid duration {0:?}: expected e.g. 30m, 1h, 1d")]
    Number(String),
    #[error("invalid duration {0:?}: the unit is s, m, h or d")]
    Unit(String),
    #[error("invalid duration {0:?}: must be more than zero")]
    Zero(String),
}

/// `30s`, `30m`, `1h`, `1d` (a bare number is seconds); zero is refused.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| DurationError::Number(s.to_owned()))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(DurationError::Unit(s.to_owned())),
    };
    match n.checked_mul(factor) {
        Some(0) => Err(DurationError::Zero(s.to_owned())),
        Some(secs) => Ok(Duration::from_secs(secs)),
        None => Err(DurationError::Number(s.to_owned())),
    }
}

/// pycti's booleans.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "yes" | "true" | "True" => Some(true),
        "no" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `a, b,,c` → `[a, b, c]`.
pub fn parse_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// `A`, `A or B`, `A, B or C`.
fn alternatives(values: &[&str]) -> String {
    match values.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// The text of an integer range, for messages.
pub(crate) fn range_text(min: u64, max: u64) -> String {
    if max == u64::MAX {
        format!("at least {min}")
    } else {
        format!("between {min} and {max}")
    }
}

/// Checks `text` against the kind of `setting` (what the readers below accept).
pub fn check(setting: &Setting, text: &str) -> Result<(), ConfigError> {
    let invalid = |expected: &'static str| ConfigError::Invalid {
        setting: setting.label(),
        expected,
        found: text.to_owned(),
    };
    match setting.kind {
        Kind::Str | Kind::Path | Kind::List => Ok(()),
        Kind::Bool => parse_bool(text).map(|_| ()).ok_or(invalid("true or false")),
        Kind::Int { .. } | Kind::Seconds { .. } => integer(setting, text).map(|_| ()),
        Kind::Duration => {
            parse_duration(text)
                .map(|_| ())
                .map_err(|source| ConfigError::Duration {
                    setting: setting.label(),
                    source,
                })
        }
        Kind::Period if text.trim().eq_ignore_ascii_case("off") => Ok(()),
        Kind::Period => parse_duration(text)
            .map(|_| ())
            .map_err(|source| ConfigError::Duration {
                setting: setting.label(),
                source,
            }),
        Kind::Enum(values) => choice(setting, values, text).map(|_| ()),
        Kind::Uri => text
            .split_once("://")
            .filter(|(scheme, _)| !scheme.is_empty())
            .map(|_| ())
            .ok_or(invalid("a URI (scheme://…)")),
        Kind::Ip => text
            .trim()
            .parse::<IpAddr>()
            .map(|_| ())
            .map_err(|_| invalid("an IP address")),
    }
}

fn integer(setting: &Setting, text: &str) -> Result<u64, ConfigError> {
    let (min, max) = match setting.kind {
        Kind::Int { min, max } => (min, max),
        Kind::Seconds { min } => (min, u64::MAX),
        _ => (0, u64::MAX),
    };
    let n = text
        .trim()
        .parse::<u64>()
        .map_err(|_| ConfigError::Invalid {
            setting: setting.label(),
            expected: if min > 0 {
                "a positive integer"
            } else {
                "a non-negative integer"
            },
            found: text.to_owned(),
        })?;
    if n < min || n > max {
        return Err(ConfigError::OutOfRange {
            setting: setting.label(),
            found: n,
            min,
            max,
        });
    }
    Ok(n)
}

fn choice(
    setting: &Setting,
    values: &'static [&'static str],
    text: &str,
) -> Result<&'static str, ConfigError> {
    values
        .iter()
        .copied()
        .find(|v| v.eq_ignore_ascii_case(text.trim()))
        .ok_or_else(|| ConfigError::NotOneOf {
            setting: setting.label(),
            found: text.to_owned(),
            values: alternatives(values),
        })
}

impl ConfigFile {
    /// The value an operator gave (environment variable when set, else the YAML key),
    /// `None` when unset or empty; the default is not applied.
    pub fn value(&self, setting: &Setting) -> Option<String> {
        if let Some(v) = self.env.get(setting.env) {
            return Some(v.clone()).filter(|v| !v.is_empty());
        }
        let (section, key) = setting.yaml?;
        self.yaml(section, key).flatten().filter(|v| !v.is_empty())
    }

    /// Set, but to nothing: the environment variable is present and empty (or blank), or
    /// the YAML key is present with no value. A required-when-set setting such as
    /// `IVRE_MAX_TLP` treats this as an error, never as unset.
    pub fn set_but_empty(&self, setting: &Setting) -> bool {
        if let Some(v) = self.env.get(setting.env) {
            return v.trim().is_empty();
        }
        setting
            .yaml
            .and_then(|(section, key)| self.yaml(section, key))
            .is_some_and(|v| v.is_none_or(|v| v.trim().is_empty()))
    }

    /// The value, else the table's default.
    pub fn string(&self, setting: &Setting) -> Option<String> {
        self.value(setting)
            .or_else(|| setting.default.map(str::to_owned))
    }

    /// The value, else the default; a setting without either is [`ConfigError::Required`].
    fn text(&self, setting: &Setting) -> Result<String, ConfigError> {
        self.string(setting).ok_or_else(|| ConfigError::Required {
            setting: setting.label(),
        })
    }

    /// A boolean the operator gave, if any.
    pub fn optional_flag(&self, setting: &Setting) -> Result<Option<bool>, ConfigError> {
        self.value(setting)
            .map(|v| {
                parse_bool(&v).ok_or(ConfigError::Invalid {
                    setting: setting.label(),
                    expected: "true or false",
                    found: v,
                })
            })
            .transpose()
    }

    /// A boolean: the value, else the default (false when the table has none).
    pub fn flag(&self, setting: &Setting) -> Result<bool, ConfigError> {
        match self.optional_flag(setting)? {
            Some(b) => Ok(b),
            None => Ok(setting.default.and_then(parse_bool).unwrap_or(false)),
        }
    }

    /// An integer the operator gave, if any, within the setting's bounds.
    pub fn optional_integer(&self, setting: &Setting) -> Result<Option<u64>, ConfigError> {
        self.value(setting)
            .map(|v| integer(setting, &v))
            .transpose()
    }

    /// An integer: the value, else the default.
    pub fn integer(&self, setting: &Setting) -> Result<u64, ConfigError> {
        integer(setting, &self.text(setting)?)
    }

    /// A port (an integer setting bounded to 65535).
    pub fn port(&self, setting: &Setting) -> Result<u16, ConfigError> {
        let n = self.integer(setting)?;
        u16::try_from(n).map_err(|_| ConfigError::OutOfRange {
            setting: setting.label(),
            found: n,
            min: 0,
            max: u64::from(u16::MAX),
        })
    }

    /// A whole number of seconds ([`Kind::Seconds`]).
    pub fn seconds(&self, setting: &Setting) -> Result<Duration, ConfigError> {
        self.integer(setting).map(Duration::from_secs)
    }

    /// A duration with a unit ([`Kind::Duration`]).
    pub fn duration(&self, setting: &Setting) -> Result<Duration, ConfigError> {
        parse_duration(&self.text(setting)?).map_err(|source| ConfigError::Duration {
            setting: setting.label(),
            source,
        })
    }

    /// A period ([`Kind::Period`]): `None` for `off`.
    pub fn period(&self, setting: &Setting) -> Result<Option<Duration>, ConfigError> {
        let text = self.text(setting)?;
        if text.trim().eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        parse_duration(&text)
            .map(Some)
            .map_err(|source| ConfigError::Duration {
                setting: setting.label(),
                source,
            })
    }

    /// One of the setting's values ([`Kind::Enum`]), in the table's spelling, if set
    /// or defaulted.
    pub fn choice(&self, setting: &Setting) -> Result<Option<&'static str>, ConfigError> {
        let Kind::Enum(values) = setting.kind else {
            return Ok(None);
        };
        self.string(setting)
            .map(|v| choice(setting, values, &v))
            .transpose()
    }

    /// A path: the value, else the default.
    pub fn path(&self, setting: &Setting) -> Option<PathBuf> {
        self.string(setting).map(PathBuf::from)
    }

    /// An IP address: the value, else the default.
    pub fn ip(&self, setting: &Setting) -> Result<IpAddr, ConfigError> {
        let text = self.text(setting)?;
        text.trim().parse().map_err(|_| ConfigError::Invalid {
            setting: setting.label(),
            expected: "an IP address",
            found: text,
        })
    }

    /// A comma-separated list: the value, else the default (empty without either).
    pub fn list(&self, setting: &Setting) -> Vec<String> {
        self.string(setting)
            .map(|v| parse_list(&v))
            .unwrap_or_default()
    }
}
