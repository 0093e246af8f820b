//! The container image, as an operator starts it: `docker run` with nothing but
//! `OPENCTI_URL`, `OPENCTI_TOKEN`, `IVRE_MAX_TLP` and an IVRE URL, an empty `/data`,
//! against the platform double and the real IVRE web API. Ignored by default: it needs a
//! Docker engine and the image; `scripts/test-image` builds the image and runs it with
//! `IVRE_TEST_IMAGE=<tag>`.

use crate::daemon::started;
use crate::upkeep::{enrich_once, wait_health, web_url};
use crate::util::*;
use opencti_double::{DoubleOptions, PlatformDouble};
use std::process::Command;
use std::time::{Duration, Instant};

/// The default health port of the image (`CONNECTOR_METRICS_PORT`).
const PORT: &str = "9095";

/// A running container, removed when dropped (its logs printed if the test failed).
struct Container(String);

impl Container {
    fn docker(args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .args(args)
            .output()
            .expect("the docker command")
    }

    fn logs(&self) -> String {
        let out = Container::docker(&["logs", &self.0]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("container logs:\n{}", self.logs());
        }
        let _ = Container::docker(&["rm", "-f", "-v", &self.0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker engine and the image: run by scripts/test-image"]
async fn the_image_starts_from_its_environment_alone() {
    let image = std::env::var("IVRE_TEST_IMAGE").expect("IVRE_TEST_IMAGE: the image to test");
    let _lab = ivre_lab_shared();
    // No CONNECTOR_ID: the daemon derives it from the connector name.
    let double = PlatformDouble::start(DoubleOptions {
        connector_id: ivre_connector::config::daemon::derived_connector_id("IVRE"),
        ..Default::default()
    })
    .await;
    let name = format!("ivre-connector-test-{}", std::process::id());
    let env = [
        format!("OPENCTI_URL={}", double.url()),
        format!("OPENCTI_TOKEN={}", double.token()),
        "IVRE_MAX_TLP=TLP:AMBER".to_owned(),
        format!("IVRE_DB_URL={}", web_url()),
    ];
    let mut args = vec!["run", "-d", "--name", &name, "--network", "host"];
    for e in &env {
        args.extend(["-e", e.as_str()]);
    }
    args.push(&image);
    let out = Container::docker(&args);
    assert!(
        out.status.success(),
        "docker run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let container = Container(name.clone());
    started(&double).await;
    let before = wait_health(PORT, "ready", |h| h["status"] == "ready").await;
    // The first answer: live while no snapshot is served, from the snapshot otherwise.
    let note = enrich_once(&double, "work_image_1").await.note;
    if before["snapshot"].is_null() {
        assert!(note.starts_with("Answered live by IVRE"), "{note}");
    }
    let served = wait_health(PORT, "its own pulled snapshot", |h| {
        h["snapshot"]["source"] == "pull"
    })
    .await;
    let generation = served["snapshot"]["generation"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = enrich_once(&double, "work_image_2").await;
    assert!(
        answer
            .work_message
            .ends_with(&format!("(answered by snapshot {generation})")),
        "{}",
        answer.work_message
    );
    // The health command inside the container, and Docker's own view of it.
    let out = Container::docker(&["exec", &name, "ivre-connector", "health"]);
    assert!(
        out.status.success(),
        "health in the container: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = Container::docker(&["inspect", "-f", "{{.State.Health.Status}}", &name]);
        let status = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if status == "healthy" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Docker's health status stays {status:?}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    drop(container);
}
