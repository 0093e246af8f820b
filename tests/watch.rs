//! `ivre-sync watch --drop-dir`: complete files only, kind from the records, replace per
//! kind, delta merge, MaxMind files, failures moved aside.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

struct Watcher(Child);

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

/// Writes `content` under a temporary name, then renames it into the drop folder.
fn drop_file(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, content).unwrap();
    let path = dir.join(name);
    std::fs::rename(&tmp, &path).unwrap();
    path
}

fn manifest(data: &Path) -> serde_json::Value {
    serde_json::from_str(
        &run(connector()
            .arg("--data-dir")
            .arg(data)
            .args(["index", "info"]))
        .stdout,
    )
    .unwrap_or_default()
}

#[test]
fn dropped_files_are_imported_by_kind() {
    let dir = tempfile::tempdir().unwrap();
    let (data, drops) = (dir.path().join("data"), dir.path().join("drop"));
    std::fs::create_dir_all(&drops).unwrap();
    // Present at start: taken as complete.
    std::fs::copy(lab("ipinfo.jsonl"), drops.join("passive-export.jsonl")).unwrap();
    let _watcher = Watcher(
        sync()
            .arg("--data-dir")
            .arg(&data)
            .args(["watch", "--drop-dir"])
            .arg(&drops)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the first import", || {
        drops.join("done/passive-export.jsonl").exists()
    });
    assert_eq!(manifest(&data)["counts"]["passive"], 13);

    // A file written in place, with no rename and no marker, is left alone…
    let partial = drops.join("scans-in-progress.jsonl");
    std::fs::write(&partial, std::fs::read(lab("scancli.jsonl")).unwrap()).unwrap();
    // …until its marker says it is complete. Its name says nothing: the records do.
    std::thread::sleep(Duration::from_secs(2));
    assert!(partial.exists(), "not taken before its marker");
    std::fs::write(drops.join("scans-in-progress.jsonl.ready"), b"").unwrap();
    wait_until("the marked file", || {
        drops.join("done/scans-in-progress.jsonl").exists()
    });
    let m = manifest(&data);
    assert_eq!(m["counts"]["scans"], 4, "scans replaced");
    assert_eq!(m["counts"]["passive"], 13, "passive kept");
    assert!(!drops.join("scans-in-progress.jsonl.ready").exists());

    // A delta: the A record of www.example.com seen twice more, and a new one.
    let delta = concat!(
        r#"{"addr": "192.0.2.10", "sensor": "LAB-SENSOR", "count": 2, "firstseen": "2026-11-26 10:00:00", "lastseen": "2026-11-30 10:00:00", "recontype": "DNS_ANSWER", "source": "A-203.0.113.53-53", "targetval": "", "value": "www.example.com", "schema_version": 3, "infos": {"domain": ["www.example.com", "example.com", "com"]}}"#,
        "\n",
        r#"{"addr": "192.0.2.99", "sensor": "LAB-SENSOR", "count": 1, "firstseen": "2026-11-30 10:00:00", "lastseen": "2026-11-30 10:00:00", "recontype": "DNS_ANSWER", "source": "A-203.0.113.53-53", "targetval": "", "value": "delta.example.com", "schema_version": 3, "infos": {"domain": ["delta.example.com", "example.com", "com"]}}"#,
        "\n"
    );
    drop_file(&drops, "night.delta.jsonl", delta.as_bytes());
    wait_until("the delta", || {
        drops.join("done/night.delta.jsonl").exists()
    });
    assert_eq!(manifest(&data)["counts"]["passive"], 14);
    let got = lookup(
        &data,
        &["www.example.com".to_owned(), "delta.example.com".to_owned()],
    );
    let a = got[0]["passive"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["addr"] == "192.0.2.10")
        .unwrap()
        .clone();
    assert_eq!(a["count"], 5, "3 + 2");
    assert_eq!(a["firstseen"], "2026-11-26 10:00:00");
    assert_eq!(a["lastseen"], "2026-11-30 10:00:00");
    assert_eq!(got[1]["passive"].as_array().unwrap().len(), 1);

    // MaxMind data: geo appears once the City database is dropped.
    assert!(lookup(&data, &["192.0.2.10".to_owned()])[0]["data"]
        .get("city")
        .is_none());
    drop_file(
        &drops,
        "GeoLite2-City.mmdb",
        &std::fs::read(geoip_dir().join("GeoLite2-City.mmdb")).unwrap(),
    );
    wait_until("the MaxMind file", || {
        drops.join("done/GeoLite2-City.mmdb").exists()
    });
    assert_eq!(
        lookup(&data, &["192.0.2.10".to_owned()])[0]["data"]["city"],
        "Paris"
    );

    // Garbage goes to failed/ with the reason, and nothing is published.
    let before = current(&data);
    drop_file(&drops, "garbage.jsonl", b"this is not json\n");
    wait_until("the failure", || {
        drops.join("failed/garbage.jsonl").exists()
    });
    let reason = std::fs::read_to_string(drops.join("failed/garbage.jsonl.error.txt")).unwrap();
    assert!(reason.contains("garbage.jsonl:1"), "{reason}");
    assert_eq!(current(&data), before);
}
