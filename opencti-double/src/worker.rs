//! The worker side of the push queue (`ARCHITECTURE.md`, "Pushing bundles"): a lazily
//! started consumer that takes and acks the connector's messages, decodes them like the
//! platform's worker (JSON body, base64 `content` holding a bundle), splits multi-object
//! messages dependencies first, and accounts the expectations and reports of their work;
//! [`PlatformDouble::next_pushed`] and [`PlatformDouble::pushed_for_work`] hand them out.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt as _;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, Consumer};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::options::QueueNames;
use crate::platform::PlatformDouble;
use crate::records::Pushed;
use crate::state::Shared;

/// After the expected pushed messages of a work arrived, how long to keep listening for
/// unexpected extra ones.
const PUSH_GRACE: Duration = Duration::from_millis(300);
/// How often [`PlatformDouble::pushed_for_work`] re-checks the work's progress.
const PUSH_POLL: Duration = Duration::from_millis(100);

/// The worker side of the push queue: a lazily started consumer and the messages taken
/// from the queue but not yet handed out (taken while looking for another work).
#[derive(Default)]
pub(crate) struct PushReader {
    consumer: Option<(Channel, Consumer)>,
    /// The pieces of a multi-object message the worker split, not handed out yet.
    split: VecDeque<Pushed>,
    stash: VecDeque<Pushed>,
    /// How many messages of each work were handed out to the test.
    handed_out: HashMap<String, usize>,
}

impl PlatformDouble {
    /// The next message of the push queue (acked), or `None` after `timeout`.
    pub async fn next_pushed(&self, timeout: Duration) -> Option<Pushed> {
        let mut reader = self.push.lock().await;
        let pushed = match reader.stash.pop_front() {
            Some(pushed) => pushed,
            None => {
                reader
                    .receive(&self.connection, &self.shared, timeout)
                    .await?
            }
        };
        reader.count_handed_out(std::slice::from_ref(&pushed));
        Some(pushed)
    }

    /// The pushed messages of `work_id`, in order: returns once the work was processed
    /// (`toProcessed`) and the messages of that work handed out so far (by earlier calls
    /// too) reach its `addExpectations` sum, after listening `PUSH_GRACE` more for extras;
    /// or with what arrived when `timeout` expires. Messages of other works are kept for
    /// [`Self::next_pushed`] / later calls.
    pub async fn pushed_for_work(&self, work_id: &str, timeout: Duration) -> Vec<Pushed> {
        let deadline = Instant::now() + timeout;
        let mut reader = self.push.lock().await;
        let (mut found, others): (Vec<Pushed>, Vec<Pushed>) = reader
            .stash
            .drain(..)
            .partition(|p| p.work_id() == Some(work_id));
        reader.stash = others.into();
        let mut complete_since: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let progress = self.work(work_id).unwrap_or_default();
            let handed = reader.handed_out.get(work_id).copied().unwrap_or(0) + found.len();
            let complete = progress.processed > 0
                && i64::try_from(handed).unwrap_or(i64::MAX) >= progress.expectations;
            let wait = if complete {
                let until = *complete_since.get_or_insert(now) + PUSH_GRACE;
                if now >= until {
                    reader.count_handed_out(&found);
                    return found;
                }
                until - now
            } else {
                complete_since = None;
                if now >= deadline {
                    reader.count_handed_out(&found);
                    return found;
                }
                (deadline - now).min(PUSH_POLL)
            };
            match reader.receive(&self.connection, &self.shared, wait).await {
                Some(pushed) if pushed.work_id() == Some(work_id) => {
                    found.push(pushed);
                    complete_since = None;
                }
                Some(pushed) => reader.stash.push_back(pushed),
                None => {}
            }
        }
    }
}

impl PushReader {
    fn count_handed_out(&mut self, pushed: &[Pushed]) {
        for work_id in pushed.iter().filter_map(Pushed::work_id) {
            *self.handed_out.entry(work_id.to_owned()).or_default() += 1;
        }
    }

    /// Takes one message from the push queue (acks it), waiting at most `wait`, and
    /// handles it as the platform's worker does ([`work_like_the_worker`]): a
    /// multi-object message is split, and its pieces come out one by one.
    async fn receive(
        &mut self,
        connection: &Connection,
        shared: &Shared,
        wait: Duration,
    ) -> Option<Pushed> {
        if let Some(piece) = self.split.pop_front() {
            return Some(piece);
        }
        let pushed = self
            .receive_message(connection, &shared.names, wait)
            .await?;
        let mut pieces = work_like_the_worker(shared, pushed).into_iter();
        let first = pieces.next();
        self.split.extend(pieces);
        first
    }

    /// Takes one message from the push queue (acks it), waiting at most `wait`.
    async fn receive_message(
        &mut self,
        connection: &Connection,
        names: &QueueNames,
        wait: Duration,
    ) -> Option<Pushed> {
        if self.consumer.is_none() {
            self.consumer = Some(start_push_consumer(connection, names).await);
        }
        let (_, consumer) = self.consumer.as_mut()?;
        match tokio::time::timeout(wait, consumer.next()).await {
            Err(_) => None,
            Ok(Some(Ok(delivery))) => {
                delivery
                    .acker
                    .ack(BasicAckOptions::default())
                    .await
                    .unwrap_or_else(|e| {
                        panic!("platform double: cannot ack a pushed message: {e}")
                    });
                Some(decode_pushed(&delivery))
            }
            Ok(Some(Err(e))) => panic!(
                "platform double: push consumer on {} failed: {e}",
                names.push
            ),
            Ok(None) => {
                // Consumer cancelled (queue deleted?): start over next time.
                self.consumer = None;
                tokio::time::sleep(wait).await;
                None
            }
        }
    }
}

/// What the platform's worker does with a pushed message (`ARCHITECTURE.md`, "Pushing
/// bundles"), on the double's record of the work: a message of more than one object whose
/// `no_split` is not `true` is split (dependencies first), the work gets one expectation per
/// piece, and each piece is then imported; any other message is imported as it is. Each
/// imported object is reported to the work (a work the double knows); a report beyond the work's expectations
/// (several objects under `no_split:true` after `addExpectations(1)`, or a message the
/// connector announced nothing for) is a protocol error: the double panics, failing the
/// test.
fn work_like_the_worker(shared: &Shared, pushed: Pushed) -> Vec<Pushed> {
    let objects = pushed.bundle["objects"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let no_split = pushed.body.get("no_split").and_then(Value::as_bool) == Some(true);
    let pieces = if objects.len() > 1 && !no_split {
        let id = pushed.bundle.get("id").cloned().unwrap_or(Value::Null);
        dependencies_first(objects)
            .into_iter()
            .map(|object| Pushed {
                bundle: json!({"type": "bundle", "id": id, "spec_version": "2.1", "objects": [object]}),
                split_by_worker: true,
                ..pushed.clone()
            })
            .collect()
    } else {
        vec![pushed]
    };
    if let Some(work_id) = pieces[0].work_id() {
        let mut state = shared.lock();
        // A work the platform never heard of (no `workEdit` yet: raw messages of the
        // double's own tests) is not accounted.
        let Some(work) = state.works.get_mut(work_id) else {
            return pieces;
        };
        if pieces[0].split_by_worker {
            work.expectations += pieces.len() as i64;
            work.split_by_worker += 1;
        }
        for piece in &pieces {
            work.imported += piece.bundle["objects"].as_array().map_or(0, Vec::len) as i64;
        }
        if work.imported > work.expectations {
            let over = (work.imported, work.expectations);
            drop(state);
            panic!(
                "platform double (worker): work {work_id} over-reports: {} objects imported and reported for {} expectations (a message of several objects with no_split:true after addExpectations(1), or one the connector announced nothing for)",
                over.0, over.1
            );
        }
    }
    pieces
}

/// The worker's split order: each object after the objects of the message it refers to
/// (`*_ref`, `*_refs`), by the number of its dependencies, ties in message order.
fn dependencies_first(objects: Vec<Value>) -> Vec<Value> {
    fn refs(object: &Value) -> Vec<String> {
        let own = object["id"].as_str().unwrap_or_default();
        let mut out = Vec::new();
        for (key, value) in object.as_object().into_iter().flatten() {
            if key.ends_with("_ref") {
                out.extend(value.as_str().map(str::to_owned));
            } else if key.ends_with("_refs") {
                out.extend(
                    value
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_str().map(str::to_owned)),
                );
            }
        }
        out.retain(|r| r != own);
        out
    }
    fn deps(id: &str, by_id: &HashMap<String, Value>, path: &mut Vec<String>) -> u64 {
        let Some(object) = by_id.get(id) else {
            return 0;
        };
        if path.iter().any(|p| p == id) {
            return 0;
        }
        path.push(id.to_owned());
        let n = 1 + refs(object)
            .iter()
            .map(|r| deps(r, by_id, path))
            .sum::<u64>();
        path.pop();
        n
    }
    let by_id: HashMap<String, Value> = objects
        .iter()
        .filter_map(|o| Some((o["id"].as_str()?.to_owned(), o.clone())))
        .collect();
    let mut ranked: Vec<(u64, Value)> = objects
        .into_iter()
        .map(|o| {
            (
                deps(
                    o["id"].as_str().unwrap_or_default(),
                    &by_id,
                    &mut Vec::new(),
                )
                .max(1),
                o,
            )
        })
        .collect();
    ranked.sort_by_key(|(n, _)| *n);
    ranked.into_iter().map(|(_, o)| o).collect()
}

async fn start_push_consumer(connection: &Connection, names: &QueueNames) -> (Channel, Consumer) {
    let channel = connection
        .create_channel()
        .await
        .unwrap_or_else(|e| panic!("platform double: cannot open the push channel: {e}"));
    let consumer = channel
        .basic_consume(
            names.push.as_str().into(),
            "opencti-double-worker".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("platform double: cannot consume {}: {e}", names.push));
    (channel, consumer)
}

/// Reads a pushed message like the worker: JSON body, base64 `content` holding a bundle.
fn decode_pushed(delivery: &Delivery) -> Pushed {
    let text = String::from_utf8_lossy(&delivery.data);
    let body: Value = serde_json::from_slice(&delivery.data)
        .unwrap_or_else(|e| panic!("platform double: pushed message is not JSON ({e}): {text}"));
    let bundle = match body.get("content") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(content)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(content)
                .unwrap_or_else(|e| {
                    panic!("platform double: pushed `content` is not base64 ({e}): {text}")
                });
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "platform double: pushed `content` is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        }
        Some(other) => panic!("platform double: pushed `content` is not a string: {other}"),
    };
    let properties = &delivery.properties;
    Pushed {
        delivery_mode: *properties.delivery_mode(),
        content_encoding: properties
            .content_encoding()
            .as_ref()
            .map(|s| s.as_str().to_owned()),
        body,
        bundle,
        redelivered: delivery.redelivered,
        content_type: properties
            .content_type()
            .as_ref()
            .map(|s| s.as_str().to_owned()),
        has_headers: properties.headers().is_some(),
        exchange: delivery.exchange.as_str().to_owned(),
        routing_key: delivery.routing_key.as_str().to_owned(),
        split_by_worker: false,
    }
}
