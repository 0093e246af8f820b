//! What the HTTP handler shares with the test ([`Shared`]): the double's identity and
//! broker names, fixed at start, and behind one lock its record of everything the
//! connector did ([`DoubleState`]: calls, registration, stored state, works, entities,
//! pending rejections).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::broker::Broker;
use crate::faults;
use crate::options::{QueueNames, Version};
use crate::records::{GraphqlCall, Reject, WorkProgress};
use crate::resolvers::entities::Entity;

/// What the HTTP handler shares with the test.
pub(crate) struct Shared {
    pub(crate) version: Version,
    pub(crate) version_text: String,
    pub(crate) token: String,
    pub(crate) connector_id: String,
    /// `<queue_prefix>_` or empty.
    pub(crate) prefix: String,
    pub(crate) names: QueueNames,
    pub(crate) broker: Broker,
    pub(crate) state: Mutex<DoubleState>,
    /// An outage of the GraphQL endpoint (`faults`).
    pub(crate) fault: faults::FaultSwitch,
    /// Bumped after each recorded call (for [`crate::PlatformDouble::wait_for`]).
    pub(crate) calls_tx: watch::Sender<usize>,
}

#[derive(Default)]
pub(crate) struct DoubleState {
    pub(crate) calls: Vec<GraphqlCall>,
    pub(crate) stored_state: Option<String>,
    pub(crate) reset_pending: bool,
    /// The last `registerConnector` input.
    pub(crate) registration: Option<Map<String, Value>>,
    /// The last `connectorInfo` sent by `pingConnector`.
    pub(crate) connector_info: Option<Value>,
    pub(crate) entities: Vec<Entity>,
    pub(crate) rejects: Vec<(String, Reject)>,
    pub(crate) works: HashMap<String, WorkProgress>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, DoubleState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl DoubleState {
    pub(crate) fn take_reject(&mut self, field: &str, work_op: Option<&str>) -> Option<Reject> {
        let index = self
            .rejects
            .iter()
            .position(|(op, _)| op == field || Some(op.as_str()) == work_op)?;
        Some(self.rejects.remove(index).1)
    }
}
