//! Playbook steps (`docs/opencti-protocol.md` §7): the step goes on through
//! `playbookStepExecution` with the bundle it received, unchanged (nothing to add, or a
//! failure) or with our objects merged in. A playbook message has no work to report to.

use super::handler::Handler;
use crate::opencti::protocol::api::PlaybookStep;
use crate::opencti::protocol::graphql::GraphqlError;
use crate::opencti::protocol::message::Message;
use serde_json::Value;

impl Handler {
    /// The step goes on with the received bundle unchanged.
    pub(super) async fn playbook_unchanged(
        &self,
        step: &PlaybookStep,
        message: &Message,
    ) -> Result<(), GraphqlError> {
        let received = message.received_bundle().to_string();
        self.api
            .playbook_step(step, &execution_start(), &received, &received)
            .await
    }

    /// The step goes on with the received bundle and the objects of `ours`.
    pub(super) async fn playbook_merged(
        &self,
        step: &PlaybookStep,
        message: &Message,
        ours: &Value,
    ) -> Result<(), GraphqlError> {
        let received = message.received_bundle();
        let merged = merge_into(&received, ours);
        self.api
            .playbook_step(
                step,
                &execution_start(),
                &received.to_string(),
                &merged.to_string(),
            )
            .await
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
