//! Sending a message's bundle (`ARCHITECTURE.md`, "Pushing bundles"): on the push exchange
//! as planned by [`crate::opencti::protocol::push_plan`] (after `addExpectations` when
//! pieces are announced), or whole through `stixBundlePush` (API queue protocol, or no
//! broker).

use super::failure::Failure;
use super::handler::Handler;
use crate::config::daemon::QueueProtocol;
use crate::opencti::protocol::message::Message;
use crate::opencti::protocol::push::PushContext;
use crate::opencti::protocol::push_plan::{max_message_bytes, plan_messages};
use serde_json::Value;

impl Handler {
    /// Pushes the bundle; returns how many bundles (messages) were sent.
    pub(super) async fn push(&self, message: &Message, bundle: &Value) -> Result<usize, Failure> {
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
                pusher.publish(&plan.messages).await?;
                Ok(plan.messages.len())
            }
        }
    }
}
