//! Entities a test makes readable ([`crate::PlatformDouble::add_entity`]) through
//! `stixCoreObject`, `stixCyberObservable` (OpenCTI's GraphQL shape) and `stix` (the STIX
//! JSON string), with their markings in OpenCTI's shape.

use serde_json::{json, Map, Value};

use crate::execute::Executor;

impl Executor<'_> {
    /// `stixCoreObject` / `stixCyberObservable` (OpenCTI's GraphQL shape) or `stix` (the
    /// STIX JSON string) of an entity, by its STIX id or its internal id; `null` if none.
    pub(super) fn read_entity(&self, field: &str, id: &str) -> Value {
        let entity = self
            .state
            .entities
            .iter()
            .find(|e| e.standard_id == id || e.internal_id == id);
        match (entity, field) {
            (None, _) => Value::Null,
            (Some(entity), "stix") => json!(entity.stix.to_string()),
            (Some(entity), _) => entity.graphql.clone(),
        }
    }
}

/// An entity readable through GraphQL.
pub(crate) struct Entity {
    pub(crate) standard_id: String,
    pub(crate) internal_id: String,
    /// OpenCTI's GraphQL shape, with `__typename` / `__implements` for fragments.
    pub(crate) graphql: Value,
    /// The STIX 2.1 object (`stix(id:)` serializes it).
    pub(crate) stix: Value,
}

/// The STIX namespace (`OASIS_NAMESPACE`) of the deterministic ids.
const OASIS_NAMESPACE: uuid::Uuid = uuid::uuid!("00abedb4-aa42-466c-9c01-fed23315a9b7");

impl Entity {
    pub(crate) fn from_stix(mut stix: Value, markings: &[&str]) -> Entity {
        let Some(object) = stix.as_object_mut() else {
            panic!("platform double: add_entity needs a STIX object, got {stix}");
        };
        let standard_id = object
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("platform double: add_entity: STIX object without id"))
            .to_owned();
        let stix_type = object
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("platform double: add_entity: STIX object without type"))
            .to_owned();
        let markings: Vec<Value> = markings.iter().map(|d| marking(d)).collect();
        let refs = object
            .entry("object_marking_refs")
            .or_insert_with(|| json!([]));
        if let Value::Array(refs) = refs {
            for m in &markings {
                if !refs.contains(&m["standard_id"]) {
                    refs.push(m["standard_id"].clone());
                }
            }
        }
        let internal_id = uuid::Uuid::new_v5(
            &OASIS_NAMESPACE,
            format!("internal:{standard_id}").as_bytes(),
        )
        .to_string();
        let entity_type = opencti_type(&stix_type);
        let mut graphql = Map::new();
        for (key, value) in object.iter() {
            if !matches!(
                key.as_str(),
                "id" | "type" | "spec_version" | "hashes" | "object_marking_refs" | "extensions"
            ) {
                graphql.insert(key.clone(), value.clone());
            }
        }
        let hashes: Vec<Value> = object
            .get("hashes")
            .and_then(Value::as_object)
            .map(|h| {
                h.iter()
                    .map(|(a, v)| json!({"algorithm": a, "hash": v}))
                    .collect()
            })
            .unwrap_or_default();
        let extra = json!({
            "__typename": entity_type.replace('-', ""),
            "__implements": ["StixCyberObservable", "StixCoreObject", "StixObject", "BasicObject"],
            "id": internal_id,
            "standard_id": standard_id,
            "entity_type": entity_type,
            "parent_types": ["Basic-Object", "Stix-Object", "Stix-Core-Object", "Stix-Cyber-Observable"],
            "observable_value": observable_value(object),
            "hashes": hashes,
            "objectMarking": markings,
            "objectLabel": [],
            "createdBy": null,
            "x_opencti_stix_ids": [],
        });
        if let Value::Object(extra) = extra {
            graphql.extend(extra);
        }
        Entity {
            standard_id,
            internal_id,
            graphql: Value::Object(graphql),
            stix,
        }
    }
}

/// STIX type → OpenCTI entity type (`ipv4-addr` → `IPv4-Addr`).
fn opencti_type(stix_type: &str) -> String {
    match stix_type {
        "ipv4-addr" => "IPv4-Addr".to_owned(),
        "ipv6-addr" => "IPv6-Addr".to_owned(),
        "x509-certificate" => "X509-Certificate".to_owned(),
        "file" => "StixFile".to_owned(),
        other => other
            .split('-')
            .map(|part| {
                let mut chars = part.chars();
                chars
                    .next()
                    .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("-"),
    }
}

/// OpenCTI's `observable_value`: value, AS number, preferred hash, or a name.
fn observable_value(object: &Map<String, Value>) -> Value {
    if let Some(value) = object.get("value") {
        return value.clone();
    }
    if let Some(number) = object.get("number") {
        return json!(number.to_string());
    }
    if let Some(hashes) = object.get("hashes").and_then(Value::as_object) {
        for algorithm in ["SHA-256", "SHA-1", "MD5"] {
            if let Some(hash) = hashes.get(algorithm) {
                return hash.clone();
            }
        }
        if let Some(hash) = hashes.values().next() {
            return hash.clone();
        }
    }
    ["subject", "issuer", "serial_number", "name"]
        .iter()
        .find_map(|k| object.get(*k).cloned())
        .unwrap_or(Value::Null)
}

/// A marking definition in OpenCTI's GraphQL shape (`TLP:AMBER`, or any `TYPE:VALUE`).
fn marking(definition: &str) -> Value {
    let upper = definition.to_uppercase();
    let tlp = match upper.as_str() {
        "TLP:CLEAR" | "TLP:WHITE" => Some(("613f2e26-407d-48c7-9eca-b8e91df99dc9", 1, "#ffffff")),
        "TLP:GREEN" => Some(("34098fce-860f-48ae-8e50-ebd3cc5e41da", 2, "#2e7d32")),
        "TLP:AMBER" => Some(("f88d31f6-486f-44da-b317-01333bde0b82", 3, "#d84315")),
        "TLP:AMBER+STRICT" => Some(("826578e1-40ad-459f-bc73-ede076f81f37", 3, "#d84315")),
        "TLP:RED" => Some(("5e57c739-391a-4eb3-b6be-7d15ca92d5ed", 4, "#c62828")),
        _ => None,
    };
    let definition_type = upper.split(':').next().unwrap_or_default().to_owned();
    let (uuid, order, color) = tlp.map_or_else(
        || {
            let canonical =
                json!({"definition": upper, "definition_type": definition_type}).to_string();
            (
                uuid::Uuid::new_v5(&OASIS_NAMESPACE, canonical.as_bytes()).to_string(),
                0,
                "#ffffff",
            )
        },
        |(uuid, order, color)| (uuid.to_owned(), order, color),
    );
    let standard_id = format!("marking-definition--{uuid}");
    json!({
        "__typename": "MarkingDefinition",
        "__implements": ["StixMetaObject", "StixObject", "BasicObject"],
        "id": uuid::Uuid::new_v5(&OASIS_NAMESPACE, format!("internal:{standard_id}").as_bytes()).to_string(),
        "standard_id": standard_id,
        "entity_type": "Marking-Definition",
        "definition_type": definition_type,
        "definition": upper,
        "x_opencti_order": order,
        "x_opencti_color": color,
    })
}
