//! The IVRE lab of `scripts/ivre-lab` serves what the fixtures say: a real IVRE 0.9.20 web API
//! (`ivre httpd`, PostgreSQL backend) loaded with `tests/data/ivre-0.9.20/{scan1.xml,
//! scan2.xml,passive_recon.log}`, patched (`IVRE_TEST_WEB_URL`) and unpatched
//! (`IVRE_TEST_WEB_URL_UNPATCHED`), and the `ivre` command line (`IVRE_TEST_IVRE_BIN`,
//! `IVRE_TEST_IVRE_CONF`).

use std::time::Duration;

use serde_json::Value;

use crate::util::{json_lines, lab};

const ADDR: &str = "192.0.2.10";

fn require(var: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: run the tests with `bash scripts/test`"))
}

fn web_url() -> String {
    require("IVRE_TEST_WEB_URL")
}

fn unpatched_url() -> String {
    require("IVRE_TEST_WEB_URL_UNPATCHED")
}

/// `GET {base}/{route}?{query}` with the header IVRE's anti-CSRF check wants (any
/// `X-API-Key`): the status and the body.
async fn get(base: &str, route: &str, query: &[(&str, &str)]) -> (u16, String) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = format!("{base}/{route}");
    let response = client
        .get(&url)
        .query(query)
        .header("X-API-Key", "test")
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url} {query:?}: {e}"));
    let status = response.status().as_u16();
    // The unpatched server drops the connection mid-body: keep what arrived.
    let body = match response.bytes().await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    (status, body)
}

async fn get_ok(base: &str, route: &str, query: &[(&str, &str)]) -> String {
    let (status, body) = get(base, route, query).await;
    assert_eq!(status, 200, "GET {route} {query:?}: {body}");
    body
}

/// The fixture lines of `name` (an IVRE JSON Lines export) for one address.
fn fixture_records(name: &str, addr: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(lab(name)).unwrap();
    json_lines(&text)
        .into_iter()
        .filter(|r| r["addr"] == addr)
        .collect()
}

/// A record without some fields (e.g. dates: the web API gives epoch seconds, the CLI exports
/// `YYYY-MM-DD HH:MM:SS`).
fn without(record: &Value, fields: &[&str]) -> Value {
    let mut record = record.clone();
    for field in fields {
        record.as_object_mut().unwrap().remove(*field);
    }
    record
}

fn sorted_json(records: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = records.iter().map(Value::to_string).collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_match_the_fixtures() {
    let _lab = crate::util::ivre_lab_shared();
    let base = web_url();
    for (route, expected) in [("scans", 4), ("passive", 13), ("view", 4)] {
        let body = get_ok(&base, &format!("{route}/count"), &[]).await;
        assert_eq!(body.trim(), expected.to_string(), "/cgi/{route}/count");
    }
    // The unpatched server holds the same data.
    let body = get_ok(&unpatched_url(), "scans/count", &[]).await;
    assert_eq!(body.trim(), "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_served_equals_the_cli_exports() {
    let _lab = crate::util::ivre_lab_shared();
    // With `datesasstrings=1` the web records are exactly `ivre {scancli,view,ipinfo} --json`
    // (the fixtures were exported from the same data by the CLI).
    let base = web_url();
    for (route, export) in [
        ("scans", "scancli.jsonl"),
        ("view", "view.jsonl"),
        ("passive", "ipinfo.jsonl"),
    ] {
        let body = get_ok(
            &base,
            route,
            &[
                ("q", "limit:0"),
                ("format", "ndjson"),
                ("datesasstrings", "1"),
            ],
        )
        .await;
        let expected = json_lines(&std::fs::read_to_string(lab(export)).unwrap());
        assert_eq!(
            sorted_json(&json_lines(&body)),
            sorted_json(&expected),
            "/cgi/{route} against {export}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_of_one_host_match_scancli() {
    let _lab = crate::util::ivre_lab_shared();
    let base = web_url();
    let expected = fixture_records("scancli.jsonl", ADDR);
    assert_eq!(expected.len(), 2, "scancli.jsonl holds two scans of {ADDR}");

    let body = get_ok(
        &base,
        "scans",
        &[("q", &format!("host:{ADDR}")), ("format", "ndjson")],
    )
    .await;
    let got = json_lines(&body);
    assert_eq!(got.len(), 2, "{body}");
    // Dates are epoch seconds here: compare address, port count and hostnames per record.
    let summary = |records: &[Value]| {
        let mut out: Vec<String> = records
            .iter()
            .map(|r| {
                format!(
                    "{} {} {}",
                    r["addr"],
                    r["ports"].as_array().map_or(0, Vec::len),
                    r["hostnames"]
                )
            })
            .collect();
        out.sort();
        out
    };
    assert_eq!(summary(&got), summary(&expected));
    assert!(
        got.iter().all(|r| r["starttime"].is_u64()),
        "epoch dates: {body}"
    );

    // With `datesasstrings=1` the web records are exactly the CLI export's.
    let body = get_ok(
        &base,
        "scans",
        &[
            ("q", &format!("host:{ADDR}")),
            ("format", "ndjson"),
            ("datesasstrings", "1"),
        ],
    )
    .await;
    assert_eq!(sorted_json(&json_lines(&body)), sorted_json(&expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_dns_filter_gives_the_a_record() {
    let _lab = crate::util::ivre_lab_shared();
    let body = get_ok(
        &web_url(),
        "passive",
        &[
            ("f", r#"{"f":"dns","a":["www.example.com"]}"#),
            ("format", "ndjson"),
        ],
    )
    .await;
    let got = json_lines(&body);
    assert_eq!(got.len(), 1, "{body}");
    let record = &got[0];
    assert_eq!(record["addr"], ADDR);
    assert_eq!(record["recontype"], "DNS_ANSWER");
    assert_eq!(record["value"], "www.example.com");
    assert_eq!(record["count"], 3);
    assert!(record["source"].as_str().unwrap().starts_with("A-"));

    let dates = ["firstseen", "lastseen"];
    let expected: Vec<Value> = fixture_records("ipinfo.jsonl", ADDR)
        .into_iter()
        .filter(|r| r["recontype"] == "DNS_ANSWER" && r["value"] == "www.example.com")
        .map(|r| without(&r, &dates))
        .collect();
    assert_eq!(expected, vec![without(record, &dates)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpatched_passive_json_is_truncated_patched_is_whole() {
    let _lab = crate::util::ivre_lab_shared();
    let query = [("q", "host:192.0.2.10"), ("format", "json")];
    // 0.9.20 bug (docs/ivre-records.md §0.4): the SSL certificate record raises after the 200 status.
    let (status, body) = get(&unpatched_url(), "passive", &query).await;
    assert_eq!(status, 200, "the status line goes out before the crash");
    assert!(body.trim_start().starts_with('['), "{body}");
    assert!(
        serde_json::from_str::<Value>(&body).is_err(),
        "the unpatched answer should be truncated JSON: {body}"
    );

    let body = get_ok(&web_url(), "passive", &query).await;
    let records: Vec<Value> = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("the patched answer should parse: {e}\n{body}"));
    assert_eq!(records.len(), fixture_records("ipinfo.jsonl", ADDR).len());
    assert!(
        records
            .iter()
            .any(|r| r["recontype"] == "SSL_SERVER" && r["source"] == "cert"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_mac_filter_is_a_server_error_on_postgresql() {
    let _lab = crate::util::ivre_lab_shared();
    // PostgresDBNmap has no searchmac (docs/ivre-records.md §0.5).
    let (status, body) = get(
        &web_url(),
        "scans",
        &[
            ("f", r#"{"f":"mac","a":["00:1b:21:3a:4f:5c"]}"#),
            ("format", "ndjson"),
        ],
    )
    .await;
    assert_eq!(status, 500, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipdata_gives_the_maxmind_fields() {
    let _lab = crate::util::ivre_lab_shared();
    let body = get_ok(&web_url(), &format!("ipdata/{ADDR}"), &[]).await;
    let got: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(got["as_num"], 64496, "{body}");
    let expected = fixture_records("ipdata.jsonl", ADDR);
    assert_eq!(expected.len(), 1);
    assert_eq!(got, without(&expected[0], &["addr"]));
}

#[test]
fn ivre_command_line_uses_the_same_databases() {
    let _lab = crate::util::ivre_lab_shared();
    let bin = std::path::PathBuf::from(require("IVRE_TEST_IVRE_BIN")).join("ivre");
    let conf = require("IVRE_TEST_IVRE_CONF");
    for (tool, expected) in [("scancli", "4"), ("ipinfo", "13"), ("view", "4")] {
        let out = std::process::Command::new(&bin)
            .args([tool, "--count"])
            .env("IVRE_CONF", &conf)
            .env("TZ", "UTC")
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "ivre {tool} --count: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.trim(), expected, "ivre {tool} --count");
    }
}
