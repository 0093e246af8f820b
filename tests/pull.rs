//! `ivre-sync pull` from the real IVRE 0.9.20 web API (PostgreSQL), full then incremental;
//! and a truncated answer publishes nothing.

use crate::util::*;
use serde_json::Value;
use std::collections::BTreeSet;

fn var(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests with `bash scripts/test`"))
}

fn pull(data: &std::path::Path, url: &str, args: &[&str]) -> Run {
    run(sync()
        .arg("--data-dir")
        .arg(data)
        .arg("pull")
        .args(args)
        .env("IVRE_DB_URL", url)
        .env(
            "IVRE_DB_URL_DATA",
            format!("maxmind://{}", geoip_dir().display()),
        ))
}

fn records(line: &Value, key: &str) -> BTreeSet<String> {
    line[key]
        .as_array()
        .unwrap()
        .iter()
        .map(Value::to_string)
        .collect()
}

fn manifest(data: &std::path::Path) -> Value {
    let r = run(connector()
        .arg("--data-dir")
        .arg(data)
        .args(["index", "info"]));
    serde_json::from_str(&r.stdout).unwrap()
}

/// One test: the incremental part changes the lab's IVRE, which the full part compares.
/// Puts the lab's passive data back as the harness loaded it (when the test ends, even
/// by a panic).
struct RestorePassive;

impl Drop for RestorePassive {
    fn drop(&mut self) {
        let ivre = std::path::Path::new(&var("IVRE_TEST_IVRE_BIN")).join("ivre");
        let conf = var("IVRE_TEST_IVRE_CONF");
        let init = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("yes | {} ipinfo --init", ivre.display()))
            .env("IVRE_CONF", &conf)
            .output()
            .unwrap();
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        let load = std::process::Command::new(&ivre)
            .args(["passiverecon2db", "-s", "LAB-SENSOR"])
            .arg(lab("passive_recon.log"))
            .env("IVRE_CONF", &conf)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert!(
            load.status.success(),
            "{}",
            String::from_utf8_lossy(&load.stderr)
        );
    }
}

#[test]
fn full_then_incremental_pulls_from_the_web_api() {
    let _lab = ivre_lab_exclusive();
    let url = var("IVRE_TEST_WEB_URL");
    let dir = tempfile::tempdir().unwrap();
    let pulled = dir.path().join("pulled");
    let r = pull(&pulled, &url, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("(full)"), "{}", r.stdout);
    let m = manifest(&pulled);
    assert_eq!(m["source"]["kind"], "pull");
    assert_eq!(m["counts"]["scans"], 4);
    assert_eq!(m["counts"]["passive"], 13);
    assert!(m["watermark"].is_string());
    assert!(!m["source"]["url"].as_str().unwrap().contains("X-API-Key"));
    // The same lookups as the NDJSON import of IVRE's CLI exports of the same data.
    let imported_dir = cli_exports_snapshot();
    let imported = imported_dir.path();
    let observables: Vec<String> = [
        "192.0.2.10",
        "198.51.100.7",
        "2001:db8::53",
        "203.0.113.5",
        "www.example.com",
        "example.com",
        "mail.example.com",
        "AS64496",
        "AS64497",
        "00:1b:21:3a:4f:5c",
        "sha256:fcf2200c62f5e3ff8dcf0c7581f41ececa21ced836cf0e2930e4662c66f59277",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let a = lookup(&pulled, &observables);
    let b = lookup(imported, &observables);
    for ((o, x), y) in observables.iter().zip(&a).zip(&b) {
        assert_eq!(records(x, "scans"), records(y, "scans"), "scans of {o}");
        assert_eq!(
            records(x, "passive"),
            records(y, "passive"),
            "passive of {o}"
        );
        assert_eq!(x["data"], y["data"], "data of {o}");
    }

    // IVRE sees more: a new name, and an already known record seen again later.
    let log = dir.path().join("more.log");
    let header: String = std::fs::read_to_string(lab("passive_recon.log"))
        .unwrap()
        .lines()
        .take(8)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(
        &log,
        format!(
            "{header}1796000000.000000\tCNEW1\t192.0.2.200\t-\tPassiveRecon::DNS_ANSWER\tA-203.0.113.53-53\tnew.example.org\t-\n\
             1796000100.000000\tCNEW2\t198.51.100.7\t-\tPassiveRecon::MAC_ADDRESS\tARP_REPLY_SRC\t00:1b:21:3a:4f:5c\t-\n"
        ),
    )
    .unwrap();
    let ivre = std::path::Path::new(&var("IVRE_TEST_IVRE_BIN")).join("ivre");
    let out = std::process::Command::new(ivre)
        .args(["passiverecon2db", "-s", "LAB-SENSOR"])
        .arg(&log)
        .env("IVRE_CONF", var("IVRE_TEST_IVRE_CONF"))
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _restore = RestorePassive;
    let before = m["generation"].as_str().unwrap().to_owned();
    let r = pull(&pulled, &url, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("(incremental)"), "{}", r.stdout);
    let m = manifest(&pulled);
    assert_eq!(m["source"]["based_on"], before.as_str());
    assert_eq!(
        m["counts"]["passive"], 14,
        "one new record; the updated one replaced, not added"
    );
    assert_eq!(
        m["source"]["files"][1]["records"], 2,
        "only what changed was fetched"
    );
    let got = lookup(
        &pulled,
        &["new.example.org".to_owned(), "00:1b:21:3a:4f:5c".to_owned()],
    );
    assert_eq!(got[0]["passive"][0]["addr"], "192.0.2.200");
    let mac = got[1]["passive"].as_array().unwrap();
    assert_eq!(mac.len(), 1, "updated in place: {mac:?}");
    assert_eq!(mac[0]["count"], 3);
    assert_eq!(mac[0]["lastseen"], "2026-11-30 00:55:00");
    // --full pulls everything again.
    let r = pull(&pulled, &url, &["--full"]);
    assert!(r.stdout.contains("(full)"), "{}", r.stdout);
    assert_eq!(manifest(&pulled)["counts"]["passive"], 14);
}

#[test]
fn a_truncated_answer_publishes_nothing() {
    let _lab = ivre_lab_shared();
    let url = var("IVRE_TEST_WEB_URL_UNPATCHED");
    let dir = tempfile::tempdir().unwrap();
    import(
        dir.path(),
        &["--scans", &path_str(&lab("scancli.jsonl"))],
        0,
    );
    let first = current(dir.path());
    let r = pull(dir.path(), &url, &[]);
    assert_eq!(
        r.code,
        ivre_connector::exit_code::FAILURE,
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(r.stderr.contains("truncated"), "{}", r.stderr);
    assert_eq!(current(dir.path()), first);
    assert!(generation_dirs(dir.path())
        .iter()
        .all(|d| !d.ends_with(".building")));
}

#[test]
fn durations_and_missing_urls() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(sync()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["pull", "--every", "5x"])
        .env("IVRE_DB_URL", "http://127.0.0.1:9/cgi"));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("5x"), "{}", r.stderr);
    let r = run(sync().arg("--data-dir").arg(dir.path()).arg("pull"));
    assert_eq!(r.code, ivre_connector::exit_code::CONFIG);
    assert!(r.stderr.contains("IVRE_DB_URL"), "{}", r.stderr);
}
