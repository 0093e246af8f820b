//! IVRE's merge rules: what becomes of a stored record when an update brings one with the
//! same identity (a host's scan run, a view's address, IVRE's passive aggregation key;
//! `index::record_identity`).
//!
//! A pull replaces it: IVRE already merged the record in its database. A delta drop of
//! passive records adds to it, as IVRE's passive insertion does: `count` summed,
//! `firstseen` the earlier, `lastseen` the later, every other field the stored record's.
//! Hosts are always replaced.

use super::{parse_value, ParsedRecord, RecordError, RecordKind, Timestamp};
use serde_json::Value;

/// How an update treats a record whose identity is already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeMode {
    /// The new record replaces the stored one (IVRE updated it: pulls).
    Replace,
    /// Passive records add up: counts summed, first/last seen widened (delta drops);
    /// hosts are replaced.
    Accumulate,
}

/// A passive record added to a stored one (its export-form JSON): counts summed (a
/// record without `count` counts 1), first/last seen widened, the rest kept from the
/// stored record.
pub fn accumulate_passive(
    stored_json: &str,
    new: &ParsedRecord,
) -> Result<ParsedRecord, RecordError> {
    let old: Value = serde_json::from_str(stored_json)?;
    let fresh: Value = serde_json::from_str(&new.json)?;
    let count = |v: &Value| v.get("count").and_then(Value::as_u64).unwrap_or(1);
    let date = |v: &Value, k: &str| v.get(k).and_then(Timestamp::from_json);
    let first = [date(&old, "firstseen"), date(&fresh, "firstseen")]
        .into_iter()
        .flatten()
        .min();
    let last = [date(&old, "lastseen"), date(&fresh, "lastseen")]
        .into_iter()
        .flatten()
        .max();
    let mut merged = old.clone();
    if let Some(map) = merged.as_object_mut() {
        map.insert("count".into(), (count(&old) + count(&fresh)).into());
        if let Some(t) = first {
            map.insert("firstseen".into(), t.to_ivre_string().into());
        }
        if let Some(t) = last {
            map.insert("lastseen".into(), t.to_ivre_string().into());
        }
    }
    parse_value(RecordKind::Passive, merged)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::ivre::parse_line;

    fn dns(count: &str, first: &str, last: &str) -> ParsedRecord {
        let line = format!(
            r#"{{"addr": "192.0.2.1", "sensor": "S", "recontype": "DNS_ANSWER", "source": "A-192.0.2.53-53", "value": "a.example.com", {count} "firstseen": "{first}", "lastseen": "{last}", "schema_version": 3}}"#
        );
        parse_line(RecordKind::Passive, &line).unwrap()
    }

    #[test]
    fn passive_records_add_up() {
        let stored = dns(
            r#""count": 3,"#,
            "2026-01-02 00:00:00",
            "2026-01-03 00:00:00",
        );
        let new = dns(
            r#""count": 4,"#,
            "2026-01-01 00:00:00",
            "2026-01-02 12:00:00",
        );
        let merged = accumulate_passive(&stored.json, &new).unwrap();
        let json: Value = serde_json::from_str(&merged.json).unwrap();
        assert_eq!(json["count"], 7);
        assert_eq!(json["firstseen"], "2026-01-01 00:00:00");
        assert_eq!(json["lastseen"], "2026-01-03 00:00:00");
        // Without a count, a record counts 1.
        let new = dns("", "2026-01-05 00:00:00", "2026-01-06 00:00:00");
        let merged = accumulate_passive(&stored.json, &new).unwrap();
        let json: Value = serde_json::from_str(&merged.json).unwrap();
        assert_eq!(json["count"], 4);
        assert_eq!(json["firstseen"], "2026-01-02 00:00:00");
        assert_eq!(json["lastseen"], "2026-01-06 00:00:00");
        assert!(accumulate_passive("not json", &new).is_err());
    }
}
