//! Damaged generations: every file of a real generation (built from the fixtures, then
//! updated so that it has delta files and sled entries) flipped bit by bit, truncated
//! and deleted; each time, opening it and looking up every observable of the fixtures
//! either fails with an error naming the file, or gives exactly the original answers.
//! Never a panic, never a different answer. See `docs/reliability/integrity.md`.

use super::import::{import, ImportOptions};
use super::layout::DataDir;
use super::open::{OpenOptions, Snapshot};
use crate::ivre::MergeMode;
use crate::ivre::RecordKind;
use crate::lookup;
use crate::observable::Observable;
use std::collections::BTreeSet;
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fixture(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(p)
}

fn options(inputs: Vec<(RecordKind, PathBuf)>, update: Option<MergeMode>) -> ImportOptions {
    ImportOptions {
        inputs,
        geoip_dir: Some(fixture("geoip")),
        strict: false,
        update,
        replace_kinds: Vec::new(),
        source_kind: None,
        source_url: None,
        source_mode: None,
        watermark: false,
        limits: Default::default(),
        regular_files_only: false,
        progress: None,
    }
}

/// Passive records enough for a record dictionary (`passive.zdict`).
const MANY: usize = 300;

fn many_name(i: usize) -> String {
    format!("host{i}.zone{}.many.example.net", i % 7)
}

/// `MANY` generated passive DNS records, written next to the data directory.
fn many_records(root: &Path) -> PathBuf {
    let path = root.with_extension("many.jsonl");
    let lines: Vec<String> = (0..MANY)
        .map(|i| {
            format!(
                r#"{{"addr": "198.51.100.{}", "sensor": "S", "recontype": "DNS_ANSWER", "source": "A-192.0.2.53-53", "value": "{}", "count": {}, "firstseen": "2026-01-01 00:00:00", "lastseen": "2026-01-02 00:00:00", "schema_version": 3}}"#,
                i % 200,
                many_name(i),
                i + 1
            )
        })
        .collect();
    fs::write(&path, lines.join("\n")).unwrap();
    path
}

/// A data directory holding one generation: the fixtures and enough passive records for
/// a dictionary, then an update.
fn build(root: &Path) {
    let data = DataDir::new(root);
    import(
        &data,
        &options(
            vec![
                (RecordKind::Scan, fixture("ivre-0.9.20/scancli.jsonl")),
                (RecordKind::View, fixture("ivre-0.9.20/view.jsonl")),
                (RecordKind::Passive, fixture("ivre-0.9.20/ipinfo.jsonl")),
                (RecordKind::Passive, many_records(root)),
            ],
            None,
        ),
    )
    .unwrap();
    import(
        &data,
        &options(
            vec![
                (RecordKind::Scan, fixture("extra/scans-extra.jsonl")),
                (RecordKind::Passive, fixture("extra/passive-extra.jsonl")),
            ],
            Some(MergeMode::Accumulate),
        ),
    )
    .unwrap();
    // Only the served generation: a damaged CURRENT naming the previous one would be
    // another (whole) generation, see the reliability notes.
    let current = fs::read_to_string(root.join("CURRENT")).unwrap();
    for entry in fs::read_dir(root.join("generations")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy() != current.trim() {
            fs::remove_dir_all(entry.path()).unwrap();
        }
    }
    let _ = fs::remove_dir_all(root.join("tmp"));
}

/// Every address, host name, DNS value and AS of the fixtures (and some of the generated
/// records), as observables.
fn observables() -> Vec<String> {
    let mut out: BTreeSet<String> = (0..MANY).step_by(29).map(many_name).collect();
    for file in [
        "ivre-0.9.20/scancli.jsonl",
        "ivre-0.9.20/view.jsonl",
        "ivre-0.9.20/ipinfo.jsonl",
        "extra/scans-extra.jsonl",
        "extra/passive-extra.jsonl",
    ] {
        for line in fs::read_to_string(fixture(file)).unwrap().lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if let Some(a) = v["addr"].as_str() {
                out.insert(a.to_owned());
            }
            if let Some(n) = v["infos"]["as_num"].as_u64() {
                out.insert(format!("AS{n}"));
            }
            if v["recontype"] == "DNS_ANSWER" {
                if let Some(name) = v["value"].as_str() {
                    out.insert(name.to_owned());
                }
            }
            for h in v["hostnames"].as_array().into_iter().flatten() {
                if let Some(name) = h["name"].as_str() {
                    out.insert(name.to_owned());
                }
            }
        }
    }
    out.into_iter().collect()
}

/// Opens the data directory and looks every observable up: the answers, or the first
/// error.
fn answers(root: &Path, observables: &[String]) -> Result<Vec<String>, String> {
    let options = OpenOptions {
        cache_bytes: 1 << 20,
        private_copy_if_locked: false,
    };
    let snapshot = Snapshot::open_with(&DataDir::new(root), &options).map_err(|e| e.to_string())?;
    observables
        .iter()
        .map(|o| {
            let observable = Observable::parse(o).map_err(|e| e.to_string())?;
            lookup::lookup(&snapshot, &observable, None)
                .map(|r| r.to_json_line(true))
                .map_err(|e| e.to_string())
        })
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dst = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dst);
        } else {
            fs::copy(entry.path(), &dst).unwrap();
        }
    }
}

fn files(root: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(root).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            files(&entry.path(), out);
        } else {
            out.push(entry.path());
        }
    }
}

/// What the error must name for a damaged `rel` (path in the data directory): the file,
/// or for sled's own files its database directory.
fn named_in(rel: &Path, error: &str) -> bool {
    let name = rel.file_name().unwrap().to_string_lossy();
    if error.contains(name.as_ref()) {
        return true;
    }
    let in_sled = rel.components().any(|c| c.as_os_str() == "entries");
    in_sled && error.contains("entries")
}

enum Damage {
    Flip(u64),
    Truncate(u64),
    Delete,
}

/// Byte positions to flip in a file of `len` bytes: all of a small file, a spread
/// sample (with both ends) of a large one.
fn positions(len: u64, every_below: u64, samples: u64) -> Vec<u64> {
    if len <= every_below {
        return (0..len).collect();
    }
    let mut out: BTreeSet<u64> = (0..8.min(len)).chain(len.saturating_sub(8)..len).collect();
    out.extend((0..samples).map(|i| i * len / samples));
    out.into_iter().collect()
}

#[test]
fn damaged_files_are_named_never_misread() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine");
    build(&pristine);
    let observables = observables();
    assert!(observables.len() > 20, "{observables:?}");
    let expected = answers(&pristine, &observables).unwrap();
    assert!(
        expected.iter().filter(|a| a.contains("\"addr\"")).count() > 10,
        "the observables find records"
    );
    let (every_below, samples) = match std::env::var("INTEGRITY_SAMPLES") {
        Ok(n) => (u64::MAX, n.parse().unwrap_or(0)),
        Err(_) => (512, 24),
    };
    let mut all = Vec::new();
    files(&pristine, &mut all);
    assert!(
        all.iter().any(|f| f.ends_with("passive.zdict")),
        "the generation has a record dictionary"
    );
    // The pristine generation, dictionary and key tables included, verifies clean.
    let report = super::verify::verify(&DataDir::new(&pristine)).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.records > 300, "{} records verified", report.records);
    let trial = dir.path().join("trial");
    let (mut tried, mut errors, mut same) = (0u64, 0u64, 0u64);
    let mut failures = Vec::new();
    for file in &all {
        let rel = file.strip_prefix(&pristine).unwrap().to_owned();
        let len = fs::metadata(file).unwrap().len();
        let mut damages: Vec<Damage> = positions(len, every_below, samples)
            .into_iter()
            .map(Damage::Flip)
            .collect();
        damages.extend([0, len / 2, len.saturating_sub(1)].map(Damage::Truncate));
        damages.push(Damage::Delete);
        for damage in damages {
            let _ = fs::remove_dir_all(&trial);
            copy_tree(&pristine, &trial);
            let target = trial.join(&rel);
            let what = match damage {
                Damage::Flip(at) => {
                    let mut bytes = fs::read(&target).unwrap();
                    bytes[at as usize] ^= 1 << (at % 8);
                    fs::write(&target, bytes).unwrap();
                    format!("bit {} of byte {at}", at % 8)
                }
                Damage::Truncate(to) => {
                    fs::File::options()
                        .write(true)
                        .open(&target)
                        .unwrap()
                        .set_len(to)
                        .unwrap();
                    format!("truncated to {to} bytes")
                }
                Damage::Delete => {
                    fs::remove_file(&target).unwrap();
                    "deleted".to_owned()
                }
            };
            tried += 1;
            let outcome = catch_unwind(AssertUnwindSafe(|| answers(&trial, &observables)));
            match outcome {
                Err(_) => failures.push(format!("{}, {what}: panicked", rel.display())),
                Ok(Ok(got)) if got == expected => same += 1,
                Ok(Ok(_)) => failures.push(format!(
                    "{}, {what}: opened and answered differently",
                    rel.display()
                )),
                Ok(Err(e)) if named_in(&rel, &e) => errors += 1,
                Ok(Err(e)) => failures.push(format!(
                    "{}, {what}: the error does not name the file: {e}",
                    rel.display()
                )),
            }
        }
    }
    eprintln!(
        "integrity: {} files, {tried} damaged copies: {errors} errors naming the file, {same} same answers, {} failures",
        all.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
