//! pycti's bundle splitting (`OpenCTIStix2Splitter`, `docs/opencti-protocol.md` §6.2): one
//! object per bundle, dependencies first, so that no piece refers to an object that only
//! a later piece holds.

use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Every id an object refers to (keys ending in `_ref` / `_refs`).
pub(crate) fn references(object: &Map<String, Value>) -> Vec<&str> {
    let own = object.get("id").and_then(Value::as_str);
    let mut refs = Vec::new();
    for (key, value) in object {
        if key.ends_with("_ref") {
            refs.extend(value.as_str());
        } else if key.ends_with("_refs") {
            refs.extend(
                value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str),
            );
        }
    }
    refs.retain(|r| Some(*r) != own);
    refs
}

fn depth<'a>(
    id: &'a str,
    objects: &HashMap<&'a str, &'a Map<String, Value>>,
    memo: &mut HashMap<&'a str, u64>,
    visiting: &mut Vec<&'a str>,
) -> u64 {
    if let Some(d) = memo.get(id) {
        return *d;
    }
    let Some(object) = objects.get(id) else {
        return 0;
    };
    if visiting.contains(&id) {
        return 0;
    }
    visiting.push(id);
    let mut d = 1;
    for r in references(object) {
        d += depth(r, objects, memo, visiting);
    }
    visiting.pop();
    memo.insert(id, d);
    d
}

/// For each piece of [`split`], the batch it is published in: a piece joins the pieces
/// before it unless it references an object of one of them that is still in flight; then it
/// starts the next batch, which goes out once every earlier piece was confirmed. No piece
/// thus reaches the broker before the pieces it depends on.
pub fn batches(pieces: &[Value]) -> Vec<u64> {
    let mut in_flight: Vec<&str> = Vec::new();
    let mut batch = 0;
    pieces
        .iter()
        .map(|piece| {
            let objects = piece["objects"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let depends = objects
                .iter()
                .filter_map(Value::as_object)
                .flat_map(references)
                .any(|r| in_flight.contains(&r));
            if depends {
                batch += 1;
                in_flight.clear();
            }
            in_flight.extend(objects.iter().filter_map(|o| o["id"].as_str()));
            batch
        })
        .collect()
}

/// Splits a bundle into one-object bundles ordered by dependency depth (stable), each
/// object carrying `nb_deps` and each piece `x_opencti_seq`, as pycti does. Relationships
/// without both ends are dropped, as pycti does.
pub fn split(bundle: &Value) -> Vec<Value> {
    let bundle_id = bundle.get("id").cloned().unwrap_or(Value::Null);
    let list: Vec<&Map<String, Value>> = bundle
        .get("objects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter(|o| {
            o.get("type").and_then(Value::as_str) != Some("relationship")
                || (o.contains_key("source_ref") && o.contains_key("target_ref"))
        })
        .collect();
    let by_id: HashMap<&str, &Map<String, Value>> = list
        .iter()
        .filter_map(|o| Some((o.get("id")?.as_str()?, *o)))
        .collect();
    let mut memo = HashMap::new();
    let mut pieces: Vec<(u64, Map<String, Value>)> = list
        .iter()
        .map(|o| {
            let id = o.get("id").and_then(Value::as_str).unwrap_or_default();
            let d = if id.is_empty() {
                1
            } else {
                depth(id, &by_id, &mut memo, &mut Vec::new())
            };
            let mut object = (*o).clone();
            object.insert("nb_deps".into(), d.into());
            (d, object)
        })
        .collect();
    pieces.sort_by_key(|(d, _)| *d);
    pieces
        .into_iter()
        .map(|(d, object)| {
            json!({"type": "bundle", "id": bundle_id, "x_opencti_seq": d, "objects": [object]})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of docs/opencti-protocol.md Appendix A: identity 1, ipv4 1, AS 2, location 2,
    /// relationship 5, ties in input order.
    #[test]
    fn pycti_order_and_depths() {
        let author = "identity--bb0162f7-f4f4-5c50-ab60-4bb962f1e276";
        let bundle = json!({"type": "bundle", "id": "bundle--1", "objects": [
            {"type": "identity", "id": author},
            {"type": "ipv4-addr", "id": "ipv4-addr--1", "object_marking_refs": ["marking-definition--x"]},
            {"type": "autonomous-system", "id": "autonomous-system--1", "x_opencti_created_by_ref": author},
            {"type": "location", "id": "location--1", "created_by_ref": author},
            {"type": "relationship", "id": "relationship--1", "source_ref": "ipv4-addr--1", "target_ref": "autonomous-system--1", "created_by_ref": author},
            {"type": "relationship", "id": "relationship--broken", "source_ref": "ipv4-addr--1"},
        ]});
        let pieces = split(&bundle);
        let got: Vec<(String, u64)> = pieces
            .iter()
            .map(|p| {
                (
                    p["objects"][0]["id"].as_str().unwrap().to_owned(),
                    p["x_opencti_seq"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (author.to_owned(), 1),
                ("ipv4-addr--1".to_owned(), 1),
                ("autonomous-system--1".to_owned(), 2),
                ("location--1".to_owned(), 2),
                ("relationship--1".to_owned(), 5),
            ]
        );
        assert!(pieces
            .iter()
            .all(|p| p["id"] == "bundle--1" && p["objects"][0]["nb_deps"].is_u64()));
        // The AS waits for its author; the location goes with the AS (its author is
        // confirmed by then); the relationship waits for the AS.
        assert_eq!(batches(&pieces), vec![0, 0, 1, 1, 2]);
    }

    #[test]
    fn cycles_do_not_loop() {
        let bundle = json!({"objects": [
            {"type": "note", "id": "note--1", "object_refs": ["note--2"]},
            {"type": "note", "id": "note--2", "object_refs": ["note--1"]},
        ]});
        assert_eq!(split(&bundle).len(), 2);
    }
}
