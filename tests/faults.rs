//! Faults, with nothing lost (`docs/reliability/faults.md`): processes killed with SIGKILL
//! at random points, the broker stopped under load, the platform's GraphQL failing, the
//! IVRE web API failing, a full disk, malformed platform messages.
//!
//! Each test runs at a short scale here; `scripts/faults` runs the long versions through
//! the `IVRE_TEST_FAULTS_*` variables (`tests/util/faults.rs`).

use crate::daemon::{free_port, ipv4, manual, processed, started, wait_processed, Daemon, WAIT};
use crate::upkeep::{wait_health, web_url};
use crate::util::faults::{figures, scale, Rng};
use crate::util::*;
use opencti_double::{DoubleOptions, PlatformDouble};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// ------------------------------------------------------------------------------------------
// SIGKILL at random points
// ------------------------------------------------------------------------------------------

/// Observables whose answers must not change across kills (hosts, passive, names).
fn probes() -> Vec<String> {
    [
        "192.0.2.10",
        "192.0.2.11",
        "www.example.com",
        "example.com",
        "198.51.100.7",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// What the served generation answers, and `index verify` passes on it.
fn served_answers(data: &Path) -> Vec<Value> {
    let verify = run(connector()
        .arg("--data-dir")
        .arg(data)
        .args(["index", "verify"]));
    assert_eq!(
        verify.code, 0,
        "the served generation is intact: {}{}",
        verify.stdout, verify.stderr
    );
    lookup(data, &probes())
}

/// The three `ivre-sync` commands that build generations.
#[derive(Clone, Copy, Debug)]
enum Builder {
    Import,
    Pull,
    Watch,
}

struct Bench {
    _dir: tempfile::TempDir,
    data: PathBuf,
    drop: PathBuf,
    url: String,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let drop = dir.path().join("drop");
        std::fs::create_dir_all(&drop).unwrap();
        Bench {
            data,
            drop,
            url: web_url(),
            _dir: dir,
        }
    }

    /// The command of one build (for `Watch`, a file is dropped first).
    fn command(&self, builder: Builder, n: usize) -> Command {
        let mut cmd = sync();
        cmd.arg("--data-dir").arg(&self.data);
        match builder {
            Builder::Import => {
                cmd.args(["import", "--scans"])
                    .arg(lab("scancli.jsonl"))
                    .arg("--passive")
                    .arg(lab("ipinfo.jsonl"))
                    .arg("--geoip-dir")
                    .arg(geoip_dir());
            }
            Builder::Pull => {
                cmd.args(["pull", "--full"])
                    .env("IVRE_DB_URL", &self.url)
                    .env(
                        "IVRE_DB_URL_DATA",
                        format!("maxmind://{}", geoip_dir().display()),
                    );
            }
            Builder::Watch => {
                // The same scans again: replacing the kind gives the same answers.
                let staged = self.drop.join(format!(".scans-{n}.tmp"));
                std::fs::copy(lab("scancli.jsonl"), &staged).unwrap();
                std::fs::rename(&staged, self.drop.join(format!("scans-{n}.jsonl"))).unwrap();
                cmd.args(["watch", "--drop-dir"]).arg(&self.drop);
            }
        }
        let log = std::fs::File::create(self.log(n)).unwrap();
        cmd.stdout(Stdio::null()).stderr(log);
        cmd
    }

    fn log(&self, n: usize) -> PathBuf {
        self.drop.parent().unwrap().join(format!("run-{n}.log"))
    }

    /// Runs one build to its end (a watcher: until the drop folder is empty again).
    fn complete(&self, builder: Builder, n: usize) -> Duration {
        let mut command = self.command(builder, n); // builds ivre-sync on first use
        let started = Instant::now();
        let mut child = command.spawn().unwrap();
        match builder {
            Builder::Watch => {
                let deadline = Instant::now() + Duration::from_secs(60);
                while self.pending_drops() > 0 {
                    assert!(Instant::now() < deadline, "the watcher took no file");
                    if let Some(status) = child.try_wait().unwrap() {
                        panic!(
                            "the watcher stopped: {status}: {}",
                            std::fs::read_to_string(self.log(n)).unwrap_or_default()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let took = started.elapsed();
                child.kill().unwrap();
                child.wait().unwrap();
                let failed = self.drop.join("failed");
                let failures = std::fs::read_dir(&failed).map(|d| d.count()).unwrap_or(0);
                assert_eq!(failures, 0, "a dropped file failed: see {failed:?}");
                took
            }
            _ => {
                let status = child.wait().unwrap();
                assert!(
                    status.success(),
                    "{builder:?} after the kills: {status}: {}",
                    std::fs::read_to_string(self.log(n)).unwrap_or_default()
                );
                started.elapsed()
            }
        }
    }

    fn pending_drops(&self) -> usize {
        std::fs::read_dir(&self.drop)
            .unwrap()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .count()
    }
}

/// `ivre-sync import`, `pull` and `watch` killed with SIGKILL at random times within the
/// length of a build (seeded; `IVRE_TEST_FAULTS_KILLS` points, 6 here, 50 in
/// `scripts/faults`): after each kill the served generation verifies and answers as before,
/// and the next run of the same command succeeds.
#[test]
fn sync_killed_at_random_points_keeps_the_served_generation() {
    let _lab = ivre_lab_shared();
    let points = scale("KILLS", 6) as usize;
    let mut rng = Rng::from_env("sync kills");
    let bench = Bench::new();
    let started = Instant::now();
    // One complete build of each kind: the answers and the length of a build.
    let builders = [Builder::Import, Builder::Pull, Builder::Watch];
    let mut lengths = Vec::new();
    let mut expected = None;
    for (n, builder) in builders.iter().enumerate() {
        lengths.push(bench.complete(*builder, n));
        let answers = served_answers(&bench.data);
        if let Some(first) = &expected {
            assert_eq!(&answers, first, "{builder:?} answers as the others");
        }
        expected = Some(answers);
    }
    let expected = expected.unwrap();
    let mut during = 0;
    for point in 0..points {
        let builder = builders[point % builders.len()];
        let length = lengths[point % builders.len()];
        let before = current(&bench.data);
        let after = rng.below(length.mul_f64(1.1));
        let mut child = bench.command(builder, 100 + point).spawn().unwrap();
        std::thread::sleep(after);
        if child.try_wait().unwrap().is_none() {
            during += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let now = current(&bench.data);
        assert_eq!(
            served_answers(&bench.data),
            expected,
            "point {point}: {builder:?} killed after {after:?} (served {before} → {now})"
        );
        // The next run of the same command succeeds and answers the same.
        bench.complete(builder, 200 + point);
        assert_eq!(
            served_answers(&bench.data),
            expected,
            "point {point}: next run"
        );
    }
    assert!(during > 0, "no kill landed while a build was running");
    figures(
        "sync_killed_at_random_points_keeps_the_served_generation",
        &format!(
            "{points} SIGKILLs ({during} while running) over import/pull/watch, build lengths {lengths:?}, 0 served generations damaged, {:.0?}",
            started.elapsed()
        ),
    );
}

/// The daemon's own sync (a pull at start, then every second) killed with SIGKILL at random
/// times: the served generation verifies and answers as before, and the next daemon serves
/// and pulls again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_sync_killed_at_random_points_keeps_the_served_generation() {
    let _lab = ivre_lab_shared();
    let points = scale("DAEMON_KILLS", 3) as usize;
    let mut rng = Rng::from_env("daemon kills");
    let bench = Bench::new();
    let started_at = Instant::now();
    bench.complete(Builder::Pull, 0);
    let expected = served_answers(&bench.data);
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let geo = format!("maxmind://{}", geoip_dir().display());
    // A daemon pulling at start, then every second (fully), on its own health port.
    let start = |port: &str| {
        let env = [
            ("IVRE_DB_URL", bench.url.as_str()),
            ("IVRE_DB_URL_DATA", geo.as_str()),
            ("IVRE_SYNC_INTERVAL", "1"),
            ("IVRE_SYNC_FULL_INTERVAL", "1"),
            ("CONNECTOR_METRICS_PORT", port),
        ];
        Daemon::start(&double, &bench.data, &env)
    };
    // How long the daemon takes to start and publish its first pull.
    let port = free_port().to_string();
    let t0 = Instant::now();
    let first = current(&bench.data);
    let daemon = start(&port);
    wait_health(&port, "the daemon's first pull", |h| {
        h["sync"]["pull"]["ok"] == true && h["snapshot"]["generation"] != first.as_str()
    })
    .await;
    let length = t0.elapsed();
    drop(daemon);
    for point in 0..points {
        let after = rng.below(length.mul_f64(2.0));
        let daemon = start(&free_port().to_string());
        tokio::time::sleep(after).await;
        drop(daemon); // SIGKILL
        assert_eq!(
            served_answers(&bench.data),
            expected,
            "point {point}: daemon killed after {after:?}"
        );
    }
    // The next daemon serves the generation and publishes a new pull.
    let port = free_port().to_string();
    let before = current(&bench.data);
    let daemon = start(&port);
    started(&double).await;
    wait_health(&port, "a pull after the kills", |h| {
        h["sync"]["pull"]["ok"] == true && h["snapshot"]["generation"] != before.as_str()
    })
    .await;
    drop(daemon);
    assert_eq!(served_answers(&bench.data), expected);
    figures(
        "daemon_sync_killed_at_random_points_keeps_the_served_generation",
        &format!(
            "{points} SIGKILLs of the daemon within {:.1?} of its start (a pull takes {length:.1?}), 0 served generations damaged, {:.0?}",
            length.mul_f64(2.0),
            started_at.elapsed()
        ),
    );
}

// ------------------------------------------------------------------------------------------
// Malformed platform messages
// ------------------------------------------------------------------------------------------

/// A message with work `work` whose event is `event` (any JSON).
fn with_event(work: &str, event: Value) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"internal": {"work_id": work, "applicant_id": null}, "event": event}),
    )
    .unwrap()
}

/// A manual enrichment message for an entity given as STIX JSON (any value).
fn with_entity(work: &str, entity: Value, entity_type: &str) -> Vec<u8> {
    let id = entity
        .get("id")
        .cloned()
        .unwrap_or_else(|| json!("ipv4-addr--00000000-0000-5000-8000-000000000000"));
    with_event(
        work,
        json!({"event_type": "INTERNAL_ENRICHMENT", "entity_id": id, "entity_type": entity_type,
               "stix_entity": entity.to_string(), "stix_objects": null}),
    )
}

fn stix(kind: &str, value: Value) -> Value {
    json!({"id": format!("{kind}--6f4a5e3c-2b1d-5c8e-9a7f-0e1d2c3b4a59"), "type": kind,
           "spec_version": "2.1", "value": value})
}

/// The malformed messages: (name, body, whether the body names its work). Those that name
/// no work (not JSON, or no usable `internal.work_id`) can only be counted.
fn malformed_messages() -> Vec<(&'static str, Vec<u8>, bool)> {
    let w = |name: &str| format!("work_bad_{name}");
    let mut out: Vec<(&'static str, Vec<u8>, bool)> = Vec::new();
    let mut named = |name: &'static str, body: Vec<u8>| out.push((name, body, true));
    named(
        "event_a_string",
        with_event(&w("event_a_string"), json!("x")),
    );
    named(
        "event_an_array",
        with_event(&w("event_an_array"), json!([1, 2])),
    );
    named(
        "entity_id_a_number",
        with_event(&w("entity_id_a_number"), json!({"entity_id": 42})),
    );
    named(
        "entity_type_an_object",
        with_event(
            &w("entity_type_an_object"),
            json!({"entity_id": "x", "entity_type": {}}),
        ),
    );
    named(
        "stix_entity_broken_json",
        with_event(
            &w("stix_entity_broken_json"),
            json!({"entity_id": "x", "stix_entity": "{\"type\": "}),
        ),
    );
    named(
        "stix_objects_broken_json",
        with_event(
            &w("stix_objects_broken_json"),
            json!({"entity_id": "x", "stix_objects": "[{"}),
        ),
    );
    named(
        "bundle_broken_json",
        with_event(
            &w("bundle_broken_json"),
            json!({"entity_id": "x", "bundle": "{"}),
        ),
    );
    named(
        "stix_entity_a_number",
        with_event(
            &w("stix_entity_a_number"),
            json!({"entity_id": "x", "entity_type": "IPv4-Addr", "stix_entity": 42}),
        ),
    );
    named(
        "stix_entity_json_array",
        with_event(
            &w("stix_entity_json_array"),
            json!({"entity_id": "x", "entity_type": "IPv4-Addr", "stix_entity": "[1]"}),
        ),
    );
    named(
        "no_entity_id",
        with_event(
            &w("no_entity_id"),
            json!({"entity_type": "IPv4-Addr", "stix_entity": stix("ipv4-addr", json!("192.0.2.10")).to_string()}),
        ),
    );
    named(
        "no_event",
        serde_json::to_vec(&json!({"internal": {"work_id": w("no_event")}})).unwrap(),
    );
    named(
        "entity_unknown_to_platform",
        with_event(
            &w("entity_unknown_to_platform"),
            json!({"entity_id": "ipv4-addr--11111111-1111-5111-8111-111111111111"}),
        ),
    );
    named(
        "unknown_entity_type",
        with_entity(
            &w("unknown_entity_type"),
            json!({"id": "malware--6f4a5e3c-2b1d-5c8e-9a7f-0e1d2c3b4a59", "type": "malware", "name": "x"}),
            "Malware",
        ),
    );
    named(
        "made_up_entity_type",
        with_entity(
            &w("made_up_entity_type"),
            stix("x-made-up", json!("192.0.2.10")),
            "X-Made-Up",
        ),
    );
    named(
        "no_type_anywhere",
        with_event(
            &w("no_type_anywhere"),
            json!({"entity_id": "x", "stix_entity": "{\"value\": \"192.0.2.10\"}"}),
        ),
    );
    named(
        "ipv4_no_value",
        with_entity(
            &w("ipv4_no_value"),
            json!({"id": "ipv4-addr--6f4a5e3c-2b1d-5c8e-9a7f-0e1d2c3b4a59", "type": "ipv4-addr"}),
            "IPv4-Addr",
        ),
    );
    named(
        "ipv4_value_a_number",
        with_entity(
            &w("ipv4_value_a_number"),
            stix("ipv4-addr", json!(3221225994u32)),
            "IPv4-Addr",
        ),
    );
    named(
        "ipv4_value_null",
        with_entity(
            &w("ipv4_value_null"),
            stix("ipv4-addr", Value::Null),
            "IPv4-Addr",
        ),
    );
    named(
        "ipv4_out_of_range",
        with_entity(
            &w("ipv4_out_of_range"),
            stix("ipv4-addr", json!("192.0.2.256")),
            "IPv4-Addr",
        ),
    );
    named(
        "ipv4_huge_value",
        with_entity(
            &w("ipv4_huge_value"),
            stix("ipv4-addr", json!("1".repeat(1 << 20))),
            "IPv4-Addr",
        ),
    );
    named(
        "ipv6_invalid",
        with_entity(
            &w("ipv6_invalid"),
            stix("ipv6-addr", json!("2001:db8::1::2")),
            "IPv6-Addr",
        ),
    );
    named(
        "domain_with_nul",
        with_entity(
            &w("domain_with_nul"),
            stix("domain-name", json!("www.exam\u{0}ple.com")),
            "Domain-Name",
        ),
    );
    named(
        "domain_too_long",
        with_entity(
            &w("domain_too_long"),
            stix("domain-name", json!(format!("{}.com", "a".repeat(300)))),
            "Domain-Name",
        ),
    );
    named(
        "domain_empty",
        with_entity(
            &w("domain_empty"),
            stix("domain-name", json!("")),
            "Domain-Name",
        ),
    );
    named(
        "mac_invalid",
        with_entity(
            &w("mac_invalid"),
            stix("mac-addr", json!("zz:zz:zz:zz:zz:zz")),
            "Mac-Addr",
        ),
    );
    named(
        "autonomous_system_a_string",
        with_entity(
            &w("autonomous_system_a_string"),
            json!({"id": "autonomous-system--6f4a5e3c-2b1d-5c8e-9a7f-0e1d2c3b4a59", "type": "autonomous-system", "number": "many"}),
            "Autonomous-System",
        ),
    );
    named(
        "huge_entity_id",
        with_event(
            &w("huge_entity_id"),
            json!({"entity_id": "x".repeat(1 << 20)}),
        ),
    );
    named(
        "markings_a_string",
        with_entity(
            &w("markings_a_string"),
            json!({"id": "ipv4-addr--6f4a5e3c-2b1d-5c8e-9a7f-0e1d2c3b4a59", "type": "ipv4-addr", "value": "192.0.2.10", "object_marking_refs": "marking-definition--x"}),
            "IPv4-Addr",
        ),
    );
    named(
        "markings_numbers",
        with_entity(
            &w("markings_numbers"),
            json!({"id": "ipv4-addr--6f4a5e3c-2b1d-5c8e-9a7f-0e1d2c3b4a59", "type": "ipv4-addr", "value": "192.0.2.10", "object_marking_refs": [1, 2]}),
            "IPv4-Addr",
        ),
    );
    named("draft_id_a_number", serde_json::to_vec(&json!({"internal": {"work_id": w("draft_id_a_number"), "draft_id": 7}, "event": {"entity_id": "x"}})).unwrap());
    named("playbook_a_string", serde_json::to_vec(&json!({"internal": {"work_id": w("playbook_a_string"), "playbook": "step"}, "event": {"entity_id": "x"}})).unwrap());
    named("duplicate_keys", format!(r#"{{"internal": {{"work_id": "{}", "work_id": "{}"}}, "event": {{"entity_id": "x"}}}}"#, w("duplicate_keys"), w("duplicate_keys")).into_bytes());
    let mut unnamed = |name: &'static str, body: Vec<u8>| out.push((name, body, false));
    unnamed("not_json", b"{not json".to_vec());
    unnamed("empty_body", Vec::new());
    unnamed("json_array", b"[1, 2, 3]".to_vec());
    unnamed("json_null", b"null".to_vec());
    unnamed(
        "invalid_utf8",
        b"{\"internal\": {\"work_id\": \"\xff\xfe\"}}".to_vec(),
    );
    unnamed(
        "truncated",
        with_event("work_bad_truncated", json!({"entity_id": "x"}))[..20].to_vec(),
    );
    unnamed(
        "nested_too_deep",
        format!(
            "{{\"internal\": {{\"work_id\": \"w\"}}, \"x\": {}{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        )
        .into_bytes(),
    );
    unnamed(
        "number_out_of_range",
        br#"{"internal": {"work_id": "w"}, "event": {"entity_id": 1e400}}"#.to_vec(),
    );
    unnamed(
        "lone_surrogate",
        br#"{"internal": {"work_id": "\ud800"}, "event": {}}"#.to_vec(),
    );
    unnamed(
        "work_id_a_number",
        br#"{"internal": {"work_id": 12}, "event": {"entity_id": "x"}}"#.to_vec(),
    );
    unnamed(
        "internal_a_string",
        br#"{"internal": "w", "event": {"entity_id": "x"}}"#.to_vec(),
    );
    out
}

/// The daemon's `messages_total{result=…}`.
async fn messages_total(port: &str, result: &str) -> u64 {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("messages_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// Over 40 kinds of malformed platform messages: each is acknowledged (nothing stays in
/// the queue), reported to its work in error when it names one (counted as invalid when it
/// cannot), and the daemon keeps serving: a valid message afterwards is enriched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_platform_messages_are_acknowledged_and_reported() {
    let started_at = Instant::now();
    let data = lab_snapshot();
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let port = free_port().to_string();
    let daemon = Daemon::start(
        &double,
        data.path(),
        &[
            ("CONNECTOR_METRICS_PORT", &port),
            ("CONNECTOR_EXPOSE_METRICS", "true"),
        ],
    );
    started(&double).await;
    let messages = malformed_messages();
    let kinds = messages.len();
    assert!(kinds >= 30, "{kinds} kinds");
    for (_, body, _) in &messages {
        double.publish_raw(body).await;
    }
    let entity = ipv4("192.0.2.10", &[]);
    double.add_entity(entity.clone(), &[]);
    double.publish(&manual(&entity, "work_valid_after")).await;
    let done = processed(&double, "work_valid_after").await;
    assert_eq!(done.variables["inError"], false, "{}", done.variables);
    assert!(!double
        .pushed_for_work("work_valid_after", WAIT)
        .await
        .is_empty());
    let mut reported = 0;
    for (name, _, names_work) in &messages {
        if !names_work {
            continue;
        }
        let work = format!("work_bad_{name}");
        let call = wait_processed(&double, &work).await.unwrap_or_else(|| {
            panic!(
                "{name}: no toProcessed for {work}; daemon logs:\n{}",
                daemon.logs().join("\n")
            )
        });
        assert_eq!(
            call.variables["inError"], true,
            "{name}: {}",
            call.variables
        );
        assert!(
            double
                .pushed_for_work(&work, Duration::from_millis(200))
                .await
                .is_empty(),
            "{name}: nothing pushed"
        );
        reported += 1;
    }
    let unnamed = (kinds - reported) as u64;
    let deadline = Instant::now() + WAIT;
    while messages_total(&port, "invalid").await < unnamed && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(messages_total(&port, "invalid").await >= unnamed);
    // Every message acknowledged: the listen queue is empty.
    let listen = double.names().listen;
    let deadline = Instant::now() + WAIT;
    loop {
        let (ready, _) = double.queue_state(&listen).await.unwrap();
        if ready == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{ready} messages left in the queue"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logs = daemon.logs().join("\n");
    assert!(!logs.contains("panicked"), "{logs}");
    drop(daemon);
    figures(
        "malformed_platform_messages_are_acknowledged_and_reported",
        &format!(
            "{kinds} kinds of malformed messages, {reported} reported to their work, {unnamed} without a work counted as invalid, 0 left in the queue, a valid message enriched after them, {:.1?}",
            started_at.elapsed()
        ),
    );
}

// ------------------------------------------------------------------------------------------
// Disk full
// ------------------------------------------------------------------------------------------

/// A tmpfs of `size` mounted on a temporary directory, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `Err` with the reason when this machine cannot mount one (not root, no tmpfs).
    fn mount(size: &str) -> Result<SmallDisk, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Fills the file system of `dir` (a file `filler` of every free byte but `leave`).
fn fill(dir: &Path, leave: u64) -> PathBuf {
    use std::io::Write;
    let filler = dir.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        let free = free_bytes(dir);
        if free <= leave {
            break;
        }
        let n = usize::try_from((free - leave).min(chunk.len() as u64)).unwrap();
        if file.write_all(&chunk[..n]).is_err() {
            break;
        }
    }
    let _ = file.sync_all();
    filler
}

fn free_bytes(dir: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

/// The data directory on a small tmpfs that fills up while a generation is built: the
/// build fails cleanly (an error naming the file, no panic), the served generation stays
/// and answers as before, and the next build succeeds once space is back. Tried with a few
/// amounts of space left (the failure lands in different files).
#[test]
fn a_full_disk_fails_the_build_and_keeps_the_served_generation() {
    let disk = match SmallDisk::mount("16m") {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!(
                "SKIPPED a_full_disk_fails_the_build_and_keeps_the_served_generation: cannot mount a tmpfs here ({why}); run as root"
            );
            return;
        }
    };
    let started_at = Instant::now();
    let data = disk.path().join("data");
    let build = |expect: Option<i32>| {
        let r = run(sync()
            .arg("--data-dir")
            .arg(&data)
            .args(["import", "--scans"])
            .arg(lab("scancli.jsonl"))
            .arg("--passive")
            .arg(lab("ipinfo.jsonl"))
            .arg("--geoip-dir")
            .arg(geoip_dir()));
        if let Some(code) = expect {
            assert_eq!(r.code, code, "{}", r.stderr);
        }
        r
    };
    build(Some(0));
    let expected = served_answers(&data);
    let mut failed = 0;
    let leaves = [0u64, 4 << 10, 32 << 10, 128 << 10];
    for leave in leaves {
        let served = current(&data);
        let filler = fill(disk.path(), leave);
        let r = build(None);
        if r.code != 0 {
            failed += 1;
            assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
            assert!(
                r.stderr.contains("No space left on device"),
                "a clear error: {}",
                r.stderr
            );
            assert_eq!(
                current(&data),
                served,
                "the served generation stays ({leave} bytes left): {}",
                r.stderr
            );
        }
        // Whatever happened, what is served verifies and answers as before.
        std::fs::remove_file(&filler).unwrap();
        let now = current(&data);
        assert_eq!(served_answers(&data), expected, "{leave} bytes left");
        // Space back: the next build succeeds.
        build(Some(0));
        assert_ne!(current(&data), now);
        assert_eq!(served_answers(&data), expected);
    }
    assert!(failed > 0, "no build failed on a full disk");
    figures(
        "a_full_disk_fails_the_build_and_keeps_the_served_generation",
        &format!(
            "tmpfs of 16 MiB filled to {leaves:?} bytes free: {failed} of {} builds failed with ENOSPC, served generation kept, every next build succeeded, {:.1?}",
            leaves.len(),
            started_at.elapsed()
        ),
    );
}

// ------------------------------------------------------------------------------------------
// The platform's GraphQL down
// ------------------------------------------------------------------------------------------

/// The platform's GraphQL answers 500, 502, 503 and 429 for `IVRE_TEST_FAULTS_OUTAGE_SECS`
/// seconds (6 here, 60 in `scripts/faults`), then slowly (2 s a request) for a while, while
/// messages arrive: every message ends processed without error once the platform is back
/// (requeued meanwhile, never acknowledged unprocessed), its bundle pushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_down_requeues_and_loses_nothing() {
    use opencti_double::faults::PlatformFault;
    let outage = Duration::from_secs(scale("OUTAGE_SECS", 6));
    let count = scale("OUTAGE_MESSAGES", 12) as usize;
    let started_at = Instant::now();
    let data = lab_snapshot();
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let daemon = Daemon::start(
        &double,
        data.path(),
        &[
            ("CONNECTOR_CONCURRENCY", "4"),
            ("CONNECTOR_LOG_LEVEL", "info"),
        ],
    );
    started(&double).await;
    let entity = ipv4("192.0.2.10", &[]);
    double.add_entity(entity.clone(), &[]);
    double.set_fault(Some(PlatformFault::Status(500)));
    for i in 0..count {
        double
            .publish(&manual(&entity, &format!("work_outage_{i}")))
            .await;
    }
    let statuses = [500, 502, 503, 429];
    let step = outage / statuses.len() as u32;
    for status in statuses {
        double.set_fault(Some(PlatformFault::Status(status)));
        tokio::time::sleep(step).await;
    }
    double.set_fault(Some(PlatformFault::Slow(Duration::from_secs(2))));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let failed_requests = double.fault_hits();
    double.set_fault(None);
    for i in 0..count {
        let work = format!("work_outage_{i}");
        let done = processed(&double, &work).await;
        assert_eq!(
            done.variables["inError"], false,
            "{work}: {}",
            done.variables
        );
        assert!(
            !double.pushed_for_work(&work, WAIT).await.is_empty(),
            "{work}: pushed"
        );
        let ends = double
            .calls_of("workEdit")
            .into_iter()
            .filter(|c| {
                c.work_op.as_deref() == Some("toProcessed") && c.variables["id"] == work.as_str()
            })
            .count();
        assert_eq!(ends, 1, "{work} ended once");
    }
    let listen = double.names().listen;
    assert_eq!(double.queue_state(&listen).await.unwrap().0, 0);
    let logs = daemon.logs();
    assert!(
        logs.iter().any(|l| l.contains("requeued")),
        "requeued meanwhile"
    );
    drop(daemon);
    figures(
        "graphql_down_requeues_and_loses_nothing",
        &format!(
            "GraphQL down {outage:?} (500/502/503/429) then slow 4 s, {count} messages, {failed_requests} requests failed or slowed, 0 lost, 0 ended in error, {:.1?}",
            started_at.elapsed()
        ),
    );
}

// ------------------------------------------------------------------------------------------
// RabbitMQ stopped and restarted under load
// ------------------------------------------------------------------------------------------

/// A private RabbitMQ node (`scripts/lib/private-rabbitmq`), stopped when dropped.
struct PrivateBroker {
    vars: std::collections::HashMap<String, String>,
}

impl PrivateBroker {
    fn start() -> PrivateBroker {
        let name = format!("faults-{}", std::process::id());
        let out = Command::new("bash")
            .arg(repo().join("scripts/lib/private-rabbitmq"))
            .arg(&name)
            .output()
            .expect("scripts/lib/private-rabbitmq");
        assert!(
            out.status.success(),
            "cannot start a private RabbitMQ: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let vars = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        PrivateBroker { vars }
    }

    fn url(&self) -> String {
        self.vars["IVRE_TEST_AMQP_URL"].clone()
    }

    fn ctl(&self, args: &[&str]) -> bool {
        Command::new(&self.vars["IVRE_TEST_RABBITMQCTL"])
            .arg("-n")
            .arg(&self.vars["IVRE_TEST_RABBITMQ_NODE"])
            .args(args)
            .env("HOME", &self.vars["IVRE_TEST_RABBITMQ_HOME"])
            .env("ERL_EPMD_PORT", &self.vars["IVRE_TEST_RABBITMQ_EPMD_PORT"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.ctl(&["stop"]);
    }
}

/// Messages in a queue of `url` (a fresh connection: the double's died with the broker).
async fn ready_in(url: &str, queue: &str) -> u32 {
    use lapin::options::QueueDeclareOptions;
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let q = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    let _ = conn.close(200, "bye".into()).await;
    q.message_count()
}

/// `IVRE_TEST_FAULTS_BROKER_MESSAGES` messages (1,000 here, 10,000 in `scripts/faults`) in
/// the listen queue; the broker (a private node) is stopped and started again
/// `IVRE_TEST_FAULTS_BROKER_RESTARTS` times (1 here, 2 in `scripts/faults`) while the
/// daemon works through them: every work ends (processed, or reported in error), none is
/// lost; a work is done twice only when its message was unacknowledged at a stop (at most
/// `CONNECTOR_CONCURRENCY` per stop), and what is pushed is at least one bundle per work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restarts_under_load_lose_nothing() {
    const CONCURRENCY: usize = 8;
    let count = scale("BROKER_MESSAGES", 1000) as usize;
    let restarts = scale("BROKER_RESTARTS", 1) as usize;
    let started_at = Instant::now();
    let broker = PrivateBroker::start();
    let url = broker.url();
    let data = lab_snapshot();
    let double = PlatformDouble::start(DoubleOptions {
        amqp_url: Some(url.clone()),
        ..Default::default()
    })
    .await;
    let entity = ipv4("192.0.2.10", &[]);
    double.add_entity(entity.clone(), &[]);
    let work = |i: usize| format!("work_broker_{i:05}");
    for i in 0..count {
        double.publish(&manual(&entity, &work(i))).await;
    }
    let concurrency = CONCURRENCY.to_string();
    let daemon = Daemon::start(
        &double,
        data.path(),
        &[("CONNECTOR_CONCURRENCY", &concurrency)],
    );
    started(&double).await;
    let ended = |double: &PlatformDouble| {
        double
            .calls_of("workEdit")
            .into_iter()
            .filter(|c| c.work_op.as_deref() == Some("toProcessed"))
            .filter_map(|c| c.variables["id"].as_str().map(str::to_owned))
            .collect::<std::collections::HashSet<_>>()
            .len()
    };
    // Stop the broker at evenly spaced points of the load, for 3 s each.
    for stop in 1..=restarts {
        let at = count * stop / (restarts + 1);
        let deadline = Instant::now() + Duration::from_secs(600);
        while ended(&double) < at {
            assert!(
                Instant::now() < deadline,
                "stuck at {} works",
                ended(&double)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(broker.ctl(&["stop_app"]), "rabbitmqctl stop_app");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(broker.ctl(&["start_app"]), "rabbitmqctl start_app");
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while ended(&double) < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} works ended",
            ended(&double)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every work ended; count redone ones and errors.
    let calls = double.calls_of("workEdit");
    let mut received = std::collections::HashMap::<String, usize>::new();
    let mut in_error = 0;
    for c in &calls {
        let id = c.variables["id"].as_str().unwrap_or_default().to_owned();
        match c.work_op.as_deref() {
            Some("toReceived") => *received.entry(id).or_default() += 1,
            Some("toProcessed") if c.variables["inError"] == true => in_error += 1,
            _ => {}
        }
    }
    for i in 0..count {
        assert!(
            received.contains_key(&work(i)),
            "{} never received",
            work(i)
        );
    }
    let redone = received.values().filter(|n| **n > 1).count();
    assert!(
        redone <= CONCURRENCY * restarts,
        "{redone} works done twice, more than the unacknowledged messages at {restarts} stops"
    );
    let names = double.names();
    let pushed = ready_in(&url, &names.push).await as usize;
    assert!(pushed >= count, "{pushed} pushed bundles for {count} works");
    assert_eq!(
        ready_in(&url, &names.listen).await,
        0,
        "listen queue drained"
    );
    drop(daemon);
    figures(
        "broker_restarts_under_load_lose_nothing",
        &format!(
            "{count} messages, broker stopped {restarts}x for 3 s, 0 lost, {in_error} reported in error, {redone} redone after redelivery, {pushed} pushed messages, {:.0?}",
            started_at.elapsed()
        ),
    );
}

// ------------------------------------------------------------------------------------------
// The IVRE web API failing
// ------------------------------------------------------------------------------------------

/// The live fallback through a proxy in front of the real IVRE web API that goes down
/// (503), slow (10 s), rate-limited (429) or truncated: every lookup answers within the
/// deadline, never keeps a partial answer, the breaker opens after the threshold and
/// closes again once IVRE answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ivre_web_faults_answer_in_time_and_the_breaker_recovers() {
    use crate::util::web_faults::{WebFault, WebFaultProxy};
    use ivre_connector::enrich::EnrichOptions;
    use ivre_connector::live::fallback::{Fallback, FallbackError, FallbackSettings};
    use ivre_connector::observable::Observable;
    let _lab = ivre_lab_shared();
    let started_at = Instant::now();
    let proxy = WebFaultProxy::start(&web_url()).await;
    let timeout = Duration::from_secs(2);
    let in_time = timeout + Duration::from_millis(700);
    let settings = FallbackSettings {
        enabled: true,
        scans_url: Some(proxy.url().to_owned()),
        passive_url: Some(proxy.url().to_owned()),
        timeout,
        breaker_threshold: 2,
        breaker_cooldown: Duration::from_secs(2),
        ..Default::default()
    };
    let observable = Observable::parse("192.0.2.10").unwrap();
    let options = EnrichOptions::default();
    let mut lookups = 0;
    // Each fault on a fresh fallback (no overlay, breaker closed).
    for fault in [
        WebFault::Down,
        WebFault::Slow(Duration::from_secs(10)),
        WebFault::RateLimited,
        WebFault::Truncated,
    ] {
        proxy.set(fault);
        let fallback = Fallback::new(settings.clone(), None);
        for _ in 0..2 {
            let t = Instant::now();
            let answer = fallback.lookup(&observable, &options).await;
            lookups += 1;
            assert!(
                t.elapsed() < in_time,
                "{fault:?}: answered in {:?}",
                t.elapsed()
            );
            match answer {
                Err(FallbackError::Failed(_) | FallbackError::Timeout(_)) => {}
                Ok(answer) => assert!(
                    !answer.is_complete()
                        && answer.records.passive.is_empty()
                        && answer.records.scans.is_empty(),
                    "{fault:?}: nothing of a failed answer is used: {:?}",
                    answer.failures
                ),
                Err(e) => panic!("{fault:?}: {e}"),
            }
        }
    }
    // The breaker: opens after two failures, answers at once while open, closes after
    // the cooldown once IVRE answers again.
    proxy.set(WebFault::Down);
    let fallback = Fallback::new(settings.clone(), None);
    for _ in 0..2 {
        assert!(fallback.lookup(&observable, &options).await.is_err());
    }
    let t = Instant::now();
    assert!(matches!(
        fallback.lookup(&observable, &options).await,
        Err(FallbackError::BreakerOpen(_))
    ));
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "no network while open"
    );
    proxy.set(WebFault::Pass);
    let recovered = Instant::now();
    let answer = loop {
        match fallback.lookup(&observable, &options).await {
            Ok(answer) => break answer,
            Err(FallbackError::BreakerOpen(_)) => {
                assert!(
                    recovered.elapsed() < Duration::from_secs(10),
                    "the breaker stays open"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("IVRE is back: {e}"),
        }
    };
    assert!(answer.is_complete(), "{:?}", answer.failures);
    assert_eq!(answer.records.scans.len(), 2, "IVRE's answer once back");
    let faults = proxy.faults();
    figures(
        "ivre_web_faults_answer_in_time_and_the_breaker_recovers",
        &format!(
            "{lookups} lookups under 4 faults (503, 10 s slow, 429, truncated) + breaker cycle: {faults} faulty answers injected, every lookup answered within {in_time:?}, 0 partial answers kept, breaker recovered in {:.1?}, {:.1?}",
            recovered.elapsed(),
            started_at.elapsed()
        ),
    );
}
