//! From a message to a bundle: the entity (from the message, else read from the platform),
//! the scope, the platform's markings and the TLP gate ([`super::gate`]), then the
//! enrichment from the snapshot (with the live fallback on a miss).

use super::failure::{Failure, Skip};
use super::gate::{gated_request, Refused};
use super::handler::Handler;
use crate::observable::{Observable, ObservableError, SCOPES};
use crate::opencti::protocol::message::Message;
use crate::stix::markings::{assess, PlatformMarkings};
use serde_json::{Map, Value};

/// What the enrichment produced for a message.
pub(super) enum Output {
    /// A bundle to push (or hand to the playbook).
    Bundle {
        bundle: Value,
        objects: usize,
        /// Who answered: a snapshot generation, live IVRE or nobody yet
        /// ([`crate::enrich::Enrichment`]).
        answered_by: crate::enrich::AnsweredBy,
    },
    /// Nothing to send; for playbooks the received bundle goes on unchanged.
    Skip(Skip),
}

/// Why a STIX object holds no observable this connector can read.
#[derive(Debug, thiserror::Error)]
pub enum ObservableOfError {
    #[error("no `number`")]
    NoNumber,
    #[error("no hash (SHA-256, SHA-1 or MD5)")]
    NoHash,
    #[error("no `value`")]
    NoValue,
    #[error(transparent)]
    Invalid(#[from] ObservableError),
}

impl Handler {
    /// Reads the entity, applies scope and TLP, enriches from the snapshot.
    pub(super) async fn enrich(&self, message: &Message) -> Result<Output, Failure> {
        let entity_id = message.entity_id.clone().ok_or(Failure::NoEntityId)?;
        let draft = message.draft_id();
        let entity = match &message.stix_entity {
            Some(e) => e.clone(),
            None => self
                .api
                .read_stix(&entity_id, draft)
                .await?
                .ok_or(Failure::EntityUnreadable)?,
        };
        let entity = entity.as_object().cloned().unwrap_or_default();
        let stix_type = entity
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .or_else(|| message.entity_type.as_deref().map(str::to_ascii_lowercase))
            .unwrap_or_default();
        if !SCOPES.contains(&stix_type.as_str()) || !self.settings.in_scope(&stix_type) {
            return Ok(Output::Skip(Skip::OutOfScope {
                stix_type,
                scope: self.settings.scope.clone(),
            }));
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
            Ok(None) => return Err(Failure::EntityUnreadable),
            Err(e) => return Err(e.into()),
        };
        let observable = match observable_of(&stix_type, &entity) {
            Ok(o) => o,
            Err(reason) => {
                // Refused by the TLP gate first: the reason is the TLP, not the value.
                let assessment = assess(entity.get("object_marking_refs"), &platform);
                if !assessment.allowed_under(self.settings.max_tlp) {
                    return Ok(Output::Skip(Skip::TlpRefused(Box::new(Refused {
                        assessment,
                        max: self.settings.max_tlp,
                    }))));
                }
                return Err(Failure::Observable { stix_type, reason });
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
            Err(refused) => return Ok(Output::Skip(Skip::TlpRefused(refused))),
        };
        let (enrichment, outcome) = crate::live::enrich_with_fallback(
            self.serving.snapshot(),
            request,
            self.settings.enrich.clone(),
            self.fallback.clone(),
        )
        .await
        .map_err(Failure::Snapshot)?;
        self.metrics.lookup(outcome);
        self.metrics
            .skipped_values(enrichment.skipped_values as u64);
        let objects = enrichment.bundle["objects"].as_array().map_or(0, Vec::len);
        Ok(Output::Bundle {
            bundle: enrichment.bundle,
            objects,
            answered_by: enrichment.answered_by,
        })
    }
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
pub fn observable_of(
    stix_type: &str,
    entity: &Map<String, Value>,
) -> Result<Observable, ObservableOfError> {
    let text = |k: &str| entity.get(k).and_then(Value::as_str);
    let parse = |value: &str| Ok(Observable::parse_typed(stix_type, value)?);
    match stix_type {
        "autonomous-system" => match entity.get("number") {
            Some(Value::Number(n)) => parse(&n.to_string()),
            Some(Value::String(s)) => parse(s),
            _ => Err(ObservableOfError::NoNumber),
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
                None => Err(ObservableOfError::NoHash),
            }
        }
        _ => match text("value") {
            Some(v) => parse(v),
            None => Err(ObservableOfError::NoValue),
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
            let err = observable_of(ty, &obj(json!({ "value": value })))
                .unwrap_err()
                .to_string();
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
    fn granted_refs_from_either_place() {
        let top = json!({"x_opencti_granted_refs": ["identity--1"]});
        let ext = json!({"extensions": {"extension-definition--ea279b3e-5c71-4632-ac08-831c66a786ba": {"granted_refs": ["identity--2"]}}});
        assert_eq!(granted_refs(top.as_object().unwrap()), vec!["identity--1"]);
        assert_eq!(granted_refs(ext.as_object().unwrap()), vec!["identity--2"]);
    }
}
