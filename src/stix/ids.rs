//! Deterministic STIX ids, as the `stix2` library and pycti compute them
//! (`docs/opencti-protocol.md` §9): `<type>--UUIDv5(namespace, JCS(contributing properties))`.
//!
//! Two entry points: [`generate`] canonicalises any JSON value (objects as the platform
//! sends them), [`generate_from`] writes the canonical form of the flat properties the
//! enrichment's own objects use straight into a reused buffer, without building a JSON
//! tree (an enrichment computes one id per object and per relationship: issue 12 measured
//! the tree, its hashing and its allocations at a fifth of an enrichment's time). Both give
//! the same id for the same properties (test `generate_from_matches_generate`).

use serde_json::{Map, Value};
use sha1::{Digest, Sha1};
use std::cell::RefCell;
use uuid::Uuid;

/// The STIX 2.1 SCO namespace (`OASIS_NAMESPACE` in OpenCTI), used for every id here.
pub const OASIS_NAMESPACE: Uuid = Uuid::from_u128(0x00abedb4_aa42_466c_9c01_fed23315a9b7);

/// `<stix_type>--<uuid5 of the canonical JSON of properties>`.
pub fn generate(stix_type: &str, properties: &Value) -> String {
    let name = canonical_json(properties);
    id_string(stix_type, uuid5(name.as_bytes()))
}

/// UUIDv5 of `name` in [`OASIS_NAMESPACE`] (RFC 9562 §5.5: the first 16 bytes of
/// SHA-1(namespace ‖ name), version and variant bits set), what `Uuid::new_v5` computes.
fn uuid5(name: &[u8]) -> Uuid {
    let mut sha1 = Sha1::new();
    sha1.update(OASIS_NAMESPACE.as_bytes());
    sha1.update(name);
    let digest = sha1.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

/// `<stix_type>--<uuid>`, lower-case and hyphenated.
fn id_string(stix_type: &str, uuid: Uuid) -> String {
    let mut buf = Uuid::encode_buffer();
    let uuid = uuid.hyphenated().encode_lower(&mut buf);
    let mut id = String::with_capacity(stix_type.len() + 2 + uuid.len());
    id.push_str(stix_type);
    id.push_str("--");
    id.push_str(uuid);
    id
}

/// One contributing property's value, for [`generate_from`].
#[derive(Debug, Clone, Copy)]
pub enum IdValue<'a> {
    Str(&'a str),
    /// An integer (JCS writes integers as their decimal digits).
    Int(u64),
    /// A one-entry object `{key: value}` (a certificate's id hash).
    Pair(&'a str, &'a str),
}

thread_local! {
    /// The canonical JSON of the id being computed: one buffer per thread, reused.
    static CANONICAL: RefCell<String> = const { RefCell::new(String::new()) };
}

/// `<stix_type>--<uuid5>` of the object whose contributing properties are `properties`,
/// given with their keys in canonical order (ASCII keys, sorted by byte: the order JCS
/// gives them), without building a JSON value.
pub fn generate_from(stix_type: &str, properties: &[(&str, IdValue<'_>)]) -> String {
    debug_assert!(
        properties.windows(2).all(|w| w[0].0 < w[1].0),
        "id properties out of canonical order: {properties:?}"
    );
    let uuid = CANONICAL.with_borrow_mut(|out| {
        out.clear();
        out.push('{');
        for (i, (key, value)) in properties.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_string(key, out);
            out.push(':');
            match value {
                IdValue::Str(s) => write_string(s, out),
                IdValue::Int(n) => {
                    use std::fmt::Write;
                    let _ = write!(out, "{n}");
                }
                IdValue::Pair(k, v) => {
                    out.push('{');
                    write_string(k, out);
                    out.push(':');
                    write_string(v, out);
                    out.push('}');
                }
            }
        }
        out.push('}');
        uuid5(out.as_bytes())
    });
    id_string(stix_type, uuid)
}

/// RFC 8785 (JCS) canonical JSON: keys sorted by UTF-16 code units, no whitespace,
/// minimal string escaping, numbers in ECMAScript form.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(&map[key.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        Value::Number(n) => out.push_str(&ecmascript_number(n)),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    // Most values need no escaping: copy them whole.
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// ECMAScript `Number.prototype.toString` for the values ids use.
fn ecmascript_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f == f.trunc() && f.abs() < 1e21 {
        return format!("{}", f as i128);
    }
    // Rust's shortest round-trip digits; ECMAScript writes exponents as `e+21`.
    let s = format!("{f:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-6..21).contains(&exp) {
        format!("{f}")
    } else if exp >= 0 {
        format!("{mantissa}e+{exp}")
    } else {
        format!("{mantissa}e{exp}")
    }
}

/// Convenience: a JSON object from pairs.
pub fn object<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    let mut map = Map::new();
    for (k, v) in pairs {
        map.insert(k.to_owned(), v);
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The verified examples of docs/opencti-protocol.md §9.3.
    #[test]
    fn golden_ids() {
        let cases = [
            (
                "ipv4-addr",
                json!({"value": "8.8.8.8"}),
                "ipv4-addr--2f689bf9-0ff2-545f-aa61-e495eb8cecc7",
            ),
            (
                "ipv6-addr",
                json!({"value": "2001:db8::1"}),
                "ipv6-addr--6469e3a9-b053-5e34-a025-9396ae051d26",
            ),
            (
                "domain-name",
                json!({"value": "example.com"}),
                "domain-name--bedb4899-d24b-5401-bc86-8f6b4cc18ec7",
            ),
            (
                "domain-name",
                json!({"value": "münchen.example"}),
                "domain-name--ec84ab45-ecbb-5f68-840c-b4b7d70cb21d",
            ),
            (
                "mac-addr",
                json!({"value": "00:11:22:33:44:55"}),
                "mac-addr--56c46416-7118-5199-a206-1d701ab3f69f",
            ),
            (
                "autonomous-system",
                json!({"number": 15169}),
                "autonomous-system--7afc7bdf-d070-5add-90ff-f93503b1654d",
            ),
            (
                "x509-certificate",
                json!({"hashes": {"MD5": "098f6bcd4621d373cade4e832627b4f6"}}),
                "x509-certificate--5919a4b1-9e97-5c92-9203-9c050f677cb4",
            ),
            (
                "x509-certificate",
                json!({"serial_number": "36:f7:d4:32:f4:ab:70:ea:d3:ce:98:6e:ea:99:93:49:32:0a:b7:06"}),
                "x509-certificate--bf86f034-2390-54d7-8426-d08433db3fbe",
            ),
            (
                "identity",
                json!({"name": "ivre", "identity_class": "organization"}),
                "identity--bb0162f7-f4f4-5c50-ab60-4bb962f1e276",
            ),
            (
                "location",
                json!({"name": "france", "x_opencti_location_type": "Country"}),
                "location--b8d0549f-de06-5ebd-a6e9-d31a581dba5d",
            ),
            (
                "location",
                json!({"name": "paris", "x_opencti_location_type": "City"}),
                "location--521ef7f0-6bfa-58f9-adca-f5e1737524d5",
            ),
            (
                "location",
                json!({"latitude": 48.85, "longitude": 2.35}),
                "location--aaf8ffac-edc5-5ca2-8ffa-0b6a356afe0e",
            ),
            (
                "relationship",
                json!({"relationship_type": "located-at", "source_ref": "ipv4-addr--2f689bf9-0ff2-545f-aa61-e495eb8cecc7", "target_ref": "location--b8d0549f-de06-5ebd-a6e9-d31a581dba5d"}),
                "relationship--cc729aec-0627-50b2-9462-e56e7b298d63",
            ),
            (
                "relationship",
                json!({"relationship_type": "belongs-to", "source_ref": "ipv4-addr--2f689bf9-0ff2-545f-aa61-e495eb8cecc7", "target_ref": "autonomous-system--7afc7bdf-d070-5add-90ff-f93503b1654d"}),
                "relationship--d4ed1b59-ab87-50ff-a04a-8656941c31ae",
            ),
            (
                "relationship",
                json!({"relationship_type": "related-to", "source_ref": "ipv4-addr--2f689bf9-0ff2-545f-aa61-e495eb8cecc7", "target_ref": "x509-certificate--5919a4b1-9e97-5c92-9203-9c050f677cb4", "start_time": "2020-01-01T00:00:00Z", "stop_time": "2021-01-01T00:00:00Z"}),
                "relationship--64aea2d3-4f7b-545d-83c5-f673f9ba0433",
            ),
            (
                "label",
                json!({"value": "Possible TOR Node"}),
                "label--e12f40d8-5246-5cae-8292-e43f9ec6698a",
            ),
            (
                "marking-definition",
                json!({"definition": "PAP:RED", "definition_type": "PAP"}),
                "marking-definition--4e4e3b84-de45-53df-9d9b-b21207699fd8",
            ),
        ];
        for (ty, props, expected) in cases {
            assert_eq!(generate(ty, &props), expected, "{props}");
        }
    }

    /// The fast path writes what `canonical_json` writes, escapes and non-ASCII included.
    #[test]
    fn generate_from_matches_generate() {
        let values = [
            "8.8.8.8",
            "münchen.example",
            "a\"b\\c",
            "tab\there\nnl\u{1}\u{1f}",
            "",
            "𝄞 surrogate pair",
            "relationship--cc729aec-0627-50b2-9462-e56e7b298d63",
        ];
        for v in values {
            assert_eq!(
                generate_from("domain-name", &[("value", IdValue::Str(v))]),
                generate("domain-name", &json!({ "value": v })),
                "{v:?}"
            );
            assert_eq!(
                generate_from(
                    "relationship",
                    &[
                        ("relationship_type", IdValue::Str("related-to")),
                        ("source_ref", IdValue::Str(v)),
                        ("target_ref", IdValue::Str("x")),
                    ]
                ),
                generate(
                    "relationship",
                    &json!({"target_ref": "x", "source_ref": v, "relationship_type": "related-to"})
                ),
            );
            assert_eq!(
                generate_from(
                    "x509-certificate",
                    &[
                        ("hashes", IdValue::Pair("SHA-256", v)),
                        ("serial_number", IdValue::Str(v)),
                    ]
                ),
                generate(
                    "x509-certificate",
                    &json!({"serial_number": v, "hashes": {"SHA-256": v}})
                ),
            );
        }
        for n in [0u64, 15169, u32::MAX as u64] {
            assert_eq!(
                generate_from("autonomous-system", &[("number", IdValue::Int(n))]),
                generate("autonomous-system", &json!({ "number": n })),
            );
        }
    }

    #[test]
    fn uuid5_is_uuids_v5() {
        for name in ["", "a", "{\"value\":\"8.8.8.8\"}", &"x".repeat(200)] {
            assert_eq!(
                uuid5(name.as_bytes()),
                Uuid::new_v5(&OASIS_NAMESPACE, name.as_bytes())
            );
        }
    }

    #[test]
    fn canonical_json_follows_rfc_8785() {
        let v: Value =
            serde_json::from_str(r#"{"value":"münchen.example","b":[1.0,2.50,1e21],"a":"é\"\\"}"#)
                .unwrap();
        assert_eq!(
            canonical_json(&v),
            r#"{"a":"é\"\\","b":[1,2.5,1e+21],"value":"münchen.example"}"#
        );
        assert_eq!(
            canonical_json(&json!({"a": "\u{1}\n"})),
            r#"{"a":"\u0001\n"}"#
        );
        assert_eq!(canonical_json(&json!([0.000001, 1e-7])), "[0.000001,1e-7]");
    }
}
