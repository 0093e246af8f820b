//! The enrichment messages the platform sends (`docs/opencti-protocol.md` §4.3): manual and
//! automatic enrichment (6.8+, with `stix_entity` as a JSON string), playbook steps (with
//! a bundle object), and the legacy shape (only `entity_id`). Unknown keys are ignored.

use super::api::PlaybookStep;
use serde::Deserialize;
use serde_json::Value;

/// A message's `internal` part.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Internal {
    #[serde(default)]
    pub work_id: Option<String>,
    #[serde(default)]
    pub applicant_id: Option<String>,
    #[serde(default)]
    pub draft_id: Option<String>,
    #[serde(default)]
    pub playbook: Option<PlaybookStep>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct RawEvent {
    #[serde(default)]
    entity_id: Option<String>,
    #[serde(default)]
    entity_type: Option<String>,
    #[serde(default)]
    stix_entity: Option<Value>,
    #[serde(default)]
    stix_objects: Option<Value>,
    #[serde(default)]
    bundle: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
struct RawMessage {
    #[serde(default)]
    internal: Internal,
    #[serde(default)]
    event: RawEvent,
}

/// A parsed message.
#[derive(Debug, Clone)]
pub struct Message {
    pub internal: Internal,
    pub entity_id: Option<String>,
    pub entity_type: Option<String>,
    /// The entity as STIX (from `stix_entity`, or from the playbook bundle).
    pub stix_entity: Option<Value>,
    /// The playbook's bundle, as received.
    pub bundle: Option<Value>,
}

/// A body that is not an enrichment message.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("message is not JSON: {0}")]
    NotJson(String),
    #[error("`event.{field}` is not valid: {reason}")]
    BadField { field: &'static str, reason: String },
}

/// `stix_entity`/`stix_objects` come as JSON strings; accept objects too.
fn json_field(field: &'static str, value: Option<Value>) -> Result<Option<Value>, MessageError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => {
            serde_json::from_str(&s)
                .map(Some)
                .map_err(|e| MessageError::BadField {
                    field,
                    reason: e.to_string(),
                })
        }
        Some(other) => Ok(Some(other)),
    }
}

/// The `internal.work_id` and `internal.draft_id` of a body that is JSON but not a valid
/// message (best effort, so its failure can still be reported to its work).
pub fn work_of_invalid(body: &[u8]) -> Option<(String, Option<String>)> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let internal = value.get("internal")?;
    let text = |key: &str| {
        internal
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Some((text("work_id")?, text("draft_id")))
}

impl Message {
    pub fn parse(body: &[u8]) -> Result<Message, MessageError> {
        let raw: RawMessage =
            serde_json::from_slice(body).map_err(|e| MessageError::NotJson(e.to_string()))?;
        let mut stix_entity = json_field("stix_entity", raw.event.stix_entity)?;
        let _ = json_field("stix_objects", raw.event.stix_objects)?;
        let bundle = json_field("bundle", raw.event.bundle)?;
        if stix_entity.is_none() {
            // Playbooks: the entity is the bundle object whose id is `entity_id`.
            if let (Some(id), Some(objects)) = (
                raw.event.entity_id.as_deref(),
                bundle
                    .as_ref()
                    .and_then(|b| b.get("objects"))
                    .and_then(Value::as_array),
            ) {
                stix_entity = objects
                    .iter()
                    .find(|o| o.get("id").and_then(Value::as_str) == Some(id))
                    .cloned();
            }
        }
        Ok(Message {
            internal: raw.internal,
            entity_id: raw.event.entity_id,
            entity_type: raw.event.entity_type,
            stix_entity,
            bundle,
        })
    }

    pub fn is_playbook(&self) -> bool {
        self.internal.playbook.is_some()
    }

    /// `internal.work_id` when it is set (never for playbooks).
    pub fn work_id(&self) -> Option<&str> {
        self.internal.work_id.as_deref().filter(|w| !w.is_empty())
    }

    /// The playbook's bundle as received (an empty bundle when there was none).
    pub fn received_bundle(&self) -> Value {
        self.bundle
            .clone()
            .unwrap_or_else(|| serde_json::json!({"type": "bundle", "objects": []}))
    }

    pub fn draft_id(&self) -> Option<&str> {
        self.internal.draft_id.as_deref().filter(|d| !d.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn manual_auto_playbook_and_legacy_shapes() {
        let entity = json!({"id": "ipv4-addr--x", "type": "ipv4-addr", "value": "8.8.8.8"});
        let manual = json!({"internal": {"work_id": "work_1", "applicant_id": null, "draft_id": null, "mode": "manual"},
            "event": {"event_type": "INTERNAL_ENRICHMENT", "entity_id": "ipv4-addr--x", "entity_type": "IPv4-Addr",
                      "stix_entity": entity.to_string(), "stix_objects": null}, "configuration": {"x": 1}});
        let m = Message::parse(manual.to_string().as_bytes()).unwrap();
        assert_eq!(m.work_id(), Some("work_1"));
        assert_eq!(m.stix_entity, Some(entity.clone()));
        assert!(!m.is_playbook());
        let playbook = json!({"internal": {"work_id": null, "playbook": {"event_id": "e", "execution_id": "x", "playbook_id": "p",
            "data_instance_id": "ipv4-addr--x", "step_id": "s", "previous_step_id": "ps"}, "applicant_id": "u"},
            "event": {"entity_id": "ipv4-addr--x", "bundle": {"type": "bundle", "id": "bundle--1", "objects": [entity]}}});
        let p = Message::parse(playbook.to_string().as_bytes()).unwrap();
        assert!(p.is_playbook());
        assert_eq!(p.work_id(), None);
        assert_eq!(p.stix_entity.unwrap()["value"], "8.8.8.8");
        let legacy = json!({"internal": {"work_id": "w", "applicant_id": "u"}, "event": {"entity_id": "ipv4-addr--x"}});
        let l = Message::parse(legacy.to_string().as_bytes()).unwrap();
        assert!(l.stix_entity.is_none() && l.entity_type.is_none());
        assert!(Message::parse(b"{not json").is_err());
        assert!(Message::parse(br#"{"event": {"stix_entity": "{broken"}}"#).is_err());
    }

    #[test]
    fn the_work_of_an_invalid_message_is_found_when_it_can_be() {
        let bad = br#"{"internal": {"work_id": "w1", "draft_id": 7}, "event": "not an object"}"#;
        assert!(Message::parse(bad).is_err());
        assert_eq!(work_of_invalid(bad), Some(("w1".to_owned(), None)));
        let draft =
            br#"{"internal": {"work_id": "w2", "draft_id": "d"}, "event": {"entity_id": 3}}"#;
        assert_eq!(
            work_of_invalid(draft),
            Some(("w2".to_owned(), Some("d".to_owned())))
        );
        for none in [
            &b"{not json"[..],
            b"[]",
            br#"{"internal": {"work_id": 5}}"#,
            b"{}",
        ] {
            assert_eq!(work_of_invalid(none), None);
        }
    }
}
