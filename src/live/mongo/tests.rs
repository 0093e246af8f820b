//! Tests that need no server: URLs, a failed connection, and stored documents read
//! back through [`document_to_json`] and [`crate::ivre::parse_value`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::ivre::parse_value;
use base64::Engine;
use serde_json::json;
use std::time::Instant;

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/data/ivre-0.9.20/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap()
}

fn jsonl(name: &str) -> Vec<Value> {
    fixture(name)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The raw documents of a `mongo-raw-*.json` file as the driver would return them.
fn raw_documents(name: &str) -> Vec<Document> {
    let value: Value = serde_json::from_str(&fixture(name)).unwrap();
    let values = match value {
        Value::Array(items) => items,
        one => vec![one],
    };
    values
        .into_iter()
        .map(|v| match Bson::try_from(v).unwrap() {
            Bson::Document(d) => d,
            other => panic!("not a document: {other:?}"),
        })
        .collect()
}

/// A document through the live path: BSON → relaxed Extended JSON → export form.
fn through_live_path(kind: RecordKind, doc: Document) -> Value {
    let json = document_to_json(doc);
    let parsed = parse_value(kind, json).unwrap();
    serde_json::from_str(&parsed.json).unwrap()
}

#[test]
fn raw_documents_have_bson_types() {
    let host = raw_documents("mongo-raw-host.json").remove(0);
    assert!(matches!(host.get("addr_0"), Some(Bson::Int64(_))));
    assert!(matches!(host.get("starttime"), Some(Bson::DateTime(_))));
    assert!(matches!(host.get("scanid"), Some(Bson::Binary(_))));
    assert!(matches!(host.get("_id"), Some(Bson::ObjectId(_))));
    let ssl = raw_documents("mongo-raw-passive-ssl.json").remove(0);
    assert!(matches!(ssl.get("value"), Some(Bson::Binary(_))));
    let relaxed = document_to_json(ssl);
    assert!(relaxed["value"]["$binary"]["base64"].is_string());
    assert!(relaxed["firstseen"]["$date"].is_string());
    assert!(relaxed["addr_1"].is_i64());
}

#[test]
fn passive_documents_equal_ipinfo_export() {
    let cli = jsonl("mongo-ipinfo.jsonl");
    let docs = raw_documents("mongo-raw-passive.json");
    assert_eq!(docs.len(), 2);
    for doc in docs {
        let got = through_live_path(RecordKind::Passive, doc);
        let expected = cli
            .iter()
            .find(|r| r["value"] == got["value"] && r["addr"] == got["addr"])
            .unwrap();
        assert_eq!(&got, expected);
    }
}

#[test]
fn passive_ssl_document_matches_ipinfo_export() {
    let doc = raw_documents("mongo-raw-passive-ssl.json").remove(0);
    let got = through_live_path(RecordKind::Passive, doc);
    let expected = jsonl("mongo-ipinfo.jsonl")
        .into_iter()
        .find(|r| r["recontype"] == "SSL_SERVER" && r["addr"] == "198.51.100.7")
        .unwrap();
    assert_eq!(got["addr"], "198.51.100.7");
    for field in ["firstseen", "lastseen", "count", "port", "source", "sensor"] {
        assert_eq!(got[field], expected[field], "{field}");
    }
    for field in ["not_before", "not_after", "sha256", "subject_text"] {
        assert_eq!(
            got["infos"][field], expected["infos"][field],
            "infos.{field}"
        );
    }
    assert_eq!(got["infos"]["not_before"], "2026-11-28 21:19:35");
    // The DER value comes out as base64; the fixture trimmed it, so the decoded bytes are
    // a prefix of the exported certificate followed by the trimming mark.
    let b64 = base64::engine::general_purpose::STANDARD;
    let ours = b64.decode(got["value"].as_str().unwrap()).unwrap();
    let full = b64.decode(expected["value"].as_str().unwrap()).unwrap();
    let kept = ours.strip_suffix(b"...(trimmed)").unwrap();
    assert!(kept.len() > 10 && full.starts_with(kept));
    assert!(got.get("_id").is_none() && got.get("addr_0").is_none());
}

#[test]
fn host_and_view_documents_match_cli_exports() {
    for (name, kind, export, addr) in [
        (
            "mongo-raw-host.json",
            RecordKind::Scan,
            "mongo-scancli.jsonl",
            "198.51.100.7",
        ),
        (
            "mongo-raw-view.json",
            RecordKind::View,
            "mongo-view.jsonl",
            "192.0.2.10",
        ),
    ] {
        let doc = raw_documents(name).remove(0);
        let got = through_live_path(kind, doc);
        let expected = jsonl(export)
            .into_iter()
            .find(|r| r["addr"] == addr)
            .unwrap();
        assert_eq!(got["addr"], addr, "{name}");
        for field in [
            "starttime",
            "endtime",
            "hostnames",
            "categories",
            "source",
            "infos",
        ] {
            assert_eq!(got[field], expected[field], "{name}: {field}");
        }
        for gone in ["_id", "scanid", "addr_0", "addr_1"] {
            assert!(got.get(gone).is_none(), "{name}: {gone}");
        }
        let cert = |v: &Value| {
            v["ports"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|p| p["scripts"].as_array().cloned().unwrap_or_default())
                .find(|s| s["id"] == "ssl-cert")
                .map(|s| s["ssl-cert"][0].clone())
        };
        if let Some(ours) = cert(&got) {
            let theirs = cert(&expected).unwrap();
            for field in ["not_before", "not_after", "sha256"] {
                assert_eq!(ours[field], theirs[field], "{name}: ssl-cert {field}");
            }
        }
    }
}

#[test]
fn since_filters() {
    let since = chrono::DateTime::parse_from_rfc3339("2026-11-28T21:19:42.123Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let date = mongodb::bson::DateTime::from_millis(1_795_900_782_123);
    for kind in [RecordKind::Scan, RecordKind::View] {
        assert_eq!(
            MongoSource::since_filter(kind, since),
            doc! { "endtime": { "$gt": date } }
        );
    }
    let passive = MongoSource::since_filter(RecordKind::Passive, since);
    assert_eq!(passive, doc! { "lastseen": { "$gt": date } });
    assert_eq!(
        document_to_json(passive),
        json!({"lastseen": {"$gt": {"$date": "2026-11-28T21:19:42.123Z"}}})
    );
}

#[tokio::test]
async fn built_source_uses_url_names() {
    let (source, _) = MongoSource::build(
        "mongodb://ivre:pw1234@127.0.0.1:1/lab?colname_hosts=nmap2&colname_passive=p2",
        Duration::from_secs(1),
        &NetSettings::default(),
    )
    .await
    .unwrap();
    assert_eq!(source.database_name(), "lab");
    assert_eq!(source.collection_name(RecordKind::Scan), "nmap2");
    assert_eq!(source.collection_name(RecordKind::View), "views");
    assert_eq!(source.collection_name(RecordKind::Passive), "p2");
    assert_eq!(
        source.url(),
        "mongodb://***:***@127.0.0.1:1/lab?colname_hosts=nmap2&colname_passive=p2"
    );
    let debug = format!("{source:?}");
    assert!(!debug.contains("pw1234"), "{debug}");
    let (default, _) = MongoSource::build(
        "mongodb:///ivre",
        Duration::from_secs(1),
        &NetSettings::default(),
    )
    .await
    .unwrap();
    assert_eq!(default.database_name(), "ivre");
    assert_eq!(default.collection_name(RecordKind::Scan), "hosts");
}

/// A local port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn unreachable_server_fails_within_the_timeout_without_credentials() {
    let port = closed_port();
    let url = format!("mongodb://ivre:hunter2secret@127.0.0.1:{port}/ivre?colname_hosts=h2");
    let start = Instant::now();
    let err = MongoSource::connect_with_timeout(&url, Duration::from_secs(1))
        .await
        .unwrap_err();
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    assert!(matches!(err, MongoError::Connect { .. }), "{err:?}");
    let message = err.to_string();
    assert!(!message.contains("hunter2secret"), "{message}");
    assert!(!format!("{err:?}").contains("hunter2secret"));
    assert!(
        message.starts_with(&format!(
            "cannot connect to MongoDB at mongodb://***:***@127.0.0.1:{port}/ivre"
        )),
        "{message}"
    );
}

#[tokio::test]
async fn invalid_urls_are_reported_redacted() {
    for url in [
        "postgresql://ivre:hunter2secret@db/ivre",
        "mongodb://ivre:hunter2secret@db/ivre?notAnOption=1",
        "mongodb://ivre:hunter2secret@db/iv.re",
        "mongodb://ivre:hunter2secret@db/ivre?tlsCertificateKeyFilePassword=hunter2secret",
    ] {
        let err = MongoSource::connect(url).await.unwrap_err();
        assert!(matches!(err, MongoError::Url { .. }), "{url}: {err:?}");
        let message = err.to_string();
        assert!(message.contains("***:***@db"), "{message}");
        assert!(!message.contains("hunter2secret"), "{message}");
    }
}

#[tokio::test]
async fn the_ca_file_applies_to_tls_urls_without_their_own() {
    let net = NetSettings {
        ca_file: Some("/etc/extra-ca.pem".into()),
        ..Default::default()
    };
    let ca = |url: &'static str| {
        let net = net.clone();
        async move {
            let mut options = ClientOptions::parse(url).await.unwrap();
            with_ca_file(&mut options, &net);
            match options.tls {
                Some(Tls::Enabled(tls)) => tls.ca_file_path,
                _ => None,
            }
        }
    };
    assert_eq!(
        ca("mongodb://db/ivre?tls=true").await,
        Some("/etc/extra-ca.pem".into())
    );
    assert_eq!(
        ca("mongodb://db/ivre?tls=true&tlsCAFile=/own.pem").await,
        Some("/own.pem".into())
    );
    assert_eq!(ca("mongodb://db/ivre").await, None);
}
