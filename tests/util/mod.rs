#![allow(dead_code)]

pub mod services;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/data").join(rel)
}

pub fn lab(name: &str) -> PathBuf {
    fixture(&format!("ivre-0.9.20/{name}"))
}

pub fn geoip_dir() -> PathBuf {
    fixture("geoip")
}

/// The `ivre-connector` binary of this build.
pub fn connector() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ivre-connector"));
    cmd.env_remove("IVRE_DATA_DIR").env("IVRE_LOG", "warn");
    cmd
}

/// The `ivre-sync` binary (another package of the workspace: built on first use).
pub fn sync() -> Command {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    let bin = BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/integration-… → target/<profile>/ivre-sync
        let dir = exe.parent().and_then(Path::parent).expect("target dir");
        let bin = dir.join("ivre-sync");
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "--quiet", "-p", "ivre-sync", "--bin", "ivre-sync"]);
        // The same features as this test binary, so that the hooks are there (and the
        // root library is not rebuilt with other features).
        if cfg!(feature = "test-hooks") {
            build.args(["--features", "test-hooks"]);
        }
        let status = build
            .current_dir(repo())
            .status()
            .expect("cargo build -p ivre-sync");
        assert!(status.success(), "cannot build ivre-sync");
        assert!(bin.is_file(), "ivre-sync not found at {}", bin.display());
        bin
    });
    let mut cmd = Command::new(bin);
    cmd.env_remove("IVRE_DATA_DIR").env("IVRE_LOG", "info");
    cmd
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(cmd: &mut Command) -> Run {
    run_with_stdin(cmd, None)
}

pub fn run_with_stdin(cmd: &mut Command, stdin: Option<&str>) -> Run {
    use std::io::Write;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("spawn");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// `ivre-sync import --data-dir DATA ARGS…`, asserting the exit code.
pub fn import(data: &Path, args: &[&str], expect: i32) -> Run {
    let r = run(sync().arg("--data-dir").arg(data).arg("import").args(args));
    assert_eq!(
        r.code, expect,
        "ivre-sync import {args:?}\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    r
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// Parsed JSON lines.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}

/// `ivre-connector lookup` over stdin, one result per observable.
pub fn lookup(data: &Path, observables: &[String]) -> Vec<serde_json::Value> {
    let input = observables.join("\n");
    let r = run_with_stdin(
        connector()
            .arg("--data-dir")
            .arg(data)
            .args(["lookup", "-"]),
        Some(&input),
    );
    assert_eq!(r.code, 0, "lookup failed: {}", r.stderr);
    let out = json_lines(&r.stdout);
    assert_eq!(out.len(), observables.len());
    out
}

/// A data directory with a published snapshot of IVRE's PostgreSQL CLI exports of the lab
/// (`scancli.jsonl`, `ipinfo.jsonl`), with geo data.
pub fn cli_exports_snapshot() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    import(
        dir.path(),
        &[
            "--scans",
            &path_str(&lab("scancli.jsonl")),
            "--passive",
            &path_str(&lab("ipinfo.jsonl")),
            "--geoip-dir",
            &path_str(&geoip_dir()),
        ],
        0,
    );
    dir
}

/// A data directory with a published snapshot of the MongoDB lab exports (they keep MACs)
/// and the extra records, with geo data.
pub fn lab_snapshot() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    import(
        dir.path(),
        &[
            "--scans",
            &path_str(&lab("mongo-scancli.jsonl")),
            "--scans",
            &path_str(&fixture("extra/scans-extra.jsonl")),
            "--passive",
            &path_str(&lab("mongo-ipinfo.jsonl")),
            "--passive",
            &path_str(&fixture("extra/passive-extra.jsonl")),
            "--geoip-dir",
            &path_str(&geoip_dir()),
        ],
        0,
    );
    dir
}

/// The CURRENT generation name.
pub fn current(data: &Path) -> String {
    std::fs::read_to_string(data.join("CURRENT"))
        .expect("CURRENT")
        .trim()
        .to_owned()
}

/// Generation directories (published and building).
pub fn generation_dirs(data: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data.join("generations"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A fault-injecting proxy in front of the real IVRE web API.
pub mod web_faults;

/// Seeded randomness and run scales of the fault-injection tests.
pub mod faults;

/// The lab's IVRE is shared by the tests of one run: readers hold this lock shared; a
/// test that changes IVRE's data holds it exclusively and puts the data back.
static IVRE_LAB: std::sync::RwLock<()> = std::sync::RwLock::new(());

pub fn ivre_lab_shared() -> std::sync::RwLockReadGuard<'static, ()> {
    IVRE_LAB.read().unwrap_or_else(|e| e.into_inner())
}

pub fn ivre_lab_exclusive() -> std::sync::RwLockWriteGuard<'static, ()> {
    IVRE_LAB.write().unwrap_or_else(|e| e.into_inner())
}

/// The Python of target/test-venv (or `IVRE_TEST_PYTHON`), with the OASIS STIX validator.
fn stix_python() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("IVRE_TEST_PYTHON") {
        return std::path::PathBuf::from(p);
    }
    let venv = repo().join("target/test-venv/bin/python");
    assert!(
        venv.is_file(),
        "the STIX validator is not installed: run `bash scripts/test` (it creates target/test-venv)"
    );
    venv
}

/// Runs the OASIS STIX 2.1 validator over bundle files (one bundle per line) and asserts
/// that it read `bundles` bundles and found no problem.
pub fn validate_stix(files: &[std::path::PathBuf], bundles: usize) {
    let mut cmd = std::process::Command::new(stix_python());
    cmd.arg(repo().join("tests/python/validate_stix.py"))
        .args(files);
    let r = run(&mut cmd);
    assert_eq!(
        r.code, 0,
        "STIX validation failed:\n{}{}",
        r.stdout, r.stderr
    );
    assert!(
        r.stdout
            .contains(&format!("{bundles} bundle(s), 0 problem(s)")),
        "{}",
        r.stdout
    );
}
