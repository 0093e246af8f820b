//! The STIX objects the enrichment creates, each with its deterministic id. Provenance
//! (author, markings, organizations, timestamps) is added by [`super::bundle`].

use super::ids::{self, object, IdValue};
use crate::ivre::{Certificate, Timestamp};
use serde_json::{json, Map, Value};
use std::net::IpAddr;

fn sco(stix_type: &str, id: String, mut props: Map<String, Value>) -> Map<String, Value> {
    // Room for the provenance and labels the bundle adds: no map growth.
    let mut out = Map::with_capacity(8 + props.len());
    out.insert("type".into(), stix_type.into());
    out.insert("spec_version".into(), "2.1".into());
    out.insert("id".into(), id.into());
    out.append(&mut props);
    out
}

/// An SCO whose id is its `value` (addresses, names, MACs).
fn value_sco(stix_type: &str, value: &str) -> Map<String, Value> {
    let id = ids::generate_from(stix_type, &[("value", IdValue::Str(value))]);
    let mut m = Map::with_capacity(1);
    m.insert("value".into(), value.into());
    sco(stix_type, id, m)
}

/// `ipv4-addr` or `ipv6-addr`, by the address.
pub fn ip_address(ip: IpAddr) -> Map<String, Value> {
    let value = ip.to_string();
    let ty = if ip.is_ipv4() {
        "ipv4-addr"
    } else {
        "ipv6-addr"
    };
    value_sco(ty, &value)
}

/// `domain-name` (the caller lower-cases and strips the trailing dot).
pub fn domain_name(name: &str) -> Map<String, Value> {
    value_sco("domain-name", name)
}

/// `mac-addr` (lower-case, colon-separated).
pub fn mac_address(mac: &str) -> Map<String, Value> {
    value_sco("mac-addr", mac)
}

/// `autonomous-system`; `name` defaults to `AS<number>` as in the Python connector.
pub fn autonomous_system(number: u32, name: Option<&str>) -> Map<String, Value> {
    let mut props = Map::new();
    props.insert("number".into(), number.into());
    props.insert(
        "name".into(),
        name.map_or_else(|| format!("AS{number}"), str::to_owned)
            .into(),
    );
    let id = ids::generate_from(
        "autonomous-system",
        &[("number", IdValue::Int(u64::from(number)))],
    );
    sco("autonomous-system", id, props)
}

/// STIX hash names of IVRE's digests.
pub const HASH_KEYS: [(&str, &str); 3] = [("md5", "MD5"), ("sha1", "SHA-1"), ("sha256", "SHA-256")];

/// The hashes the `stix2` library keeps for a certificate's id, in its order of
/// preference (another key only when none of these is there: see [`id_hash`]).
const ID_HASHES: [&str; 4] = ["MD5", "SHA-1", "SHA-256", "SHA-512"];

/// The hash the `stix2` library keeps for the id: MD5, else SHA-1, else SHA-256.
fn id_hash(hashes: &Map<String, Value>) -> Option<Value> {
    ID_HASHES
        .iter()
        .find_map(|k| hashes.get(*k).map(|v| object([(k, v.clone())])))
        .or_else(|| {
            let mut keys: Vec<&String> = hashes.keys().collect();
            keys.sort();
            keys.first()
                .map(|k| object([(k.as_str(), hashes[k.as_str()].clone())]))
        })
}

/// `x509-certificate` from a bare digest (an observable given by hash).
pub fn x509_from_hashes(hashes: Map<String, Value>) -> Map<String, Value> {
    let mut id_props = Map::new();
    if let Some(h) = id_hash(&hashes) {
        id_props.insert("hashes".into(), h);
    }
    let id = ids::generate("x509-certificate", &Value::Object(id_props));
    let mut props = Map::new();
    props.insert("hashes".into(), Value::Object(hashes));
    sco("x509-certificate", id, props)
}

/// `x509-certificate` from IVRE's certificate data (either `ssl-cert` shape): hashes,
/// self-signed flag, validity, issuer, subject (`/` → `, ` as the Python connector),
/// public key and serial number.
pub fn x509_certificate(cert: &Certificate) -> Option<Map<String, Value>> {
    let mut hashes = Map::new();
    for (ivre, stix) in HASH_KEYS {
        let value = match ivre {
            "md5" => &cert.md5,
            "sha1" => &cert.sha1,
            _ => &cert.sha256,
        };
        if let Some(v) = value {
            hashes.insert(stix.into(), v.to_ascii_lowercase().into());
        }
    }
    if hashes.is_empty() && cert.serial_number.is_none() {
        return None;
    }
    // The id: the first digest in `ID_HASHES`' order (the keys here are all among
    // them), and the serial number.
    let id_hash = ID_HASHES
        .into_iter()
        .find_map(|k| hashes.get(k).and_then(Value::as_str).map(|v| (k, v)));
    let mut id_props: Vec<(&str, IdValue<'_>)> = Vec::with_capacity(2);
    if let Some((k, v)) = id_hash {
        id_props.push(("hashes", IdValue::Pair(k, v)));
    }
    if let Some(serial) = &cert.serial_number {
        id_props.push(("serial_number", IdValue::Str(serial)));
    }
    let id = ids::generate_from("x509-certificate", &id_props);
    let mut props = Map::new();
    if !hashes.is_empty() {
        props.insert("hashes".into(), Value::Object(hashes));
    }
    if let Some(serial) = &cert.serial_number {
        props.insert("serial_number".into(), serial.clone().into());
    }
    if let Some(self_signed) = cert.self_signed {
        props.insert("is_self_signed".into(), self_signed.into());
    }
    if let Some(t) = cert.not_before {
        props.insert("validity_not_before".into(), t.to_rfc3339().into());
    }
    if let Some(t) = cert.not_after {
        props.insert("validity_not_after".into(), t.to_rfc3339().into());
    }
    if let Some(issuer) = &cert.issuer_text {
        props.insert("issuer".into(), issuer.replace('/', ", ").into());
    }
    if let Some(subject) = &cert.subject_text {
        props.insert("subject".into(), subject.replace('/', ", ").into());
    }
    if let Some(alg) = &cert.pubkey_type {
        props.insert("subject_public_key_algorithm".into(), alg.clone().into());
    }
    if let Some(exp) = cert.pubkey_exponent {
        props.insert("subject_public_key_exponent".into(), exp.into());
    }
    if let Some(modulus) = &cert.pubkey_modulus {
        props.insert("subject_public_key_modulus".into(), modulus.clone().into());
    }
    Some(sco("x509-certificate", id, props))
}

fn location(name: &str, location_type: &str, mut props: Map<String, Value>) -> Map<String, Value> {
    let id = ids::generate_from(
        "location",
        &[
            ("name", IdValue::Str(&name.trim().to_lowercase())),
            ("x_opencti_location_type", IdValue::Str(location_type)),
        ],
    );
    let mut out = Map::new();
    out.insert("type".into(), "location".into());
    out.insert("spec_version".into(), "2.1".into());
    out.insert("id".into(), id.into());
    out.insert("name".into(), name.into());
    out.append(&mut props);
    out.insert("x_opencti_location_type".into(), location_type.into());
    out
}

/// A Country location (`country` is the ISO code; the code is also an alias).
pub fn country(name: &str, code: Option<&str>) -> Map<String, Value> {
    let mut props = Map::new();
    props.insert("country".into(), code.unwrap_or(name).into());
    if let Some(code) = code {
        props.insert("x_opencti_aliases".into(), json!([code]));
    }
    location(name, "Country", props)
}

/// A City location, in the country of ISO code `country_code`.
pub fn city(name: &str, country_code: Option<&str>, country_name: &str) -> Map<String, Value> {
    let mut props = Map::new();
    props.insert(
        "country".into(),
        country_code.unwrap_or(country_name).into(),
    );
    location(name, "City", props)
}

/// The author Organization named after the IVRE instance.
pub fn organization(name: &str) -> Map<String, Value> {
    let id = ids::generate_from(
        "identity",
        &[
            ("identity_class", IdValue::Str("organization")),
            ("name", IdValue::Str(&name.trim().to_lowercase())),
        ],
    );
    let mut out = Map::new();
    out.insert("type".into(), "identity".into());
    out.insert("spec_version".into(), "2.1".into());
    out.insert("id".into(), id.into());
    out.insert("name".into(), name.into());
    out.insert("identity_class".into(), "organization".into());
    out.insert(
        "description".into(),
        format!("IVRE instance {name}\nSee <https://ivre.rocks/>").into(),
    );
    out
}

/// A relationship id: type, source and target only (never the times, so that
/// re-enrichment updates instead of duplicating).
pub fn relationship_id(relationship_type: &str, source: &str, target: &str) -> String {
    ids::generate_from(
        "relationship",
        &[
            ("relationship_type", IdValue::Str(relationship_type)),
            ("source_ref", IdValue::Str(source)),
            ("target_ref", IdValue::Str(target)),
        ],
    )
}

/// A note created at `created`; its id follows pycti's `Note.generate_id(created, content)`.
pub fn note(
    abstract_: &str,
    content: &str,
    created: &str,
    object_refs: &[String],
) -> Map<String, Value> {
    let id = ids::generate_from(
        "note",
        &[
            ("content", IdValue::Str(content)),
            ("created", IdValue::Str(created)),
        ],
    );
    let mut out = Map::new();
    out.insert("type".into(), "note".into());
    out.insert("spec_version".into(), "2.1".into());
    out.insert("id".into(), id.into());
    out.insert("abstract".into(), abstract_.into());
    out.insert("content".into(), content.into());
    out.insert("object_refs".into(), json!(object_refs));
    out.insert("created".into(), created.into());
    out.insert("modified".into(), created.into());
    out
}

/// `%Y-%m-%dT%H:%M:%S.000Z`: STIX timestamps with millisecond precision.
pub fn stix_timestamp(t: Timestamp) -> String {
    t.to_datetime()
        .map(|dt| dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_stix2() {
        assert_eq!(
            ip_address("8.8.8.8".parse().unwrap())["id"],
            "ipv4-addr--2f689bf9-0ff2-545f-aa61-e495eb8cecc7"
        );
        assert_eq!(
            autonomous_system(15169, Some("GOOGLE"))["id"],
            "autonomous-system--7afc7bdf-d070-5add-90ff-f93503b1654d"
        );
        assert_eq!(
            organization("IVRE")["id"],
            "identity--bb0162f7-f4f4-5c50-ab60-4bb962f1e276"
        );
        assert_eq!(
            country("France", Some("FR"))["id"],
            "location--b8d0549f-de06-5ebd-a6e9-d31a581dba5d"
        );
        assert_eq!(
            city("Paris", Some("FR"), "France")["id"],
            "location--521ef7f0-6bfa-58f9-adca-f5e1737524d5"
        );
        let mut hashes = Map::new();
        hashes.insert(
            "SHA-256".into(),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        );
        hashes.insert("MD5".into(), "098f6bcd4621d373cade4e832627b4f6".into());
        assert_eq!(
            x509_from_hashes(hashes)["id"],
            "x509-certificate--5919a4b1-9e97-5c92-9203-9c050f677cb4"
        );
        // A certificate's id: the first of its digests (MD5 before SHA-1 before
        // SHA-256) and its serial number, as the JSON path computes it.
        let cert = Certificate {
            md5: None,
            sha1: Some("A94A8FE5CCB19BA61C4C0873D391E987982FBBD3".into()),
            sha256: Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()),
            serial_number: Some("36:f7:d4".into()),
            ..Certificate::from_json(&Map::new())
        };
        assert_eq!(
            x509_certificate(&cert).unwrap()["id"],
            ids::generate(
                "x509-certificate",
                &json!({"hashes": {"SHA-1": "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"}, "serial_number": "36:f7:d4"})
            )
        );
        assert_eq!(
            relationship_id(
                "located-at",
                "ipv4-addr--2f689bf9-0ff2-545f-aa61-e495eb8cecc7",
                "location--b8d0549f-de06-5ebd-a6e9-d31a581dba5d"
            ),
            "relationship--cc729aec-0627-50b2-9462-e56e7b298d63"
        );
    }
}
