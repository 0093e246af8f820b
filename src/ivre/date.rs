//! IVRE dates in every form IVRE writes them.
//!
//! - CLI `--json`: Python's `str(datetime)`, naive UTC: `2026-11-28 21:19:42`, with
//!   `.ffffff` only when the microseconds are not zero (`scan2db -t` adds `+00:00`);
//! - web API: integer (or float) epoch seconds;
//! - MongoDB Extended JSON: `{"$date": "2026-11-28T21:19:42Z"}` or
//!   `{"$date": {"$numberLong": "<milliseconds>"}}`;
//! - Nmap's raw `ssl-cert` table: ISO 8601 `2026-11-28T21:19:35`.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// A point in time, UTC, with microsecond precision (as Python's `datetime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp {
    /// Microseconds since the Unix epoch.
    pub micros: i64,
}

impl Timestamp {
    /// From epoch seconds, as the web API sends them.
    pub fn from_epoch_seconds(secs: f64) -> Option<Self> {
        if !secs.is_finite() || secs.abs() > 1.0e13 {
            return None;
        }
        Some(Timestamp {
            micros: (secs * 1_000_000.0).round() as i64,
        })
    }

    /// Parses any textual form IVRE or MongoDB uses.
    pub fn parse_str(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Some(Self::from_utc(dt.with_timezone(&Utc)));
        }
        // `2026-11-28 21:19:35+00:00`
        if let Ok(dt) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z") {
            return Some(Self::from_utc(dt.with_timezone(&Utc)));
        }
        let naive = s.strip_suffix('Z').unwrap_or(s);
        for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
            if let Ok(dt) = NaiveDateTime::parse_from_str(naive, fmt) {
                return Some(Self::from_utc(Utc.from_utc_datetime(&dt)));
            }
        }
        None
    }

    /// Parses a JSON value in any of IVRE's forms; `None` when it is not a date.
    pub fn from_json(v: &Value) -> Option<Self> {
        match v {
            Value::String(s) => Self::parse_str(s),
            Value::Number(n) => n.as_f64().and_then(Self::from_epoch_seconds),
            Value::Object(map) => match map.get("$date")? {
                Value::String(s) => Self::parse_str(s),
                Value::Number(n) => n.as_i64().map(|ms| Timestamp { micros: ms * 1000 }),
                Value::Object(inner) => inner
                    .get("$numberLong")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<i64>().ok())
                    .map(|ms| Timestamp { micros: ms * 1000 }),
                _ => None,
            },
            _ => None,
        }
    }

    fn from_utc(dt: DateTime<Utc>) -> Self {
        Timestamp {
            micros: dt.timestamp_micros(),
        }
    }

    /// The same instant as a chrono value.
    pub fn to_datetime(self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_micros(self.micros)
    }

    /// Python's `str(datetime)` form, as `ivre ... --json` prints it.
    pub fn to_ivre_string(self) -> String {
        match self.to_datetime() {
            Some(dt) if dt.timestamp_subsec_micros() == 0 => {
                dt.format("%Y-%m-%d %H:%M:%S").to_string()
            }
            Some(dt) => dt.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
            None => self.micros.to_string(),
        }
    }

    /// RFC 3339 with a `Z`, second precision (`%Y-%m-%dT%H:%M:%SZ`, as the Python connector).
    pub fn to_rfc3339(self) -> String {
        match self.to_datetime() {
            Some(dt) => dt.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            None => self.micros.to_string(),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_ivre_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_ivre_form_gives_the_same_instant() {
        let cli = Timestamp::parse_str("2026-11-28 21:19:42").unwrap();
        assert_eq!(Timestamp::from_json(&json!(1795900782)), Some(cli));
        assert_eq!(
            Timestamp::from_json(&json!({"$date": "2026-11-28T21:19:42Z"})),
            Some(cli)
        );
        assert_eq!(
            Timestamp::from_json(&json!({"$date": {"$numberLong": "1795900782000"}})),
            Some(cli)
        );
        assert_eq!(Timestamp::parse_str("2026-11-28 21:19:42+00:00"), Some(cli));
        assert_eq!(Timestamp::parse_str("2026-11-28T21:19:42"), Some(cli));
        assert_eq!(cli.to_ivre_string(), "2026-11-28 21:19:42");
        assert_eq!(cli.to_rfc3339(), "2026-11-28T21:19:42Z");
    }

    #[test]
    fn microseconds_only_when_not_zero() {
        let t = Timestamp::parse_str("2026-11-28 21:19:42.000120").unwrap();
        assert_eq!(t.to_ivre_string(), "2026-11-28 21:19:42.000120");
        assert_eq!(
            Timestamp::from_json(&json!(1795900782.5))
                .unwrap()
                .to_ivre_string(),
            "2026-11-28 21:19:42.500000"
        );
    }

    #[test]
    fn garbage_is_not_a_date() {
        assert_eq!(Timestamp::parse_str("yesterday"), None);
        assert_eq!(Timestamp::from_json(&json!(true)), None);
        assert_eq!(Timestamp::from_json(&json!(f64::MAX)), None);
    }
}
