//! IVRE 0.9.20's `MaxMindDBData` record conversions (`ivre/db/maxmind.py`).
//!
//! Each function takes the raw record a database holds for an address (a JSON object
//! decoded in database key order) and returns what the IVRE method of the same name
//! returns. Python's truth tests (`if value:`) are reproduced with [`truthy`]. Where
//! IVRE would raise on a malformed record (e.g. a `country` that is not a map), the
//! odd part is skipped instead.

use serde_json::{Map, Value};

/// The language IVRE uses for names (`MaxMindDBData.LANG`).
const LANG: &str = "en";

/// Python truthiness of a decoded value: `None`, `False`, zero, `""`, `[]` and `{}`
/// are false.
pub(crate) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `record.get(key)` when it is a truthy value.
fn get_truthy<'a>(record: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    record.get(key).filter(|v| truthy(v))
}

/// `record.get(key)` when it is a non-empty map (`sub = raw.get(key); if sub:`).
fn get_map<'a>(record: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    get_truthy(record, key).and_then(Value::as_object)
}

/// `record.get("names", {}).get(LANG)`, `None` (JSON `null`) when missing.
fn name(record: &Map<String, Value>) -> Value {
    record
        .get("names")
        .and_then(Value::as_object)
        .and_then(|names| names.get(LANG))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Inserts `value` under `key` when it is truthy (`if value: result[key] = value`).
fn insert_truthy(result: &mut Map<String, Value>, key: &str, value: Value) {
    if truthy(&value) {
        result.insert(key.to_owned(), value);
    }
}

/// The `<prefix>_code` / `<prefix>_name` pair of a place map (`continent`, `country`,
/// `registered_country`): `code_key` is `code` for continents, `iso_code` otherwise.
fn place(result: &mut Map<String, Value>, raw: &Map<String, Value>, key: &str, code_key: &str) {
    if let Some(sub) = get_map(raw, key) {
        let code = sub.get(code_key).cloned().unwrap_or(Value::Null);
        insert_truthy(result, &format!("{key}_code"), code);
        insert_truthy(result, &format!("{key}_name"), name(sub));
    }
}

/// `as_byip`: the ASN record with `autonomous_system_number` renamed `as_num` and
/// `autonomous_system_organization` renamed `as_name`; other keys pass through.
pub(crate) fn as_byip(raw: Map<String, Value>) -> Map<String, Value> {
    raw.into_iter()
        .map(|(key, value)| {
            let key = match key.as_str() {
                "autonomous_system_number" => "as_num".to_owned(),
                "autonomous_system_organization" => "as_name".to_owned(),
                _ => key,
            };
            (key, value)
        })
        .collect()
}

/// `country_byip`: `country_code` and `country_name` from a Country database record.
/// (IVRE takes nothing else from it: continent and registered country come from the
/// City database only.)
pub(crate) fn country_byip(raw: &Map<String, Value>) -> Map<String, Value> {
    let mut result = Map::new();
    place(&mut result, raw, "country", "iso_code");
    result
}

/// `location_byip`: the location fields of a City database record, in IVRE's order;
/// `None` when there are none.
pub(crate) fn location_byip(raw: &Map<String, Value>) -> Option<Map<String, Value>> {
    let mut result = Map::new();
    if let Some(subdivisions) = get_truthy(raw, "subdivisions").and_then(Value::as_array) {
        let field = |f: &dyn Fn(&Map<String, Value>) -> Value| -> Value {
            Value::Array(
                subdivisions
                    .iter()
                    .map(|sub| sub.as_object().map_or(Value::Null, f))
                    .collect(),
            )
        };
        result.insert(
            "region_code".into(),
            field(&|sub| sub.get("iso_code").cloned().unwrap_or(Value::Null)),
        );
        result.insert("region_name".into(), field(&name));
    }
    place(&mut result, raw, "continent", "code");
    place(&mut result, raw, "country", "iso_code");
    place(&mut result, raw, "registered_country", "iso_code");
    if let Some(city) = raw.get("city").and_then(Value::as_object) {
        insert_truthy(&mut result, "city", name(city));
    }
    if let Some(postal) = raw.get("postal").and_then(Value::as_object) {
        let code = postal.get("code").cloned().unwrap_or(Value::Null);
        insert_truthy(&mut result, "postal_code", code);
    }
    if let Some(location) = get_map(raw, "location") {
        if let (Some(lat), Some(lon)) = (location.get("latitude"), location.get("longitude")) {
            result.insert(
                "coordinates".into(),
                Value::Array(vec![lat.clone(), lon.clone()]),
            );
        }
        let radius = location
            .get("accuracy_radius")
            .cloned()
            .unwrap_or(Value::Null);
        result.insert("coordinates_accuracy_radius".into(), radius);
    }
    (!result.is_empty()).then_some(result)
}

/// Python's `dict.update`: values of `new` replace those of `infos`; a key already
/// present keeps its position, new keys are appended.
pub(crate) fn update(infos: &mut Map<String, Value>, new: Map<String, Value>) {
    for (key, value) in new {
        infos.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    fn keys(map: &Map<String, Value>) -> Vec<&str> {
        map.keys().map(String::as_str).collect()
    }

    #[test]
    fn python_truthiness() {
        for falsy in [
            json!(null),
            json!(false),
            json!(0),
            json!(0.0),
            json!(""),
            json!([]),
            json!({}),
        ] {
            assert!(!truthy(&falsy), "{falsy}");
        }
        for true_ in [
            json!(true),
            json!(1),
            json!(-1.5),
            json!("x"),
            json!([0]),
            json!({"a": 0}),
        ] {
            assert!(truthy(&true_), "{true_}");
        }
    }

    #[test]
    fn as_keys_renamed_in_place() {
        let raw = obj(json!({"autonomous_system_number": 1, "extra": [1],
                             "autonomous_system_organization": "X"}));
        let out = as_byip(raw);
        assert_eq!(keys(&out), ["as_num", "extra", "as_name"]);
        assert_eq!(out["as_num"], 1);
    }

    #[test]
    fn country_only_takes_country() {
        let raw = obj(
            json!({"continent": {"code": "EU", "names": {"en": "Europe"}},
                             "country": {"iso_code": "FR", "names": {"fr": "France"}},
                             "registered_country": {"iso_code": "FR"}}),
        );
        assert_eq!(
            Value::Object(country_byip(&raw)),
            json!({"country_code": "FR"})
        );
        assert!(country_byip(&obj(json!({"country": "FR"}))).is_empty());
    }

    #[test]
    fn location_edge_cases() {
        // Subdivisions with missing parts keep one (null) entry each.
        let raw = obj(
            json!({"subdivisions": [{"iso_code": "A"}, {"names": {"en": "B"}}, 3],
                             "location": {"latitude": 1.5, "time_zone": "UTC"},
                             "city": {"names": {"en": ""}}, "postal": {"code": "75001"}}),
        );
        let out = location_byip(&raw).unwrap();
        assert_eq!(
            Value::Object(out.clone()),
            json!({"region_code": ["A", null, null], "region_name": [null, "B", null],
                   "postal_code": "75001", "coordinates_accuracy_radius": null})
        );
        assert_eq!(
            keys(&out),
            [
                "region_code",
                "region_name",
                "postal_code",
                "coordinates_accuracy_radius"
            ]
        );
        // Empty maps and lists are ignored, like Python's `if sub:`.
        let empty = obj(json!({"subdivisions": [], "location": {}, "continent": {}}));
        assert_eq!(location_byip(&empty), None);
        assert_eq!(location_byip(&Map::new()), None);
    }

    #[test]
    fn update_keeps_first_position() {
        let mut infos = obj(json!({"a": 1, "b": 2}));
        update(&mut infos, obj(json!({"c": 3, "a": 4})));
        assert_eq!(keys(&infos), ["a", "b", "c"]);
        assert_eq!(infos["a"], 4);
    }
}
