//! X.509 certificates as IVRE records them, in both `ssl-cert` shapes.
//!
//! - Shape A (parsed by IVRE, the normal case): a list of dicts with `md5`, `sha1`,
//!   `sha256`, `subject_text`, `issuer_text`, `self_signed`, `not_before`, `not_after`,
//!   `serial_number`, `pubkey{type,bits,exponent,modulus}`, `san`…; passive `SSL_SERVER`
//!   records carry the same dict in `infos`.
//! - Shape B (Nmap's raw table, when IVRE could not parse the PEM): one dict with
//!   `md5`, `sha1`, `subject{}`, `issuer{}`, `pubkey{type,bits,exponent,modulus}` (numbers
//!   as strings), `extensions[]`, `sig_algo`, `validity{notBefore,notAfter}`; no
//!   `sha256`, `subject_text`, `issuer_text`, `self_signed` or `san`.

use super::{get_date, get_str, get_str_list, get_u64, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Which `ssl-cert` shape a certificate came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CertShape {
    /// Parsed by IVRE (shape A).
    Parsed,
    /// Nmap's raw table (shape B).
    NmapRaw,
}

/// What the index and the enrichment need of a certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    pub shape: CertShape,
    /// Lower-case hex digests, when known.
    pub md5: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    /// `key=value` pairs joined with `/`, as IVRE writes them.
    pub subject_text: Option<String>,
    pub issuer_text: Option<String>,
    /// As recorded by IVRE; absent in shape B.
    pub self_signed: Option<bool>,
    pub not_before: Option<Timestamp>,
    pub not_after: Option<Timestamp>,
    pub serial_number: Option<String>,
    pub signature_algorithm: Option<String>,
    pub pubkey_type: Option<String>,
    pub pubkey_bits: Option<u64>,
    pub pubkey_exponent: Option<u64>,
    /// Decimal string.
    pub pubkey_modulus: Option<String>,
    /// `DNS:name`, `IP Address:…` entries.
    pub san: Vec<String>,
    /// A CA certificate (`ssl-cacert` script, passive `cacert` source).
    pub cacert: bool,
    /// The port it was seen on, when known.
    pub port: Option<u16>,
}

impl Certificate {
    /// Reads one certificate dict of either shape.
    pub fn from_json(map: &Map<String, Value>) -> Certificate {
        let is_raw = !map.contains_key("subject_text")
            && !map.contains_key("sha256")
            && (map.contains_key("validity") || map.contains_key("sig_algo"));
        let pubkey = map.get("pubkey").and_then(Value::as_object);
        let pk_str = |k: &str| pubkey.and_then(|p| get_str(p, k));
        let pk_num = |k: &str| pubkey.and_then(|p| get_u64(p, k));
        let pubkey_modulus = pubkey.and_then(|p| match p.get("modulus")? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        let lower = |k: &str| get_str(map, k).map(|h| h.to_ascii_lowercase());
        if is_raw {
            let validity = map.get("validity").and_then(Value::as_object);
            Certificate {
                shape: CertShape::NmapRaw,
                md5: lower("md5"),
                sha1: lower("sha1"),
                sha256: lower("sha256"),
                subject_text: map.get("subject").and_then(Value::as_object).map(dn_text),
                issuer_text: map.get("issuer").and_then(Value::as_object).map(dn_text),
                self_signed: None,
                not_before: validity.and_then(|v| get_date(v, "notBefore")),
                not_after: validity.and_then(|v| get_date(v, "notAfter")),
                serial_number: get_str(map, "serial_number").or_else(|| get_str(map, "serial")),
                signature_algorithm: get_str(map, "sig_algo"),
                pubkey_type: pk_str("type"),
                pubkey_bits: pk_num("bits"),
                pubkey_exponent: pk_num("exponent"),
                pubkey_modulus,
                san: raw_san(map),
                cacert: false,
                port: None,
            }
        } else {
            Certificate {
                shape: CertShape::Parsed,
                md5: lower("md5"),
                sha1: lower("sha1"),
                sha256: lower("sha256"),
                subject_text: get_str(map, "subject_text"),
                issuer_text: get_str(map, "issuer_text"),
                self_signed: map.get("self_signed").and_then(Value::as_bool),
                not_before: get_date(map, "not_before"),
                not_after: get_date(map, "not_after"),
                serial_number: match map.get("serial_number") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                },
                signature_algorithm: get_str(map, "signature_algorithm"),
                pubkey_type: pk_str("type"),
                pubkey_bits: pk_num("bits"),
                pubkey_exponent: pk_num("exponent"),
                pubkey_modulus,
                san: get_str_list(map, "san"),
                cacert: false,
                port: None,
            }
        }
    }

    /// Reads the value of an `ssl-cert` script key: a list (shape A) or a dict (shape B).
    pub fn from_script_value(value: &Value) -> Vec<Certificate> {
        match value {
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_object)
                .map(Certificate::from_json)
                .collect(),
            Value::Object(map) => vec![Certificate::from_json(map)],
            _ => Vec::new(),
        }
    }
}

/// `{"countryName": "FR", "commonName": "x"}` → `countryName=FR/commonName=x`, as IVRE
/// builds `subject_text` (in the table's order).
fn dn_text(dn: &Map<String, Value>) -> String {
    dn.iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some(format!("{k}={s}")),
            Value::Number(n) => Some(format!("{k}={n}")),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The Subject Alternative Name extension of Nmap's raw table, split into entries.
fn raw_san(map: &Map<String, Value>) -> Vec<String> {
    let Some(Value::Array(exts)) = map.get("extensions") else {
        return Vec::new();
    };
    exts.iter()
        .filter_map(Value::as_object)
        .filter(|e| get_str(e, "name").as_deref() == Some("X509v3 Subject Alternative Name"))
        .filter_map(|e| get_str(e, "value"))
        .flat_map(|v| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nmap_raw_table_is_read() {
        let raw = json!({"md5": "7F91D7EF022276698AA7D233C1AD820F", "sha1": "ba868aae4f039691fac508f02d5636d02db65f80",
            "subject": {"countryName": "FR", "commonName": "www.example.com"},
            "issuer": {"commonName": "Example Test Root CA"},
            "pubkey": {"type": "rsa", "bits": "2048", "exponent": "65537", "modulus": "2627"},
            "extensions": [{"name": "X509v3 Subject Alternative Name", "value": "DNS:www.example.com, DNS:example.com"}],
            "sig_algo": "sha256WithRSAEncryption",
            "validity": {"notBefore": "2026-11-28T21:19:35", "notAfter": "2027-11-28T21:19:35"}});
        let certs = Certificate::from_script_value(&raw);
        let [c] = certs.as_slice() else {
            panic!("one cert")
        };
        assert_eq!(c.shape, CertShape::NmapRaw);
        assert_eq!(c.md5.as_deref(), Some("7f91d7ef022276698aa7d233c1ad820f"));
        assert_eq!(c.sha256, None);
        assert_eq!(
            c.subject_text.as_deref(),
            Some("countryName=FR/commonName=www.example.com")
        );
        assert_eq!(c.self_signed, None);
        assert_eq!(c.pubkey_bits, Some(2048));
        assert_eq!(c.pubkey_exponent, Some(65537));
        assert_eq!(c.san, vec!["DNS:www.example.com", "DNS:example.com"]);
        assert_eq!(
            c.not_before.unwrap().to_ivre_string(),
            "2026-11-28 21:19:35"
        );
    }

    #[test]
    fn parsed_shape_without_self_signed_is_fine() {
        let c = Certificate::from_json(
            json!({"sha256": "AB", "subject_text": "commonName=a", "issuer_text": "commonName=b"})
                .as_object()
                .unwrap(),
        );
        assert_eq!(c.shape, CertShape::Parsed);
        assert_eq!(c.self_signed, None);
        assert_eq!(c.sha256.as_deref(), Some("ab"));
    }
}
