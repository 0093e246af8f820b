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

/// Why a value that has the form of a date cannot be one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// Outside Python's `datetime` range (years 1 to 9999), as IVRE itself could not
    /// have written it; also NaN and infinite epochs.
    #[error("date out of range (years 1 to 9999): {0}")]
    OutOfRange(String),
    /// A MongoDB `{"$date": …}` wrapper (or a number wrapper in a date field) whose
    /// content is not a date.
    #[error("invalid date: {0}")]
    Invalid(String),
}

impl Timestamp {
    /// `0001-01-01T00:00:00Z` (Python's `datetime.min`), in microseconds.
    pub const MIN_MICROS: i64 = -62_135_596_800_000_000;
    /// `9999-12-31T23:59:59.999999Z` (Python's `datetime.max`), in microseconds.
    pub const MAX_MICROS: i64 = 253_402_300_799_999_999;

    /// From microseconds, when within years 1 to 9999.
    pub fn from_micros(micros: i64) -> Option<Self> {
        (Self::MIN_MICROS..=Self::MAX_MICROS)
            .contains(&micros)
            .then_some(Timestamp { micros })
    }

    /// From epoch seconds, as the web API sends them; `None` when not finite or
    /// outside years 1 to 9999.
    pub fn from_epoch_seconds(secs: f64) -> Option<Self> {
        Self::from_epoch_scaled(secs, 1_000_000.0)
    }

    /// From epoch milliseconds (MongoDB `$date`); `None` as [`Self::from_epoch_seconds`].
    pub fn from_epoch_millis(ms: f64) -> Option<Self> {
        Self::from_epoch_scaled(ms, 1_000.0)
    }

    fn from_epoch_scaled(value: f64, micros_per_unit: f64) -> Option<Self> {
        if !value.is_finite() {
            return None;
        }
        let micros = (value * micros_per_unit).round();
        // Compared as floats first: `as i64` saturates, and a value past the range
        // must be refused, not clamped.
        if micros < Self::MIN_MICROS as f64 || micros > Self::MAX_MICROS as f64 {
            return None;
        }
        Self::from_micros(micros as i64)
    }

    /// Parses any textual form IVRE or MongoDB uses (years 1 to 9999).
    pub fn parse_str(s: &str) -> Option<Self> {
        Self::parse_str_any(s).and_then(|t| Self::from_micros(t.micros))
    }

    /// [`Self::parse_str`] without the range check (a time zone can carry a date past
    /// year 9999).
    fn parse_str_any(s: &str) -> Option<Self> {
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

    /// Parses a JSON value in any of IVRE's forms; `None` when it is not a date, or an
    /// impossible one (see [`Self::from_json_checked`]).
    pub fn from_json(v: &Value) -> Option<Self> {
        Self::from_json_checked(v).ok().flatten()
    }

    /// Parses a JSON value in any of IVRE's forms: `Ok(None)` when it has no date form
    /// (a string that is not a date, a boolean…: read as absent), an error when it has
    /// one but cannot be a date IVRE wrote: epoch seconds or a `$date` outside years 1
    /// to 9999, NaN or infinite (MongoDB's `$numberDouble`), a `$date` wrapper holding
    /// something else.
    pub fn from_json_checked(v: &Value) -> Result<Option<Self>, DateError> {
        let out_of_range = || DateError::OutOfRange(v.to_string());
        match v {
            Value::String(s) => match Self::parse_str_any(s) {
                Some(t) => Self::from_micros(t.micros)
                    .map(Some)
                    .ok_or_else(out_of_range),
                None => Ok(None),
            },
            Value::Number(n) => match n.as_f64() {
                Some(secs) => Self::from_epoch_seconds(secs)
                    .map(Some)
                    .ok_or_else(out_of_range),
                None => Err(out_of_range()),
            },
            Value::Object(map) => {
                if let Some(date) = map.get("$date") {
                    return match Self::from_mongo_date(date) {
                        Some(t) => Ok(Some(t)),
                        None => Err(match date {
                            Value::String(s) if Self::parse_str_any(s).is_none() => {
                                DateError::Invalid(v.to_string())
                            }
                            Value::Object(inner)
                                if inner
                                    .get("$numberLong")
                                    .and_then(Value::as_str)
                                    .and_then(|s| s.trim().parse::<i64>().ok())
                                    .is_none() =>
                            {
                                DateError::Invalid(v.to_string())
                            }
                            Value::Number(_) | Value::Object(_) | Value::String(_) => {
                                out_of_range()
                            }
                            _ => DateError::Invalid(v.to_string()),
                        }),
                    };
                }
                // Epoch seconds still wrapped: `$numberDouble` NaN / Infinity, which
                // have no plain JSON form, or an integer wrapper.
                let (key, inner) = match map.iter().next() {
                    Some(kv) if map.len() == 1 => kv,
                    _ => return Ok(None),
                };
                if !matches!(
                    key.as_str(),
                    "$numberDouble" | "$numberLong" | "$numberInt" | "$numberDecimal"
                ) {
                    return Ok(None);
                }
                match inner.as_str().and_then(|s| s.trim().parse::<f64>().ok()) {
                    Some(secs) => Self::from_epoch_seconds(secs)
                        .map(Some)
                        .ok_or_else(out_of_range),
                    None => Err(DateError::Invalid(v.to_string())),
                }
            }
            _ => Ok(None),
        }
    }

    /// The content of a MongoDB `{"$date": …}` wrapper: an ISO string, or epoch
    /// milliseconds (a number or `{"$numberLong": "…"}`).
    fn from_mongo_date(date: &Value) -> Option<Self> {
        match date {
            Value::String(s) => Self::parse_str(s),
            Value::Number(n) => match n.as_i64() {
                Some(ms) => ms.checked_mul(1000).and_then(Self::from_micros),
                None => n.as_f64().and_then(Self::from_epoch_millis),
            },
            Value::Object(inner) => inner
                .get("$numberLong")
                .and_then(Value::as_str)
                .and_then(|s| s.trim().parse::<i64>().ok())
                .and_then(|ms| ms.checked_mul(1000))
                .and_then(Self::from_micros),
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
/// without parsing a format string for every date, nor `format!`'s padding machinery:
/// an enrichment writes several per relationship). Room is left for a suffix.
fn plain(dt: &DateTime<Utc>, sep: char) -> String {
    fn digits(out: &mut String, n: u32, width: u32) {
        for place in (0..width).rev() {
            let digit = (n / 10u32.pow(place) % 10) as u8;
            out.push(char::from(b'0' + digit));
        }
    }
    let mut out = String::with_capacity(27);
    digits(&mut out, dt.year().clamp(0, 9999) as u32, 4);
    out.push('-');
    digits(&mut out, dt.month(), 2);
    out.push('-');
    digits(&mut out, dt.day(), 2);
    out.push(sep);
    digits(&mut out, dt.hour(), 2);
    out.push(':');
    digits(&mut out, dt.minute(), 2);
    out.push(':');
    digits(&mut out, dt.second(), 2);
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn writing_agrees_with_chrono() {
        use super::Timestamp;
        for micros in [
            0,
            1,
            1_764_364_775_123_456,
            951_782_400_000_000,     // 2000-02-29
            -62_135_596_800_000_000, // 0001-01-01
            -62_167_219_200_000_000, // 0000-01-01
            253_402_300_799_999_999, // 9999-12-31 23:59:59.999999
        ] {
            let t = Timestamp { micros };
            let dt = t.to_datetime().unwrap();
            assert_eq!(
                t.to_rfc3339(),
                dt.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "{micros}"
            );
            assert!(
                t.to_ivre_string()
                    .starts_with(&dt.format("%Y-%m-%d %H:%M:%S").to_string()),
                "{micros}"
            );
        }
    }

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
    fn impossible_dates_are_errors_not_wrapped_values() {
        for v in [
            json!({"$date": 9.0e18}),
            json!({"$date": -9.0e18}),
            json!({"$date": 9_000_000_000_000_000_000i64}),
            json!({"$date": i64::MIN}),
            json!({"$date": {"$numberLong": "9000000000000000000"}}),
            json!({"$date": {"$numberLong": "-9223372036854775808"}}),
            json!({"$date": "10000-01-01T00:00:00Z"}),
            json!({"$date": "9999-12-31T23:59:59-01:00"}),
            json!({"$date": {"$numberLong": "soon"}}),
            json!({"$date": true}),
            json!(1.0e13),
            json!(253402300800u64),
            json!(-62135596801i64),
            json!(f64::MAX),
            json!(u64::MAX),
            json!({"$numberDouble": "NaN"}),
            json!({"$numberDouble": "Infinity"}),
            json!({"$numberDouble": "-Infinity"}),
            json!("9999-12-31 23:59:59-01:00"),
        ] {
            assert!(Timestamp::from_json_checked(&v).is_err(), "{v}");
            assert_eq!(Timestamp::from_json(&v), None, "{v}");
        }
        // The bounds themselves are dates.
        let max = Timestamp::from_json_checked(&json!("9999-12-31 23:59:59.999999"))
            .unwrap()
            .unwrap();
        assert_eq!(max.micros, Timestamp::MAX_MICROS);
        assert_eq!(max.to_ivre_string(), "9999-12-31 23:59:59.999999");
        let min = Timestamp::from_json_checked(&json!(-62135596800i64))
            .unwrap()
            .unwrap();
        assert_eq!(min.to_ivre_string(), "0001-01-01 00:00:00");
        assert_eq!(
            Timestamp::from_json_checked(&json!({"$date": 253402300799999i64}))
                .unwrap()
                .map(|t| t.to_ivre_string()),
            Some("9999-12-31 23:59:59.999000".to_owned())
        );
        // Not a date form at all: absent, not an error.
        for v in [
            json!("yesterday"),
            json!(true),
            json!({"a": 1}),
            json!(null),
        ] {
            assert_eq!(Timestamp::from_json_checked(&v), Ok(None), "{v}");
        }
    }

    #[test]
    fn garbage_is_not_a_date() {
        assert_eq!(Timestamp::parse_str("yesterday"), None);
        assert_eq!(Timestamp::from_json(&json!(true)), None);
        assert_eq!(Timestamp::from_json(&json!(f64::MAX)), None);
    }
}
