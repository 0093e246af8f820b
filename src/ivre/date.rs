//! IVRE dates in every form IVRE writes them.
//!
//! - CLI `--json`: Python's `str(datetime)`, naive UTC: `2026-11-28 21:19:42`, with
//!   `.ffffff` only when the microseconds are not zero (`scan2db -t` adds `+00:00`);
//! - web API: integer (or float) epoch seconds;
//! - MongoDB Extended JSON: `{"$date": "2026-11-28T21:19:42Z"}` or
//!   `{"$date": {"$numberLong": "<milliseconds>"}}`;
//! - Nmap's raw `ssl-cert` table: ISO 8601 `2026-11-28T21:19:35`.

use chrono::{DateTime, Datelike, NaiveDateTime, TimeZone, Timelike, Utc};
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
        if let Some(t) = Self::parse_plain(s) {
            return Some(t);
        }
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

    /// The common form, `YYYY-MM-DD[ T]HH:MM:SS[.f…][Z]` (what `ivre … --json` prints),
    /// read without chrono's format parser (several times faster, and imports read
    /// millions of dates); `None` sends anything else to the general parsers.
    fn parse_plain(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() < 19
            || b[4] != b'-'
            || b[7] != b'-'
            || !matches!(b[10], b' ' | b'T')
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let num = |from: usize, to: usize| -> Option<u32> {
            b[from..to].iter().try_fold(0u32, |acc, c| {
                c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
            })
        };
        let rest = &b[19..];
        let rest = rest.strip_suffix(b"Z").unwrap_or(rest);
        let nanos = match rest {
            [] => 0,
            [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
                let value = num(20, 20 + digits.len())?;
                value * 10u32.pow(9 - digits.len() as u32)
            }
            _ => return None,
        };
        let date = chrono::NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(5, 7)?, num(8, 10)?)?;
        let time =
            chrono::NaiveTime::from_hms_nano_opt(num(11, 13)?, num(14, 16)?, num(17, 19)?, nanos)?;
        Some(Self::from_utc(
            Utc.from_utc_datetime(&NaiveDateTime::new(date, time)),
        ))
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
            Some(dt) if (0..=9999).contains(&dt.year()) => {
                let mut out = plain(&dt, ' ');
                let micros = dt.timestamp_subsec_micros();
                if micros != 0 {
                    out.push_str(&format!(".{micros:06}"));
                }
                out
            }
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
            Some(dt) if (0..=9999).contains(&dt.year()) => plain(&dt, 'T') + "Z",
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

/// `YYYY-MM-DD<sep>HH:MM:SS` of a date in years 0-9999 (chrono's `%Y-%m-%d %H:%M:%S`
/// without parsing a format string for every date).
fn plain(dt: &DateTime<Utc>, sep: char) -> String {
    format!(
        "{:04}-{:02}-{:02}{sep}{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_fast_path_agrees_with_chrono() {
        for s in [
            "2026-11-28 21:19:35",
            "2026-11-28T21:19:35",
            "2026-11-28 21:19:35.5",
            "2026-11-28 21:19:35.123456",
            "2026-11-28 21:19:35.123456789",
            "2026-11-28T21:19:35.25Z",
            "1999-02-28 00:00:00",
        ] {
            let naive = s.strip_suffix('Z').unwrap_or(s);
            let slow = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(naive, f).ok())
                .map(|dt| Utc.from_utc_datetime(&dt).timestamp_micros());
            assert_eq!(Timestamp::parse_plain(s).map(|t| t.micros), slow, "{s}");
        }
        for s in [
            "2026-02-30 00:00:00",
            "2026-11-28 21:19",
            "2026-11-28 21:19:35+00:00",
            "2026-11-28 21:19:60",
            "2026-11-28 21:19:35.",
        ] {
            assert_eq!(Timestamp::parse_plain(s), None, "{s}");
        }
        let t = Timestamp::parse_str("2026-11-28 21:19:35.000250").unwrap();
        assert_eq!(t.to_ivre_string(), "2026-11-28 21:19:35.000250");
        assert_eq!(t.to_rfc3339(), "2026-11-28T21:19:35Z");
    }

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
