//! Live IVRE: the cache-miss fallback against the real IVRE 0.9.20 web API on PostgreSQL
//! (`scripts/ivre-lab`), and its failure modes against local stand-ins.

use crate::util::*;
use ivre_connector::enrich::EnrichOptions;
use ivre_connector::live::fallback::{Fallback, FallbackError, FallbackSettings};
use ivre_connector::observable::Observable;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

fn web_url(var: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: run the tests with `bash scripts/test`"))
}

/// `rel SOURCE -> TARGET` and labels, without the Note (it says where the data came from).
/// A fallback to IVRE's web API at `url` for both purposes.
fn web_fallback(url: &str) -> FallbackSettings {
    FallbackSettings {
        enabled: true,
        scans_url: Some(url.to_owned()),
        passive_url: Some(url.to_owned()),
        ..Default::default()
    }
}

fn summary(bundle: &Value) -> BTreeSet<String> {
    let objects = bundle["objects"].as_array().unwrap();
    let by_id: HashMap<&str, &Value> = objects
        .iter()
        .map(|o| (o["id"].as_str().unwrap(), o))
        .collect();
    let name = |id: &str| -> String {
        let o = by_id[id];
        o["value"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| o["name"].as_str().map(str::to_owned))
            .unwrap_or_else(|| id.to_owned())
    };
    let mut out = BTreeSet::new();
    for o in objects {
        if o["type"] == "relationship" {
            out.insert(format!(
                "{} {} -> {}",
                o["relationship_type"].as_str().unwrap(),
                name(o["source_ref"].as_str().unwrap()),
                name(o["target_ref"].as_str().unwrap())
            ));
        }
        for l in o["x_opencti_labels"].as_array().into_iter().flatten() {
            out.insert(format!("label {l} on {}", o["id"]));
        }
    }
    out
}

fn note(bundle: &Value) -> String {
    bundle["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == "note")
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn enrich(data: &std::path::Path, observable: &str, env: &[(&str, &str)]) -> Value {
    let mut cmd = connector();
    cmd.arg("--data-dir").arg(data).args(["enrich", observable]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.stderr);
    json_lines(&r.stdout).remove(0)
}

/// A snapshot holding nothing about the lab observables (one unrelated record).
fn unrelated_snapshot() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("unrelated.jsonl");
    std::fs::write(
        &file,
        r#"{"addr": "203.0.113.77", "sensor": "S", "count": 1, "firstseen": "2026-11-01 00:00:00", "lastseen": "2026-11-01 00:00:00", "recontype": "HTTP_CLIENT_HEADER", "source": "USER-AGENT", "value": "x", "infos": {}}"#,
    )
    .unwrap();
    let data = dir.path().join("data");
    import(
        &data,
        &[
            "--passive",
            &path_str(&file),
            "--geoip-dir",
            &path_str(&geoip_dir()),
        ],
        0,
    );
    dir
}

#[test]
fn the_fallback_gives_the_bundle_the_snapshot_would() {
    let _lab = crate::util::ivre_lab_shared();
    let url = web_url("IVRE_TEST_WEB_URL");
    // The same data as a snapshot: IVRE's PostgreSQL CLI exports of the lab.
    let snapshot = cli_exports_snapshot();
    let empty_dir = unrelated_snapshot();
    let empty = empty_dir.path().join("data");
    let live = [("IVRE_DB_URL", url.as_str())];
    for observable in [
        "192.0.2.10",
        "198.51.100.7",
        "2001:db8::53",
        "www.example.com",
        "example.com",
        "AS64497",
        "sha256:fcf2200c62f5e3ff8dcf0c7581f41ececa21ced836cf0e2930e4662c66f59277",
    ] {
        let expected = enrich(snapshot.path(), observable, &[]);
        let got = enrich(&empty, observable, &live);
        assert_eq!(summary(&got), summary(&expected), "{observable}");
        assert!(!summary(&got).is_empty(), "{observable}: the lab knows it");
        assert!(
            note(&got).contains("Answered live by IVRE"),
            "{}",
            note(&got)
        );
        assert!(!note(&got).contains("partial"), "{}", note(&got));
    }
    // On PostgreSQL IVRE's nmap MAC search answers HTTP 500: that search fails cleanly,
    // the passive one still answers.
    let mac = enrich(&empty, "00:1b:21:3a:4f:5c", &live);
    assert!(
        summary(&mac)
            .iter()
            .any(|s| s.starts_with("resolves-to 198.51.100.7 -> 00:1b:21:3a:4f:5c")),
        "{:?}",
        summary(&mac)
    );
    assert!(
        note(&mac).contains("partial") && note(&mac).contains("500"),
        "{}",
        note(&mac)
    );
    // A snapshot hit never asks IVRE (the URL here is not even reachable).
    let hit = enrich(
        snapshot.path(),
        "192.0.2.10",
        &[("IVRE_DB_URL", "http://127.0.0.1:9/cgi")],
    );
    assert!(
        note(&hit).starts_with("Enriched by IVRE from its local snapshot"),
        "{}",
        note(&hit)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_answers_are_detected_and_never_kept() {
    let _lab = crate::util::ivre_lab_shared();
    let settings = web_fallback(&web_url("IVRE_TEST_WEB_URL_UNPATCHED"));
    let fallback = Fallback::new(settings, None);
    let observable = Observable::parse("192.0.2.10").unwrap();
    for _ in 0..2 {
        let answer = fallback
            .lookup(&observable, &EnrichOptions::default())
            .await
            .unwrap();
        assert!(
            !answer.is_complete(),
            "the unpatched /cgi/passive answer is cut"
        );
        assert!(
            answer.failures.iter().any(|f| f.contains("truncated")),
            "{:?}",
            answer.failures
        );
        assert!(
            answer.records.passive.is_empty(),
            "nothing of a truncated answer is used"
        );
        assert_eq!(
            answer.records.scans.len(),
            2,
            "the scans search still answers"
        );
    }
}

#[test]
fn air_gapped_sites_never_touch_the_network() {
    let _lab = crate::util::ivre_lab_shared();
    let empty_dir = unrelated_snapshot();
    let empty = empty_dir.path().join("data");
    let closed = [("IVRE_DB_URL", "http://127.0.0.1:9/cgi")];
    let off = enrich(
        &empty,
        "192.0.2.10",
        &[closed[0], ("IVRE_FALLBACK", "false")],
    );
    assert!(!note(&off).contains("live"), "{}", note(&off));
    let on = enrich(&empty, "192.0.2.10", &closed);
    assert!(
        note(&on).contains("live IVRE could not be asked"),
        "{}",
        note(&on)
    );
    let none = enrich(&empty, "192.0.2.10", &[]);
    assert!(
        !note(&none).contains("live"),
        "no URL, no fallback: {}",
        note(&none)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_after_repeated_failures() {
    let _lab = crate::util::ivre_lab_shared();
    let settings = FallbackSettings {
        breaker_threshold: 2,
        breaker_cooldown: Duration::from_secs(60),
        timeout: Duration::from_secs(2),
        ..web_fallback("http://127.0.0.1:9/cgi")
    };
    let fallback = Fallback::new(settings, None);
    let observable = Observable::parse("192.0.2.10").unwrap();
    for _ in 0..2 {
        assert!(matches!(
            fallback
                .lookup(&observable, &EnrichOptions::default())
                .await,
            Err(FallbackError::Failed(_))
        ));
    }
    let started = Instant::now();
    assert!(matches!(
        fallback
            .lookup(&observable, &EnrichOptions::default())
            .await,
        Err(FallbackError::BreakerOpen(_))
    ));
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "no network while open"
    );
}

/// A stand-in for an IVRE web API that rate-limits the first request of each search.
async fn rate_limiting_server() -> String {
    use axum::http::{HeaderMap, StatusCode};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let hits = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let hits = hits.clone();
        async move {
            assert!(
                headers.contains_key("x-api-key"),
                "IVRE wants an anti-CSRF header"
            );
            if hits.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "1")],
                    String::new(),
                )
            } else {
                (
                    StatusCode::OK,
                    [("content-type", "application/json")],
                    "[]".to_owned(),
                )
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/cgi")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_waited_out() {
    let _lab = crate::util::ivre_lab_shared();
    let settings = web_fallback(&rate_limiting_server().await);
    let fallback = Fallback::new(settings, None);
    let started = Instant::now();
    let answer = fallback
        .lookup(
            &Observable::parse("192.0.2.10").unwrap(),
            &EnrichOptions::default(),
        )
        .await
        .unwrap();
    assert!(answer.is_complete(), "{:?}", answer.failures);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
}
