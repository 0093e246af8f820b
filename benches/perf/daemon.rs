//! `daemon` suite: end to end through a real RabbitMQ. The real `ivre-connector run`
//! serves a snapshot of the lab fixtures (`tests/data`) to the OpenCTI platform double
//! (the `opencti-double` crate: GraphQL over HTTP, the platform's queues on the broker
//! of `IVRE_TEST_AMQP_URL`); the suite publishes enrichment messages on the listen queue as
//! the platform does and takes the pushed messages off the push queue as the worker does.
//!
//! Latency of one enrichment: from the message's publish (its *intended* publish time in
//! the open-loop run, so a late publisher counts against the figure: coordinated omission)
//! to the arrival of the last message of its bundle on the push queue (the pushed messages
//! of a work reach the `addExpectations` the connector announced; a message of a work the
//! connector announced nothing for is a whole bundle, which the worker would split). Each
//! push strategy (`CONNECTOR_PUSH_STRATEGY`: `pieces`, `bundle`; both unless
//! `IVRE_BENCH_PUSH_STRATEGY` names one) has its own double and daemon, started together;
//! for each, two runs:
//!
//! - saturation: every message published at once; throughput = messages / (first publish →
//!   last bundle);
//! - open loop: a fixed offered rate, the same for every strategy (half the lowest
//!   saturation throughput, at most 2,000/s, or `IVRE_BENCH_DAEMON_RATE`), latency
//!   percentiles.
//!
//! The connector's settings are explicit: `CONNECTOR_CONCURRENCY` (16, or
//! `IVRE_BENCH_CONCURRENCY`), AMQP listen and queue protocols, logs at `error`.

use crate::stats::{Latency, Report, Target};
use crate::Args;
use anyhow::Context as _;
use futures_util::StreamExt as _;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

use opencti_double::{DoubleOptions, PlatformDouble, AMQP_URL_VAR};

const SUITE: &str = "daemon";
const GREEN: &str = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da";
/// `CONNECTOR_CONCURRENCY` unless `IVRE_BENCH_CONCURRENCY` says otherwise.
const DEFAULT_CONCURRENCY: usize = 16;
/// Target of issue 6.
const TARGET_THROUGHPUT: f64 = 2000.0;
const TARGET_P99_MS: f64 = 5.0;

/// Run sizes.
struct Plan {
    warmup: usize,
    saturation: usize,
    open_loop: Duration,
}

pub fn run(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    if std::env::var(AMQP_URL_VAR).map_or(true, |v| v.is_empty()) {
        eprintln!(
            "daemon: skipped: {AMQP_URL_VAR} is not set (run `bash scripts/bench daemon`, which starts a private RabbitMQ)"
        );
        return Ok(());
    }
    let plan = if args.quick {
        Plan {
            warmup: 200,
            saturation: 2_000,
            open_loop: Duration::from_secs(5),
        }
    } else {
        Plan {
            warmup: 1_000,
            saturation: 20_000,
            open_loop: Duration::from_secs(30),
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args, &plan, report))
}

fn env_number<T: std::str::FromStr>(name: &str) -> anyhow::Result<Option<T>> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a number")),
        _ => Ok(None),
    }
}

/// The observables the messages cycle through: every type, hits of the lab fixtures and
/// one miss.
fn entities() -> Vec<(&'static str, Value)> {
    use ivre_connector::stix::ids::generate;
    let mut out = Vec::new();
    let mut add = |entity_type: &'static str, stix_type: &str, props: Value| {
        let mut entity = props.clone();
        entity["id"] = generate(stix_type, &props).into();
        entity["type"] = stix_type.into();
        entity["spec_version"] = "2.1".into();
        entity["object_marking_refs"] = json!([GREEN]);
        out.push((entity_type, entity));
    };
    for ip in ["192.0.2.10", "198.51.100.7", "203.0.113.5", "10.9.8.7"] {
        add("IPv4-Addr", "ipv4-addr", json!({"value": ip}));
    }
    add("IPv6-Addr", "ipv6-addr", json!({"value": "2001:db8::53"}));
    for name in ["www.example.com", "example.com", "router.example.net"] {
        add("Domain-Name", "domain-name", json!({"value": name}));
    }
    for number in [64496, 64497] {
        add(
            "Autonomous-System",
            "autonomous-system",
            json!({"number": number}),
        );
    }
    add(
        "Mac-Addr",
        "mac-addr",
        json!({"value": "00:1b:21:3a:4f:5c"}),
    );
    add(
        "X509-Certificate",
        "x509-certificate",
        json!({"hashes": {"SHA-256": "fcf2200c62f5e3ff8dcf0c7581f41ececa21ced836cf0e2930e4662c66f59277"}}),
    );
    out
}

/// The platform's manual enrichment message (`docs/opencti-protocol.md` §4.3 a).
fn message(entity_type: &str, entity: &Value, work_id: &str) -> Vec<u8> {
    json!({"internal": {"work_id": work_id, "applicant_id": null, "draft_id": null, "mode": "manual", "trigger": "update"},
           "event": {"event_type": "INTERNAL_ENRICHMENT", "entity_id": entity["id"], "entity_type": entity_type,
                     "stix_entity": entity.to_string(), "stix_objects": null}})
    .to_string()
    .into_bytes()
}

/// A snapshot of the lab fixtures (MongoDB exports, which keep MACs, and the extra
/// records), with the lab's MaxMind files.
fn build_snapshot(dir: &Path) -> anyhow::Result<()> {
    use ivre_connector::ivre::RecordKind;
    use ivre_connector::snapshot::{import, DataDir, ImportOptions};
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let lab = data.join("ivre-0.9.20");
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    import(
        &DataDir::new(dir),
        &ImportOptions {
            inputs: vec![
                (RecordKind::Scan, lab.join("mongo-scancli.jsonl")),
                (RecordKind::Scan, data.join("extra/scans-extra.jsonl")),
                (RecordKind::Passive, lab.join("mongo-ipinfo.jsonl")),
                (RecordKind::Passive, data.join("extra/passive-extra.jsonl")),
            ],
            geoip_dir: Some(data.join("geoip")),
            ..ImportOptions::default()
        },
    )
    .context("building the daemon's snapshot")?;
    Ok(())
}

/// The connector process; killed when dropped.
struct Daemon {
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_daemon(
    double: &PlatformDouble,
    data: &Path,
    log: &Path,
    concurrency: usize,
    strategy: &str,
) -> anyhow::Result<Daemon> {
    let log = std::fs::File::create(log)?;
    let child = Command::new(env!("CARGO_BIN_EXE_ivre-connector"))
        .arg("--data-dir")
        .arg(data)
        .arg("run")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("OPENCTI_URL", double.url())
        .env("OPENCTI_TOKEN", double.token())
        .env("CONNECTOR_ID", double.connector_id())
        .env("CONNECTOR_NAME", "IVRE")
        .env("CONNECTOR_LOG_LEVEL", "error")
        .env("IVRE_MAX_TLP", "TLP:AMBER")
        .env("CONNECTOR_CONCURRENCY", concurrency.to_string())
        .env("CONNECTOR_LISTEN_PROTOCOL", "AMQP")
        .env("CONNECTOR_QUEUE_PROTOCOL", "amqp")
        .env("CONNECTOR_PUSH_STRATEGY", strategy)
        .env("CONNECTOR_PING_INTERVAL", "1")
        .env("IVRE_FALLBACK", "false")
        .current_dir(data)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting ivre-connector run")?;
    Ok(Daemon { child })
}

/// CPU time (user + system) of a process, from `/proc/PID/stat` (Linux; `None` elsewhere).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(Duration::from_millis(ticks * 10))
}

fn rabbit_pid() -> Option<u32> {
    let home = std::env::var("IVRE_TEST_RABBITMQ_HOME").ok()?;
    std::fs::read_to_string(Path::new(&home).join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// CPU time of the daemon, RabbitMQ and this process (double, publisher, consumer).
#[derive(Clone, Copy, Default)]
struct Cpu {
    daemon: Option<Duration>,
    rabbit: Option<Duration>,
    harness: Option<Duration>,
}

impl Cpu {
    fn sample(daemon: u32) -> Cpu {
        Cpu {
            daemon: cpu_time(daemon),
            rabbit: rabbit_pid().and_then(cpu_time),
            harness: cpu_time(std::process::id()),
        }
    }

    /// `daemon 1.2 cores, RabbitMQ 0.5, harness 0.3` over `wall`.
    fn since(&self, before: &Cpu, wall: Duration) -> String {
        let share = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
            (Some(a), Some(b)) if !wall.is_zero() => {
                format!(
                    "{:.2}",
                    a.saturating_sub(b).as_secs_f64() / wall.as_secs_f64()
                )
            }
            _ => "?".to_owned(),
        };
        format!(
            "CPU (cores): daemon {}, RabbitMQ {}, platform double + harness {}",
            share(self.daemon, before.daemon),
            share(self.rabbit, before.rabbit),
            share(self.harness, before.harness)
        )
    }
}

/// `p50 … ms, p99 … ms, p99.9 … ms, max … ms (n)`.
fn ms_summary(latency: &Latency) -> String {
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms ({} enrichments)",
        latency.quantile_us(0.5) / 1000.0,
        latency.quantile_us(0.99) / 1000.0,
        latency.quantile_us(0.999) / 1000.0,
        latency.max_us() / 1000.0,
        latency.count()
    )
}

/// Works in flight: when each was (meant to be) published, how many of its pushed
/// messages arrived.
#[derive(Default)]
struct Tracker {
    pending: HashMap<String, Pending>,
    /// From the intended publish time (open loop) or the publish (saturation).
    latency: Latency,
    /// From the actual publish.
    service: Latency,
    completed: usize,
    pushed: u64,
    last_completion: Option<Instant>,
    /// Pushed messages of works this tracker does not know (a previous run's, or stray).
    unknown: u64,
}

struct Pending {
    intended: Instant,
    published: Option<Instant>,
    received: i64,
}

type Shared = Arc<Mutex<Tracker>>;

fn lock(t: &Shared) -> std::sync::MutexGuard<'_, Tracker> {
    t.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(serde::Deserialize)]
struct PushHead<'a> {
    #[serde(borrow)]
    work_id: Option<std::borrow::Cow<'a, str>>,
}

/// The worker side: takes every message off the push queue (no ack needed: auto-ack) and
/// completes a work when its messages reach the connector's `addExpectations`, or at its
/// message when the connector announced none (a whole bundle: the connector calls
/// `addExpectations` before it publishes pieces).
async fn consume_pushes(
    double: Arc<PlatformDouble>,
    tracker: Shared,
    notify: Arc<tokio::sync::Notify>,
) -> anyhow::Result<()> {
    let connection =
        Connection::connect(&double.amqp_url(), ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel.basic_qos(5_000, BasicQosOptions::default()).await?;
    let mut consumer = channel
        .basic_consume(
            double.names().push.as_str().into(),
            "bench-worker".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    let mut checked = false;
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        let now = Instant::now();
        let head: PushHead = serde_json::from_slice(&delivery.data)
            .context("a pushed message is not JSON with a work_id")?;
        if !checked {
            // Once: the message carries a bundle as the worker reads it.
            checked = true;
            let body: Value = serde_json::from_slice(&delivery.data)?;
            let content = body["content"].as_str().unwrap_or_default();
            use base64::Engine as _;
            let bundle: Value = serde_json::from_slice(
                &base64::engine::general_purpose::STANDARD.decode(content)?,
            )?;
            anyhow::ensure!(
                bundle["type"] == "bundle" && bundle["objects"].is_array(),
                "the pushed content is not a STIX bundle: {bundle}"
            );
        }
        let Some(work_id) = head.work_id else {
            lock(&tracker).unknown += 1;
            continue;
        };
        let expectations = double.work(&work_id).map_or(0, |w| w.expectations);
        let mut t = lock(&tracker);
        t.pushed += 1;
        let Some(pending) = t.pending.get_mut(work_id.as_ref()) else {
            t.unknown += 1;
            continue;
        };
        pending.received += 1;
        // No expectation announced before the publish: a whole bundle (one message).
        if expectations == 0 || pending.received >= expectations {
            let (intended, published) = (pending.intended, pending.published);
            t.pending.remove(work_id.as_ref());
            t.latency.record(now - intended);
            if let Some(p) = published {
                t.service.record(now - p);
            }
            t.completed += 1;
            t.last_completion = Some(now);
            drop(t);
            notify.notify_one();
        }
    }
    Ok(())
}

/// Publishes like the platform (`pushToConnector`: connector exchange, listen routing key,
/// persistent), without waiting for each confirm.
struct Publisher {
    channel: lapin::Channel,
    exchange: String,
    routing_key: String,
    _connection: Connection,
}

impl Publisher {
    async fn new(double: &PlatformDouble) -> anyhow::Result<Publisher> {
        let connection =
            Connection::connect(&double.amqp_url(), ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        let names = double.names();
        Ok(Publisher {
            channel,
            exchange: names.listen_exchange,
            routing_key: names.listen_routing,
            _connection: connection,
        })
    }

    async fn publish(&self, body: &[u8]) -> anyhow::Result<()> {
        self.channel
            .basic_publish(
                self.exchange.as_str().into(),
                self.routing_key.as_str().into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await?;
        Ok(())
    }
}

struct RunOutcome {
    latency: Latency,
    service: Latency,
    pushed: u64,
    /// First publish → last bundle received.
    elapsed: Duration,
    cpu: String,
    /// How late the open-loop publisher was at worst.
    max_lateness: Duration,
}

/// One run: `n` messages, at `rate` per second (open loop) or all at once (`None`).
#[allow(clippy::too_many_arguments)]
async fn one_run(
    label: &str,
    n: usize,
    rate: Option<f64>,
    publisher: &Publisher,
    tracker: &Shared,
    notify: &tokio::sync::Notify,
    entities: &[(&'static str, Value)],
    daemon_pid: u32,
) -> anyhow::Result<RunOutcome> {
    {
        let mut t = lock(tracker);
        t.latency = Latency::new();
        t.service = Latency::new();
        t.completed = 0;
        t.pushed = 0;
        t.last_completion = None;
    }
    let cpu_before = Cpu::sample(daemon_pid);
    let start = Instant::now();
    let mut max_lateness = Duration::ZERO;
    for i in 0..n {
        let work_id = format!("bench-{label}-{i}");
        let (entity_type, entity) = &entities[i % entities.len()];
        let body = message(entity_type, entity, &work_id);
        let intended = match rate {
            Some(r) => {
                let at = start + Duration::from_secs_f64(i as f64 / r);
                tokio::time::sleep_until(at).await;
                at
            }
            None => Instant::now(),
        };
        let published = Instant::now();
        max_lateness = max_lateness.max(published - intended);
        lock(tracker).pending.insert(
            work_id,
            Pending {
                intended,
                published: Some(published),
                received: 0,
            },
        );
        publisher.publish(&body).await?;
    }
    // Everything published: wait for the last bundles (no progress for 30 s is a failure).
    loop {
        let (completed, pending) = {
            let t = lock(tracker);
            (t.completed, t.pending.len())
        };
        if completed >= n {
            break;
        }
        if tokio::time::timeout(Duration::from_secs(30), notify.notified())
            .await
            .is_err()
        {
            let completed_now = lock(tracker).completed;
            if completed_now == completed {
                anyhow::bail!(
                    "daemon {label} run: {completed} of {n} enrichments came back, {pending} pending, none for 30 s (connector logs: target/bench/daemon/connector-*.log)"
                );
            }
        }
    }
    let cpu_after = Cpu::sample(daemon_pid);
    let mut t = lock(tracker);
    let elapsed = t.last_completion.map_or(Duration::ZERO, |l| l - start);
    Ok(RunOutcome {
        latency: std::mem::take(&mut t.latency),
        service: std::mem::take(&mut t.service),
        pushed: t.pushed,
        elapsed,
        cpu: cpu_after.since(&cpu_before, elapsed),
        max_lateness,
    })
}

/// The push strategies measured: both, or the one `IVRE_BENCH_PUSH_STRATEGY` names.
fn strategies() -> anyhow::Result<Vec<&'static str>> {
    const ALL: [&str; 2] = ["pieces", "bundle"];
    match std::env::var("IVRE_BENCH_PUSH_STRATEGY") {
        Ok(v) if !v.trim().is_empty() && v.trim() != "both" => ALL
            .iter()
            .find(|s| s.eq_ignore_ascii_case(v.trim()))
            .map(|s| vec![*s])
            .ok_or_else(|| {
                anyhow::anyhow!("IVRE_BENCH_PUSH_STRATEGY={v:?}: expected pieces, bundle or both")
            }),
        _ => Ok(ALL.to_vec()),
    }
}

/// One strategy's platform double, daemon, worker-side consumer and publisher.
struct Rig {
    strategy: &'static str,
    double: Arc<PlatformDouble>,
    daemon: Daemon,
    tracker: Shared,
    notify: Arc<tokio::sync::Notify>,
    consumer: tokio::task::JoinHandle<anyhow::Result<()>>,
    publisher: Publisher,
}

impl Rig {
    async fn start(
        strategy: &'static str,
        dir: &Path,
        concurrency: usize,
        entities: &[(&'static str, Value)],
    ) -> anyhow::Result<Rig> {
        let data = dir.join(format!("data-{strategy}"));
        build_snapshot(&data)?;
        let double = Arc::new(PlatformDouble::start(DoubleOptions::default()).await);
        for (_, entity) in entities {
            double.add_entity(entity.clone(), &["TLP:GREEN"]);
        }
        let log = dir.join(format!("connector-{strategy}.log"));
        let daemon = start_daemon(&double, &data, &log, concurrency, strategy)?;
        let ready = double
            .wait_for(|c| c.field == "pingConnector", Duration::from_secs(30))
            .await;
        anyhow::ensure!(
            ready.is_some(),
            "the connector did not register and ping within 30 s (log: {})",
            log.display()
        );
        // Consuming starts after the first ping: wait for the listen queue's consumer.
        let listen = double.names().listen;
        let deadline = Instant::now() + Duration::from_secs(30);
        while double.queue_state(&listen).await.map_or(0, |(_, c)| c) == 0 {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the connector does not consume {listen}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let tracker: Shared = Arc::default();
        let notify = Arc::new(tokio::sync::Notify::new());
        let consumer = tokio::spawn(consume_pushes(
            Arc::clone(&double),
            Arc::clone(&tracker),
            Arc::clone(&notify),
        ));
        let publisher = Publisher::new(&double).await?;
        Ok(Rig {
            strategy,
            double,
            daemon,
            tracker,
            notify,
            consumer,
            publisher,
        })
    }

    async fn run(
        &self,
        label: &str,
        n: usize,
        rate: Option<f64>,
        entities: &[(&'static str, Value)],
    ) -> anyhow::Result<RunOutcome> {
        one_run(
            &format!("{}-{label}", self.strategy),
            n,
            rate,
            &self.publisher,
            &self.tracker,
            &self.notify,
            entities,
            self.daemon.child.id(),
        )
        .await
    }

    async fn stop(self) {
        self.consumer.abort();
        let _ = self.consumer.await;
        drop(self.daemon);
        if let Ok(double) = Arc::try_unwrap(self.double) {
            double.stop().await;
        }
    }
}

async fn run_async(args: &Args, plan: &Plan, report: &mut Report) -> anyhow::Result<()> {
    let concurrency = env_number::<usize>("IVRE_BENCH_CONCURRENCY")?
        .unwrap_or(DEFAULT_CONCURRENCY)
        .max(1);
    let strategies = strategies()?;
    std::fs::create_dir_all(args.out.join("daemon"))?;
    let dir: PathBuf = std::fs::canonicalize(args.out.join("daemon"))?;
    let entities = entities();
    let mut rigs = Vec::new();
    for strategy in &strategies {
        rigs.push(Rig::start(strategy, &dir, concurrency, &entities).await?);
    }
    let setup = format!(
        "CONNECTOR_CONCURRENCY={concurrency}, AMQP listen and push (publisher confirms), {} observables of 6 types from the lab fixtures; the daemons of {} started together",
        entities.len(),
        strategies.join(" and ")
    );

    let mut lowest = f64::INFINITY;
    for rig in &rigs {
        let strategy = rig.strategy;
        rig.run("warmup", plan.warmup, None, &entities).await?;
        let saturated = rig
            .run("saturation", plan.saturation, None, &entities)
            .await?;
        let throughput = plan.saturation as f64 / saturated.elapsed.as_secs_f64().max(1e-9);
        lowest = lowest.min(throughput);
        report.add(
            SUITE,
            &format!("enrichments/s at saturation, {strategy} push"),
            throughput,
            "enrichments/s",
            Some(Target::AtLeast(TARGET_THROUGHPUT)),
            format!(
                "CONNECTOR_PUSH_STRATEGY={strategy}; {} messages published at once, {:.1} pushed messages per enrichment ({:.0} pushed/s); latency under saturation {}; {}; {setup}",
                plan.saturation,
                saturated.pushed as f64 / plan.saturation as f64,
                saturated.pushed as f64 / saturated.elapsed.as_secs_f64().max(1e-9),
                ms_summary(&saturated.latency),
                saturated.cpu
            ),
        );
    }

    let rate = match env_number::<f64>("IVRE_BENCH_DAEMON_RATE")? {
        Some(r) if r > 0.0 => r,
        _ => (lowest / 2.0).clamp(10.0, TARGET_THROUGHPUT).round(),
    };
    let n = ((rate * plan.open_loop.as_secs_f64()).round() as usize).max(1);
    for rig in &rigs {
        let strategy = rig.strategy;
        let open = rig.run("open-loop", n, Some(rate), &entities).await?;
        let detail = format!(
            "CONNECTOR_PUSH_STRATEGY={strategy}; offered {rate:.0}/s for {:.0} s ({n} messages, open loop, from the intended publish time; publisher at most {:.2} ms late); from the actual publish: {}; {}; {setup}",
            plan.open_loop.as_secs_f64(),
            open.max_lateness.as_secs_f64() * 1e3,
            ms_summary(&open.service),
            open.cpu
        );
        report.add(
            SUITE,
            &format!("latency p50 at {rate:.0}/s, {strategy} push"),
            open.latency.quantile_us(0.5) / 1000.0,
            "ms",
            None,
            "publish → last pushed message of the bundle received",
        );
        report.add(
            SUITE,
            &format!("latency p99 at {rate:.0}/s, {strategy} push"),
            open.latency.quantile_us(0.99) / 1000.0,
            "ms",
            Some(Target::AtMost(TARGET_P99_MS)),
            detail,
        );
        report.add(
            SUITE,
            &format!("latency p99.9 at {rate:.0}/s, {strategy} push"),
            open.latency.quantile_us(0.999) / 1000.0,
            "ms",
            None,
            format!("max {:.2} ms", open.latency.max_us() / 1000.0),
        );
    }
    for rig in rigs {
        rig.stop().await;
    }
    Ok(())
}
