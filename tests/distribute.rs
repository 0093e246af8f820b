//! `ivre-sync publish` / `fetch` / `--publish` between data directories, through moto's
//! S3 server (`IVRE_TEST_S3_ENDPOINT`, started by `scripts/test`) and a `file://` store.

use crate::util::{self, current, generation_dirs, lab, path_str, run, sync};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

fn endpoint() -> String {
    std::env::var("IVRE_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!("IVRE_TEST_S3_ENDPOINT is not set: run the tests with `bash scripts/test`")
    })
}

/// `ivre-sync` with the S3 settings of the moto server (moto takes any credentials).
fn sync_s3() -> Command {
    let mut cmd = sync();
    cmd.env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing-secret")
        .env_remove("IVRE_SNAPSHOT_PUBLISH");
    cmd
}

/// A new bucket (moto accepts an unsigned `PUT /bucket`); its name.
fn new_bucket() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "ivre-dist-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let status = http(reqwest::Method::PUT, &format!("{}/{name}", endpoint()));
    assert!(status.is_success(), "cannot create bucket {name}: {status}");
    name
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// One plain (unsigned) HTTP request to moto: its status.
fn http(method: reqwest::Method, url: &str) -> reqwest::StatusCode {
    block_on(async {
        reqwest::Client::new()
            .request(method, url)
            .send()
            .await
            .unwrap()
            .status()
    })
}

/// Flips one byte of an object of the bucket (signed requests: objects are private).
fn flip_a_byte(bucket: &str, key: &str) {
    use object_store::{ObjectStoreExt, PutPayload};
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(endpoint())
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_region("us-east-1")
        .with_bucket_name(bucket)
        .with_access_key_id("testing")
        .with_secret_access_key("testing-secret")
        .build()
        .unwrap();
    let key = object_store::path::Path::from(key);
    block_on(async {
        let mut bytes = s3.get(&key).await.unwrap().bytes().await.unwrap().to_vec();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        s3.put(&key, PutPayload::from(bytes)).await.unwrap();
    });
}

fn imports(passive_only: bool) -> Vec<String> {
    let mut args = vec![
        "--passive".to_owned(),
        path_str(&lab("ipinfo.jsonl")),
        "--geoip-dir".to_owned(),
        path_str(&util::geoip_dir()),
    ];
    if !passive_only {
        args.extend(["--scans".to_owned(), path_str(&lab("scancli.jsonl"))]);
    }
    args
}

/// `ivre-sync import` (plus `extra` arguments) into `data`; the generation published.
fn import(cmd: Command, data: &Path, passive_only: bool, extra: &[&str], expect: i32) -> String {
    let mut cmd = cmd;
    let r = run(cmd
        .arg("--data-dir")
        .arg(data)
        .arg("import")
        .args(imports(passive_only))
        .args(extra));
    assert_eq!(r.code, expect, "import: {}\n{}", r.stdout, r.stderr);
    current(data)
}

fn publish(cmd: Command, data: &Path, url: &str) -> util::Run {
    let mut cmd = cmd;
    let r = run(cmd
        .arg("--data-dir")
        .arg(data)
        .args(["publish", "--to", url]));
    assert_eq!(r.code, 0, "publish: {}\n{}", r.stdout, r.stderr);
    r
}

fn fetch(cmd: Command, data: &Path, url: &str) -> util::Run {
    let mut cmd = cmd;
    run(cmd
        .arg("--data-dir")
        .arg(data)
        .args(["fetch", "--from", url]))
}

fn observables() -> Vec<String> {
    [
        "192.0.2.10",
        "198.51.100.7",
        "AS64496",
        "example.com",
        "192.0.2.1",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn s3_round_trip_replicas_serve_the_publishers_generation() {
    let bucket = new_bucket();
    let url = format!("s3://{bucket}/snapshots");
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();

    let first = import(sync(), a.path(), true, &[], 0);
    let r = publish(sync_s3(), a.path(), &url);
    assert!(
        r.stdout.contains(&format!("uploaded {first} to {url}")),
        "{}",
        r.stdout
    );
    assert!(!r.stderr.contains("testing-secret"), "{}", r.stderr);
    let r = publish(sync_s3(), a.path(), &url);
    assert!(r.stdout.contains("already the latest"), "{}", r.stdout);

    for replica in [b.path(), c.path()] {
        let r = fetch(sync_s3(), replica, &url);
        assert_eq!(r.code, 0, "fetch: {}\n{}", r.stdout, r.stderr);
        assert!(
            r.stdout.contains(&format!("installed {first}")),
            "{}",
            r.stdout
        );
        assert_eq!(current(replica), first);
    }
    let expected = util::lookup(a.path(), &observables());
    assert_eq!(util::lookup(b.path(), &observables()), expected);
    assert_eq!(util::lookup(c.path(), &observables()), expected);
    let r = fetch(sync_s3(), b.path(), &url);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("up to date"), "{}", r.stdout);

    // A second import pushed by `--publish`: the replica moves to it.
    let second = import(sync_s3(), a.path(), false, &["--publish", &url], 0);
    assert_ne!(second, first);
    let r = fetch(sync_s3(), b.path(), &url);
    assert_eq!(r.code, 0, "fetch: {}\n{}", r.stdout, r.stderr);
    assert_eq!(current(b.path()), second);
    assert_eq!(
        util::lookup(b.path(), &observables()),
        util::lookup(a.path(), &observables())
    );

    // A third one, tampered with in the bucket: refused, the replica keeps serving.
    let third = import(sync_s3(), a.path(), true, &["--publish", &url], 0);
    flip_a_byte(&bucket, &format!("snapshots/generations/{third}.tar.zst"));
    let before = generation_dirs(b.path());
    let r = fetch(sync_s3(), b.path(), &url);
    assert_eq!(
        r.code,
        ivre_connector::exit_code::FAILURE,
        "fetch: {}\n{}",
        r.stdout,
        r.stderr
    );
    assert!(r.stderr.contains("sha256"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("generations/{third}.tar.zst")),
        "{}",
        r.stderr
    );
    assert_eq!(current(b.path()), second);
    assert_eq!(generation_dirs(b.path()), before);
    assert!(std::fs::read_dir(b.path().join("tmp"))
        .map(|d| d.count() == 0)
        .unwrap_or(true));
}

#[test]
fn file_store_round_trip() {
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().join("snapshots").display());
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let name = import(sync(), a.path(), false, &["--publish", &url], 0);
    assert!(store.path().join("snapshots/LATEST").is_file());
    let r = fetch(sync(), b.path(), &url);
    assert_eq!(r.code, 0, "fetch: {}\n{}", r.stdout, r.stderr);
    assert_eq!(current(b.path()), name);
    assert_eq!(
        util::lookup(b.path(), &observables()),
        util::lookup(a.path(), &observables())
    );
    let r = publish(sync(), a.path(), &url);
    assert!(r.stdout.contains("already the latest"), "{}", r.stdout);
}

#[test]
fn a_failed_upload_keeps_the_local_generation() {
    let a = tempfile::tempdir().unwrap();
    // No such bucket.
    let url = format!("s3://ivre-dist-missing-{}/x", std::process::id());
    let name = import(sync_s3(), a.path(), true, &["--publish", &url], 4);
    assert!(
        util::lookup(a.path(), &["192.0.2.10".to_owned()])[0]["passive"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    );
    assert_eq!(generation_dirs(a.path()), [name]);
}

#[test]
fn fetch_every_polls_until_a_generation_appears() {
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let mut poller = sync()
        .arg("--data-dir")
        .arg(b.path())
        .args(["fetch", "--from", &url, "--every", "1s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Nothing published yet: the poller logs the failure and goes on.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(poller.try_wait().unwrap().is_none(), "the poller stopped");
    let name = import(sync(), a.path(), true, &["--publish", &url], 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(b.path().join("CURRENT"))
        .ok()
        .map(|s| s.trim().to_owned())
        != Some(name.clone())
    {
        assert!(Instant::now() < deadline, "the poller did not fetch {name}");
        std::thread::sleep(Duration::from_millis(200));
    }
    poller.kill().unwrap();
    poller.wait().unwrap();
}
