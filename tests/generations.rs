use crate::util::*;
use ivre_connector::observable::Observable;
use ivre_connector::snapshot::{DataDir, Snapshot};
#[cfg(feature = "test-hooks")]
use std::io::{BufRead, BufReader};
#[cfg(feature = "test-hooks")]
use std::process::Stdio;

fn scans_only(data: &std::path::Path) -> String {
    import(
        data,
        &[
            "--scans",
            &path_str(&lab("scancli.jsonl")),
            "--geoip-dir",
            &path_str(&geoip_dir()),
        ],
        0,
    );
    current(data)
}

fn passive_count(data: &std::path::Path, obs: &str) -> usize {
    lookup(data, &[obs.to_owned()])[0]["passive"]
        .as_array()
        .unwrap()
        .len()
}

/// Starts an import that stops at `stage`, waits for it to get there, kills it (SIGKILL).
#[cfg(feature = "test-hooks")]
fn kill_import_at(data: &std::path::Path, stage: &str) {
    let mut child = sync()
        .arg("--data-dir")
        .arg(data)
        .args([
            "import",
            "--scans",
            &path_str(&lab("scancli.jsonl")),
            "--passive",
            &path_str(&lab("ipinfo.jsonl")),
        ])
        .env("IVRE_SYNC_PAUSE_AT", stage)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let paused = line.contains(&format!("paused at {stage}"));
        seen.push(line);
        if paused {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("paused at")),
        "never paused at {stage}: {seen:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[cfg(feature = "test-hooks")]
#[test]
fn a_killed_import_leaves_the_last_published_generation_served() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let first = scans_only(data);
    assert_eq!(passive_count(data, "192.0.2.10"), 0);
    for stage in ["records", "manifest", "rename", "current"] {
        kill_import_at(data, stage);
        assert_eq!(current(data), first, "after a kill at {stage}");
        // Still served, with the old contents, by a fresh reader.
        let got = lookup(data, &["192.0.2.10".to_owned()]);
        assert_eq!(
            got[0]["scans"].as_array().unwrap().len(),
            2,
            "after a kill at {stage}"
        );
        assert_eq!(
            got[0]["passive"].as_array().unwrap().len(),
            0,
            "after a kill at {stage}"
        );
        let info = run(connector()
            .arg("--data-dir")
            .arg(data)
            .args(["index", "info"]));
        assert!(info.stdout.contains(&first), "{}", info.stdout);
    }
    // A kill after CURRENT moved leaves the new generation served and the old one kept.
    kill_import_at(data, "prune");
    let second = current(data);
    assert_ne!(second, first);
    assert!(passive_count(data, "192.0.2.10") > 0);
    // The next import cleans what the kills left: no .building, two generations.
    let third = scans_only(data);
    let dirs = generation_dirs(data);
    assert_eq!(dirs, vec![second.clone(), third.clone()], "left: {dirs:?}");
}

#[test]
fn publishing_keeps_two_generations() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let names: Vec<String> = (0..3).map(|_| scans_only(data)).collect();
    assert_eq!(generation_dirs(data), names[1..].to_vec());
    assert_eq!(current(data), names[2]);
}

#[test]
fn a_locked_generation_is_read_through_a_private_copy() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let first = scans_only(data);
    // This process serves the generation (sled locks it exclusively)…
    let served = Snapshot::open(&DataDir::new(data)).unwrap();
    assert!(!served.is_private_copy());
    // …yet the CLI answers, from a private copy it removes afterwards.
    let got = lookup(data, &["www.example.com".to_owned()]);
    assert_eq!(got[0]["scans"].as_array().unwrap().len(), 2);
    let leftovers: Vec<_> = std::fs::read_dir(data.join("tmp"))
        .unwrap()
        .flatten()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // ivre-sync publishes next to a served generation without touching it.
    let second = scans_only(data);
    assert_ne!(first, second);
    let obs = Observable::parse("www.example.com").unwrap();
    let again = ivre_connector::lookup::lookup(&served, &obs, None).unwrap();
    assert_eq!(again.scans.len(), 2);
    assert_eq!(served.name, first);
}

#[test]
fn malformed_lines_are_reported_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let bad = fixture("extra/malformed.jsonl");
    let r = import(data, &["--passive", &path_str(&bad)], 3);
    for (line, reason) in [
        (2, "invalid JSON"),
        (3, "missing field `recontype`"),
        (5, "invalid field `addr`"),
        (6, "not a passive record"),
        (7, "not a JSON object"),
    ] {
        let found = r.stderr.lines().any(|l| {
            l.contains("malformed.jsonl")
                && l.contains(&format!("line={line}"))
                && l.contains(reason)
        });
        assert!(found, "line {line} ({reason}) not reported:\n{}", r.stderr);
    }
    assert!(r.stdout.contains("5 rejected"), "{}", r.stdout);
    let info = run(connector()
        .arg("--data-dir")
        .arg(data)
        .args(["index", "info"]));
    let manifest: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    assert_eq!(manifest["rejected"], 5);
    assert_eq!(manifest["counts"]["passive"], 2);
    assert_eq!(manifest["source"]["files"][0]["rejected"], 5);
    assert_eq!(manifest["rejected_samples"][0]["line"], 2);
    assert_eq!(passive_count(data, "203.0.113.97"), 1);
}

#[test]
fn strict_mode_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let first = scans_only(data);
    let bad = fixture("extra/malformed.jsonl");
    let r = import(
        data,
        &["--strict", "--passive", &path_str(&bad)],
        ivre_connector::exit_code::REFUSED_INPUT,
    );
    assert!(r.stderr.contains("malformed.jsonl:2"), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was published"), "{}", r.stderr);
    assert_eq!(current(data), first);
    assert_eq!(generation_dirs(data), vec![first]);
}

#[test]
fn geo_files_travel_with_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    // None at all: geo disabled, with a warning.
    let r = import(data, &["--scans", &path_str(&lab("scancli.jsonl"))], 0);
    assert!(r.stderr.contains("geo data"), "{}", r.stderr);
    // Only what needs no database remains (IVRE's address type).
    let data_none = &lookup(data, &["192.0.2.10".to_owned()])[0]["data"];
    assert_eq!(
        data_none,
        &serde_json::json!({"address_type": "Documentation"})
    );
    // Given: carried by the generation, which is self-contained.
    let copy = dir.path().join("geoip-copy");
    std::fs::create_dir(&copy).unwrap();
    for f in [
        "GeoLite2-City.mmdb",
        "GeoLite2-ASN.mmdb",
        "GeoLite2-Country.mmdb",
    ] {
        std::fs::copy(geoip_dir().join(f), copy.join(f)).unwrap();
    }
    import(
        data,
        &[
            "--scans",
            &path_str(&lab("scancli.jsonl")),
            "--geoip-dir",
            &path_str(&copy),
        ],
        0,
    );
    std::fs::remove_dir_all(&copy).unwrap();
    assert_eq!(
        lookup(data, &["192.0.2.10".to_owned()])[0]["data"]["city"],
        "Paris"
    );
    // Not given: the served generation's files are carried forward.
    import(data, &["--passive", &path_str(&lab("ipinfo.jsonl"))], 0);
    let got = lookup(data, &["192.0.2.10".to_owned(), "AS64496".to_owned()]);
    assert_eq!(got[0]["data"]["as_num"], 64496);
    assert!(
        !got[1]["passive"].as_array().unwrap().is_empty(),
        "passive AS search uses the carried ASN data"
    );
    let info = run(connector()
        .arg("--data-dir")
        .arg(data)
        .args(["index", "info"]));
    assert!(info.stdout.contains("carried-forward"), "{}", info.stdout);
}

#[test]
fn a_broken_mmdb_fails_the_import_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let geo = dir.path().join("geo");
    std::fs::create_dir(&geo).unwrap();
    std::fs::copy(
        fixture("maxmind/GeoIP2-City-Test-Invalid-Node-Count.mmdb"),
        geo.join("City.mmdb"),
    )
    .unwrap();
    let r = import(
        &data,
        &[
            "--scans",
            &path_str(&lab("scancli.jsonl")),
            "--geoip-dir",
            &path_str(&geo),
        ],
        ivre_connector::exit_code::REFUSED_INPUT,
    );
    assert!(r.stderr.contains("City.mmdb"), "{}", r.stderr);
    assert!(!data.join("CURRENT").exists());
}

#[test]
fn verify_recomputes_the_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    scans_only(data);
    let r = run(connector()
        .arg("--data-dir")
        .arg(data)
        .args(["index", "verify"]));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("verified"), "{}", r.stdout);
    // Tamper with the manifest's checksum: verify must notice.
    let gen = data
        .join("generations")
        .join(current(data))
        .join("manifest.json");
    let text = std::fs::read_to_string(&gen).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["checksum"] = "crc32:00000000".into();
    std::fs::write(&gen, m.to_string()).unwrap();
    let r = run(connector()
        .arg("--data-dir")
        .arg(data)
        .args(["index", "verify"]));
    assert_eq!(r.code, ivre_connector::exit_code::DAMAGED, "{}", r.stdout);
}
