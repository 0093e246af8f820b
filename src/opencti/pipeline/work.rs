//! Reporting to the platform's work (`docs/opencti-protocol.md` §4.4): a failure ends the
//! work in error (`toProcessed(inError)`; a playbook step gets its received bundle back
//! instead), retried with a doubling delay; the work is pinged while an enrichment runs.

use super::failure::Failure;
use super::handler::{Disposition, Handler};
use super::redelivery::Marker;
use crate::config::daemon::ListenProtocol;
use crate::opencti::protocol::graphql::GraphqlError;
use crate::opencti::protocol::message::Message;
use std::time::Duration;

/// How many times a failure report (`toProcessed(inError)`, or a playbook step's
/// `playbookStepExecution`) is tried before the message is requeued or acknowledged.
pub const REPORT_ATTEMPTS: u32 = 4;
/// The delay before the second attempt; it doubles after each one.
const REPORT_FIRST_DELAY: Duration = Duration::from_millis(250);

impl Handler {
    /// Ends a message in error: reported to its work (a playbook step gets the received
    /// bundle back), counted, its in-flight marker removed, acknowledged. When the report
    /// could not be made even after retries because the platform is unreachable, a first
    /// delivery is requeued instead: the outcome is recorded before the acknowledgement.
    pub(super) async fn reported(
        &self,
        message: &Message,
        marker: &Marker,
        failure: &Failure,
        redelivered: bool,
    ) -> Disposition {
        if let Err(e) = self.report(message, &failure.to_string()).await {
            if e.is_transient() && !redelivered {
                tracing::error!(entity_id = ?message.entity_id, error = %e, "cannot report the failure to the platform after {REPORT_ATTEMPTS} attempts; the message is requeued");
                return Disposition::Requeue;
            }
            tracing::error!(entity_id = ?message.entity_id, error = %e, "cannot report the failure to the platform after {REPORT_ATTEMPTS} attempts; the message is acknowledged (it was already redelivered, or the platform refuses the report)");
        }
        self.metrics.message(failure.result());
        marker.clear();
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
                self.playbook_unchanged(step, message).await
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

    /// Runs `fut`, pinging the work every `work_ping_interval` meanwhile (AMQP mode).
    pub(super) async fn with_work_pings<T>(
        &self,
        message: &Message,
        fut: impl std::future::Future<Output = T>,
    ) -> T {
        let work = match (message.work_id(), self.settings.listen) {
            (Some(w), ListenProtocol::Amqp) if self.settings.send_to_queue => w.to_owned(),
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
}
