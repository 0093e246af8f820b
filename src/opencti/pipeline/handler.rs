//! One enrichment message in; work reported, results pushed (`docs/opencti-protocol.md` §4.4,
//! §6, §7, §8). Orchestration only: the steps are in the sibling modules.
//!
//! Better than pycti: the caller acknowledges a message only after [`Handler::handle`]
//! returns [`Disposition::Ack`], i.e. after the results were pushed or the failure was
//! reported to the work; a message that was already being processed when the connector
//! stopped (crash, kill) is tried once more, then reported and dropped, so a poison
//! message never loops ([`super::redelivery`]).

use super::enrichment::Output;
use super::failure::Failure;
use super::redelivery::{Attempt, RedeliveryGuard};
use crate::config::daemon::Settings;
use crate::live::fallback::Fallback;
use crate::metrics::{MessageResult, Metrics};
use crate::opencti::protocol::api::{Api, Registration};
use crate::opencti::protocol::message::{self, Message};
use crate::opencti::protocol::push::Pusher;
use crate::opencti::protocol::push_plan::PushMode;
use crate::snapshot::serving::Serving;
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
    /// The in-flight markers of redelivered messages.
    pub redelivery: RedeliveryGuard,
    /// The cache-miss fallback to live IVRE, when configured.
    pub fallback: Option<Arc<Fallback>>,
}

impl Handler {
    /// Handles one delivery; `redelivered` is the broker's flag.
    pub async fn handle(&self, body: &[u8], redelivered: bool) -> Disposition {
        let message = match Message::parse(body) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "invalid message acknowledged and dropped");
                // Reported to its work when the body names one, so the work ends.
                if let (Some((work, draft)), true) =
                    (message::work_of_invalid(body), self.settings.send_to_queue)
                {
                    let text = Failure::Invalid(e).to_string();
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
        let marker = self.redelivery.marker(body);
        if redelivered {
            // A first delivery (not redelivered) needs no marker: the broker's flag says
            // whether an attempt came before. The marker counts the attempts after it.
            if marker.attempt() == Attempt::GiveUp {
                let failure = Failure::Redelivered;
                tracing::error!(entity_id = ?message.entity_id, "{failure}");
                return self.reported(&message, &marker, &failure, true).await;
            }
        }
        let started = Instant::now();
        let result = self.process(&message).await;
        self.metrics.observe_enrichment(started.elapsed());
        match result {
            Ok(()) => {
                if redelivered {
                    marker.clear();
                }
                Disposition::Ack
            }
            Err(failure) if failure.is_transient() => {
                // The platform or the broker is down: the message was not processed and
                // must not be acknowledged. The attempt ended (no crash), so it does not
                // count for the redelivery guard; waiting before the requeue keeps a long
                // outage from spinning through the queue.
                tracing::warn!(entity_id = ?message.entity_id, error = %failure, "enrichment interrupted by a passing failure; the message is requeued");
                self.metrics.error();
                if redelivered {
                    marker.clear();
                }
                tokio::time::sleep(self.settings.reconnect_delay).await;
                Disposition::Requeue
            }
            Err(failure) => {
                tracing::error!(entity_id = ?message.entity_id, error = %failure, "enrichment failed");
                self.metrics.error();
                self.reported(&message, &marker, &failure, redelivered)
                    .await
            }
        }
    }

    /// Work received, enrichment (with work pings), results sent, work processed.
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
        match output? {
            Output::Skip(skip) => {
                self.metrics.message(skip.result());
                if let Some(step) = &message.internal.playbook {
                    self.playbook_unchanged(step, message).await?;
                } else if let Some(w) = work {
                    let reason = skip.to_string();
                    tracing::info!(work_id = w, %reason, "nothing sent");
                    self.api.work_processed(w, &reason, true, draft).await?;
                }
                Ok(())
            }
            Output::Bundle {
                bundle,
                objects,
                answered_by,
            } => {
                if let Some(step) = &message.internal.playbook {
                    self.playbook_merged(step, message, &bundle).await?;
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
                            &format!(
                                "Sent {sent} bundle(s) for worker import (answered by {answered_by})"
                            ),
                            false,
                            draft,
                        )
                        .await?;
                }
                Ok(())
            }
        }
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
