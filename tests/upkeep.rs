//! The daemon keeps its own snapshot (pulls from the real IVRE web API, a drop folder),
//! answers from live IVRE until the first one is published, reports its health on
//! `/health` and `/ready`, and `ivre-connector health` turns that into an exit code.

use crate::daemon::{free_port, ipv4, manual, processed, started, Daemon, WAIT};
use crate::util::*;
use opencti_double::{DoubleOptions, PlatformDouble};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

pub(crate) fn web_url() -> String {
    std::env::var("IVRE_TEST_WEB_URL")
        .expect("IVRE_TEST_WEB_URL is not set: run the tests with `bash scripts/test`")
}

/// `GET /<route>` of the health server: status code and JSON body.
pub(crate) async fn health(port: &str, route: &str) -> (u16, Value) {
    let response = reqwest::get(format!("http://127.0.0.1:{port}/{route}"))
        .await
        .unwrap_or_else(|e| panic!("no answer on /{route}: {e}"));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The `/metrics` text of the health server.
async fn metrics_of(port: &str) -> String {
    let url = format!("http://127.0.0.1:{port}/metrics");
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// Polls `/ready` until `done` holds for its body.
pub(crate) async fn wait_health(port: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/ready")).await {
            last = response.json().await.unwrap_or(Value::Null);
            if done(&last) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what}: not within 60 s; last health answer: {last:#}")
}

/// The Note's text of the bundle pushed for `work` (where the answer came from).
pub(crate) async fn note_of(double: &PlatformDouble, work: &str) -> String {
    let pushed = double.pushed_for_work(work, WAIT).await;
    pushed
        .iter()
        .flat_map(|p| p.bundle["objects"].as_array().cloned().unwrap_or_default())
        .find(|o| o["type"] == "note")
        .and_then(|n| n["content"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no Note pushed for {work}"))
}

/// Enriches 192.0.2.10 as work `work`; the Note of the answer.
pub(crate) async fn enrich_once(double: &PlatformDouble, work: &str) -> Answered {
    let entity = ipv4("192.0.2.10", &[]);
    double.add_entity(entity.clone(), &[]);
    double.publish(&manual(&entity, work)).await;
    let done = processed(double, work).await;
    assert_eq!(done.variables["inError"], false, "{}", done.variables);
    Answered {
        note: note_of(double, work).await,
        work_message: done.variables["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// What one enrichment said: its Note (how the answer was obtained) and its work message
/// (which snapshot generation answered, or live IVRE).
pub(crate) struct Answered {
    pub note: String,
    pub work_message: String,
}

pub(crate) fn health_command(port: &str) -> Run {
    run(connector()
        .args(["health", "--url"])
        .arg(format!("http://127.0.0.1:{port}")))
}

/// A platform double and a daemon started on `root/data`, which does not exist yet, with
/// `env` and its own health port; once it registered and pings.
async fn fresh_daemon(root: &Path, env: &[(&str, &str)]) -> (PlatformDouble, Daemon, String) {
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let port = free_port().to_string();
    let mut env = env.to_vec();
    env.push(("CONNECTOR_METRICS_PORT", &port));
    let daemon = Daemon::start(&double, &root.join("data"), &env);
    started(&double).await;
    (double, daemon, port)
}

/// Item 1 of the deployment step: only OPENCTI_URL, OPENCTI_TOKEN, IVRE_MAX_TLP and an
/// IVRE URL, an empty data directory: the first answer comes from live IVRE while the
/// pull is held before its publication, and the daemon is ready through the fallback.
#[cfg(feature = "test-hooks")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_live_until_its_first_snapshot() {
    let _lab = ivre_lab_shared();
    let root = tempfile::tempdir().unwrap();
    let url = web_url();
    let (double, daemon, port) = fresh_daemon(
        root.path(),
        &[
            ("IVRE_DB_URL", &url),
            // The pull stops before CURRENT changes: no snapshot is ever published.
            ("IVRE_SYNC_PAUSE_AT", "current"),
        ],
    )
    .await;
    let ready = wait_health(&port, "ready through the fallback", |h| {
        h["status"] == "ready"
    })
    .await;
    assert!(ready["snapshot"].is_null(), "{ready:#}");
    assert_eq!(ready["fallback"]["reachable"], true, "{ready:#}");
    let note = enrich_once(&double, "work_live").await.note;
    assert!(
        note.starts_with("Answered live by IVRE"),
        "the first answer comes from live IVRE: {note}"
    );
    assert!(health_command(&port).code == 0);
    drop(daemon);
}

/// The same start without the hold: the daemon pulls, publishes and serves its own
/// snapshot, and says so in its health answer and metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_and_serves_its_own_snapshot() {
    let _lab = ivre_lab_shared();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let url = web_url();
    let (double, _daemon, port) = fresh_daemon(
        root.path(),
        &[("IVRE_DB_URL", &url), ("CONNECTOR_EXPOSE_METRICS", "true")],
    )
    .await;
    let ready = wait_health(&port, "a pulled snapshot served", |h| {
        h["snapshot"]["source"] == "pull"
    })
    .await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["sync"]["pull"]["ok"], true, "{ready:#}");
    assert!(ready["sync"]["pull"]["next_attempt"].is_string());
    let generation = ready["snapshot"]["generation"].as_str().unwrap().to_owned();
    assert_eq!(current(&data), generation);
    let own = enrich_once(&double, "work_own").await;
    assert!(
        own.note
            .starts_with("Enriched by IVRE from its local snapshot")
            && own
                .work_message
                .ends_with(&format!("(answered by snapshot {generation})")),
        "answered from its own snapshot: {} / {}",
        own.note,
        own.work_message
    );
    let metrics = metrics_of(&port).await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "sync_runs_total{outcome=\"ok\",source=\"pull\"} 1"),
        "{metrics}"
    );
    assert!(metrics.lines().any(|l| l == "snapshot_served 1"));
}

/// A sync that fails never stops enrichment: logged, counted, shown, retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sync_does_not_stop_enrichment() {
    let data = lab_snapshot();
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let port = free_port().to_string();
    let closed = format!("http://127.0.0.1:{}/cgi", free_port());
    let daemon = Daemon::start(
        &double,
        data.path(),
        &[
            ("IVRE_DB_URL", &closed),
            ("IVRE_FALLBACK", "false"),
            ("CONNECTOR_METRICS_PORT", &port),
            ("CONNECTOR_EXPOSE_METRICS", "true"),
        ],
    );
    started(&double).await;
    let failed = wait_health(&port, "the failed pull reported", |h| {
        h["sync"]["pull"]["ok"] == false
    })
    .await;
    assert_eq!(
        failed["status"], "ready",
        "a snapshot is served: {failed:#}"
    );
    assert_eq!(failed["sync"]["pull"]["consecutive_failures"], 1);
    assert!(
        failed["sync"]["pull"]["message"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{failed:#}"
    );
    assert!(
        !failed.to_string().contains("X-API-Key"),
        "no secret in the answer"
    );
    let note = enrich_once(&double, "work_failing_sync").await.note;
    assert!(
        note.starts_with("Enriched by IVRE from its local snapshot"),
        "{note}"
    );
    let (code, _) = health(&port, "health").await;
    assert_eq!(code, 200);
    assert_eq!(health_command(&port).code, 0);
    let metrics = metrics_of(&port).await;
    assert!(metrics
        .lines()
        .any(|l| l == "sync_runs_total{outcome=\"error\",source=\"pull\"} 1"));
    assert!(daemon
        .logs()
        .iter()
        .any(|l| l.contains("pull failed; nothing published")));
}

/// Air-gapped: no IVRE URL pulls (the fallback stays), a drop folder: answers live,
/// then from the snapshot built from the dropped exports, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drop_folder_feeds_the_daemon() {
    let _lab = ivre_lab_shared();
    let root = tempfile::tempdir().unwrap();
    let drop = root.path().join("drop");
    std::fs::create_dir(&drop).unwrap();
    let url = web_url();
    let (double, _daemon, port) = fresh_daemon(
        root.path(),
        &[
            ("IVRE_DB_URL", &url),
            ("IVRE_SYNC_INTERVAL", "off"),
            ("IVRE_DROP_DIR", &path_str(&drop)),
        ],
    )
    .await;
    wait_health(&port, "ready through the fallback", |h| {
        h["status"] == "ready"
    })
    .await;
    let note = enrich_once(&double, "work_before_drop").await.note;
    assert!(note.starts_with("Answered live by IVRE"), "{note}");
    // Written elsewhere, then renamed in: complete.
    for name in ["mongo-scancli.jsonl", "mongo-ipinfo.jsonl"] {
        let staged = root.path().join(name);
        std::fs::copy(lab(name), &staged).unwrap();
        std::fs::rename(&staged, drop.join(name)).unwrap();
    }
    let served = wait_health(&port, "the dropped exports served", |h| {
        h["snapshot"]["source"] == "drop" && h["snapshot"]["records"].as_u64() > Some(10)
    })
    .await;
    assert_eq!(served["sync"]["drop"]["ok"], true, "{served:#}");
    assert!(drop.join("done").join("mongo-ipinfo.jsonl").is_file());
    let note = enrich_once(&double, "work_after_drop").await.note;
    assert!(
        note.starts_with("Enriched by IVRE from its local snapshot"),
        "{note}"
    );
}

/// Without a snapshot and without a way to get one, the start fails with one line that
/// says the three ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_snapshot_and_no_source_fails_with_the_three_ways() {
    let root = tempfile::tempdir().unwrap();
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let mut daemon = Daemon::start(&double, root.path(), &[]);
    let code = daemon.wait(Duration::from_secs(20));
    assert_eq!(
        code,
        Some(ivre_connector::exit_code::NO_SNAPSHOT),
        "exit code {code:?}"
    );
    let logs = daemon.logs().join("\n");
    let line = logs
        .lines()
        .find(|l| l.contains("IVRE_SNAPSHOT_SOURCE"))
        .unwrap_or_else(|| panic!("no clear error in:\n{logs}"));
    for way in ["IVRE_DB_URL", "IVRE_DROP_DIR", "ivre-sync import"] {
        assert!(line.contains(way), "{way} missing in: {line}");
    }
}

/// `ivre-connector health` when nothing answers: exit 1 and a message.
#[test]
fn the_health_command_fails_when_nothing_answers() {
    let port = free_port().to_string();
    let r = health_command(&port);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("no answer from"), "{}", r.stderr);
}

/// A replica: no IVRE URL, only `IVRE_SNAPSHOT_SOURCE` (a `file://` store here; S3 in
/// `distribute`): it waits for the first generation another process publishes, installs
/// it, serves it, then follows the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_serves_what_the_publisher_publishes() {
    let root = tempfile::tempdir().unwrap();
    let (publisher, store, data) = (
        root.path().join("publisher"),
        root.path().join("store"),
        root.path().join("data"),
    );
    let url = format!("file://{}", path_str(&store));
    let (double, _daemon, port) = fresh_daemon(
        root.path(),
        &[("IVRE_SNAPSHOT_SOURCE", &url), ("IVRE_SNAPSHOT_POLL", "1")],
    )
    .await;
    let waiting = wait_health(&port, "waiting for a generation", |h| {
        h["sync"]["fetch"]["last_run"].is_string()
    })
    .await;
    assert_eq!(waiting["status"], "not ready", "{waiting:#}");
    let imported = |file: &str| {
        let r = run(sync()
            .arg("--data-dir")
            .arg(&publisher)
            .args(["import", "--publish", &url, "--scans"])
            .arg(lab(file))
            .arg("--geoip-dir")
            .arg(geoip_dir()));
        assert_eq!(r.code, 0, "{}", r.stderr);
        current(&publisher)
    };
    let first = imported("mongo-scancli.jsonl");
    let served = wait_health(&port, "the published generation", |h| {
        h["snapshot"]["generation"] == first.as_str()
    })
    .await;
    assert_eq!(served["status"], "ready");
    assert_eq!(current(&data), first);
    let answer = enrich_once(&double, "work_replica").await;
    assert!(
        answer
            .work_message
            .ends_with(&format!("(answered by snapshot {first})")),
        "{}",
        answer.work_message
    );
    let second = imported("scancli.jsonl");
    assert_ne!(first, second);
    wait_health(&port, "the next generation", |h| {
        h["snapshot"]["generation"] == second.as_str()
    })
    .await;
}
