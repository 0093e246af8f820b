//! Publish and fetch through `file://` stores in temporary directories.

use super::store::{archive_key, manifest_key, LATEST};
use super::*;
use crate::ivre::RecordKind;
use crate::observable::Observable;
use crate::snapshot::{self, DataDir, ImportOptions, Snapshot};
use std::fs;
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

/// Imports the lab's CLI exports (`passive_only`: the passive records alone) into `data`.
fn import(data: &DataDir, passive_only: bool) -> String {
    let mut inputs = vec![(RecordKind::Passive, fixture("ivre-0.9.20/ipinfo.jsonl"))];
    if !passive_only {
        inputs.push((RecordKind::Scan, fixture("ivre-0.9.20/scancli.jsonl")));
    }
    let options = ImportOptions {
        inputs,
        geoip_dir: Some(fixture("geoip")),
        ..Default::default()
    };
    snapshot::import(data, &options)
        .unwrap()
        .manifest
        .generation
}

fn file_store(dir: &Path) -> Store {
    let url: StoreUrl = format!("file://{}", dir.display()).parse().unwrap();
    Store::open(&url, &S3Options::default()).unwrap()
}

struct Setup {
    _tmp: tempfile::TempDir,
    a: DataDir,
    b: DataDir,
    store_dir: PathBuf,
    store: Store,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let store_dir = tmp.path().join("store");
    Setup {
        a: DataDir::new(tmp.path().join("a")),
        b: DataDir::new(tmp.path().join("b")),
        store: file_store(&store_dir),
        store_dir,
        _tmp: tmp,
    }
}

const OBSERVABLES: &[&str] = &["192.0.2.10", "198.51.100.7", "AS64496", "example.com"];

fn lookups(data: &DataDir) -> Vec<String> {
    let snap = Snapshot::open(data).unwrap();
    OBSERVABLES
        .iter()
        .map(|o| {
            let observable = Observable::parse(o).unwrap();
            crate::lookup::lookup(&snap, &observable, None)
                .unwrap()
                .to_json_line(true)
        })
        .collect()
}

fn current(data: &DataDir) -> Option<String> {
    crate::snapshot::open::current_name(data).ok()
}

fn generations(data: &DataDir) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(data.generations())
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The files left in `DATA_DIR/tmp`.
fn tmp_files(data: &DataDir) -> Vec<String> {
    fs::read_dir(data.tmp())
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn read_latest(store_dir: &Path) -> Latest {
    serde_json::from_slice(&fs::read(store_dir.join(LATEST)).unwrap()).unwrap()
}

fn write_latest(store_dir: &Path, latest: &Latest) {
    fs::write(
        store_dir.join(LATEST),
        serde_json::to_vec_pretty(latest).unwrap(),
    )
    .unwrap();
}

/// Asserts that a failed fetch into `data` left `before` served and nothing behind.
fn assert_untouched(data: &DataDir, before: Option<&str>, gens: &[String]) {
    assert_eq!(current(data).as_deref(), before);
    assert_eq!(generations(data), gens);
    assert!(tmp_files(data).is_empty(), "{:?}", tmp_files(data));
}

#[tokio::test]
async fn round_trip_and_idempotence() {
    let s = setup();
    let name = import(&s.a, false);
    let published = publish(&s.a, &s.store).await.unwrap();
    assert_eq!(published.generation, name);
    assert!(published.uploaded);
    assert_eq!(published.archive, archive_key(&name));
    let archive = fs::read(s.store_dir.join(&published.archive)).unwrap();
    assert_eq!(archive.len() as u64, published.bytes);
    let latest = read_latest(&s.store_dir);
    assert_eq!(latest.generation, name);
    assert_eq!(latest.sha256, published.sha256);
    let stored: publish::StoredManifest =
        serde_json::from_slice(&fs::read(s.store_dir.join(manifest_key(&name))).unwrap()).unwrap();
    assert_eq!(stored.manifest.generation, name);
    assert_eq!(stored.sha256, published.sha256);
    assert!(tmp_files(&s.a).is_empty());

    // Publishing again: nothing to do.
    let again = publish(&s.a, &s.store).await.unwrap();
    assert!(!again.uploaded);
    assert_eq!(again.sha256, published.sha256);

    assert_eq!(
        fetch(&s.b, &s.store).await.unwrap().as_deref(),
        Some(name.as_str())
    );
    assert_eq!(current(&s.b).as_deref(), Some(name.as_str()));
    assert_eq!(lookups(&s.a), lookups(&s.b));
    assert!(lookups(&s.b)[0].contains("192.0.2.10"));
    assert!(tmp_files(&s.b).is_empty());
    // Already served: nothing fetched.
    assert_eq!(fetch(&s.b, &s.store).await.unwrap(), None);
    // Still published after sled rewrote parts of A's files (opened by the lookups).
    assert!(!publish(&s.a, &s.store).await.unwrap().uploaded);
}

#[tokio::test]
async fn multipart_upload_round_trip() {
    let s = setup();
    let name = import(&s.a, false);
    let published = publish_with(&s.a, &s.store, 0, 4 * 1024).await.unwrap();
    assert!(published.bytes > 3 * 4 * 1024, "{}", published.bytes);
    assert_eq!(fetch(&s.b, &s.store).await.unwrap(), Some(name));
    assert_eq!(lookups(&s.a), lookups(&s.b));
}

#[tokio::test]
async fn tampered_and_truncated_archives_are_refused() {
    let s = setup();
    let first = import(&s.a, true);
    publish(&s.a, &s.store).await.unwrap();
    fetch(&s.b, &s.store).await.unwrap();
    let second = import(&s.a, false);
    let published = publish(&s.a, &s.store).await.unwrap();
    let archive_path = s.store_dir.join(&published.archive);
    let good = fs::read(&archive_path).unwrap();
    let before = generations(&s.b);
    assert_eq!(before, std::slice::from_ref(&first));

    // One byte flipped.
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 0x01;
    fs::write(&archive_path, &bad).unwrap();
    let err = fetch(&s.b, &s.store).await.unwrap_err();
    assert!(matches!(err, DistributeError::Checksum { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&published.sha256), "{text}");
    assert!(text.contains(&published.archive), "{text}");
    assert_untouched(&s.b, Some(&first), &before);

    // Truncated.
    fs::write(&archive_path, &good[..good.len() - 100]).unwrap();
    let err = fetch(&s.b, &s.store).await.unwrap_err();
    assert!(matches!(err, DistributeError::SizeMismatch { .. }), "{err}");
    assert_untouched(&s.b, Some(&first), &before);

    // Longer than announced.
    let mut longer = good.clone();
    longer.extend_from_slice(b"appended");
    fs::write(&archive_path, &longer).unwrap();
    let err = fetch(&s.b, &s.store).await.unwrap_err();
    assert!(matches!(err, DistributeError::SizeMismatch { .. }), "{err}");
    assert_untouched(&s.b, Some(&first), &before);

    // Truncated, with a LATEST that announces it: the checksum passes, unpacking fails.
    let cut = &good[..good.len() / 2];
    fs::write(&archive_path, cut).unwrap();
    let mut latest = read_latest(&s.store_dir);
    latest.sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(cut))
    };
    latest.bytes = cut.len() as u64;
    write_latest(&s.store_dir, &latest);
    let err = fetch(&s.b, &s.store).await.unwrap_err();
    assert!(matches!(err, DistributeError::BadArchive { .. }), "{err}");
    assert_untouched(&s.b, Some(&first), &before);

    // Put back: the fetch goes through.
    fs::write(&archive_path, &good).unwrap();
    latest.sha256 = published.sha256.clone();
    latest.bytes = published.bytes;
    write_latest(&s.store_dir, &latest);
    assert_eq!(fetch(&s.b, &s.store).await.unwrap(), Some(second.clone()));
    assert_eq!(generations(&s.b), [first, second]);
}

#[tokio::test]
async fn latest_naming_a_missing_archive_or_nothing() {
    let s = setup();
    let err = fetch(&s.b, &s.store).await.unwrap_err();
    assert!(matches!(err, DistributeError::NotPublished { .. }), "{err}");
    import(&s.a, true);
    let published = publish(&s.a, &s.store).await.unwrap();
    fs::remove_file(s.store_dir.join(&published.archive)).unwrap();
    let err = fetch(&s.b, &s.store).await.unwrap_err();
    assert!(
        matches!(err, DistributeError::MissingArchive { .. }),
        "{err}"
    );
    assert_untouched(&s.b, None, &[]);

    // LATEST pointing elsewhere than its generation's keys.
    let mut latest = read_latest(&s.store_dir);
    latest.archive = "../../etc/passwd".into();
    write_latest(&s.store_dir, &latest);
    let err = fetch(&s.b, &s.store).await.unwrap_err();
    assert!(matches!(err, DistributeError::BadLatest { .. }), "{err}");
    fs::write(s.store_dir.join(LATEST), b"not json").unwrap();
    let err = fetch(&s.b, &s.store).await.unwrap_err();
    assert!(matches!(err, DistributeError::BadLatest { .. }), "{err}");
    assert_untouched(&s.b, None, &[]);
}

#[tokio::test]
async fn archive_of_another_generation_is_refused() {
    let s = setup();
    import(&s.a, true);
    let published = publish(&s.a, &s.store).await.unwrap();
    // The same (valid) archive announced as another generation.
    let other = "gen-20000101T000000000000Z";
    fs::copy(
        s.store_dir.join(&published.archive),
        s.store_dir.join(archive_key(other)),
    )
    .unwrap();
    let mut latest = read_latest(&s.store_dir);
    latest.generation = other.into();
    latest.archive = archive_key(other);
    latest.manifest = manifest_key(other);
    write_latest(&s.store_dir, &latest);
    let err = fetch(&s.b, &s.store).await.unwrap_err();
    assert!(
        matches!(err, DistributeError::BadGeneration { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("manifest names"), "{err}");
    assert_untouched(&s.b, None, &[]);
}

/// A tar entry header with a raw name (bypassing the `tar` crate's path checks).
fn raw_entry(name: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>) -> Vec<u8> {
    let mut header = tar::Header::new_ustar();
    {
        let bytes = header.as_old_mut();
        bytes.name = [0; 100];
        bytes.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            bytes.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
    }
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    let mut out = header.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// Publishes a hand-made archive (`entries` then the end blocks) as LATEST.
fn publish_raw(store_dir: &Path, name: &str, entries: &[Vec<u8>]) {
    let mut tar: Vec<u8> = entries.concat();
    tar.extend_from_slice(&[0; 1024]);
    let archive = zstd::encode_all(&tar[..], 3).unwrap();
    fs::create_dir_all(store_dir.join("generations")).unwrap();
    fs::write(store_dir.join(archive_key(name)), &archive).unwrap();
    use sha2::Digest;
    write_latest(
        store_dir,
        &Latest {
            generation: name.into(),
            archive: archive_key(name),
            manifest: manifest_key(name),
            sha256: hex::encode(sha2::Sha256::digest(&archive)),
            bytes: archive.len() as u64,
            published_at: "2026-12-01T00:00:00Z".into(),
        },
    );
}

#[tokio::test]
async fn unsafe_entries_are_refused() {
    let s = setup();
    let name = "gen-20261201T000000000000Z";
    let regular = tar::EntryType::Regular;
    let escape = s.b.root().join("generations/escaped");
    for (entries, expected) in [
        (
            vec![raw_entry("../escaped", regular, b"x", None)],
            "a '..' path",
        ),
        (
            vec![raw_entry("index/../../escaped", regular, b"x", None)],
            "a '..' path",
        ),
        (
            vec![raw_entry(
                &format!("{}/abs", s.b.root().display()),
                regular,
                b"x",
                None,
            )],
            "an absolute path",
        ),
        (
            vec![raw_entry(
                "index",
                tar::EntryType::Symlink,
                b"",
                Some("/tmp"),
            )],
            "a symbolic link",
        ),
        (
            vec![raw_entry(
                "manifest.json",
                tar::EntryType::Link,
                b"",
                Some("/etc/passwd"),
            )],
            "a hard link",
        ),
        (
            vec![raw_entry("null", tar::EntryType::Char, b"", None)],
            "not a regular file",
        ),
        (
            vec![
                raw_entry("manifest.json", regular, b"{}", None),
                raw_entry("manifest.json", regular, b"{}", None),
            ],
            "given twice",
        ),
    ] {
        publish_raw(&s.store_dir, name, &entries);
        let err = fetch(&s.b, &s.store).await.unwrap_err();
        assert!(matches!(err, DistributeError::BadArchive { .. }), "{err}");
        assert!(err.to_string().contains(expected), "{expected}: {err}");
        assert!(!escape.exists());
        assert!(!s.b.root().join("abs").exists());
        assert_untouched(&s.b, None, &[]);
    }
}

#[tokio::test]
async fn the_store_keeps_three_generations_and_replicas_two() {
    let s = setup();
    let mut names = Vec::new();
    for i in 0..5 {
        names.push(import(&s.a, i % 2 == 0));
        publish(&s.a, &s.store).await.unwrap();
        assert_eq!(
            fetch(&s.b, &s.store).await.unwrap().as_deref(),
            Some(names[i].as_str())
        );
    }
    let mut in_store: Vec<String> = fs::read_dir(s.store_dir.join("generations"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    in_store.sort();
    let expected: Vec<String> = names[2..]
        .iter()
        .flat_map(|n| [format!("{n}.json"), format!("{n}.tar.zst")])
        .collect();
    assert_eq!(in_store, expected);
    assert_eq!(read_latest(&s.store_dir).generation, names[4]);
    // The replica prunes as an import does: the served generation and the previous one.
    assert_eq!(generations(&s.b), names[3..]);
    assert_eq!(lookups(&s.a), lookups(&s.b));
}

#[tokio::test]
async fn nothing_to_publish_without_a_snapshot() {
    let s = setup();
    let err = publish(&s.a, &s.store).await.unwrap_err();
    assert!(
        matches!(err, DistributeError::Snapshot(_)),
        "{err}: {err:?}"
    );
    assert!(!s.store_dir.join(LATEST).exists());
}
