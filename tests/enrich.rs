//! Expectations are derived by hand from the rules of the Python connector
//! (`docs/opencti-protocol.md` §11.3) and the fixes listed in the README.

use crate::util::*;
use ivre_connector::enrich::{self, EnrichOptions, EnrichRequest};
use ivre_connector::observable::Observable;
use ivre_connector::snapshot::{DataDir, Snapshot};
use ivre_connector::stix::markings::Tlp;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

fn enrich_cli(data: &Path, args: &[&str], observables: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = connector();
    cmd.arg("--data-dir")
        .arg(data)
        .arg("enrich")
        .args(args)
        .args(observables);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

fn bundles(data: &Path, observables: &[&str]) -> Vec<Value> {
    let r = enrich_cli(data, &[], observables, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    json_lines(&r.stdout)
}

/// A readable name for an object of the bundle.
fn describe(objects: &HashMap<String, Value>, id: &str) -> String {
    let Some(o) = objects.get(id) else {
        return format!("?{id}");
    };
    let ty = o["type"].as_str().unwrap();
    match ty {
        "autonomous-system" => format!("AS{}", o["number"]),
        "x509-certificate" => {
            let h = &o["hashes"];
            let digest = h["SHA-256"]
                .as_str()
                .or(h["SHA-1"].as_str())
                .or(h["MD5"].as_str())
                .unwrap_or("");
            format!("cert:{}", &digest[..8])
        }
        "location" => format!(
            "{}:{}",
            o["x_opencti_location_type"].as_str().unwrap(),
            o["name"].as_str().unwrap()
        ),
        _ => match o["value"].as_str() {
            Some(v) => format!("{ty}:{v}"),
            None => ty.to_owned(),
        },
    }
}

/// `rel SOURCE -> TARGET` and `label L on OBJECT` lines of a bundle.
fn summary(bundle: &Value) -> BTreeSet<String> {
    let list = bundle["objects"].as_array().unwrap();
    let objects: HashMap<String, Value> = list
        .iter()
        .map(|o| (o["id"].as_str().unwrap().to_owned(), o.clone()))
        .collect();
    let mut out = BTreeSet::new();
    for o in list {
        if o["type"] == "relationship" {
            out.insert(format!(
                "{} {} -> {}",
                o["relationship_type"].as_str().unwrap(),
                describe(&objects, o["source_ref"].as_str().unwrap()),
                describe(&objects, o["target_ref"].as_str().unwrap())
            ));
        }
        for key in ["x_opencti_labels", "labels"] {
            for l in o[key].as_array().into_iter().flatten() {
                out.insert(format!(
                    "label {} on {}",
                    l.as_str().unwrap(),
                    describe(&objects, o["id"].as_str().unwrap())
                ));
            }
        }
    }
    out
}

fn set(lines: &[&str]) -> BTreeSet<String> {
    lines.iter().map(|s| s.to_string()).collect()
}

#[test]
fn each_observable_gets_the_python_connectors_objects_relationships_and_labels() {
    let data = lab_snapshot();
    let www_cert = "sha256:fcf2200c62f5e3ff8dcf0c7581f41ececa21ced836cf0e2930e4662c66f59277";
    let cases: Vec<(&str, Vec<&str>)> = vec![
        // data: City (and its Country), AS; passive: A records, the SSL_SERVER cert;
        // scans: the PTR name, the ssl-cert (the same certificate: one object).
        (
            "192.0.2.10",
            vec![
                "located-at City:Paris -> Country:France",
                "located-at ipv4-addr:192.0.2.10 -> City:Paris",
                "belongs-to ipv4-addr:192.0.2.10 -> AS64496",
                "resolves-to domain-name:www.example.com -> ipv4-addr:192.0.2.10",
                "resolves-to domain-name:example.com -> ipv4-addr:192.0.2.10",
                "related-to ipv4-addr:192.0.2.10 -> cert:fcf2200c",
            ],
        ),
        // registered country (Germany) differs from the country: second located-at;
        // passive MAC_ADDRESS: address resolves-to MAC.
        (
            "198.51.100.7",
            vec![
                "located-at City:San Francisco -> Country:United States",
                "located-at ipv4-addr:198.51.100.7 -> City:San Francisco",
                "located-at ipv4-addr:198.51.100.7 -> Country:Germany",
                "belongs-to ipv4-addr:198.51.100.7 -> AS64497",
                "resolves-to domain-name:router.example.net -> ipv4-addr:198.51.100.7",
                "related-to ipv4-addr:198.51.100.7 -> cert:ae7b2d20",
                "resolves-to ipv4-addr:198.51.100.7 -> mac-addr:00:1b:21:3a:4f:5c",
            ],
        ),
        // IPv6: country without city; AAAA passive record.
        (
            "2001:db8::53",
            vec![
                "located-at ipv6-addr:2001:db8::53 -> Country:France",
                "belongs-to ipv6-addr:2001:db8::53 -> AS64499",
                "resolves-to domain-name:ns1.example.org -> ipv6-addr:2001:db8::53",
            ],
        ),
        // passive DNS: A record; MX without address: value is the domain, target a
        // subdomain, linked to it by related-to. Scans are off for domains by default.
        (
            "example.com",
            vec![
                "resolves-to domain-name:example.com -> ipv4-addr:192.0.2.10",
                "related-to domain-name:mail.example.com -> domain-name:example.com",
                "resolves-to domain-name:example.com -> domain-name:mail.example.com",
            ],
        ),
        // the reverse search finds the CNAME web -> www.
        (
            "www.example.com",
            vec![
                "resolves-to domain-name:www.example.com -> ipv4-addr:192.0.2.10",
                "resolves-to domain-name:web.example.com -> domain-name:www.example.com",
            ],
        ),
        // passive and scans (MongoDB keeps MACs): the address is linked back to the MAC.
        (
            "00:1B:21:3A:4F:5C",
            vec![
                "resolves-to ipv4-addr:198.51.100.7 -> mac-addr:00:1b:21:3a:4f:5c",
                "resolves-to domain-name:router.example.net -> ipv4-addr:198.51.100.7",
                "related-to ipv4-addr:198.51.100.7 -> cert:ae7b2d20",
            ],
        ),
        // passive by AS (addresses placed by the snapshot's ASN data), not scans
        // (IVRE_USE_SCANS_AS is false): TOR-like certificate labels.
        (
            "AS64497",
            vec![
                "belongs-to ipv4-addr:198.51.100.7 -> AS64497",
                "resolves-to domain-name:router.example.net -> ipv4-addr:198.51.100.7",
                "related-to ipv4-addr:198.51.100.7 -> cert:ae7b2d20",
                "resolves-to ipv4-addr:198.51.100.7 -> mac-addr:00:1b:21:3a:4f:5c",
                "belongs-to ipv4-addr:198.51.100.66 -> AS64497",
                "related-to ipv4-addr:198.51.100.66 -> cert:cccccccc",
                "resolves-to ipv4-addr:198.51.100.66 -> mac-addr:00:aa:bb:cc:dd:ee",
                "resolves-to domain-name:tor-relay.example.net -> ipv4-addr:198.51.100.66",
                "label Possible TOR Node on ipv4-addr:198.51.100.66",
                "label Possible TOR Certificate on cert:cccccccc",
            ],
        ),
        // a certificate: the addresses showing it (scans and passive SSL_SERVER).
        (
            www_cert,
            vec![
                "related-to ipv4-addr:192.0.2.10 -> cert:fcf2200c",
                "resolves-to domain-name:www.example.com -> ipv4-addr:192.0.2.10",
            ],
        ),
        // TOR relay: upper-case name with a trailing dot, certificate in scans and passive.
        (
            "198.51.100.66",
            vec![
                "located-at City:San Francisco -> Country:United States",
                "located-at ipv4-addr:198.51.100.66 -> City:San Francisco",
                "located-at ipv4-addr:198.51.100.66 -> Country:Germany",
                "belongs-to ipv4-addr:198.51.100.66 -> AS64497",
                "related-to ipv4-addr:198.51.100.66 -> cert:cccccccc",
                "resolves-to ipv4-addr:198.51.100.66 -> mac-addr:00:aa:bb:cc:dd:ee",
                "resolves-to domain-name:tor-relay.example.net -> ipv4-addr:198.51.100.66",
                "label Possible TOR Node on ipv4-addr:198.51.100.66",
                "label Possible TOR Certificate on cert:cccccccc",
            ],
        ),
        // honeypot hits and a scanner with and without a product.
        (
            "203.0.113.97",
            vec![
                "located-at ipv4-addr:203.0.113.97 -> Country:Germany",
                "belongs-to ipv4-addr:203.0.113.97 -> AS64498",
                "label Scanner (unknown) on ipv4-addr:203.0.113.97",
            ],
        ),
        (
            "203.0.113.99",
            vec![
                "located-at ipv4-addr:203.0.113.99 -> Country:Germany",
                "belongs-to ipv4-addr:203.0.113.99 -> AS64498",
                "label Scanner ZGrab on ipv4-addr:203.0.113.99",
            ],
        ),
        (
            "203.0.113.98",
            vec![
                "located-at ipv4-addr:203.0.113.98 -> Country:Germany",
                "belongs-to ipv4-addr:203.0.113.98 -> AS64498",
                "label Scanner (unknown) on ipv4-addr:203.0.113.98",
            ],
        ),
        // Nmap's raw ssl-cert table (shape B): the certificate by MD5/SHA-1.
        (
            "192.0.2.77",
            vec![
                "located-at City:Paris -> Country:France",
                "located-at ipv4-addr:192.0.2.77 -> City:Paris",
                "belongs-to ipv4-addr:192.0.2.77 -> AS64496",
                "resolves-to domain-name:legacy.example.com -> ipv4-addr:192.0.2.77",
                "related-to ipv4-addr:192.0.2.77 -> cert:01234567",
            ],
        ),
        // a certificate without `self_signed` does not abort; a `user` host name states
        // no resolution (only A, AAAA and PTR do); the CA certificate is not linked.
        (
            "2001:db8:1::10",
            vec![
                "located-at ipv6-addr:2001:db8:1::10 -> Country:France",
                "belongs-to ipv6-addr:2001:db8:1::10 -> AS64499",
                "related-to ipv6-addr:2001:db8:1::10 -> cert:ffffffff",
            ],
        ),
    ];
    let inputs: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let got = bundles(data.path(), &inputs);
    for ((input, expected), bundle) in cases.iter().zip(&got) {
        assert_eq!(summary(bundle), set(expected), "bundle of {input}");
    }
    // The shape-B certificate's object: STIX hash keys, subject rebuilt from the table.
    let b77 = &got[12]["objects"];
    let cert = b77
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == "x509-certificate")
        .unwrap();
    assert_eq!(cert["hashes"]["MD5"], "0123456789abcdef0123456789abcdef");
    assert_eq!(
        cert["hashes"]["SHA-1"],
        "0123456789abcdef0123456789abcdef01234567"
    );
    assert_eq!(
        cert["subject"],
        "commonName=legacy.example.com, organizationName=Legacy"
    );
    assert_eq!(cert["subject_public_key_exponent"], 65537);
    assert!(cert.get("is_self_signed").is_none());
    // The scan certificate of 192.0.2.10 with every field the issue lists.
    let cert = got[0]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == "x509-certificate")
        .unwrap();
    for key in [
        "hashes",
        "serial_number",
        "is_self_signed",
        "validity_not_before",
        "validity_not_after",
        "issuer",
        "subject",
        "subject_public_key_algorithm",
        "subject_public_key_modulus",
    ] {
        assert!(cert.get(key).is_some(), "certificate lacks {key}: {cert}");
    }
    assert_eq!(
        cert["issuer"],
        "countryName=FR, organizationName=Example Test CA, commonName=Example Test Root CA"
    );
    // AS names come from IVRE; the author is the Organization named IVRE.
    let as_obj = got[0]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == "autonomous-system")
        .unwrap();
    assert_eq!(as_obj["name"], "EXAMPLE-AS-1 Example Corp");
    assert_eq!(
        got[0]["objects"][0]["id"],
        "identity--bb0162f7-f4f4-5c50-ab60-4bb962f1e276"
    );
}

#[test]
fn every_bundle_is_valid_stix_2_1() {
    let data = lab_snapshot();
    let out = tempfile::tempdir().unwrap();
    // Every observable the dataset mentions, bare and marked, with and without
    // relationship times, plus bundles with granted organizations (library).
    let observables: Vec<String> = {
        let mut o: Vec<String> = [
            "192.0.2.10",
            "198.51.100.7",
            "2001:db8::53",
            "203.0.113.5",
            "203.0.113.97",
            "203.0.113.99",
            "198.51.100.66",
            "192.0.2.77",
            "2001:db8:1::10",
            "2001:db8:1::66",
            "8.8.8.8",
            "example.com",
            "www.example.com",
            "mail.example.com",
            "web.example.com",
            "router.example.net",
            "ns1.example.org",
            "tor-relay.example.net",
            "example.net",
            "absent.example",
            "AS64496",
            "AS64497",
            "AS64498",
            "AS64499",
            "AS1",
            "00:1b:21:3a:4f:5c",
            "00:aa:bb:cc:dd:ee",
            "00:00:00:00:00:01",
            "sha256:fcf2200c62f5e3ff8dcf0c7581f41ececa21ced836cf0e2930e4662c66f59277",
            "sha256:ae7b2d206d90da9d383c263d056802eb8fb8d334b96c699da9571828a77746a7",
            "md5:0123456789abcdef0123456789abcdef",
            "sha1:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        o.sort();
        o
    };
    let refs: Vec<&str> = observables.iter().map(String::as_str).collect();
    type Variant<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
    let variants: [Variant; 3] = [
        (&[], &[]),
        (
            &["--marking", "TLP:AMBER"],
            &[("IVRE_RELATIONSHIP_TIMES", "true")],
        ),
        (
            &["--marking", "TLP:RED"],
            &[
                ("IVRE_USE_SCANS_DOMAIN", "true"),
                ("IVRE_USE_SCANS_AS", "true"),
            ],
        ),
    ];
    let mut files = Vec::new();
    for (i, (args, env)) in variants.iter().enumerate() {
        let r = enrich_cli(data.path(), args, &refs, env);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(json_lines(&r.stdout).len(), refs.len());
        let f = out.path().join(format!("bundles-{i}.ndjson"));
        std::fs::write(&f, &r.stdout).unwrap();
        files.push(f);
    }
    let snap = Snapshot::open(&DataDir::new(data.path())).unwrap();
    let request = EnrichRequest {
        observable: Observable::parse("198.51.100.66").unwrap(),
        stix_object: None,
        markings: vec![Tlp::Green.marking_id().to_owned()],
        granted_refs: vec!["identity--8cb00c79-ab20-5ed4-b37d-337241b96a29".to_owned()],
    };
    let bundle = enrich::enrich(&snap, &request, &EnrichOptions::default())
        .unwrap()
        .bundle;
    let f = out.path().join("granted.ndjson");
    std::fs::write(&f, format!("{bundle}\n")).unwrap();
    files.push(f);
    validate_stix(&files, 3 * refs.len() + 1);
}

#[test]
fn the_same_input_gives_the_same_bundle() {
    let data = lab_snapshot();
    let inputs = ["192.0.2.10", "AS64497", "example.com"];
    let first = enrich_cli(data.path(), &["--marking", "TLP:GREEN"], &inputs, &[]);
    let second = enrich_cli(data.path(), &["--marking", "TLP:GREEN"], &inputs, &[]);
    assert_eq!(first.code, 0);
    assert_eq!(
        first.stdout, second.stdout,
        "bundles are deterministic for one snapshot"
    );
    // No bundle-level spec_version (strict STIX 2.1).
    for b in json_lines(&first.stdout) {
        assert!(b.get("spec_version").is_none());
        assert_eq!(b["type"], "bundle");
    }
}

fn relationships(bundle: &Value) -> BTreeSet<(String, Option<String>, Option<String>)> {
    bundle["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type"] == "relationship")
        .map(|o| {
            (
                o["id"].as_str().unwrap().to_owned(),
                o["start_time"].as_str().map(str::to_owned),
                o["stop_time"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

#[test]
fn re_enrichment_updates_relationships_instead_of_duplicating_them() {
    // A later snapshot where IVRE saw the same facts again (last seen moved).
    let dir = tempfile::tempdir().unwrap();
    let later = dir.path().join("later.jsonl");
    let text = std::fs::read_to_string(lab("mongo-ipinfo.jsonl"))
        .unwrap()
        .replace("\"lastseen\": \"2026-11-27", "\"lastseen\": \"2026-12-05");
    assert!(text.contains("2026-12-05"));
    std::fs::write(&later, text).unwrap();
    let data = lab_snapshot();
    let before = bundles(data.path(), &["192.0.2.10"]).remove(0);
    import(
        data.path(),
        &[
            "--scans",
            &path_str(&lab("mongo-scancli.jsonl")),
            "--passive",
            &path_str(&later),
        ],
        0,
    );
    let after = bundles(data.path(), &["192.0.2.10"]).remove(0);
    let ids = |b: &Value| {
        relationships(b)
            .into_iter()
            .map(|r| r.0)
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        ids(&before),
        ids(&after),
        "relationship ids must not depend on IVRE's times"
    );
    assert_ne!(
        before.to_string(),
        after.to_string(),
        "descriptions follow the new last seen"
    );
    assert!(after.to_string().contains("2026-12-05"));
    // By default no start/stop times (OpenCTI also deduplicates on them)…
    assert!(relationships(&after)
        .iter()
        .all(|r| r.1.is_none() && r.2.is_none()));
    // …with IVRE_RELATIONSHIP_TIMES=true they are set, ids unchanged, stop after start.
    let r = enrich_cli(
        data.path(),
        &[],
        &["192.0.2.10"],
        &[("IVRE_RELATIONSHIP_TIMES", "true")],
    );
    let timed = json_lines(&r.stdout).remove(0);
    assert_eq!(ids(&timed), ids(&after));
    let with_times: Vec<_> = relationships(&timed)
        .into_iter()
        .filter(|r| r.1.is_some())
        .collect();
    assert!(!with_times.is_empty());
    for (_, start, stop) in with_times {
        assert!(stop.unwrap() > start.unwrap());
    }
}

#[test]
fn new_objects_carry_author_markings_and_organizations() {
    let data = lab_snapshot();
    let snap = Snapshot::open(&DataDir::new(data.path())).unwrap();
    let org = "identity--8cb00c79-ab20-5ed4-b37d-337241b96a29".to_owned();
    let amber = Tlp::Amber.marking_id().to_owned();
    let platform_object = serde_json::json!({"type": "ipv4-addr", "spec_version": "2.1", "id": "ipv4-addr--00000000-0000-4000-8000-000000000001", "value": "198.51.100.7", "object_marking_refs": [amber]});
    let request = EnrichRequest {
        observable: Observable::parse("198.51.100.7").unwrap(),
        stix_object: platform_object.as_object().cloned(),
        markings: vec![amber.clone()],
        granted_refs: vec![org.clone()],
    };
    let bundle = enrich::enrich(&snap, &request, &EnrichOptions::default())
        .unwrap()
        .bundle;
    let objects = bundle["objects"].as_array().unwrap();
    let author = objects[0]["id"].as_str().unwrap();
    // The enriched observable keeps the id it came with, and is the source of the new facts.
    assert_eq!(
        objects[1]["id"],
        "ipv4-addr--00000000-0000-4000-8000-000000000001"
    );
    assert!(objects
        .iter()
        .any(|o| o["source_ref"] == "ipv4-addr--00000000-0000-4000-8000-000000000001"));
    for o in &objects[2..] {
        let by = if o["type"].as_str().unwrap().contains("-") && o.get("created_by_ref").is_none() {
            &o["x_opencti_created_by_ref"]
        } else {
            &o["created_by_ref"]
        };
        assert_eq!(by, author, "author of {o}");
        assert_eq!(
            o["object_marking_refs"],
            serde_json::json!([amber]),
            "markings of {o}"
        );
    }
    for o in objects {
        assert_eq!(
            o["x_opencti_granted_refs"],
            serde_json::json!([org]),
            "organizations of {o}"
        );
    }
}

/// The Note of `observable`'s bundle on `data`, with `env`.
fn note_of(data: &Path, observable: &str, env: &[(&str, &str)]) -> Option<Value> {
    let r = enrich_cli(data, &[], &[observable], env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bundle = json_lines(&r.stdout).remove(0);
    let notes: Vec<Value> = bundle["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type"] == "note")
        .cloned()
        .collect();
    assert!(notes.len() <= 1, "{notes:?}");
    notes.into_iter().next()
}

#[test]
fn freshness_and_the_record_cap_are_visible() {
    let data = lab_snapshot();
    let r = enrich_cli(
        data.path(),
        &[],
        &["AS64497"],
        &[("IVRE_MAX_RECORDS", "1"), ("IVRE_LOG", "warn")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("IVRE_MAX_RECORDS"), "{}", r.stderr);
    let note = note_of(data.path(), "AS64497", &[("IVRE_MAX_RECORDS", "1")]).unwrap();
    let content = note["content"].as_str().unwrap();
    assert!(content.contains("IVRE_MAX_RECORDS=1"), "{content}");
    assert!(content.contains("1 passive"), "{content}");
    assert!(
        content.contains("first seen 20") && content.contains("last seen 20"),
        "{content}"
    );
    assert!(!content.contains(&current(data.path())), "{content}");
    let r = enrich_cli(
        data.path(),
        &[],
        &["AS64497"],
        &[("IVRE_MAX_RECORDS", "lots")],
    );
    assert_eq!(r.code, ivre_connector::exit_code::CONFIG);
    assert!(r.stderr.contains("IVRE_MAX_RECORDS"), "{}", r.stderr);
}

/// Re-enriching an observable whose IVRE records did not change, on a new generation of
/// the same data, gives the same Note (same id, same content): the platform keeps one.
#[test]
fn a_new_generation_of_the_same_data_adds_no_note() {
    let first = lab_snapshot();
    let second = lab_snapshot();
    assert_ne!(current(first.path()), current(second.path()));
    for observable in ["192.0.2.10", "AS64497", "www.example.com"] {
        let a = note_of(first.path(), observable, &[]).unwrap();
        let b = note_of(second.path(), observable, &[]).unwrap();
        assert_eq!(a, b, "{observable}");
    }
    assert!(note_of(first.path(), "192.0.2.10", &[("IVRE_NOTE", "false")]).is_none());
}

#[test]
fn use_switches_work_from_the_environment_and_the_yaml_file() {
    let data = lab_snapshot();
    let without_passive = enrich_cli(
        data.path(),
        &[],
        &["192.0.2.10"],
        &[("IVRE_USE_PASSIVE", "false"), ("IVRE_USE_DATA", "no")],
    );
    let s = summary(&json_lines(&without_passive.stdout)[0]);
    assert_eq!(
        s,
        set(&[
            "resolves-to domain-name:www.example.com -> ipv4-addr:192.0.2.10",
            "related-to ipv4-addr:192.0.2.10 -> cert:fcf2200c",
        ])
    );
    // ivre.use_scans_domain in config.yml (the Python connector ignored the YAML keys).
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(
        cwd.path().join("config.yml"),
        "ivre:\n  use_scans_domain: true\n  use_passive: false\n",
    )
    .unwrap();
    let r = run(connector()
        .current_dir(cwd.path())
        .arg("--data-dir")
        .arg(data.path())
        .args(["enrich", "example.com"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = summary(&json_lines(&r.stdout)[0]);
    // Hosts whose names are under example.com (A/PTR names), with their certificates;
    // the names are linked up to the enriched domain.
    assert_eq!(
        s,
        set(&[
            "related-to domain-name:www.example.com -> domain-name:example.com",
            "resolves-to domain-name:www.example.com -> ipv4-addr:192.0.2.10",
            "related-to ipv4-addr:192.0.2.10 -> cert:fcf2200c",
            "related-to domain-name:legacy.example.com -> domain-name:example.com",
            "resolves-to domain-name:legacy.example.com -> ipv4-addr:192.0.2.77",
            "related-to ipv4-addr:192.0.2.77 -> cert:01234567",
        ])
    );
}

#[test]
fn nothing_is_enriched_above_the_max_tlp() {
    let data = lab_snapshot();
    let r = enrich_cli(
        data.path(),
        &["--marking", "TLP:AMBER"],
        &["192.0.2.10", "bad:value"],
        &[("IVRE_MAX_TLP", "TLP:GREEN")],
    );
    assert_eq!(r.code, ivre_connector::exit_code::REFUSED_INPUT);
    let lines = json_lines(&r.stdout);
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0]["error"]
            .as_str()
            .unwrap()
            .contains("TLP:AMBER is above IVRE_MAX_TLP (TLP:GREEN)"),
        "{}",
        lines[0]
    );
    assert!(lines[0].get("objects").is_none());
    let r = enrich_cli(
        data.path(),
        &["--marking", "TLP:GREEN"],
        &["192.0.2.10"],
        &[("IVRE_MAX_TLP", "TLP:GREEN")],
    );
    assert_eq!(r.code, 0);
    let r = enrich_cli(
        data.path(),
        &[],
        &["192.0.2.10"],
        &[("IVRE_MAX_TLP", "amber")],
    );
    assert_eq!(r.code, ivre_connector::exit_code::CONFIG);
    assert!(
        r.stderr.contains("IVRE_MAX_TLP") && r.stderr.contains("amber"),
        "{}",
        r.stderr
    );
}

/// Hardening item 1, `enrich`: IVRE_MAX_TLP set but empty and unknown markings are errors;
/// a marking id is matched in any case; a PAP marking does not raise the TLP and is
/// carried with the TLP on every object but the author.
#[test]
fn enrich_markings_fail_closed() {
    let data = lab_snapshot();
    let empty = enrich_cli(data.path(), &[], &["192.0.2.10"], &[("IVRE_MAX_TLP", "")]);
    assert_eq!(empty.code, ivre_connector::exit_code::CONFIG);
    assert!(
        empty.stderr.contains("IVRE_MAX_TLP") && empty.stderr.contains("empty"),
        "{}",
        empty.stderr
    );
    for bad in [
        "TLP:FOO",
        "amber",
        "marking-definition--5db1a05c-6a7f-4e91-8cd3-4e5f60718293",
    ] {
        let r = enrich_cli(data.path(), &["--marking", bad], &["192.0.2.10"], &[]);
        assert_eq!(
            r.code,
            ivre_connector::exit_code::REFUSED_INPUT,
            "--marking {bad}"
        );
        assert!(
            r.stderr.contains("unknown --marking"),
            "{bad}: {}",
            r.stderr
        );
        assert!(r.stdout.is_empty(), "nothing enriched with --marking {bad}");
    }
    let amber_upper = "MARKING-DEFINITION--F88D31F6-486F-44DA-B317-01333BDE0B82";
    let refused = enrich_cli(
        data.path(),
        &["--marking", amber_upper],
        &["192.0.2.10"],
        &[("IVRE_MAX_TLP", "TLP:GREEN")],
    );
    assert_eq!(refused.code, ivre_connector::exit_code::REFUSED_INPUT);
    assert!(
        refused.stdout.contains("above IVRE_MAX_TLP"),
        "{}",
        refused.stdout
    );
    let pap = "marking-definition--4e4e3b84-de45-53df-9d9b-b21207699fd8";
    let r = enrich_cli(
        data.path(),
        &["--marking", "PAP:RED", "--marking", "tlp:green"],
        &["192.0.2.10"],
        &[("IVRE_MAX_TLP", "TLP:GREEN")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bundle = &json_lines(&r.stdout)[0];
    let green = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da";
    let objects = bundle["objects"].as_array().unwrap();
    assert!(objects.len() > 3);
    for object in objects {
        if object["type"] == "identity" && object["name"] == "IVRE" {
            continue;
        }
        assert_eq!(
            object["object_marking_refs"],
            serde_json::json!([pap, green]),
            "{object}"
        );
    }
}
