//! Replicas (issue "Step 6", item 8): three `ivre-connector run` with the same connector id
//! consume one listen queue; 2,000 manual enrichments; one replica is killed with SIGKILL
//! halfway. Every message is handled, none is lost, and nothing is done twice but the
//! killed replica's unacknowledged messages, which the broker redelivers to the others.
//!
//! The bound on what is done twice, from the code: the listen channel's prefetch is
//! `CONNECTOR_CONCURRENCY` (`basic_qos` in `src/opencti/transport/amqp.rs`, one consumer per channel)
//! and a message is acknowledged only after its results were pushed and `toProcessed` sent
//! (`src/opencti/pipeline/handler.rs`). So when the replica dies it holds at most `CONCURRENCY`
//! unacknowledged deliveries, running or still buffered; those alone are redelivered, each
//! to one surviving replica, whose redelivery guard does not know them (its in-flight
//! markers are in its own data directory) and processes them normally. A redone work is
//! one of them: at most `CONCURRENCY` works, each received by the killed replica, and
//! finished by it at most in the window between its `toProcessed` and its ack.

use crate::daemon::{ipv4, manual, rabbitmqctl, Daemon, WAIT};
use crate::util::lab_snapshot;
use opencti_double::{DoubleOptions, GraphqlCall, PlatformDouble};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The number of messages.
const MESSAGES: usize = 2000;
const REPLICAS: usize = 3;
/// `CONNECTOR_CONCURRENCY` of each replica, hence the prefetch of its listen channel.
const CONCURRENCY: usize = 8;
/// The replica killed (its `X-Replica` header).
const KILLED: usize = 2;
/// Addresses of the lab data (7 to 17 pushed pieces each), uncapped by the TLP gate.
const OBSERVABLES: [&str; 4] = ["192.0.2.10", "203.0.113.5", "198.51.100.7", "203.0.113.99"];
/// From the first message published to the last processed: generous, for a debug build
/// on a busy machine (about 40 s on 2 shared cores).
const DEADLINE: Duration = Duration::from_secs(240);

fn work_id(i: usize) -> String {
    format!("work_replica_{i:04}")
}

/// The replica that made a call, from its `X-Replica` header (`OPENCTI_CUSTOM_HEADERS`).
fn replica(call: &GraphqlCall) -> usize {
    call.header("x-replica")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("a call without X-Replica: {:?}", call.headers))
}

fn op(call: &GraphqlCall) -> Option<(&str, &str)> {
    Some((call.work_op.as_deref()?, call.work_id()?))
}

/// What the `workEdit` calls and the pushed pieces say of one work.
#[derive(Default, Debug)]
struct Work {
    /// The replica of each `toReceived`.
    received: Vec<usize>,
    /// The replica and `inError` of each `toProcessed`.
    processed: Vec<(usize, bool)>,
    /// Each `addExpectations` count.
    expectations: Vec<i64>,
    /// How many pieces of each `action_sequence` were pushed.
    pieces: BTreeMap<u64, usize>,
}

impl Work {
    fn pushed_twice(&self) -> bool {
        self.pieces.values().any(|&n| n > 1)
    }

    /// Every piece of the (deterministic) enrichment arrived at least once.
    fn complete(&self) -> bool {
        let expected = self.expectations.iter().copied().max().unwrap_or(0);
        expected > 0 && (1..=expected as u64).all(|s| self.pieces.contains_key(&s))
    }
}

/// `(ready, unacknowledged, consumers)` of a queue, as the broker counts them.
fn broker_queue(queue: &str) -> (u64, u64, u64) {
    let listing = rabbitmqctl(&[
        "-q",
        "list_queues",
        "--no-table-headers",
        "name",
        "messages_ready",
        "messages_unacknowledged",
        "consumers",
    ]);
    let line = listing
        .lines()
        .find(|l| l.split('\t').next() == Some(queue))
        .unwrap_or_else(|| panic!("{queue} not listed:\n{listing}"));
    let n: Vec<u64> = line
        .split('\t')
        .skip(1)
        .map(|f| f.trim().parse().unwrap())
        .collect();
    (n[0], n[1], n[2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_queue_and_a_killed_one_loses_nothing() {
    let began = Instant::now();
    let dirs: Vec<tempfile::TempDir> = (0..REPLICAS).map(|_| lab_snapshot()).collect();
    let snapshots = began.elapsed();
    let double = Arc::new(PlatformDouble::start(DoubleOptions::default()).await);
    let listen = double.names().listen;
    let entities: Vec<Value> = OBSERVABLES.iter().map(|ip| ipv4(ip, &[])).collect();
    for entity in &entities {
        double.add_entity(entity.clone(), &[]);
    }

    // Three replicas: one connector id (one listen queue), a data directory each.
    let concurrency = CONCURRENCY.to_string();
    let mut daemons: Vec<Daemon> = dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let header = format!("X-Replica:{}", i + 1);
            Daemon::start(
                &double,
                dir.path(),
                &[
                    ("CONNECTOR_CONCURRENCY", &concurrency),
                    // The bookkeeping below follows pieces by `action_sequence`; both
                    // push strategies are covered by `tests/daemon.rs`.
                    ("CONNECTOR_PUSH_STRATEGY", "pieces"),
                    ("CONNECTOR_LOG_LEVEL", "error"),
                    ("CONNECTOR_PING_INTERVAL", "5"),
                    ("OPENCTI_CUSTOM_HEADERS", &header),
                ],
            )
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(60);
    while double.queue_state(&listen).await.map(|(_, c)| c) != Some(REPLICAS as u32) {
        assert!(
            Instant::now() < until,
            "the three replicas consume: {:?}",
            daemons.iter().map(Daemon::logs).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let registered: BTreeSet<usize> = double
        .calls_of("registerConnector")
        .iter()
        .map(replica)
        .collect();
    assert_eq!(registered, (1..=REPLICAS).collect());
    let consuming = began.elapsed();

    // The worker side: take every pushed piece as it comes.
    let pushed: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let drain = tokio::spawn({
        let (double, pushed, stop) = (double.clone(), pushed.clone(), stop.clone());
        async move {
            loop {
                match double.next_pushed(Duration::from_secs(1)).await {
                    Some(p) => {
                        let work = p.work_id().unwrap_or_default().to_owned();
                        let sequence = p.body["action_sequence"].as_u64().unwrap();
                        pushed.lock().unwrap().push((work, sequence));
                    }
                    None if stop.load(Ordering::SeqCst) => break,
                    None => {}
                }
            }
        }
    });

    // The platform publishes the 2,000 messages (confirmed, 100 at a time) meanwhile.
    let publisher = tokio::spawn({
        let (double, entities) = (double.clone(), entities.clone());
        async move {
            for chunk in (0..MESSAGES).collect::<Vec<_>>().chunks(100) {
                let messages: Vec<Value> = chunk
                    .iter()
                    .map(|&i| manual(&entities[i % entities.len()], &work_id(i)))
                    .collect();
                futures_util::future::join_all(messages.iter().map(|m| double.publish(m))).await;
            }
            began.elapsed()
        }
    });

    // Count the works processed; SIGKILL the replica when half of them are.
    let mut seen = 0;
    let mut processed: HashSet<String> = HashSet::new();
    let mut killed_after: Option<(usize, Duration)> = None;
    while processed.len() < MESSAGES {
        let calls = double.calls_since(seen);
        seen += calls.len();
        for call in &calls {
            if let Some(("toProcessed", work)) = op(call) {
                processed.insert(work.to_owned());
            }
        }
        if killed_after.is_none() && processed.len() >= MESSAGES / 2 {
            let daemon = &mut daemons[KILLED - 1];
            daemon.child.kill().unwrap(); // SIGKILL
            assert_eq!(daemon.wait(WAIT), Some(-1), "killed by a signal");
            killed_after = Some((processed.len(), began.elapsed()));
        }
        if began.elapsed() > consuming + DEADLINE {
            let missing: Vec<String> = (0..MESSAGES)
                .map(work_id)
                .filter(|w| !processed.contains(w))
                .collect();
            panic!(
                "{} works never processed, e.g. {:?}; logs: {:?}",
                missing.len(),
                &missing[..missing.len().min(20)],
                daemons.iter().map(Daemon::logs).collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_processed = began.elapsed();
    let published = publisher.await.unwrap();
    let (processed_at_kill, killed_at) = killed_after.expect("killed halfway");

    // Every piece of every work taken from the push queue, then a second of silence.
    let calls = double.calls();
    let mut works: BTreeMap<String, Work> = (0..MESSAGES)
        .map(|i| (work_id(i), Work::default()))
        .collect();
    for call in &calls {
        let Some((operation, id)) = op(call) else {
            continue;
        };
        let work = works
            .get_mut(id)
            .unwrap_or_else(|| panic!("a work never published: {id}"));
        let by = replica(call);
        match operation {
            "toReceived" => work.received.push(by),
            "toProcessed" => work
                .processed
                .push((by, call.variables["inError"].as_bool().unwrap())),
            "addExpectations" => work
                .expectations
                .push(call.variables["expectations"].as_i64().unwrap()),
            _ => {}
        }
    }
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let incomplete = {
            let mut pieces = pushed.lock().unwrap();
            for (id, sequence) in pieces.drain(..) {
                let work = works
                    .get_mut(&id)
                    .unwrap_or_else(|| panic!("a piece of an unknown work {id:?}"));
                *work.pieces.entry(sequence).or_default() += 1;
            }
            works.values().filter(|w| !w.complete()).count()
        };
        if incomplete == 0 {
            break;
        }
        assert!(
            Instant::now() < until,
            "{incomplete} works still miss pushed pieces"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    drain.await.unwrap();
    for (id, sequence) in pushed.lock().unwrap().drain(..) {
        *works
            .get_mut(&id)
            .unwrap()
            .pieces
            .entry(sequence)
            .or_default() += 1;
    }

    // The listen queue ends empty, nothing left unacknowledged, the two survivors on it.
    let until = Instant::now() + Duration::from_secs(20);
    let mut state = broker_queue(&listen);
    while state != (0, 0, REPLICAS as u64 - 1) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
        state = broker_queue(&listen);
    }
    assert_eq!(
        state,
        (0, 0, REPLICAS as u64 - 1),
        "listen queue (ready, unacked, consumers)"
    );

    // None lost: every work processed, without error.
    for (id, work) in &works {
        assert!(!work.processed.is_empty(), "{id} lost: {work:?}");
        assert!(
            work.processed.iter().all(|&(_, in_error)| !in_error),
            "{id} in error: {work:?}"
        );
    }
    // Work was distributed: every replica received and finished some before the kill (the
    // killed one's calls all precede it).
    let mut per_replica = [(0usize, 0usize); REPLICAS + 1];
    for work in works.values() {
        for &r in &work.received {
            per_replica[r].0 += 1;
        }
        for &(r, _) in &work.processed {
            per_replica[r].1 += 1;
        }
    }
    for (r, &(received, finished)) in per_replica.iter().enumerate().skip(1) {
        assert!(
            received > 0 && finished > 0,
            "replica {r} took part: {per_replica:?}"
        );
    }
    // Redone works: processed twice, received twice or with a piece pushed twice.
    let redone: BTreeSet<&String> = works
        .iter()
        .filter(|(_, w)| w.received.len() > 1 || w.processed.len() > 1 || w.pushed_twice())
        .map(|(id, _)| id)
        .collect();
    // The killed replica's unfinished works: each redelivered and finished by another one.
    let interrupted: BTreeSet<&String> = works
        .iter()
        .filter(|(_, w)| w.received.contains(&KILLED) && w.processed.iter().all(|p| p.0 != KILLED))
        .map(|(id, _)| id)
        .collect();
    assert!(
        !interrupted.is_empty(),
        "the kill interrupted enrichments in progress"
    );
    for id in &interrupted {
        let work = &works[*id];
        assert!(
            work.received.iter().filter(|&&r| r != KILLED).count() == 1
                && work.processed.len() == 1,
            "{id} redelivered to one survivor, which processed it: {work:?}"
        );
    }
    for id in &redone {
        let work = &works[*id];
        assert!(
            work.received.contains(&KILLED),
            "{id} redone, but not one of the killed replica's messages: {work:?}"
        );
        let survivors = |r: &usize| *r != KILLED;
        assert_eq!(
            work.received.iter().filter(|r| survivors(r)).count(),
            1,
            "{id} redelivered once: {work:?}"
        );
        assert_eq!(
            work.processed.iter().filter(|(r, _)| survivors(r)).count(),
            1,
            "{id} processed once by a survivor: {work:?}"
        );
        assert_eq!(work.received.len(), 2, "{id}: {work:?}");
        assert!(work.processed.len() <= 2, "{id}: {work:?}");
        assert!(work.pieces.values().all(|&n| n <= 2), "{id}: {work:?}");
    }
    assert!(
        redone.len() <= CONCURRENCY,
        "at most the prefetch ({CONCURRENCY}) redone: {redone:?}"
    );
    // Everything else exactly once: one toReceived, one addExpectations, one toProcessed,
    // each piece once.
    for (id, work) in works.iter().filter(|(id, _)| !redone.contains(id)) {
        assert_eq!(work.received.len(), 1, "{id}: {work:?}");
        assert_eq!(work.processed.len(), 1, "{id}: {work:?}");
        assert_eq!(work.expectations.len(), 1, "{id}: {work:?}");
        assert_eq!(
            work.pieces.len() as i64,
            work.expectations[0],
            "{id}: {work:?}"
        );
        assert!(work.pieces.values().all(|&n| n == 1), "{id}: {work:?}");
    }

    let finished_unacked: Vec<&&String> = redone
        .iter()
        .filter(|id| works[**id].processed.iter().any(|p| p.0 == KILLED))
        .collect();
    let pieces: usize = works
        .values()
        .map(|w| w.pieces.values().sum::<usize>())
        .sum();
    let twice: usize = works
        .values()
        .map(|w| w.pieces.values().filter(|&&n| n > 1).count())
        .sum();
    let survivor_logs: Vec<String> = daemons
        .iter()
        .enumerate()
        .filter(|(i, _)| i + 1 != KILLED)
        .flat_map(|(_, d)| d.logs())
        .collect();
    eprintln!(
        "replicas: {MESSAGES} messages, {pieces} pieces pushed ({twice} twice); snapshots \
         {snapshots:?}, replicas consuming {consuming:?}, all published {published:?}, replica \
         {KILLED} killed after {processed_at_kill} processed at {killed_at:?}, all processed \
         {all_processed:?}, done {:?}; per replica (received, finished): {:?}; interrupted: \
         {interrupted:?}; redone: {redone:?}, of which finished by the killed replica but not \
         acknowledged: {finished_unacked:?}; survivors' error logs: {survivor_logs:?}",
        began.elapsed(),
        &per_replica[1..],
    );
}
