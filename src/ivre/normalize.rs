//! Brings a record, whatever backend or output produced it, to the form of
//! `ivre scancli|view|ipinfo --json` (the "export form").
//!
//! Handled differences:
//! - MongoDB Extended JSON (`mongoexport`, raw documents): `addr_0`/`addr_1` signed 64-bit
//!   halves, `{"$date": …}`, `{"$binary": …}`, `{"$numberLong": …}`, `_id`, `scanid`,
//!   passive `fullvalue`/`fulltargetval`/`fullinfos`, `infos.loc` GeoJSON, and the same
//!   address split in `ports[].state_reason_ip_*` and `traces[].hops[].ipaddr_*`;
//! - the web API: epoch dates, integer addresses (`ipsasnumbers=1`) and
//!   `addresses.mac` as `[{"addr": …, "manuf": …}]`;
//! - `scan2db -t`: time-zone-aware dates (`+00:00`).

use super::date::{DateError, Timestamp};
use super::RecordKind;
use base64::Engine;
use serde_json::{Map, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a record could not be brought to export form.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NormalizeError {
    #[error("record is not a JSON object")]
    NotAnObject,
    #[error("invalid address in `{field}`: {value}")]
    BadAddress { field: String, value: String },
    #[error("invalid date in `{field}`: {error}")]
    BadDate { field: String, error: DateError },
}

/// Converts `value` in place to export form.
pub fn to_export_form(kind: RecordKind, value: &mut Value) -> Result<(), NormalizeError> {
    unwrap_extended_json(value, "")?;
    let record = value.as_object_mut().ok_or(NormalizeError::NotAnObject)?;
    record.remove("_id");
    record.remove("scanid");
    join_address(record, "addr")?;
    match kind {
        RecordKind::Scan | RecordKind::View => normalize_host(record)?,
        RecordKind::Passive => normalize_passive(record)?,
    }
    Ok(())
}

/// Recursively replaces Extended JSON wrappers by plain values; a `$date` that cannot
/// be a date (out of years 1 to 9999, garbage) fails the record, naming its field.
fn unwrap_extended_json(value: &mut Value, field: &str) -> Result<(), NormalizeError> {
    match value {
        Value::Array(items) => {
            for item in items.iter_mut() {
                unwrap_extended_json(item, field)?;
            }
        }
        Value::Object(map) => {
            if map.len() == 1 && map.contains_key("$date") {
                let t = Timestamp::from_json_checked(value).map_err(|error| {
                    NormalizeError::BadDate {
                        field: field.to_owned(),
                        error,
                    }
                })?;
                if let Some(t) = t {
                    *value = Value::String(t.to_ivre_string());
                }
            } else if let Some(plain) = extended_json_scalar(map) {
                *value = plain;
            } else {
                for (key, inner) in map.iter_mut() {
                    unwrap_extended_json(inner, key)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn extended_json_scalar(map: &Map<String, Value>) -> Option<Value> {
    let (key, inner) = map.iter().next()?;
    match (key.as_str(), map.len()) {
        ("$numberLong" | "$numberInt", 1) => inner.as_str()?.parse::<i64>().ok().map(Value::from),
        ("$numberDouble" | "$numberDecimal", 1) => inner
            .as_str()?
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        ("$oid", 1) => Some(inner.clone()),
        ("$binary", 1) => inner.get("base64").cloned(),
        ("$binary", 2) if map.contains_key("$type") => Some(inner.clone()),
        _ => None,
    }
}

/// Rebuilds `field` from `field_0`/`field_1` (MongoDB) or from an integer (web API
/// `ipsasnumbers=1`); removes the halves.
fn join_address(record: &mut Map<String, Value>, field: &str) -> Result<(), NormalizeError> {
    let (k0, k1) = (format!("{field}_0"), format!("{field}_1"));
    if let (Some(h0), Some(h1)) = (record.get(&k0), record.get(&k1)) {
        let (Some(h0), Some(h1)) = (h0.as_i64(), h1.as_i64()) else {
            return Err(NormalizeError::BadAddress {
                field: k0,
                value: format!("{h0} {h1}"),
            });
        };
        let ip = ip_from_halves(h0, h1);
        record.remove(&k0);
        record.remove(&k1);
        // IVRE's get() puts the rebuilt address first.
        let rest = std::mem::take(record);
        record.insert(field.to_owned(), Value::String(ip.to_string()));
        record.extend(rest);
        return Ok(());
    }
    if let Some(Value::Number(n)) = record.get(field) {
        let ip = n
            .as_u64()
            .map(|n| match u32::try_from(n) {
                Ok(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
                Err(_) => IpAddr::V6(Ipv6Addr::from(u128::from(n))),
            })
            .ok_or_else(|| NormalizeError::BadAddress {
                field: field.to_owned(),
                value: n.to_string(),
            })?;
        record.insert(field.to_owned(), Value::String(ip.to_string()));
    }
    Ok(())
}

/// IVRE's MongoDB address encoding: 16 bytes (IPv4 mapped to `::ffff:a.b.c.d`), two
/// big-endian u64 halves, each stored as `u64 - 2^63`.
pub fn ip_from_halves(addr_0: i64, addr_1: i64) -> IpAddr {
    const FLIP: u64 = 0x8000_0000_0000_0000;
    let hi = (addr_0 as u64) ^ FLIP;
    let lo = (addr_1 as u64) ^ FLIP;
    let v6 = Ipv6Addr::from((u128::from(hi) << 64) | u128::from(lo));
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// The inverse of [`ip_from_halves`].
pub fn ip_to_halves(ip: IpAddr) -> (i64, i64) {
    const FLIP: u64 = 0x8000_0000_0000_0000;
    let v6 = match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    let n = u128::from(v6);
    (
        (((n >> 64) as u64) ^ FLIP) as i64,
        ((n as u64) ^ FLIP) as i64,
    )
}

/// Brings a date field to IVRE's form; a value with a date's form that cannot be a
/// date (epoch out of years 1 to 9999, NaN, infinite) fails the record. A value of
/// another type stays as it is (read as absent).
fn normalize_date(map: &mut Map<String, Value>, field: &str) -> Result<(), NormalizeError> {
    if let Some(v) = map.get_mut(field) {
        let t = Timestamp::from_json_checked(v).map_err(|error| NormalizeError::BadDate {
            field: field.to_owned(),
            error,
        })?;
        if let Some(t) = t {
            *v = Value::String(t.to_ivre_string());
        }
    }
    Ok(())
}

fn normalize_host(record: &mut Map<String, Value>) -> Result<(), NormalizeError> {
    normalize_date(record, "starttime")?;
    normalize_date(record, "endtime")?;
    if let Some(Value::Object(infos)) = record.get_mut("infos") {
        geojson_to_coordinates(infos);
    }
    if let Some(Value::Array(macs)) = record.get_mut("addresses").and_then(|a| a.get_mut("mac")) {
        for mac in macs.iter_mut() {
            if let Some(addr) = mac.get("addr").cloned() {
                *mac = addr;
            }
        }
    }
    if let Some(Value::Array(ports)) = record.get_mut("ports") {
        for port in ports.iter_mut().filter_map(Value::as_object_mut) {
            join_address(port, "state_reason_ip")?;
            let Some(Value::Array(scripts)) = port.get_mut("scripts") else {
                continue;
            };
            for script in scripts.iter_mut().filter_map(Value::as_object_mut) {
                match script.get_mut("ssl-cert") {
                    Some(Value::Array(certs)) => {
                        for cert in certs.iter_mut().filter_map(Value::as_object_mut) {
                            normalize_cert_dates(cert)?;
                        }
                    }
                    Some(Value::Object(cert)) => normalize_cert_dates(cert)?,
                    _ => {}
                }
            }
        }
    }
    if let Some(Value::Array(traces)) = record.get_mut("traces") {
        for trace in traces.iter_mut() {
            if let Some(Value::Array(hops)) = trace.get_mut("hops") {
                for hop in hops.iter_mut().filter_map(Value::as_object_mut) {
                    join_address(hop, "ipaddr")?;
                }
            }
        }
    }
    Ok(())
}

fn normalize_cert_dates(cert: &mut Map<String, Value>) -> Result<(), NormalizeError> {
    normalize_date(cert, "not_before")?;
    normalize_date(cert, "not_after")
}

/// MongoDB stores `coordinates` as GeoJSON `infos.loc` (`[lon, lat]`).
fn geojson_to_coordinates(infos: &mut Map<String, Value>) {
    let Some(loc) = infos.remove("loc") else {
        return;
    };
    if let Some([lon, lat]) = loc
        .get("coordinates")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        infos.insert(
            "coordinates".to_owned(),
            Value::Array(vec![lat.clone(), lon.clone()]),
        );
    }
}

fn normalize_passive(record: &mut Map<String, Value>) -> Result<(), NormalizeError> {
    normalize_date(record, "firstseen")?;
    normalize_date(record, "lastseen")?;
    for (full, short) in [("fullvalue", "value"), ("fulltargetval", "targetval")] {
        if let Some(v) = record.remove(full) {
            record.insert(short.to_owned(), v);
        }
    }
    if let Some(Value::Object(full)) = record.remove("fullinfos") {
        if let Some(Value::Object(infos)) = record.get_mut("infos") {
            infos.extend(full);
        } else {
            record.insert("infos".to_owned(), Value::Object(full));
        }
    }
    if let Some(Value::Object(infos)) = record.get_mut("infos") {
        normalize_cert_dates(infos)?;
    }
    // A raw binary value decoded by a tool into bytes arrives as an array of numbers.
    if let Some(Value::Array(bytes)) = record.get("value") {
        let raw: Option<Vec<u8>> = bytes
            .iter()
            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect();
        if let Some(raw) = raw {
            let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
            record.insert("value".to_owned(), Value::String(b64));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn address_halves_match_ivre() {
        // Examples printed by IVRE 0.9.20 (mongo-filters.txt).
        let v4: IpAddr = "192.0.2.10".parse().unwrap();
        assert_eq!(
            ip_to_halves(v4),
            (-9223372036854775808, -9223090562951806454)
        );
        let v6: IpAddr = "2001:db8::53".parse().unwrap();
        assert_eq!(
            ip_to_halves(v6),
            (-6917232468739227648, -9223372036854775725)
        );
        assert_eq!(
            ip_from_halves(-9223372036854775808, -9223090562951806454),
            v4
        );
        assert_eq!(
            ip_from_halves(-6917232468739227648, -9223372036854775725),
            v6
        );
    }

    #[test]
    fn web_api_forms_become_cli_forms() {
        let mut rec = json!({"addr": 3325256711u32, "starttime": 1795900782,
            "addresses": {"mac": [{"addr": "00:1b:21:3a:4f:5c", "manuf": "Intel"}]}});
        to_export_form(RecordKind::Scan, &mut rec).unwrap();
        assert_eq!(rec["addr"], "198.51.100.7");
        assert_eq!(rec["starttime"], "2026-11-28 21:19:42");
        assert_eq!(rec["addresses"]["mac"], json!(["00:1b:21:3a:4f:5c"]));
    }

    #[test]
    fn mongo_passive_long_values_are_restored() {
        let mut rec = json!({"addr_0": -9223372036854775808i64, "addr_1": -9223090562951806454i64,
            "recontype": "HTTP_CLIENT_HEADER", "value": "5d41402abc4b2a76b9719d911017c592aaaaaaaa",
            "fullvalue": "a very long header", "infos": {"a": 1}, "fullinfos": {"b": 2},
            "firstseen": {"$date": {"$numberLong": "1795900782000"}}, "count": {"$numberLong": "3"}});
        to_export_form(RecordKind::Passive, &mut rec).unwrap();
        assert_eq!(rec["addr"], "192.0.2.10");
        assert_eq!(rec["value"], "a very long header");
        assert_eq!(rec["infos"], json!({"a": 1, "b": 2}));
        assert_eq!(rec["firstseen"], "2026-11-28 21:19:42");
        assert_eq!(rec["count"], 3);
        assert!(rec.get("addr_0").is_none() && rec.get("fullvalue").is_none());
        assert_eq!(rec.as_object().unwrap().keys().next().unwrap(), "addr");
    }

    #[test]
    fn not_an_object_is_an_error() {
        assert_eq!(
            to_export_form(RecordKind::Passive, &mut json!([1, 2])),
            Err(NormalizeError::NotAnObject)
        );
    }

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/data/ivre-0.9.20/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap()
    }

    fn lines(name: &str) -> Vec<Value> {
        fixture(name)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn web_api_host_equals_cli_export_of_the_same_host() {
        let mut web = lines("web-scans-host.ndjson").remove(0);
        to_export_form(RecordKind::Scan, &mut web).unwrap();
        let cli = lines("mongo-scancli.jsonl")
            .into_iter()
            .find(|h| h["addr"] == "198.51.100.7")
            .unwrap();
        assert_eq!(web, cli);
    }

    #[test]
    fn raw_mongo_passive_documents_equal_cli_export() {
        let raw: Vec<Value> = serde_json::from_str(&fixture("mongo-raw-passive.json")).unwrap();
        let cli = lines("mongo-ipinfo.jsonl");
        assert_eq!(raw.len(), 2);
        for mut doc in raw {
            to_export_form(RecordKind::Passive, &mut doc).unwrap();
            let expected = cli
                .iter()
                .find(|r| r["value"] == doc["value"] && r["addr"] == doc["addr"])
                .unwrap();
            assert_eq!(&doc, expected);
        }
    }

    #[test]
    fn raw_mongo_documents_lose_their_storage_encodings() {
        for (name, kind) in [
            ("mongo-raw-host.json", RecordKind::Scan),
            ("mongo-raw-view.json", RecordKind::View),
            ("mongo-raw-passive-ssl.json", RecordKind::Passive),
        ] {
            let mut doc: Value = serde_json::from_str(&fixture(name)).unwrap();
            to_export_form(kind, &mut doc).unwrap();
            let text = doc.to_string();
            for marker in ["$date", "$binary", "$oid", "addr_0", "scanid", "\"loc\""] {
                assert!(!text.contains(marker), "{name} still has {marker}");
            }
            assert!(doc["addr"].is_string(), "{name} has no addr");
        }
    }
}

#[cfg(test)]
mod date_range_tests {
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> Value {
        let path = format!(
            "{}/tests/data/ivre-0.9.20/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Real-shaped records (the fixtures) with one date made impossible: each is a
    /// rejected record whose reason names the field, never a panic or a wrapped date.
    #[test]
    fn out_of_range_dates_reject_the_record() {
        let cases: Vec<(RecordKind, &str, Vec<&str>, Value)> = vec![
            (
                RecordKind::Scan,
                "mongo-raw-host.json",
                vec!["starttime"],
                json!({"$date": {"$numberLong": "9000000000000000000"}}),
            ),
            (
                RecordKind::Scan,
                "mongo-raw-host.json",
                vec!["endtime"],
                json!({"$date": -9.0e18}),
            ),
            (
                RecordKind::Scan,
                "mongo-raw-host.json",
                vec!["starttime"],
                json!({"$date": "10000-01-01T00:00:00Z"}),
            ),
            (
                RecordKind::Scan,
                "mongo-raw-host.json",
                vec!["endtime"],
                json!(1.0e13),
            ),
            (
                RecordKind::Scan,
                "mongo-raw-host.json",
                vec!["starttime"],
                json!({"$numberDouble": "NaN"}),
            ),
            (
                RecordKind::Scan,
                "mongo-raw-host.json",
                vec!["endtime"],
                json!({"$numberDouble": "-Infinity"}),
            ),
            (
                RecordKind::View,
                "mongo-raw-view.json",
                vec!["starttime"],
                json!({"$date": 9_000_000_000_000_000_000i64}),
            ),
            (
                RecordKind::Passive,
                "mongo-raw-passive-ssl.json",
                vec!["firstseen"],
                json!({"$date": {"$numberLong": "-9223372036854775808"}}),
            ),
            (
                RecordKind::Passive,
                "mongo-raw-passive-ssl.json",
                vec!["lastseen"],
                json!(253402300800u64),
            ),
            (
                RecordKind::Passive,
                "mongo-raw-passive-ssl.json",
                vec!["infos", "not_after"],
                json!({"$date": 9.0e18}),
            ),
        ];
        for (kind, name, path, bad) in cases {
            let mut doc = fixture(name);
            let mut target = &mut doc;
            for key in &path {
                target = target
                    .get_mut(*key)
                    .unwrap_or_else(|| panic!("{name}: no {key}"));
            }
            *target = bad.clone();
            let line = doc.to_string();
            let err = crate::ivre::parse_line(kind, &line)
                .err()
                .unwrap_or_else(|| panic!("{name} {path:?} = {bad}: accepted"))
                .to_string();
            let field = path.last().unwrap();
            assert!(err.contains(field), "{name}: {err}");
            assert!(err.contains("date"), "{name}: {err}");
        }
        // The untouched fixtures still parse.
        for (kind, name) in [
            (RecordKind::Scan, "mongo-raw-host.json"),
            (RecordKind::View, "mongo-raw-view.json"),
            (RecordKind::Passive, "mongo-raw-passive-ssl.json"),
        ] {
            crate::ivre::parse_line(kind, &fixture(name).to_string()).unwrap();
        }
    }

    /// Fuzz finding 4 (docs/reliability/fuzz.md): an integer too large for i64 is read as a
    /// float; without serde_json's `float_roundtrip` its printed form parsed back 1 ULP off,
    /// so the export form was not a fixed point.
    #[test]
    fn a_long_float_survives_a_second_pass() {
        // The fuzz input: a selector byte (2: passive), then the line.
        let input = include_bytes!("../../fuzz/findings/normalize-float-roundtrip");
        let line = std::str::from_utf8(&input[1..]).unwrap();
        let kind = crate::ivre::RecordKind::Passive;
        let first = crate::ivre::parse_line(kind, line).unwrap();
        let again = crate::ivre::parse_line(kind, &first.json).unwrap();
        assert_eq!(again.json, first.json, "export form changed");
        assert_eq!(again.summary, first.summary, "summary changed");
    }
}
