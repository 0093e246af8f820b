//! One enrichment message in; work reported, results pushed (`docs/opencti-protocol.md` §4.4,
//! §6, §7, §8).
//!
//! Better than pycti: the caller acknowledges a message only after [`Handler::handle`]
//! returns [`Disposition::Ack`], i.e. after the results were pushed or the failure was
//! reported to the work; a message that was already being processed when the connector
//! stopped (crash, kill) is tried once more, then reported and dropped, so a poison
//! message never loops.

use super::gate::gated_request;
use super::protocol::api::{Api, Registration};
use super::protocol::graphql::GraphqlError;
use super::protocol::message::Message;
use super::protocol::push::{PushContext, Pusher};
use super::protocol::push_plan::{max_message_bytes, plan_messages, PushMode};
use crate::config::daemon::{QueueProtocol, Settings};
use crate::live::fallback::Fallback;
use crate::metrics::{MessageResult, Metrics};
use crate::observable::{Observable, SCOPES};
use crate::snapshot::serving::Serving;
use crate::stix::markings::{assess, Assessment, PlatformMarkings};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// What to do with the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Done (results pushed, or the failure reported): acknowledge.
    Ack,
    /// Not processed because of a passing failure (platform or broker down): requeue.
    Requeue,
}

/// How many times a failure report (`toProcessed(inError)`, or a playbook step's
/// `playbookStepExecution`) is tried before the message is requeued or acknowledged.
pub const REPORT_ATTEMPTS: u32 = 4;
/// The delay before the second attempt; it doubles after each one.
const REPORT_FIRST_DELAY: std::time::Duration = std::time::Duration::from_millis(250);

/// The message text pycti uses when the TLP gate refuses an observable.
pub const TLP_REFUSED: &str = "Do not send any data, TLP of the observable is greater than MAX TLP";

enum Failure {
    /// A business failure: reported to the work, message acknowledged.
    Report(String, MessageResult),
    /// A passing failure (platform or broker down): the message is requeued.
    Transient(String),
}

impl From<GraphqlError> for Failure {
    fn from(e: GraphqlError) -> Failure {
        if e.is_transient() {
            Failure::Transient(e.to_string())
        } else {
            Failure::Report(e.to_string(), MessageResult::Error)
        }
    }
}

/// What the enrichment produced for a message.
enum Output {
    /// A bundle to push (or hand to the playbook).
    Bundle { bundle: Value, objects: usize },
    /// Nothing to send; for playbooks the received bundle goes on unchanged.
    Skip {
        reason: String,
        result: MessageResult,
        in_error: bool,
    },
}

/// Processes enrichment messages.
pub struct Handler {
    pub settings: Arc<Settings>,
    pub api: Api,
    /// The snapshot (swapped when a new one is published).
    pub serving: Arc<Serving>,
    /// Publisher of bundles (AMQP queue protocol).
    pub pusher: Option<Pusher>,
    /// Whole bundles or pieces, for the platform's version (`CONNECTOR_PUSH_STRATEGY`).
    pub push_mode: PushMode,
    pub registration: Registration,
    pub metrics: Metrics,
    /// Where the redelivery guard keeps its markers.
    pub inflight_dir: PathBuf,
    /// The cache-miss fallback to live IVRE, when configured.
    pub fallback: Option<Arc<Fallback>>,
}

impl Handler {
    fn inflight_path(&self, body: &[u8]) -> PathBuf {
        let mut h = crc32fast::Hasher::new();
        h.update(body);
        self.inflight_dir
            .join(format!("{:08x}-{}", h.finalize(), body.len()))
    }

    /// Handles one delivery; `redelivered` is the broker's flag.
    pub async fn handle(&self, body: &[u8], redelivered: bool) -> Disposition {
        let message = match Message::parse(body) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "invalid message acknowledged and dropped");
                // Reported to its work when the body names one, so the work ends.
                if let (Some((work, draft)), true) = (
                    super::protocol::message::work_of_invalid(body),
                    self.settings.send_to_queue,
                ) {
                    let text = format!("invalid message: {e}");
                    if let Err(e) = self
                        .api
                        .work_processed(&work, &text, true, draft.as_deref())
                        .await
                    {
                        tracing::error!(work_id = %work, error = %e, "cannot report to the work");
                    }
                }
                self.metrics.message(MessageResult::Invalid);
                return Disposition::Ack;
            }
        };
        let marker = self.inflight_path(body);
        if redelivered {
            // A first delivery (not redelivered) needs no marker: the broker's flag says
            // whether an attempt came before. The marker counts the attempts after it.
            let attempts = std::fs::read_to_string(&marker)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                .unwrap_or(1);
            if attempts >= 2 {
                let text = "message dropped: it was being processed twice when the connector stopped (crash or kill); it is reported instead of retried again";
                tracing::error!(entity_id = ?message.entity_id, "{text}");
                return self
                    .reported(&message, &marker, text, MessageResult::Redelivered, true)
                    .await;
            }
            let _ = std::fs::create_dir_all(&self.inflight_dir);
            let _ = std::fs::write(&marker, (attempts + 1).to_string());
        }
        let started = Instant::now();
        let result = self.process(&message).await;
        self.metrics.observe_enrichment(started.elapsed());
        match result {
            Ok(()) => {
                if redelivered {
                    let _ = std::fs::remove_file(&marker);
                }
                Disposition::Ack
            }
            Err(Failure::Report(text, result)) => {
                tracing::error!(entity_id = ?message.entity_id, error = %text, "enrichment failed");
                self.metrics.error();
                self.reported(&message, &marker, &text, result, redelivered)
                    .await
            }
            Err(Failure::Transient(text)) => {
                // The platform or the broker is down: the message was not processed and
                // must not be acknowledged. The attempt ended (no crash), so it does not
                // count for the redelivery guard; waiting before the requeue keeps a long
                // outage from spinning through the queue.
                tracing::warn!(entity_id = ?message.entity_id, error = %text, "enrichment interrupted by a passing failure; the message is requeued");
                self.metrics.error();
                if redelivered {
                    let _ = std::fs::remove_file(&marker);
                }
                tokio::time::sleep(self.settings.reconnect_delay).await;
                Disposition::Requeue
            }
        }
    }

    /// Ends a message in error: reported to its work (a playbook step gets the received
    /// bundle back), counted, its in-flight marker removed, acknowledged. When the report
    /// could not be made even after retries because the platform is unreachable, a first
    /// delivery is requeued instead: the outcome is recorded before the acknowledgement.
    async fn reported(
        &self,
        message: &Message,
        marker: &std::path::Path,
        text: &str,
        result: MessageResult,
        redelivered: bool,
    ) -> Disposition {
        if let Err(e) = self.report(message, text).await {
            if e.is_transient() && !redelivered {
                tracing::error!(entity_id = ?message.entity_id, error = %e, "cannot report the failure to the platform after {REPORT_ATTEMPTS} attempts; the message is requeued");
                return Disposition::Requeue;
            }
            tracing::error!(entity_id = ?message.entity_id, error = %e, "cannot report the failure to the platform after {REPORT_ATTEMPTS} attempts; the message is acknowledged (it was already redelivered, or the platform refuses the report)");
        }
        self.metrics.message(result);
        let _ = std::fs::remove_file(marker);
        Disposition::Ack
    }

    /// Reports a failure: `toProcessed(inError)` when the message has a work, or, for a
    /// playbook step, `playbookStepExecution` with the received bundle unchanged (the
    /// playbook goes on). Retried [`REPORT_ATTEMPTS`] times with a doubling delay.
    async fn report(&self, message: &Message, text: &str) -> Result<(), GraphqlError> {
        let mut delay = REPORT_FIRST_DELAY;
        let mut attempt = 1;
        loop {
            let outcome = if let Some(step) = &message.internal.playbook {
                let received = message.received_bundle().to_string();
                self.api
                    .playbook_step(step, &execution_start(), &received, &received)
                    .await
            } else if let (Some(work), true) = (message.work_id(), self.settings.send_to_queue) {
                self.api
                    .work_processed(work, text, true, message.draft_id())
                    .await
            } else {
                Ok(())
            };
            match outcome {
                Ok(()) => return Ok(()),
                Err(e) if attempt >= REPORT_ATTEMPTS => return Err(e),
                Err(e) => {
                    tracing::warn!(work_id = ?message.work_id(), attempt, error = %e, "cannot report the failure; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
            }
        }
    }

    async fn process(&self, message: &Message) -> Result<(), Failure> {
        let work = message
            .work_id()
            .filter(|_| self.settings.send_to_queue && !message.is_playbook());
        let draft = message.draft_id();
        // `toReceived` goes out while the entity is read and enriched: it still precedes any
        // push, and its failure wins over the enrichment's outcome, as if it came first.
        let received = async {
            match work {
                Some(w) => self.api.work_received(w, draft).await,
                None => Ok(()),
            }
        };
        let enriched = self.with_work_pings(message, async {
            test_delay().await;
            self.enrich(message).await
        });
        let (received, output) = tokio::join!(received, enriched);
        received?;
        let output = output?;
        match output {
            Output::Skip {
                reason,
                result,
                in_error,
            } => {
                self.metrics.message(result);
                if let Some(step) = &message.internal.playbook {
                    let received = message.received_bundle();
                    let text = received.to_string();
                    self.api
                        .playbook_step(step, &execution_start(), &text, &text)
                        .await?;
                } else if let Some(w) = work {
                    tracing::info!(work_id = w, %reason, "nothing sent");
                    self.api.work_processed(w, &reason, in_error, draft).await?;
                }
                Ok(())
            }
            Output::Bundle { bundle, objects } => {
                if let Some(step) = &message.internal.playbook {
                    let received = message.received_bundle();
                    let merged = merge_into(&received, &bundle);
                    self.api
                        .playbook_step(
                            step,
                            &execution_start(),
                            &received.to_string(),
                            &merged.to_string(),
                        )
                        .await?;
                    self.metrics.bundle_sent(objects as u64);
                    self.metrics.message(MessageResult::Ok);
                    return Ok(());
                }
                let sent = self.push(message, &bundle).await?;
                self.metrics.bundle_sent(objects as u64);
                self.metrics.message(MessageResult::Ok);
                if let Some(w) = work {
                    self.api
                        .work_processed(
                            w,
                            &format!("Sent {sent} bundle(s) for worker import"),
                            false,
                            draft,
                        )
                        .await?;
                }
                Ok(())
            }
        }
    }

    /// Runs `fut`, pinging the work every `work_ping_interval` meanwhile (AMQP mode).
    async fn with_work_pings<T>(
        &self,
        message: &Message,
        fut: impl std::future::Future<Output = T>,
    ) -> T {
        let work = match (message.work_id(), self.settings.listen) {
            (Some(w), crate::config::daemon::ListenProtocol::Amqp)
                if self.settings.send_to_queue =>
            {
                w.to_owned()
            }
            _ => return fut.await,
        };
        tokio::pin!(fut);
        let period = self.settings.work_ping_interval;
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                out = &mut fut => return out,
                _ = ticker.tick() => {
                    if let Err(e) = self.api.work_ping(&work, message.draft_id()).await {
                        tracing::warn!(work_id = %work, error = %e, "work ping failed");
                    }
                }
            }
        }
    }

    /// Pushes the bundle; returns how many bundles (messages) were sent.
    async fn push(&self, message: &Message, bundle: &Value) -> Result<usize, Failure> {
        if !self.settings.send_to_queue {
            return Ok(0);
        }
        let draft = message.draft_id();
        match (&self.settings.queue_protocol, &self.pusher) {
            (QueueProtocol::Api, _) | (QueueProtocol::Amqp, None) => {
                self.api
                    .bundle_push(
                        &self.settings.connector_id,
                        &bundle.to_string(),
                        message.work_id(),
                        draft,
                    )
                    .await?;
                Ok(1)
            }
            (QueueProtocol::Amqp, Some(pusher)) => {
                let ctx = PushContext {
                    applicant_id: message
                        .internal
                        .applicant_id
                        .clone()
                        .or_else(|| self.registration.connector_user_id.clone()),
                    work_id: message.work_id().map(str::to_owned),
                    draft_id: draft.map(str::to_owned),
                    no_split_field: self.push_mode.no_split_field,
                };
                let plan = plan_messages(bundle, self.push_mode, &ctx, max_message_bytes());
                if plan.messages.is_empty() {
                    return Ok(0);
                }
                if let (Some(w), Some(n)) = (message.work_id(), plan.expectations) {
                    self.api.work_expectations(w, n, draft).await?;
                }
                pusher
                    .publish(&plan.messages)
                    .await
                    .map_err(|e| Failure::Transient(e.to_string()))?;
                Ok(plan.messages.len())
            }
        }
    }

    /// The gate refused: nothing is sent, the work ends in error with the reason.
    fn tlp_refused(&self, assessment: &Assessment) -> Output {
        Output::Skip {
            reason: format!(
                "{TLP_REFUSED} ({} > {}{})",
                assessment.tlp,
                self.settings.max_tlp,
                assessment.explain()
            ),
            result: MessageResult::TlpRefused,
            in_error: true,
        }
    }

    /// Reads the entity, applies scope and TLP, enriches from the snapshot.
    async fn enrich(&self, message: &Message) -> Result<Output, Failure> {
        let entity_id = message.entity_id.clone().ok_or_else(|| {
            Failure::Report(
                "Internal enrichment must be based on a specific id".into(),
                MessageResult::Error,
            )
        })?;
        let draft = message.draft_id();
        let entity = match &message.stix_entity {
            Some(e) => e.clone(),
            None => self
                .api
                .read_stix(&entity_id, draft)
                .await?
                .ok_or_else(|| {
                    Failure::Report(
                        "Unable to read/access the entity, please check the connector permissions"
                            .into(),
                        MessageResult::Error,
                    )
                })?,
        };
        let entity = entity.as_object().cloned().unwrap_or_default();
        let stix_type = entity
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .or_else(|| message.entity_type.as_deref().map(str::to_ascii_lowercase))
            .unwrap_or_default();
        if !SCOPES.contains(&stix_type.as_str()) || !self.settings.in_scope(&stix_type) {
            return Ok(Output::Skip {
                reason: format!(
                    "entity type `{stix_type}` is not in this connector's scope ({})",
                    self.settings.scope.join(", ")
                ),
                result: MessageResult::OutOfScope,
                in_error: true,
            });
        }
        // The TLP gate: every marking of the message's STIX object and every marking the
        // platform shows for the entity (objectMarking, all kinds); an unresolvable one
        // counts as TLP:RED (`gate`, `stix::markings::assess`).
        let platform = match self.api.read_markings(&entity_id, draft).await {
            Ok(Some(platform)) => platform,
            Ok(None) if message.stix_entity.is_some() => {
                tracing::warn!(%entity_id, "the platform does not show this entity to the connector; the markings of the message it cannot resolve count as TLP:RED");
                PlatformMarkings::Hidden
            }
            Ok(None) => {
                return Err(Failure::Report(
                    "Unable to read/access the entity, please check the connector permissions"
                        .into(),
                    MessageResult::Error,
                ))
            }
            Err(e) => return Err(e.into()),
        };
        let observable = match observable_of(&stix_type, &entity) {
            Ok(o) => o,
            Err(reason) => {
                // Refused by the TLP gate first: the reason is the TLP, not the value.
                let assessment = assess(entity.get("object_marking_refs"), &platform);
                if !assessment.allowed_under(self.settings.max_tlp) {
                    return Ok(self.tlp_refused(&assessment));
                }
                return Err(Failure::Report(
                    format!("cannot read the {stix_type} observable: {reason}"),
                    MessageResult::Error,
                ));
            }
        };
        let granted_refs = granted_refs(&entity);
        let request = match gated_request(
            observable,
            entity,
            &platform,
            granted_refs,
            self.settings.max_tlp,
        ) {
            Ok(request) => request,
            Err(refused) => return Ok(self.tlp_refused(&refused.assessment)),
        };
        let (enrichment, outcome) = crate::live::enrich_with_fallback(
            self.serving.snapshot(),
            request,
            self.settings.enrich.clone(),
            self.fallback.clone(),
        )
        .await
        .map_err(|e| {
            Failure::Report(
                format!("cannot read the snapshot: {e}"),
                MessageResult::Error,
            )
        })?;
        self.metrics.lookup(outcome);
        self.metrics
            .skipped_values(enrichment.skipped_values as u64);
        let objects = enrichment.bundle["objects"].as_array().map_or(0, Vec::len);
        Ok(Output::Bundle {
            bundle: enrichment.bundle,
            objects,
        })
    }
}

/// Test hook (cargo feature `test-hooks` only): `IVRE_CONNECTOR_TEST_DELAY_MS` makes
/// every enrichment that long, so tests can stop or kill the daemon while a message is
/// being processed.
#[cfg(feature = "test-hooks")]
async fn test_delay() {
    if let Some(ms) = std::env::var("IVRE_CONNECTOR_TEST_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

/// Without the `test-hooks` feature (release builds): nothing.
#[cfg(not(feature = "test-hooks"))]
async fn test_delay() {}

/// `YYYY-MM-DDTHH:MM:SS+00:00`, as pycti sends `execution_start`.
fn execution_start() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string()
}

/// The received playbook bundle with our objects: same ids replaced, new ones appended.
fn merge_into(received: &Value, ours: &Value) -> Value {
    let mut objects: Vec<Value> = received["objects"].as_array().cloned().unwrap_or_default();
    for object in ours["objects"].as_array().into_iter().flatten() {
        match objects.iter_mut().find(|o| o["id"] == object["id"]) {
            Some(slot) => *slot = object.clone(),
            None => objects.push(object.clone()),
        }
    }
    let mut out = received.as_object().cloned().unwrap_or_default();
    out.insert("type".into(), "bundle".into());
    if !out.contains_key("id") {
        out.insert("id".into(), ours["id"].clone());
    }
    out.insert("objects".into(), Value::Array(objects));
    Value::Object(out)
}

/// `x_opencti_granted_refs`, or the OpenCTI extension's `granted_refs` (§6.1).
fn granted_refs(entity: &Map<String, Value>) -> Vec<String> {
    let from_ext = entity
        .get("extensions")
        .and_then(Value::as_object)
        .and_then(|ext| ext.get("extension-definition--ea279b3e-5c71-4632-ac08-831c66a786ba"))
        .and_then(|e| e.get("granted_refs"));
    entity
        .get("x_opencti_granted_refs")
        .or(from_ext)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The observable a STIX object describes.
pub fn observable_of(stix_type: &str, entity: &Map<String, Value>) -> Result<Observable, String> {
    let text = |k: &str| entity.get(k).and_then(Value::as_str);
    let parse = |value: &str| Observable::parse_typed(stix_type, value).map_err(|e| e.to_string());
    match stix_type {
        "autonomous-system" => match entity.get("number") {
            Some(Value::Number(n)) => parse(&n.to_string()),
            Some(Value::String(s)) => parse(s),
            _ => Err("no `number`".into()),
        },
        "x509-certificate" => {
            let hashes = entity.get("hashes").and_then(Value::as_object);
            for wanted in ["sha256", "sha1", "md5"] {
                let found = hashes.and_then(|h| {
                    h.iter()
                        .find(|(k, _)| k.to_ascii_lowercase().replace('-', "") == wanted)
                        .and_then(|(_, v)| v.as_str())
                });
                if let Some(hash) = found {
                    return parse(&format!("{wanted}:{hash}"));
                }
            }
            match text("x_opencti_observable_value")
                .or_else(|| text("observable_value"))
                .or_else(|| text("value"))
            {
                Some(v) => parse(v),
                None => Err("no hash (SHA-256, SHA-1 or MD5)".into()),
            }
        }
        _ => match text("value") {
            Some(v) => parse(v),
            None => Err("no `value`".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn observables_from_stix() {
        let obj = |v: Value| v.as_object().cloned().unwrap();
        assert_eq!(
            observable_of("ipv4-addr", &obj(json!({"value": "8.8.8.8"})))
                .unwrap()
                .to_string(),
            "ipv4-addr:8.8.8.8"
        );
        assert_eq!(
            observable_of("autonomous-system", &obj(json!({"number": 64497})))
                .unwrap()
                .to_string(),
            "autonomous-system:64497"
        );
        let h = "fcf2200c62f5e3ff8dcf0c7581f41ececa21ced836cf0e2930e4662c66f59277";
        assert_eq!(
            observable_of(
                "x509-certificate",
                &obj(json!({"hashes": {"MD5": "7f91d7ef022276698aa7d233c1ad820f", "SHA-256": h}}))
            )
            .unwrap()
            .to_string(),
            format!("x509-certificate:sha256:{h}")
        );
        assert!(observable_of("x509-certificate", &obj(json!({"serial_number": "1"}))).is_err());
        assert!(observable_of("ipv4-addr", &obj(json!({"value": "not an ip"}))).is_err());
    }

    #[test]
    fn platform_observables_follow_the_platform_syntax() {
        let obj = |v: Value| v.as_object().cloned().unwrap();
        for (ty, value) in [
            ("ipv4-addr", "192.0.2.256"),
            ("ipv4-addr", "0300.0000.0002.0012"),
            ("domain-name", "192.0.2"),
            ("domain-name", "a..b"),
            ("domain-name", "bad\u{0}name.example"),
        ] {
            let err = observable_of(ty, &obj(json!({ "value": value }))).unwrap_err();
            assert!(err.contains(&format!("`{value}`")), "{err}");
        }
        let of = |ty: &str, value: &str| {
            observable_of(ty, &obj(json!({ "value": value })))
                .unwrap()
                .to_string()
        };
        assert_eq!(
            of("domain-name", "BÜCHER.example"),
            "domain-name:xn--bcher-kva.example"
        );
        assert_eq!(
            of("domain-name", "ｅｘａｍｐｌｅ．ｃｏｍ"),
            "domain-name:example.com"
        );
        let mapped =
            observable_of("ipv6-addr", &obj(json!({"value": "::ffff:192.0.2.10"}))).unwrap();
        assert_eq!(mapped.type_name(), "ipv6-addr");
        assert_eq!(mapped.lookup_ip(), Some("192.0.2.10".parse().unwrap()));
    }

    #[test]
    fn playbook_bundles_keep_received_objects() {
        let received = json!({"type": "bundle", "id": "bundle--r", "objects": [{"id": "a", "v": 1}, {"id": "b"}]});
        let ours = json!({"type": "bundle", "id": "bundle--o", "objects": [{"id": "a", "v": 2}, {"id": "c"}]});
        let merged = merge_into(&received, &ours);
        assert_eq!(merged["id"], "bundle--r");
        assert_eq!(
            merged["objects"],
            json!([{"id": "a", "v": 2}, {"id": "b"}, {"id": "c"}])
        );
    }

    #[test]
    fn granted_refs_from_either_place() {
        let top = json!({"x_opencti_granted_refs": ["identity--1"]});
        let ext = json!({"extensions": {"extension-definition--ea279b3e-5c71-4632-ac08-831c66a786ba": {"granted_refs": ["identity--2"]}}});
        assert_eq!(granted_refs(top.as_object().unwrap()), vec!["identity--1"]);
        assert_eq!(granted_refs(ext.as_object().unwrap()), vec!["identity--2"]);
    }
}
