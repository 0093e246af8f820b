//! A damaged generation published into a running daemon's data directory: the daemon
//! stays on the generation it serves and says so in its logs, metrics
//! (`snapshot_open_failures_total`, `snapshot_open_failed`) and health (`/ready` stays
//! ready, with `snapshot_open_failure`); `index verify` names the damaged file.

use crate::daemon::{free_port, started, Daemon};
use crate::upkeep::{enrich_once, wait_health};
use crate::util::*;
use opencti_double::{DoubleOptions, PlatformDouble};
use std::path::Path;

/// Builds a generation in another data directory, damages `file` of its index (one
/// flipped bit in the middle) and publishes it into `data` as a build would: the
/// generation directory renamed in, then `CURRENT` replaced. Returns its name.
fn publish_damaged(data: &Path, file: &str) -> String {
    let other = tempfile::tempdir().unwrap();
    import(
        other.path(),
        &[
            "--scans",
            &path_str(&lab("scancli.jsonl")),
            "--geoip-dir",
            &path_str(&geoip_dir()),
        ],
        0,
    );
    let name = current(other.path());
    let generation = other.path().join("generations").join(&name);
    let target = generation.join("index").join(file);
    let mut bytes = std::fs::read(&target).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&target, bytes).unwrap();
    std::fs::rename(&generation, data.join("generations").join(&name)).unwrap();
    let tmp = data.join("CURRENT.tmp");
    std::fs::write(&tmp, format!("{name}\n")).unwrap();
    std::fs::rename(&tmp, data.join("CURRENT")).unwrap();
    name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_generation_leaves_the_previous_one_served() {
    let data = lab_snapshot();
    let served = current(data.path());
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let port = free_port().to_string();
    let daemon = Daemon::start(
        &double,
        data.path(),
        &[
            ("IVRE_FALLBACK", "false"),
            ("CONNECTOR_METRICS_PORT", &port),
            ("CONNECTOR_EXPOSE_METRICS", "true"),
        ],
    );
    started(&double).await;
    wait_health(&port, "the snapshot served", |h| {
        h["snapshot"]["generation"] == served.as_str()
    })
    .await;

    let damaged = publish_damaged(data.path(), "scans.idx.keys");
    let health = wait_health(&port, "the failure shown", |h| {
        h["snapshot_open_failure"]["generation"] == damaged.as_str()
    })
    .await;
    assert_eq!(health["status"], "ready", "{health:#}");
    assert_eq!(
        health["snapshot"]["generation"],
        served.as_str(),
        "{health:#}"
    );
    let error = health["snapshot_open_failure"]["error"].as_str().unwrap();
    assert!(
        error.contains("scans.idx.keys") && error.contains(&damaged),
        "the error names the generation and the file: {error}"
    );

    let answer = enrich_once(&double, "work_after_damage").await;
    assert!(
        answer
            .work_message
            .ends_with(&format!("(answered by snapshot {served})")),
        "still answered from the previous generation: {}",
        answer.work_message
    );
    let url = format!("http://127.0.0.1:{port}/metrics");
    let metrics = reqwest::get(url).await.unwrap().text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "snapshot_open_failures_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.lines().any(|l| l == "snapshot_open_failed 1"),
        "{metrics}"
    );
    assert!(
        daemon.logs().iter().any(|l| l.contains("does not open")
            && l.contains(&damaged)
            && l.contains("scans.idx.keys")),
        "logged, naming the generation and the file"
    );

    // `index verify` checks the published (damaged) generation and names the file too.
    let r = run(connector()
        .arg("--data-dir")
        .arg(data.path())
        .args(["index", "verify"]));
    assert_eq!(
        r.code,
        ivre_connector::exit_code::DAMAGED,
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(r.stdout.contains("scans.idx.keys"), "{}", r.stdout);

    // A whole generation published next is served, and the failure is cleared.
    import(
        data.path(),
        &[
            "--scans",
            &path_str(&lab("scancli.jsonl")),
            "--geoip-dir",
            &path_str(&geoip_dir()),
        ],
        0,
    );
    let next = current(data.path());
    let health = wait_health(&port, "the next generation served", |h| {
        h["snapshot"]["generation"] == next.as_str()
    })
    .await;
    assert!(health["snapshot_open_failure"].is_null(), "{health:#}");
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(|l| l == "snapshot_open_failed 0"),
        "{metrics}"
    );
    drop(daemon);
}
