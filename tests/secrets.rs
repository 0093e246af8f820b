//! Secrets are never written out (issue 11, item 6): every command of both binaries runs
//! with secrets in `OPENCTI_URL` (user-info and `?token=`), `OPENCTI_TOKEN` and the
//! `IVRE_DB_URL*` (MongoDB user-info and `tlsCertificateKeyFilePassword`, the web API's
//! user-info and `#X-API-Key=` header), with sources that fail and `-vv`; stdout, stderr
//! and every file written (data directories, manifests, error reports, the store) are
//! searched for each secret. Each command must also have done its work and, where it
//! names a source, named it in its redacted form: a run that does nothing cannot pass.

use crate::daemon::free_port;
use crate::util::*;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A random-looking secret of this run: `prefix` and 16 hex digits.
fn secret(prefix: &str) -> String {
    let mut h = RandomState::new().build_hasher();
    h.write(prefix.as_bytes());
    format!("{prefix}{:016x}", h.finish())
}

struct Secrets {
    oc_user: String,
    oc_pass: String,
    oc_query_token: String,
    oc_token: String,
    mongo_user: String,
    mongo_pass: String,
    mongo_key_pass: String,
    web_user: String,
    web_pass: String,
    web_key: String,
}

impl Secrets {
    fn new() -> Secrets {
        Secrets {
            oc_user: secret("ocU"),
            oc_pass: secret("ocP"),
            oc_query_token: secret("ocQ"),
            oc_token: secret("ocT"),
            mongo_user: secret("mgU"),
            mongo_pass: secret("S3cretPw"),
            mongo_key_pass: secret("mgK"),
            web_user: secret("wbU"),
            web_pass: secret("wbP"),
            web_key: secret("wbK"),
        }
    }

    fn all(&self) -> Vec<&str> {
        vec![
            &self.oc_user,
            &self.oc_pass,
            &self.oc_query_token,
            &self.oc_token,
            &self.mongo_user,
            &self.mongo_pass,
            &self.mongo_key_pass,
            &self.web_user,
            &self.web_pass,
            &self.web_key,
        ]
    }

    /// An OpenCTI URL where nothing answers, with user-info and a `?token=`.
    fn opencti_url(&self, port: u16) -> String {
        format!(
            "http://{}:{}@127.0.0.1:{port}/?token={}",
            self.oc_user, self.oc_pass, self.oc_query_token
        )
    }

    /// A MongoDB URL where nothing answers (fails within a second).
    fn mongo_url(&self, port: u16) -> String {
        format!(
            "mongodb://{}:{}@127.0.0.1:{port}/ivre?serverSelectionTimeoutMS=800&connectTimeoutMS=800&tlsCertificateKeyFilePassword={}",
            self.mongo_user, self.mongo_pass, self.mongo_key_pass
        )
    }

    /// A web API URL (`base`: `http://host:port/cgi`) with user-info and an API key header.
    fn web_url(&self, base: &str) -> String {
        let (scheme, rest) = base.split_once("://").unwrap();
        format!(
            "{scheme}://{}:{}@{rest}#X-API-Key={}",
            self.web_user, self.web_pass, self.web_key
        )
    }

    /// `cmd` with every secret in its environment: the OpenCTI settings, and the IVRE
    /// sources (passive from the web API at `web`, scans from an unreachable MongoDB).
    fn env(&self, cmd: &mut Command, web: &str, dead_port: u16) {
        cmd.env("OPENCTI_URL", self.opencti_url(dead_port))
            .env("OPENCTI_TOKEN", &self.oc_token)
            .env("IVRE_DB_URL", self.web_url(web))
            .env("IVRE_DB_URL_SCANS", self.mongo_url(dead_port))
            .env("IVRE_DB_URL_PASSIVE", self.web_url(web))
            .env("IVRE_FALLBACK_TIMEOUT", "3")
            .env_remove("IVRE_LOG")
            .env("CONNECTOR_LOG_LEVEL", "debug");
    }
}

/// Every file under `root` (symlinks not followed).
fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let t = entry.file_type().unwrap();
            if t.is_dir() {
                todo.push(entry.path());
            } else if t.is_file() {
                out.push(entry.path());
            }
        }
    }
    out
}

/// What was searched, for the final check.
#[derive(Default)]
struct Searched {
    outputs: Vec<(String, String)>,
}

impl Searched {
    fn run(&mut self, what: &str, cmd: &mut Command) -> Run {
        let started = std::time::Instant::now();
        let r = run(cmd);
        eprintln!("secrets: {what}: {:.1} s", started.elapsed().as_secs_f64());
        self.add(what, &r.stdout, &r.stderr);
        r
    }

    fn add(&mut self, what: &str, stdout: &str, stderr: &str) {
        self.outputs
            .push((format!("{what} (stdout)"), stdout.to_owned()));
        self.outputs
            .push((format!("{what} (stderr)"), stderr.to_owned()));
    }

    /// Runs `cmd` for `secs` seconds, then stops it (SIGKILL).
    fn run_briefly(&mut self, what: &str, cmd: &mut Command, secs: u64) -> Run {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        std::thread::sleep(Duration::from_secs(secs));
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        let r = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.add(what, &r.stdout, &r.stderr);
        r
    }
}

/// Where each of `secrets` shows in `outputs` or in `files`.
fn find_leaks(secrets: &[&str], outputs: &[(String, String)], files: &[PathBuf]) -> Vec<String> {
    let mut leaks = Vec::new();
    for secret in secrets {
        for (what, text) in outputs {
            if text.contains(secret) {
                leaks.push(format!("{secret} in {what}"));
            }
        }
        for file in files {
            let bytes = std::fs::read(file).unwrap();
            if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                leaks.push(format!("{secret} in {}", file.display()));
            }
        }
    }
    leaks
}

#[test]
fn secrets_are_never_written_out() {
    let _lab = ivre_lab_shared();
    let web = std::env::var("IVRE_TEST_WEB_URL")
        .expect("IVRE_TEST_WEB_URL is not set: source /tmp/services.env or run scripts/test");
    let s = Secrets::new();
    let dead = free_port();
    let dead_web = format!("http://127.0.0.1:{dead}/cgi");
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let mut searched = Searched::default();
    let oc_cmd = |s: &Secrets, web: &str| {
        let mut cmd = connector();
        s.env(&mut cmd, web, dead);
        cmd.arg("-vv").current_dir(root.path());
        cmd
    };
    let sync_cmd = |s: &Secrets, web: &str| {
        let mut cmd = sync();
        s.env(&mut cmd, web, dead);
        cmd.arg("-vv").current_dir(root.path());
        cmd
    };

    // ivre-sync import, one malformed line (rejected: exit 3), the sources unused.
    let bad = root.path().join("passive-bad.jsonl");
    let mut text = std::fs::read_to_string(lab("ipinfo.jsonl")).unwrap();
    text.push_str("{not json\n");
    std::fs::write(&bad, text).unwrap();
    let r = searched.run(
        "import",
        sync_cmd(&s, &web)
            .arg("--data-dir")
            .arg(&data)
            .arg("import")
            .arg("--scans")
            .arg(lab("scancli.jsonl"))
            .arg("--passive")
            .arg(&bad)
            .arg("--geoip-dir")
            .arg(geoip_dir()),
    );
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);

    // ivre-sync pull from the real web API (its user-info and key header are sent, and
    // ignored by IVRE): published, the manifest names the redacted URL.
    let pulled = root.path().join("pulled");
    let r = searched.run(
        "pull (web API)",
        sync_cmd(&s, &web)
            .env_remove("IVRE_DB_URL_SCANS")
            .env_remove("IVRE_DB_URL_PASSIVE")
            .env(
                "IVRE_DB_URL_DATA",
                format!("maxmind://{}", geoip_dir().display()),
            )
            .arg("--data-dir")
            .arg(&pulled)
            .arg("pull"),
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let manifest = run(oc_cmd(&s, &web)
        .arg("--data-dir")
        .arg(&pulled)
        .args(["index", "info"]));
    let m: serde_json::Value = serde_json::from_str(&manifest.stdout).unwrap();
    let shown = m["source"]["url"].as_str().unwrap_or_default().to_owned();
    assert!(shown.contains("***:***@") && shown.ends_with("#***"), "{m}");
    searched.add("index info (pulled)", &manifest.stdout, &manifest.stderr);

    // ivre-sync pull from an unreachable MongoDB, and from an unreachable web API: both
    // fail naming the redacted URL.
    for (what, url, expected) in [
        (
            "pull (MongoDB)",
            s.mongo_url(dead),
            "mongodb://***:***@127.0.0.1",
        ),
        (
            "pull (dead web API)",
            s.web_url(&dead_web),
            "http://***:***@127.0.0.1",
        ),
    ] {
        let r = searched.run(
            what,
            sync_cmd(&s, &web)
                .env("IVRE_DB_URL", &url)
                .env_remove("IVRE_DB_URL_SCANS")
                .env_remove("IVRE_DB_URL_PASSIVE")
                .arg("--data-dir")
                .arg(root.path().join("failed-pull"))
                .arg("pull"),
        );
        assert_ne!(r.code, 0, "{what}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(expected), "{what}: {}", r.stderr);
    }

    // ivre-connector lookup and enrich: the snapshot, then live IVRE for what it does not
    // know (passive from the web API, scans from the dead MongoDB: a failing source).
    for command in ["lookup", "enrich"] {
        let r = searched.run(
            command,
            oc_cmd(&s, &web).arg("--data-dir").arg(&data).args([
                command,
                "192.0.2.10",
                "198.18.7.7",
                "lab.example.com",
            ]),
        );
        assert_eq!(r.code, 0, "{command}: {}{}", r.stdout, r.stderr);
        assert_eq!(r.stdout.lines().count(), 3, "{command}: {}", r.stdout);
    }
    // (enrich asks live IVRE's web API, with the key header, about 198.18.7.7.)

    // ivre-connector index info / verify.
    for command in ["info", "verify"] {
        let r = searched.run(
            command,
            oc_cmd(&s, &web)
                .arg("--data-dir")
                .arg(&data)
                .args(["index", command]),
        );
        assert_eq!(r.code, 0, "index {command}: {}{}", r.stdout, r.stderr);
    }

    // ivre-connector demo.
    let r = searched.run(
        "demo",
        oc_cmd(&s, &web)
            .arg("demo")
            .arg("--keep")
            .arg(root.path().join("demo")),
    );
    assert_eq!(r.code, 0, "demo: {}{}", r.stdout, r.stderr);

    // ivre-connector health: nothing listens there.
    let r = searched.run(
        "health",
        oc_cmd(&s, &web)
            .env("CONNECTOR_METRICS_PORT", dead.to_string())
            .arg("health"),
    );
    assert_ne!(r.code, 0, "health: {}{}", r.stdout, r.stderr);

    // ivre-connector run against a platform that does not answer, 5 s.
    let r = searched.run_briefly(
        "run",
        oc_cmd(&s, &web)
            .env("CONNECTOR_METRICS_PORT", free_port().to_string())
            .env("IVRE_MAX_TLP", "TLP:AMBER")
            .env("OPENCTI_JSON_LOGGING", "false")
            .arg("--data-dir")
            .arg(&data)
            .arg("run"),
        5,
    );
    assert!(
        r.stderr.contains("http://***:***@127.0.0.1"),
        "run: the platform URL is not named: {}",
        r.stderr
    );

    // ivre-sync publish and fetch through a file:// store.
    let store = root.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let store_url = format!("file://{}", store.display());
    let r = searched.run(
        "publish",
        sync_cmd(&s, &web)
            .arg("--data-dir")
            .arg(&data)
            .args(["publish", "--to", &store_url]),
    );
    assert_eq!(r.code, 0, "publish: {}{}", r.stdout, r.stderr);
    let fetched = root.path().join("fetched");
    let r = searched.run(
        "fetch",
        sync_cmd(&s, &web)
            .arg("--data-dir")
            .arg(&fetched)
            .args(["fetch", "--from", &store_url]),
    );
    assert_eq!(r.code, 0, "fetch: {}{}", r.stdout, r.stderr);
    assert_eq!(current(&fetched), current(&data));

    // ivre-sync watch for 6 s: a good export, a bad one (error report), publishing.
    let drop_dir = root.path().join("drop");
    std::fs::create_dir(&drop_dir).unwrap();
    std::fs::copy(lab("ipinfo.jsonl"), drop_dir.join("good.jsonl")).unwrap();
    std::fs::write(drop_dir.join("bad.jsonl"), "{\"neither\": 1}\n").unwrap();
    let watched = root.path().join("watched");
    let r = searched.run_briefly(
        "watch",
        sync_cmd(&s, &web)
            .arg("--data-dir")
            .arg(&watched)
            .arg("watch")
            .arg("--drop-dir")
            .arg(&drop_dir)
            .args(["--publish", &store_url]),
        6,
    );
    assert!(drop_dir.join("done/good.jsonl").is_file(), "{}", r.stderr);
    assert!(
        drop_dir.join("failed/bad.jsonl.error.txt").is_file(),
        "{}",
        r.stderr
    );

    // Nothing anywhere holds a secret.
    let written = files(root.path());
    assert!(written.len() > 20, "{written:?}");
    let leaks = find_leaks(&s.all(), &searched.outputs, &written);
    // The search itself finds a secret: in an output, and in a file.
    let canary = root.path().join("canary.bin");
    std::fs::write(&canary, format!("\0x{}y", s.mongo_key_pass)).unwrap();
    let found = find_leaks(
        &s.all(),
        &[("canary".into(), format!("a {} b", s.web_key))],
        &[canary],
    );
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        leaks.is_empty(),
        "secrets written out:\n{}",
        leaks.join("\n")
    );
    eprintln!(
        "secrets: {} commands, {} files searched for {} secrets: none found",
        searched.outputs.len() / 2,
        written.len(),
        s.all().len()
    );
}
