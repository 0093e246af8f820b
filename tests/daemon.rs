//! `ivre-connector run` against the OpenCTI platform double on the real RabbitMQ: the
//! conformance checklist of `docs/opencti-protocol.md` (section C, items cited as §C<n>).

use crate::util::*;
use opencti_double::{DoubleOptions, GraphqlCall, PlatformDouble, Reject};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) const WAIT: Duration = Duration::from_secs(20);
const AMBER: &str = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82";
const GREEN: &str = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da";
const RED: &str = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed";

/// A running daemon; killed when dropped. Its stderr is collected.
pub(crate) struct Daemon {
    pub(crate) child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    pub(crate) fn start(
        double: &PlatformDouble,
        data: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Daemon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ivre-connector"));
        cmd.arg("--data-dir")
            .arg(data)
            .arg("run")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("OPENCTI_URL", format!("{}/", double.url()))
            .env("OPENCTI_TOKEN", double.token())
            .env("CONNECTOR_ID", double.connector_id())
            .env("CONNECTOR_NAME", "IVRE")
            .env("CONNECTOR_LOG_LEVEL", "info")
            .env("IVRE_MAX_TLP", "TLP:AMBER")
            .env("CONNECTOR_PING_INTERVAL", "1")
            .env("CONNECTOR_RECONNECT_DELAY", "1")
            // Each daemon its own health port (the health server always listens).
            .env("CONNECTOR_METRICS_PORT", free_port().to_string())
            // A data directory the daemon creates itself: run in its parent.
            .current_dir(if data.is_dir() {
                data
            } else {
                data.parent().expect("a parent")
            })
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn the daemon");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Daemon { child, logs }
    }

    pub(crate) fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    #[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; its exit code.
    pub(crate) fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn ipv4(value: &str, markings: &[&str]) -> Value {
    let id = ivre_connector::stix::ids::generate("ipv4-addr", &json!({"value": value}));
    json!({"id": id, "type": "ipv4-addr", "spec_version": "2.1", "value": value, "object_marking_refs": markings})
}

/// Message §4.3 (a): manual enrichment, 6.8+.
pub(crate) fn manual(entity: &Value, work_id: &str) -> Value {
    json!({"internal": {"work_id": work_id, "applicant_id": null, "draft_id": null, "mode": "manual", "trigger": "update"},
           "event": {"event_type": "INTERNAL_ENRICHMENT", "entity_id": entity["id"], "entity_type": "IPv4-Addr",
                     "stix_entity": entity.to_string(), "stix_objects": null}})
}

fn tlp_names(markings: &[&str]) -> Vec<&'static str> {
    markings
        .iter()
        .map(|m| match *m {
            AMBER => "TLP:AMBER",
            GREEN => "TLP:GREEN",
            RED => "TLP:RED",
            _ => "TLP:CLEAR",
        })
        .collect()
}

/// A snapshot, a platform double and a daemon connected to it (registered and pinging).
async fn running(
    options: DoubleOptions,
    env: &[(&str, &str)],
) -> (tempfile::TempDir, PlatformDouble, Daemon) {
    let data = lab_snapshot();
    let double = PlatformDouble::start(options).await;
    let daemon = Daemon::start(&double, data.path(), env);
    started(&double).await;
    (data, double, daemon)
}

pub(crate) async fn started(double: &PlatformDouble) -> GraphqlCall {
    double
        .wait_for(|c| c.field == "pingConnector", WAIT)
        .await
        .expect("the daemon registers and pings")
}

fn work_calls(double: &PlatformDouble, work: &str) -> Vec<GraphqlCall> {
    double
        .calls()
        .into_iter()
        .filter(|c| c.field == "workEdit" && c.variables["id"] == work)
        .collect()
}

pub(crate) async fn processed(double: &PlatformDouble, work: &str) -> GraphqlCall {
    wait_processed(double, work)
        .await
        .unwrap_or_else(|| panic!("no toProcessed for {work}"))
}

/// The `toProcessed` call of `work`, if it comes within [`WAIT`].
pub(crate) async fn wait_processed(double: &PlatformDouble, work: &str) -> Option<GraphqlCall> {
    let w = work.to_owned();
    double
        .wait_for(
            move |c| {
                c.field == "workEdit"
                    && c.work_op.as_deref() == Some("toProcessed")
                    && c.variables["id"] == w.as_str()
            },
            WAIT,
        )
        .await
}

fn header<'a>(call: &'a GraphqlCall, name: &str) -> Option<&'a str> {
    call.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// §C1, §C2, §C3, §C5, §C23: registration and pings, as the advertised version allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_with_the_fields_the_platform_knows_and_pings() {
    let data = lab_snapshot();
    for version in ["6.4.11", "7.261026.0"] {
        let double = PlatformDouble::start(DoubleOptions {
            version: version.into(),
            ..Default::default()
        })
        .await;
        let daemon = Daemon::start(&double, data.path(), &[("OPENCTI_JSON_LOGGING", "true")]);
        started(&double).await;
        let register = double
            .calls()
            .into_iter()
            .find(|c| c.field == "registerConnector")
            .unwrap();
        assert_eq!(
            register.path, "/graphql",
            "no double slash from the trailing / of OPENCTI_URL"
        );
        assert_eq!(
            header(&register, "authorization"),
            Some(format!("Bearer {}", double.token()).as_str())
        );
        assert!(header(&register, "user-agent").is_some());
        let input = &register.variables["input"];
        assert_eq!(input["id"], double.connector_id().as_str());
        assert_eq!(input["type"], "INTERNAL_ENRICHMENT");
        assert_eq!(
            input["scope"],
            json!([
                "ipv4-addr",
                "ipv6-addr",
                "domain-name",
                "mac-addr",
                "autonomous-system",
                "x509-certificate"
            ])
        );
        for flag in ["auto", "only_contextual", "playbook_compatible"] {
            assert!(input[flag].is_boolean(), "{flag} in {input}");
        }
        let newer = ["auto_update", "enrichment_resolution", "version", "slug"];
        for field in newer {
            assert_eq!(
                input.get(field).is_some(),
                version.starts_with('7'),
                "{field} on {version}"
            );
        }
        // Pings: state "null", typed connectorInfo, at the configured interval.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let pings: Vec<GraphqlCall> = double
            .calls()
            .into_iter()
            .filter(|c| c.field == "pingConnector")
            .collect();
        assert!(pings.len() >= 2, "pings every second: {}", pings.len());
        let vars = &pings[0].variables;
        assert_eq!(vars["state"], "null");
        assert_eq!(vars["connectorInfo"]["queue_threshold"], 500.0);
        assert_eq!(vars["connectorInfo"]["run_and_terminate"], false);
        // JSON logs in pycti's shape, and the token never in them.
        let logs = daemon.logs();
        assert!(!logs.is_empty());
        // `CONNECTOR_PUSH_STRATEGY=auto`: whole bundles from 6.4 on.
        assert!(
            logs.iter()
                .any(|l| l.contains("as one message each (the platform's worker splits them)")),
            "{version}: {logs:?}"
        );
        for line in &logs {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            for key in ["timestamp", "level", "name", "message"] {
                assert!(v.get(key).is_some(), "{key} missing: {line}");
            }
            assert!(!line.contains(&double.token()), "token in the logs: {line}");
        }
    }
}

/// The push strategies (`CONNECTOR_PUSH_STRATEGY`); the tests of pushed bundles run once
/// with each (the double's worker splits a whole bundle as the platform's does).
pub(crate) const PUSH_STRATEGIES: [&str; 2] = ["bundle", "pieces"];

/// `running`, with `CONNECTOR_PUSH_STRATEGY=strategy` besides `env`.
async fn running_with(
    strategy: &str,
    env: &[(&str, &str)],
) -> (tempfile::TempDir, PlatformDouble, Daemon) {
    let mut env = env.to_vec();
    env.push(("CONNECTOR_PUSH_STRATEGY", strategy));
    running(DoubleOptions::default(), &env).await
}

/// §C4, §C7, §C8, §C12–§C16: a manual enrichment end to end over AMQP, with each push
/// strategy, and a bundle too large for one message (the test hook lowers the limit): sent
/// as pieces in bundle mode too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enriches_over_amqp_and_reports_the_work() {
    for strategy in PUSH_STRATEGIES {
        enriches_over_amqp(strategy, &[], strategy == "bundle").await;
    }
    #[cfg(feature = "test-hooks")]
    enriches_over_amqp(
        "bundle",
        &[("IVRE_CONNECTOR_TEST_PUSH_MAX_BYTES", "1000")],
        false,
    )
    .await;
}

/// One run of [`enriches_over_amqp_and_reports_the_work`]: `whole` when the bundle is
/// expected as one message.
async fn enriches_over_amqp(strategy: &str, env: &[(&str, &str)], whole: bool) {
    let (_data, double, _daemon) = running_with(strategy, env).await;
    let org = "identity--8cb00c79-ab20-5ed4-b37d-337241b96a29";
    let mut entity = ipv4("192.0.2.10", &[GREEN]);
    entity["x_opencti_granted_refs"] = json!([org]);
    double.add_entity(entity.clone(), &tlp_names(&[GREEN]));
    double.publish(&manual(&entity, "work_1")).await;
    let done = processed(&double, "work_1").await;
    assert_eq!(done.variables["inError"], false, "{}", done.variables);
    let pushed = double.pushed_for_work("work_1", WAIT).await;
    let ops: Vec<String> = work_calls(&double, "work_1")
        .into_iter()
        .filter_map(|c| c.work_op)
        .collect();
    assert_eq!(ops.first().map(String::as_str), Some("toReceived"));
    assert_eq!(ops.last().map(String::as_str), Some("toProcessed"));
    let expectations: i64 = work_calls(&double, "work_1")
        .iter()
        .filter(|c| c.work_op.as_deref() == Some("addExpectations"))
        .map(|c| c.variables["expectations"].as_i64().unwrap())
        .sum();
    let work = double.work("work_1").unwrap();
    assert!(pushed.len() > 3, "{strategy}: {} objects", pushed.len());
    assert_eq!(
        (work.expectations, work.imported),
        (pushed.len() as i64, pushed.len() as i64),
        "{strategy}: one expectation per object imported"
    );
    if whole {
        // One message: the worker split it and announced the expectations.
        assert_eq!(expectations, 0, "no addExpectations from the connector");
        assert_eq!(work.split_by_worker, 1);
        assert!(pushed.iter().all(|p| p.split_by_worker));
    } else {
        assert_eq!(
            expectations as usize,
            pushed.len(),
            "{strategy}: one expectation per message"
        );
        assert_eq!(work.split_by_worker, 0);
    }
    let mut seen: HashSet<String> = HashSet::new();
    for (i, p) in pushed.iter().enumerate() {
        assert_eq!(p.delivery_mode, Some(2));
        assert_eq!(p.body["action_sequence"], if whole { 1 } else { i + 1 });
        // The double advertises 7.261026: the worker reads `no_split`.
        assert_eq!(p.body["no_split"], false);
        assert_eq!(p.body["work_id"], "work_1");
        assert!(p.body["applicant_id"].is_string());
        assert!(p.body["entities_types"].is_array() && p.body["update"].is_boolean());
        let objects = p.bundle["objects"].as_array().unwrap();
        assert_eq!(objects.len(), 1);
        let object = &objects[0];
        // Dependencies first: every reference to an object of the bundle was sent before.
        for (k, v) in object.as_object().unwrap() {
            let refs: Vec<&str> = if k.ends_with("_ref") {
                v.as_str().into_iter().collect()
            } else if k.ends_with("_refs") {
                v.as_array()
                    .unwrap()
                    .iter()
                    .filter_map(Value::as_str)
                    .collect()
            } else {
                vec![]
            };
            for r in refs {
                if r.starts_with("marking-definition--") || r.starts_with("identity--8cb00c79") {
                    continue;
                }
                assert!(
                    seen.contains(r),
                    "{} refers to {r} sent later",
                    object["id"]
                );
            }
        }
        seen.insert(object["id"].as_str().unwrap().to_owned());
        assert_eq!(
            object["x_opencti_granted_refs"],
            json!([org]),
            "organizations on {}",
            object["id"]
        );
    }
    // The enriched entity keeps its id; new objects carry author and markings.
    assert!(seen.contains(entity["id"].as_str().unwrap()));
    assert!(seen.contains("identity--bb0162f7-f4f4-5c50-ab60-4bb962f1e276"));
    let relationships: Vec<&Value> = pushed
        .iter()
        .map(|p| &p.bundle["objects"][0])
        .filter(|o| o["type"] == "relationship")
        .collect();
    assert!(relationships
        .iter()
        .any(|r| r["source_ref"] == entity["id"] && r["relationship_type"] == "belongs-to"));
    for r in relationships {
        assert_eq!(r["object_marking_refs"], json!([GREEN]));
        assert_eq!(
            r["created_by_ref"],
            "identity--bb0162f7-f4f4-5c50-ab60-4bb962f1e276"
        );
    }
}

/// §C10: nothing above the max TLP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_observables_above_the_max_tlp() {
    let (_data, double, _daemon) = running(DoubleOptions::default(), &[]).await;
    let red = ipv4("198.51.100.7", &[RED]);
    double.add_entity(red.clone(), &tlp_names(&[RED]));
    double.publish(&manual(&red, "work_red")).await;
    let done = processed(&double, "work_red").await;
    assert_eq!(done.variables["inError"], true);
    assert!(
        done.variables["message"]
            .as_str()
            .unwrap()
            .contains("MAX TLP"),
        "{}",
        done.variables
    );
    assert!(work_calls(&double, "work_red")
        .iter()
        .all(|c| c.work_op.as_deref() != Some("addExpectations")));
    // An AMBER one (the maximum) goes through afterwards, and nothing of the red one was pushed.
    let amber = ipv4("198.51.100.66", &[AMBER]);
    double.add_entity(amber.clone(), &tlp_names(&[AMBER]));
    double.publish(&manual(&amber, "work_amber")).await;
    assert_eq!(
        processed(&double, "work_amber").await.variables["inError"],
        false
    );
    let pushed = double.pushed_for_work("work_amber", WAIT).await;
    assert!(!pushed.is_empty());
    assert!(pushed.iter().all(|p| p.body["work_id"] == "work_amber"));
}

/// Hardening item 1: the gate fails closed and carries what the platform shows. A marking
/// id of the message the platform cannot resolve counts as TLP:RED (refused, nothing
/// pushed); a TLP:RED only the platform shows refuses too; markings only the platform
/// shows (a TLP and a PAP) are carried on every object sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markings_fail_closed_and_platform_markings_are_carried() {
    for strategy in PUSH_STRATEGIES {
        markings_fail_closed(strategy).await;
    }
}

async fn markings_fail_closed(strategy: &str) {
    let (_data, double, _daemon) = running_with(strategy, &[]).await;
    let unknown = "marking-definition--5db1a05c-6a7f-4e91-8cd3-4e5f60718293";
    let unresolvable = ipv4("198.51.100.8", &[GREEN, unknown]);
    double.add_entity(unresolvable.clone(), &["TLP:GREEN"]);
    double.publish(&manual(&unresolvable, "work_unknown")).await;
    let done = processed(&double, "work_unknown").await;
    assert_eq!(done.variables["inError"], true, "{}", done.variables);
    let text = done.variables["message"].as_str().unwrap();
    assert!(text.contains("MAX TLP") && text.contains(unknown), "{text}");

    let platform_red = ipv4("198.51.100.9", &[]);
    double.add_entity(platform_red.clone(), &["TLP:RED"]);
    double
        .publish(&manual(&platform_red, "work_platform_red"))
        .await;
    let done = processed(&double, "work_platform_red").await;
    assert_eq!(done.variables["inError"], true, "{}", done.variables);

    // The message shows no marking; the platform shows TLP:GREEN and PAP:RED.
    let pap = "marking-definition--4e4e3b84-de45-53df-9d9b-b21207699fd8";
    let entity = ipv4("192.0.2.10", &[]);
    double.add_entity(entity.clone(), &["TLP:GREEN", "PAP:RED"]);
    double.publish(&manual(&entity, "work_platform")).await;
    let done = processed(&double, "work_platform").await;
    assert_eq!(done.variables["inError"], false, "{}", done.variables);
    let pushed = double.pushed_for_work("work_platform", WAIT).await;
    assert!(pushed.len() > 3, "{} objects", pushed.len());
    for p in &pushed {
        let object = &p.bundle["objects"][0];
        if object["id"] == "identity--bb0162f7-f4f4-5c50-ab60-4bb962f1e276" {
            continue; // the author Organization: a fixed identity, left unmarked
        }
        let refs = object["object_marking_refs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for marking in [GREEN, pap] {
            assert!(
                refs.iter().any(|r| r == marking),
                "{} lacks {marking}: {object}",
                object["id"]
            );
        }
    }
    // Nothing of the refused ones was pushed.
    for work in ["work_unknown", "work_platform_red"] {
        assert!(work_calls(&double, work)
            .iter()
            .all(|c| c.work_op.as_deref() != Some("addExpectations")));
    }
}

/// Hardening item 10: a failed failure report is retried before the message is
/// acknowledged; a playbook step whose enrichment fails still gets its bundle back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_reports_are_retried_and_failed_playbook_steps_go_on() {
    let (_data, double, _daemon) = running(DoubleOptions::default(), &[]).await;
    // A business failure (the observable's value is not an address), whose report fails
    // twice: the third attempt records it.
    let broken = json!({"id": "ipv4-addr--0a1b2c3d-4e5f-5a6b-8c7d-9e0f1a2b3c4d", "type": "ipv4-addr",
                        "spec_version": "2.1", "value": "not an address"});
    double.add_entity(broken.clone(), &[]);
    double.reject_next("toProcessed", Reject::Status(503));
    double.reject_next("toProcessed", Reject::Status(503));
    double.publish(&manual(&broken, "work_broken")).await;
    let done = processed(&double, "work_broken").await;
    assert_eq!(done.variables["inError"], true, "{}", done.variables);
    let w = "work_broken";
    let reports = double
        .wait_for_n(
            move |c| {
                c.field == "workEdit"
                    && c.work_op.as_deref() == Some("toProcessed")
                    && c.variables["id"] == w
            },
            3,
            WAIT,
        )
        .await;
    assert_eq!(reports.len(), 3, "two failed attempts, then the report");
    // A playbook step on that entity: the received bundle goes on unchanged.
    let bundle = json!({"type": "bundle", "id": "bundle--8a5ffa3c-0e32-4d2f-8a66-4b0c4d1e2f31", "objects": [broken]});
    let message = json!({"internal": {"work_id": null, "applicant_id": "auto",
        "playbook": {"event_id": "ev", "execution_id": "ex", "playbook_id": "pb", "data_instance_id": broken["id"], "step_id": "step-failing", "previous_step_id": "prev"}},
        "event": {"entity_id": broken["id"], "bundle": bundle}});
    double.publish(&message).await;
    let call = double
        .wait_for(
            |c| c.field == "playbookStepExecution" && c.variables["step_id"] == "step-failing",
            WAIT,
        )
        .await
        .expect("playbookStepExecution after a failed enrichment");
    let sent: Value = serde_json::from_str(call.variables["bundle"].as_str().unwrap()).unwrap();
    let previous: Value =
        serde_json::from_str(call.variables["previous_bundle"].as_str().unwrap()).unwrap();
    assert_eq!(sent, bundle);
    assert_eq!(previous, bundle);
}

/// Hardening item 10: CONNECTOR_SHUTDOWN_TIMEOUT bounds the stop in API listen mode too:
/// a callback still running after it is dropped unanswered (the worker requeues it).
#[cfg(feature = "test-hooks")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shutdown_timeout_applies_in_api_mode() {
    let data = lab_snapshot();
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let port = free_port().to_string();
    let uri = format!("http://127.0.0.1:{port}");
    let mut daemon = Daemon::start(
        &double,
        data.path(),
        &[
            ("CONNECTOR_LISTEN_PROTOCOL", "API"),
            ("CONNECTOR_LISTEN_PROTOCOL_API_PORT", &port),
            ("CONNECTOR_LISTEN_PROTOCOL_API_URI", &uri),
            ("CONNECTOR_SHUTDOWN_TIMEOUT", "1"),
            ("IVRE_CONNECTOR_TEST_DELAY_MS", "60000"),
        ],
    );
    started(&double).await;
    let entity = ipv4("192.0.2.10", &[]);
    double.add_entity(entity.clone(), &[]);
    let body = manual(&entity, "work_api_stop").to_string();
    let (callback, token) = (format!("{uri}/api/callback"), double.token());
    let post = tokio::spawn(async move {
        reqwest::Client::new()
            .post(callback)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    double
        .wait_for(|c| c.work_op.as_deref() == Some("toReceived"), WAIT)
        .await
        .expect("received");
    let asked = std::time::Instant::now();
    daemon.signal("-TERM");
    let code = tokio::task::block_in_place(|| daemon.wait(WAIT));
    assert_eq!(code, Some(0), "clean exit: {:?}", daemon.logs());
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "stopped after {:?}, not after the 60 s enrichment",
        asked.elapsed()
    );
    let answer = post.await.unwrap();
    assert!(
        !matches!(answer, Ok(202)),
        "the unfinished callback is not acknowledged: {answer:?}"
    );
    assert!(daemon
        .logs()
        .iter()
        .any(|l| l.contains("callback requests still running")));
}

/// §C11, §C18: playbooks get the received bundle plus the enrichment; out of scope, the
/// received bundle unchanged; no work mutation, nothing on RabbitMQ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playbooks_get_the_bundle_back() {
    let (_data, double, _daemon) = running(DoubleOptions::default(), &[]).await;
    let entity = ipv4("192.0.2.10", &[]);
    double.add_entity(entity.clone(), &[]);
    let report = json!({"type": "report", "id": "report--3f1b9c54-3f0e-4c3e-9b8a-6a1d2f0e7c11", "spec_version": "2.1", "name": "r", "published": "2026-11-28T00:00:00.000Z", "object_refs": [entity["id"]]});
    for (step, subject, objects) in [
        ("step-1", &entity, vec![entity.clone(), report.clone()]),
        ("step-2", &report, vec![report.clone()]),
    ] {
        let message = json!({"internal": {"work_id": null, "applicant_id": "auto",
            "playbook": {"event_id": "ev", "execution_id": "ex", "playbook_id": "pb", "data_instance_id": subject["id"], "step_id": step, "previous_step_id": "prev"}},
            "event": {"entity_id": subject["id"], "bundle": {"type": "bundle", "id": "bundle--8a5ffa3c-0e32-4d2f-8a66-4b0c4d1e2f30", "objects": objects}}});
        double.publish(&message).await;
        let s = step.to_owned();
        let call = double
            .wait_for(
                move |c| c.field == "playbookStepExecution" && c.variables["step_id"] == s.as_str(),
                WAIT,
            )
            .await
            .expect("playbookStepExecution");
        let previous: Value =
            serde_json::from_str(call.variables["previous_bundle"].as_str().unwrap()).unwrap();
        let bundle: Value =
            serde_json::from_str(call.variables["bundle"].as_str().unwrap()).unwrap();
        assert_eq!(previous, message["event"]["bundle"]);
        for key in [
            "event_id",
            "execution_id",
            "playbook_id",
            "previous_step_id",
        ] {
            assert_eq!(call.variables[key], message["internal"]["playbook"][key]);
        }
        let ids: HashSet<&str> = bundle["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap())
            .collect();
        for o in message["event"]["bundle"]["objects"].as_array().unwrap() {
            assert!(
                ids.contains(o["id"].as_str().unwrap()),
                "received object kept"
            );
        }
        if step == "step-1" {
            assert!(ids.len() > 3, "enrichment added: {ids:?}");
        } else {
            assert_eq!(bundle, previous, "out of scope: unchanged");
        }
    }
    assert!(double.calls().iter().all(|c| c.field != "workEdit"));
    assert!(double
        .next_pushed(Duration::from_millis(500))
        .await
        .is_none());
}

/// §C7, §C9, §C11, §C17, §C21: invalid bodies are dropped, legacy and draft messages
/// work, out-of-scope types are reported, and the daemon goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_messages_are_handled_and_consuming_goes_on() {
    for strategy in PUSH_STRATEGIES {
        odd_messages(strategy).await;
    }
}

async fn odd_messages(strategy: &str) {
    let (_data, double, daemon) = running_with(strategy, &[]).await;
    double.publish_raw(b"{this is not json").await;
    // Legacy shape (no stix_entity): the entity is read through GraphQL; with a draft.
    let entity = ipv4("203.0.113.99", &[]);
    double.add_entity(entity.clone(), &[]);
    double
        .publish(&json!({"internal": {"work_id": "work_legacy", "applicant_id": "u1", "draft_id": "draft-9"}, "event": {"entity_id": entity["id"]}}))
        .await;
    let done = processed(&double, "work_legacy").await;
    assert_eq!(done.variables["inError"], false, "{}", done.variables);
    for call in work_calls(&double, "work_legacy") {
        assert_eq!(header(&call, "opencti-draft-id"), Some("draft-9"));
        assert!(header(&call, "opencti-applicant-id").is_none());
    }
    let pushed = double.pushed_for_work("work_legacy", WAIT).await;
    assert!(!pushed.is_empty(), "{strategy}");
    assert!(pushed
        .iter()
        .all(|p| p.body["draft_id"] == "draft-9" && p.body["applicant_id"] == "u1"));
    // Afterwards, no draft header.
    let report = json!({"id": "report--3f1b9c54-3f0e-4c3e-9b8a-6a1d2f0e7c11", "type": "report", "spec_version": "2.1", "name": "r"});
    double.add_entity(report.clone(), &[]);
    double
        .publish(&json!({"internal": {"work_id": "work_report"}, "event": {"entity_id": report["id"], "entity_type": "Report", "stix_entity": report.to_string()}}))
        .await;
    let done = processed(&double, "work_report").await;
    assert_eq!(done.variables["inError"], true);
    assert!(done.variables["message"]
        .as_str()
        .unwrap()
        .contains("scope"));
    assert!(work_calls(&double, "work_report")
        .iter()
        .all(|c| header(c, "opencti-draft-id").is_none()));
    assert!(
        daemon.logs().iter().any(|l| l.contains("invalid message")),
        "{:?}",
        daemon.logs()
    );
}

/// `CONNECTOR_QUEUE_PROTOCOL=api`: the whole bundle through stixBundlePush.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_through_the_api_when_asked() {
    let (_data, double, _daemon) = running(
        DoubleOptions::default(),
        &[("CONNECTOR_QUEUE_PROTOCOL", "api")],
    )
    .await;
    let entity = ipv4("192.0.2.10", &[]);
    double.add_entity(entity.clone(), &[]);
    double.publish(&manual(&entity, "work_api")).await;
    assert_eq!(
        processed(&double, "work_api").await.variables["inError"],
        false
    );
    let push = double
        .calls()
        .into_iter()
        .find(|c| c.field == "stixBundlePush")
        .expect("stixBundlePush");
    assert_eq!(push.variables["work_id"], "work_api");
    assert_eq!(
        push.variables["connectorId"],
        double.connector_id().as_str()
    );
    let bundle: Value = serde_json::from_str(push.variables["bundle"].as_str().unwrap()).unwrap();
    assert!(bundle["objects"].as_array().unwrap().len() > 5);
    assert!(double
        .next_pushed(Duration::from_millis(500))
        .await
        .is_none());
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// §C22: the HTTP callback listen mode, 6.x token and 7.x JWT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_callback_mode() {
    let data = lab_snapshot();
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let port = free_port().to_string();
    let uri = format!("http://127.0.0.1:{port}");
    let _daemon = Daemon::start(
        &double,
        data.path(),
        &[
            ("CONNECTOR_LISTEN_PROTOCOL", "API"),
            ("CONNECTOR_LISTEN_PROTOCOL_API_PORT", &port),
            ("CONNECTOR_LISTEN_PROTOCOL_API_URI", &uri),
            ("CONNECTOR_LISTEN_PROTOCOL_API_BIND", "127.0.0.1"),
        ],
    );
    started(&double).await;
    let register = double
        .calls()
        .into_iter()
        .find(|c| c.field == "registerConnector")
        .unwrap();
    let callback = format!("{uri}/api/callback");
    assert_eq!(
        register.variables["input"]["listen_callback_uri"],
        callback.as_str()
    );
    let entity = ipv4("192.0.2.10", &[]);
    double.add_entity(entity.clone(), &[]);
    let body = manual(&entity, "work_cb").to_string();
    assert_eq!(
        double
            .post_callback(&callback, body.as_bytes(), None)
            .await
            .0,
        401
    );
    assert_eq!(
        double
            .post_callback(&callback, body.as_bytes(), Some("wrong"))
            .await
            .0,
        401
    );
    assert_eq!(
        double
            .post_callback(&callback, body.as_bytes(), Some(&double.foreign_jwt()))
            .await
            .0,
        401
    );
    assert_eq!(
        double
            .post_callback(&callback, b"{nope", Some(&double.token()))
            .await
            .0,
        400
    );
    let (status, _) = double
        .post_callback(&callback, body.as_bytes(), Some(&double.callback_jwt(3600)))
        .await;
    assert_eq!(status, 202);
    assert_eq!(
        processed(&double, "work_cb").await.variables["inError"],
        false
    );
    let body2 = manual(&entity, "work_cb2").to_string();
    assert_eq!(
        double
            .post_callback(&callback, body2.as_bytes(), Some(&double.token()))
            .await
            .0,
        202
    );
    let health = reqwest::get(format!("{uri}/health")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

/// This project's rule (§C7): an accepted enrichment is never lost to a crash, and a
/// message that keeps killing the connector is reported and dropped.
#[cfg(feature = "test-hooks")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loses_nothing_and_a_poison_message_does_not_loop() {
    let data = lab_snapshot();
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let entity = ipv4("192.0.2.10", &[]);
    double.add_entity(entity.clone(), &[]);
    double.publish(&manual(&entity, "work_crash")).await;
    let slow = [("IVRE_CONNECTOR_TEST_DELAY_MS", "60000")];
    // Killed twice while the message is being processed…
    for round in 1..=2 {
        let mut daemon = Daemon::start(&double, data.path(), &slow);
        double
            .wait_for_n(
                |c| c.work_op.as_deref() == Some("toReceived") && c.variables["id"] == "work_crash",
                round,
                WAIT,
            )
            .await;
        let received = work_calls(&double, "work_crash")
            .iter()
            .filter(|c| c.work_op.as_deref() == Some("toReceived"))
            .count();
        assert_eq!(received, round, "delivered again after the kill");
        daemon.signal("-KILL");
        daemon.wait(WAIT);
    }
    // …then it is reported and dropped, and the next message is processed.
    let _daemon = Daemon::start(&double, data.path(), &[]);
    let done = processed(&double, "work_crash").await;
    assert_eq!(done.variables["inError"], true);
    assert!(
        done.variables["message"]
            .as_str()
            .unwrap()
            .contains("dropped"),
        "{}",
        done.variables
    );
    double.publish(&manual(&entity, "work_after")).await;
    assert_eq!(
        processed(&double, "work_after").await.variables["inError"],
        false
    );
    // Killed once: the enrichment is redone, not lost.
    let double2 = PlatformDouble::start(DoubleOptions::default()).await;
    double2.add_entity(entity.clone(), &[]);
    double2.publish(&manual(&entity, "work_once")).await;
    let mut daemon = Daemon::start(&double2, data.path(), &slow);
    double2
        .wait_for(|c| c.work_op.as_deref() == Some("toReceived"), WAIT)
        .await
        .expect("received");
    daemon.signal("-KILL");
    daemon.wait(WAIT);
    let _daemon = Daemon::start(&double2, data.path(), &[]);
    assert_eq!(
        processed(&double2, "work_once").await.variables["inError"],
        false
    );
    assert!(!double2.pushed_for_work("work_once", WAIT).await.is_empty());
}

/// Graceful stop (SIGTERM): the enrichment in progress finishes and is pushed.
#[cfg(feature = "test-hooks")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_work_in_progress() {
    let data = lab_snapshot();
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let mut daemon = Daemon::start(
        &double,
        data.path(),
        &[("IVRE_CONNECTOR_TEST_DELAY_MS", "2000")],
    );
    started(&double).await;
    let entity = ipv4("192.0.2.10", &[]);
    double.add_entity(entity.clone(), &[]);
    double.publish(&manual(&entity, "work_term")).await;
    double
        .wait_for(|c| c.work_op.as_deref() == Some("toReceived"), WAIT)
        .await
        .expect("received");
    daemon.signal("-TERM");
    assert_eq!(
        daemon.wait(WAIT),
        Some(0),
        "clean exit: {:?}",
        daemon.logs()
    );
    let done = double
        .calls()
        .into_iter()
        .find(|c| c.work_op.as_deref() == Some("toProcessed"))
        .expect("finished before exiting");
    assert_eq!(done.variables["inError"], false);
    assert!(!double.pushed_for_work("work_term", WAIT).await.is_empty());
}

/// Concurrency, work pings during long enrichments (§C19), pings go on meanwhile (§C5).
#[cfg(feature = "test-hooks")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_and_keepalives() {
    let data = lab_snapshot();
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let _daemon = Daemon::start(
        &double,
        data.path(),
        &[
            ("IVRE_CONNECTOR_TEST_DELAY_MS", "2500"),
            ("CONNECTOR_CONCURRENCY", "2"),
            ("CONNECTOR_WORK_PING_INTERVAL", "1"),
        ],
    );
    started(&double).await;
    let entity = ipv4("192.0.2.10", &[]);
    double.add_entity(entity.clone(), &[]);
    double.publish(&manual(&entity, "work_a")).await;
    double.publish(&manual(&entity, "work_b")).await;
    processed(&double, "work_a").await;
    processed(&double, "work_b").await;
    let calls = double.calls();
    let position = |work: &str, op: &str| {
        calls
            .iter()
            .position(|c| c.variables["id"] == work && c.work_op.as_deref() == Some(op))
            .unwrap()
    };
    assert!(
        position("work_b", "toReceived") < position("work_a", "toProcessed"),
        "two at once"
    );
    assert!(
        calls.iter().any(|c| c.work_op.as_deref() == Some("ping")),
        "work pinged during the long enrichment"
    );
    let first = position("work_a", "toReceived");
    let last = position("work_b", "toProcessed");
    assert!(
        calls[first..last]
            .iter()
            .any(|c| c.field == "pingConnector"),
        "connector pinged meanwhile"
    );
}

/// §C6: a state reset by the platform is adopted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_reset_by_the_platform_is_adopted() {
    let (_data, double, _daemon) = running(DoubleOptions::default(), &[]).await;
    double.set_connector_state_reset();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let pings: Vec<GraphqlCall> = double
        .calls()
        .into_iter()
        .filter(|c| c.field == "pingConnector")
        .collect();
    assert_eq!(pings.last().unwrap().variables["state"], "null");
}

/// §C23: Prometheus metrics with pycti's names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_exposed() {
    let data = lab_snapshot();
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let port = free_port().to_string();
    let _daemon = Daemon::start(
        &double,
        data.path(),
        &[
            ("CONNECTOR_EXPOSE_METRICS", "true"),
            ("CONNECTOR_METRICS_PORT", &port),
        ],
    );
    started(&double).await;
    let entity = ipv4("192.0.2.10", &[]);
    double.add_entity(entity.clone(), &[]);
    double.publish(&manual(&entity, "work_m")).await;
    processed(&double, "work_m").await;
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "bundles_sent_total",
        "records_sent_total",
        "ping_api_total",
        "errors_total",
        "enrichment_duration_seconds",
        "snapshot_age_seconds",
        "state",
        "identity_info{",
    ] {
        assert!(text.contains(name), "{name} missing in:\n{text}");
    }
}

/// §C2, §C3, §C24: bad configuration and a refused registration stop the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_and_refused_registration_fail_at_start() {
    let data = lab_snapshot();
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let mut daemon = Daemon::start(
        &double,
        data.path(),
        &[("IVRE_MAX_TLP", "amber"), ("CONNECTOR_CONCURRENCY", "0")],
    );
    // A bad configuration: exit code 7 (README "Exit codes").
    assert_eq!(daemon.wait(WAIT), Some(ivre_connector::exit_code::CONFIG));
    let logs = daemon.logs().join("\n");
    assert!(
        logs.contains("IVRE_MAX_TLP") && logs.contains("CONNECTOR_CONCURRENCY"),
        "{logs}"
    );
    assert!(
        double.calls().is_empty(),
        "nothing sent with a bad configuration"
    );
    double.reject_next(
        "registerConnector",
        Reject::GraphqlError("no such connector type".into()),
    );
    let mut daemon = Daemon::start(&double, data.path(), &[]);
    // A refused registration: a failure at run time, exit code 1.
    assert_eq!(
        daemon.wait(WAIT),
        Some(ivre_connector::exit_code::FAILURE),
        "{:?}",
        daemon.logs()
    );
    assert!(daemon.logs().join("\n").contains("registration failed"));
}

/// Runs rabbitmqctl against the test broker.
pub(crate) fn rabbitmqctl(args: &[&str]) -> String {
    let var = |name: &str| {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name} is not set: run the tests with `bash scripts/test`"))
    };
    let out = Command::new(var("IVRE_TEST_RABBITMQCTL"))
        .arg("-n")
        .arg(var("IVRE_TEST_RABBITMQ_NODE"))
        .args(args)
        .env("HOME", var("IVRE_TEST_RABBITMQ_HOME"))
        .env("ERL_EPMD_PORT", var("IVRE_TEST_RABBITMQ_EPMD_PORT"))
        .output()
        .expect("rabbitmqctl");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// §C20: the broker drops the connector's connections; it reconnects and goes on
/// consuming and pushing, without registering again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_broker_drops_its_connections() {
    for strategy in PUSH_STRATEGIES {
        reconnects_after_broker_drops(strategy).await;
    }
}

async fn reconnects_after_broker_drops(strategy: &str) {
    let (_data, double, _daemon) = running_with(strategy, &[]).await;
    let entity = ipv4("192.0.2.10", &[]);
    double.add_entity(entity.clone(), &[]);
    double.publish(&manual(&entity, "work_before")).await;
    processed(&double, "work_before").await;
    let tag = format!("ivre-connector-{}", double.connector_id());
    let mut closed = 0;
    let listing = rabbitmqctl(&[
        "-q",
        "list_connections",
        "--no-table-headers",
        "pid",
        "client_properties",
    ]);
    for line in listing.lines() {
        let Some((pid, properties)) = line.split_once('\t') else {
            continue;
        };
        if properties.contains(&tag) || properties.contains("ivre-connector push") {
            rabbitmqctl(&["close_connection", pid, "test: broker-side close"]);
            closed += 1;
        }
    }
    assert!(closed >= 1, "the connector's connections are named");
    tokio::time::sleep(Duration::from_millis(300)).await;
    double.publish(&manual(&entity, "work_after")).await;
    assert_eq!(
        processed(&double, "work_after").await.variables["inError"],
        false
    );
    assert!(!double.pushed_for_work("work_after", WAIT).await.is_empty());
    assert_eq!(
        double.calls_of("registerConnector").len(),
        1,
        "no re-registration"
    );
}

/// Hot reload: a snapshot published while the daemon runs answers the next requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_snapshot_is_served_without_a_restart() {
    let data = tempfile::tempdir().unwrap();
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
    let double = PlatformDouble::start(DoubleOptions::default()).await;
    let _daemon = Daemon::start(&double, data.path(), &[("IVRE_RELOAD_POLL", "1")]);
    started(&double).await;
    let scanner = ipv4("203.0.113.99", &[]);
    double.add_entity(scanner.clone(), &[]);
    double.publish(&manual(&scanner, "work_old")).await;
    processed(&double, "work_old").await;
    let labels = |pushed: &[opencti_double::Pushed]| -> Vec<String> {
        pushed
            .iter()
            .flat_map(|p| {
                p.bundle["objects"][0]["x_opencti_labels"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|l| l.as_str().map(str::to_owned))
            .collect()
    };
    assert!(labels(&double.pushed_for_work("work_old", WAIT).await).is_empty());
    // ivre-sync publishes new data next to the running daemon.
    import(
        data.path(),
        &[
            "--passive",
            &path_str(&fixture("extra/passive-extra.jsonl")),
        ],
        0,
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    double.publish(&manual(&scanner, "work_new")).await;
    processed(&double, "work_new").await;
    assert_eq!(
        labels(&double.pushed_for_work("work_new", WAIT).await),
        vec!["Scanner ZGrab"]
    );
}
