//! Record values that cannot be STIX values (issue 11, item 3): host names, DNS values
//! and certificate fields of real-shaped IVRE records, edited to hold a NUL, a space, a
//! 300-byte name, an empty label… are skipped and counted, never pushed; observables
//! follow the platform's syntax (`::ffff:a.b.c.d` linked back to the IPv6 observable).

use crate::util::*;
use ivre_connector::enrich::{self, EnrichOptions, EnrichRequest};
use ivre_connector::observable::{normalize_domain, Observable};
use ivre_connector::snapshot::{DataDir, Snapshot};
use serde_json::{json, Value};
use std::path::Path;

/// Bad names, as IVRE could hold them.
fn bad_names() -> Vec<String> {
    vec![
        "bad\u{0}name.example.com".to_owned(),
        "bad name.example.com".to_owned(),
        format!("{}.example.com", vec!["x".repeat(60); 5].join(".")),
        "a..b".to_owned(),
    ]
}

fn line(path: &Path, n: usize) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(text.lines().nth(n - 1).unwrap()).unwrap()
}

/// A snapshot of 192.0.2.10 made of fixture records edited to hold bad values: four
/// passive DNS answers and four PTR host names with bad names, a certificate whose
/// subject holds a NUL, and good records next to them.
fn edited_snapshot() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let good_dns = line(&lab("mongo-ipinfo.jsonl"), 1);
    let mut passive = vec![good_dns.clone()];
    for name in bad_names().into_iter().chain(["BÜCHER.example".to_owned()]) {
        let mut r = good_dns.clone();
        r["value"] = name.clone().into();
        r["infos"]["domain"] = json!([name]);
        passive.push(r);
    }
    let mut cert = line(&lab("mongo-ipinfo.jsonl"), 7);
    assert_eq!(cert["recontype"], "SSL_SERVER");
    cert["infos"]["subject_text"] = "commonName=www.example.com\u{0}.evil.example".into();
    passive.push(cert);
    let mut scan = line(&lab("mongo-scancli.jsonl"), 1);
    assert_eq!(scan["addr"], "192.0.2.10");
    scan["ports"] = json!([]);
    let mut hostnames = vec![json!({"name": "www.example.com", "type": "PTR"})];
    for name in bad_names() {
        hostnames.push(json!({"name": name, "type": "PTR"}));
    }
    scan["hostnames"] = Value::Array(hostnames);
    let write = |name: &str, records: &[Value]| {
        let path = dir.path().join(name);
        let text: String = records.iter().map(|r| format!("{r}\n")).collect();
        std::fs::write(&path, text).unwrap();
        path
    };
    let passive_file = write("passive.jsonl", &passive);
    let scans_file = write("scans.jsonl", &[scan]);
    let data = dir.path().join("data");
    import(
        &data,
        &[
            "--scans",
            &path_str(&scans_file),
            "--passive",
            &path_str(&passive_file),
        ],
        0,
    );
    dir
}

fn objects_of<'a>(bundle: &'a Value, ty: &str) -> Vec<&'a Value> {
    bundle["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type"] == ty)
        .collect()
}

fn enrich_value(data: &Path, value: &str) -> enrich::Enrichment {
    let snap = Snapshot::open(&DataDir::new(data)).unwrap();
    let request = EnrichRequest::new(Observable::parse(value).unwrap(), Vec::new());
    enrich::enrich(&snap, &request, &EnrichOptions::default()).unwrap()
}

#[test]
fn record_values_that_are_not_names_are_skipped_and_counted() {
    let dir = edited_snapshot();
    let data = dir.path().join("data");
    let enrichment = enrich_value(&data, "192.0.2.10");
    let bundle = &enrichment.bundle;
    let names: Vec<&str> = objects_of(bundle, "domain-name")
        .iter()
        .map(|o| o["value"].as_str().unwrap())
        .collect();
    // The good names are there (the IDN one in punycode), every name is valid…
    assert!(names.contains(&"www.example.com"), "{names:?}");
    assert!(names.contains(&"xn--bcher-kva.example"), "{names:?}");
    for name in &names {
        assert_eq!(normalize_domain(name).as_deref(), Ok(*name), "{name:?}");
    }
    // …and no bad one made it in, in any form.
    let text = bundle.to_string();
    for bad in ["\\u0000", "bad name", "a..b", &"x".repeat(60)] {
        assert!(!text.contains(bad), "{bad:?} pushed: {text}");
    }
    // 4 passive values + 4 PTR host names + 1 certificate subject.
    assert_eq!(enrichment.skipped_values, 9);
    assert_eq!(enrichment.scan_records, 1);
    let certs = objects_of(bundle, "x509-certificate");
    assert_eq!(certs.len(), 1);
    assert!(certs[0].get("subject").is_none(), "{}", certs[0]);
    assert!(certs[0]["issuer"]
        .as_str()
        .unwrap()
        .contains("Example Test CA"));
    let note = &objects_of(bundle, "note")[0]["content"];
    assert!(
        note.as_str().unwrap().contains("9 record value(s) skipped"),
        "{note}"
    );

    // Looked up by one of the names: the same skip (the bad DNS answers are not found
    // under a good name), the bundle still valid STIX.
    let by_name = enrich_value(&data, "www.example.com");
    assert!(by_name.bundle.to_string().contains("192.0.2.10"));
    let files = [("ip", bundle), ("name", &by_name.bundle)].map(|(n, b)| {
        let f = dir.path().join(format!("{n}.ndjson"));
        std::fs::write(&f, format!("{b}\n")).unwrap();
        f
    });
    validate_stix(&files, files.len());
}

#[test]
fn an_ipv4_mapped_ipv6_observable_gets_the_ipv4_records_linked_to_itself() {
    let data = lab_snapshot();
    let mapped = enrich_value(data.path(), "::ffff:192.0.2.10");
    let plain = enrich_value(data.path(), "192.0.2.10");
    let bundle = &mapped.bundle;
    let subject = objects_of(bundle, "ipv6-addr");
    assert_eq!(subject.len(), 1, "{bundle}");
    assert_eq!(subject[0]["value"], "::ffff:192.0.2.10");
    let subject_id = subject[0]["id"].as_str().unwrap();
    assert!(
        objects_of(bundle, "ipv4-addr")
            .iter()
            .all(|o| o["value"] != "192.0.2.10"),
        "the IPv4 form must not be a second object: {bundle}"
    );
    // As many relationships as for the IPv4 observable, the same share on it.
    let linked = |b: &Value, id: &str| {
        objects_of(b, "relationship")
            .iter()
            .filter(|r| r["source_ref"] == id || r["target_ref"] == id)
            .count()
    };
    let plain_id = objects_of(&plain.bundle, "ipv4-addr")
        .iter()
        .find(|o| o["value"] == "192.0.2.10")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let expected = linked(&plain.bundle, &plain_id);
    assert!(expected >= 3, "the fixture links 192.0.2.10: {expected}");
    assert_eq!(linked(bundle, subject_id), expected, "{bundle}");
    assert_eq!(mapped.passive_records, plain.passive_records);
    assert_eq!(mapped.scan_records, plain.scan_records);
    // The OASIS validator's IPv6 pattern has lost its `\d` escapes, so it refuses any
    // dotted-quad suffix (`::ffff:192.0.2.10`) although STIX and the platform take it:
    // validate every other object, the subject written in its all-hex form.
    let mut checked = bundle.clone();
    for o in checked["objects"].as_array_mut().unwrap() {
        if o["value"] == "::ffff:192.0.2.10" {
            o["value"] = "::ffff:c000:20a".into();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mapped.ndjson");
    std::fs::write(&f, format!("{checked}\n")).unwrap();
    validate_stix(&[f], 1);
}
