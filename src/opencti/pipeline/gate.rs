//! The TLP gate of one message (`docs/opencti-protocol.md` §8), pure: the entity as the message
//! shows it and its markings as the platform shows them in, the enrichment request (with
//! the markings every derived object carries) or a refusal out. Nothing reaches
//! [`crate::enrich`] without passing here.

use crate::enrich::EnrichRequest;
use crate::observable::Observable;
use crate::stix::markings::{assess, Assessment, PlatformMarkings, Tlp};
use serde_json::{Map, Value};

/// Why the gate refused an entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub assessment: Assessment,
    pub max: Tlp,
}

/// Decides on the entity: every marking of `entity.object_marking_refs` and of `platform`
/// counts (see [`assess`]); above `max`, refused. Allowed, the request carries the
/// markings considered ([`Assessment::refs`]) for every derived object.
pub fn gated_request(
    observable: Observable,
    entity: Map<String, Value>,
    platform: &PlatformMarkings,
    granted_refs: Vec<String>,
    max: Tlp,
) -> Result<EnrichRequest, Box<Refused>> {
    let assessment = assess(entity.get("object_marking_refs"), platform);
    if !assessment.allowed_under(max) {
        return Err(Box::new(Refused { assessment, max }));
    }
    Ok(EnrichRequest {
        observable,
        stix_object: Some(entity),
        markings: assessment.refs,
        granted_refs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::{build, EnrichOptions, Origin, Records};
    use crate::stix::markings::MarkingDefinition;
    use serde_json::json;

    /// One kind of marking the property test places in the message, the platform, or both.
    struct MarkingCase {
        name: &'static str,
        /// The id the message shows.
        message_id: String,
        /// What the platform shows for it (`None`: the platform does not know it).
        platform: Option<MarkingDefinition>,
        /// The TLP it must count as, judged independently of the code under test
        /// (`None`: it does not count), by where it is shown.
        expected: fn(Placement, bool) -> Option<Tlp>,
    }

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Placement {
        Message,
        Platform,
        Both,
    }

    fn def(id: &str, kind: Option<&str>, value: Option<&str>) -> Option<MarkingDefinition> {
        Some(MarkingDefinition {
            id: Some(format!("internal-{id}")),
            standard_id: Some(id.to_owned()),
            definition_type: kind.map(str::to_owned),
            definition: value.map(str::to_owned),
        })
    }

    fn kinds() -> Vec<MarkingCase> {
        let tlp = |t: Tlp, name: &'static str, definition: &'static str| MarkingCase {
            name,
            message_id: t.marking_id().to_owned(),
            platform: def(t.marking_id(), Some("TLP"), Some(definition)),
            expected: match t {
                Tlp::Clear => |_, _| Some(Tlp::Clear),
                Tlp::Green => |_, _| Some(Tlp::Green),
                Tlp::Amber => |_, _| Some(Tlp::Amber),
                Tlp::AmberStrict => |_, _| Some(Tlp::AmberStrict),
                Tlp::Red => |_, _| Some(Tlp::Red),
            },
        };
        // A resolved non-TLP definition: nothing in the platform's answer, or hidden ⇒ RED.
        let non_tlp =
            |name: &'static str, kind: &'static str, value: &'static str, id: &str| MarkingCase {
                name,
                message_id: id.to_owned(),
                platform: def(id, Some(kind), Some(value)),
                expected: |placement, hidden| match placement {
                    Placement::Message => Some(Tlp::Red),
                    _ if hidden => Some(Tlp::Red),
                    _ => None,
                },
            };
        vec![
            tlp(Tlp::Clear, "TLP:CLEAR", "TLP:CLEAR"),
            tlp(Tlp::Clear, "TLP:WHITE (1.0)", "TLP:WHITE"),
            tlp(Tlp::Green, "TLP:GREEN", "TLP:GREEN"),
            tlp(Tlp::Amber, "TLP:AMBER", "TLP:AMBER"),
            tlp(Tlp::AmberStrict, "TLP:AMBER+STRICT", "TLP:AMBER+STRICT"),
            tlp(Tlp::Red, "TLP:RED", "TLP:RED"),
            MarkingCase {
                name: "TLP:GREEN (OASIS TLP 2.0 id, upper case)",
                message_id: "MARKING-DEFINITION--BAB4A63C-AED9-4CF5-A766-DFCA5ABAC2BB".into(),
                platform: def(
                    "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
                    Some("TLP"),
                    Some("tlp:green"),
                ),
                expected: |_, _| Some(Tlp::Green),
            },
            non_tlp(
                "PAP:RED",
                "PAP",
                "PAP:RED",
                "marking-definition--4e4e3b84-de45-53df-9d9b-b21207699fd8",
            ),
            non_tlp(
                "statement",
                "statement",
                "Copyright 2026 ACME",
                "marking-definition--1f7d6c1e-2c3b-4a5d-8e9f-0a1b2c3d4e5f",
            ),
            non_tlp(
                "custom",
                "X-ACME",
                "X-ACME:INTERNAL",
                "marking-definition--2a8e7d2f-3d4c-4b6e-9fa0-1b2c3d4e5f60",
            ),
            MarkingCase {
                name: "custom TLP-typed, unknown name",
                message_id: "marking-definition--3b9f8e3a-4e5d-4c7f-8ab1-2c3d4e5f6071".into(),
                platform: def(
                    "marking-definition--3b9f8e3a-4e5d-4c7f-8ab1-2c3d4e5f6071",
                    Some("TLP"),
                    Some("TLP:FOO"),
                ),
                expected: |_, _| Some(Tlp::Red),
            },
            MarkingCase {
                name: "unreadable definition",
                message_id: "marking-definition--4ca09f4b-5f6e-4d80-9bc2-3d4e5f607182".into(),
                platform: def(
                    "marking-definition--4ca09f4b-5f6e-4d80-9bc2-3d4e5f607182",
                    Some("PAP"),
                    None,
                ),
                expected: |_, _| Some(Tlp::Red),
            },
            MarkingCase {
                name: "unresolvable id",
                message_id: "marking-definition--5db1a05c-6a7f-4e91-8cd3-4e5f60718293".into(),
                platform: None,
                // "In the platform" only: shown nowhere, so it does not count.
                expected: |placement, _| (placement != Placement::Platform).then_some(Tlp::Red),
            },
        ]
    }

    /// Every combination of up to three kinds, each in the message, the platform or both,
    /// the entity shown or hidden, under every maximum: nothing is sent above the maximum,
    /// and every object sent carries every marking the gate considered.
    #[test]
    fn nothing_above_the_maximum_and_every_object_carries_the_markings() {
        let kinds = kinds();
        let placements = [Placement::Message, Placement::Platform, Placement::Both];
        let maxima = Tlp::ALL;
        let options = EnrichOptions::default();
        let records = Records {
            data: Some(crate::geo::Infos::new(
                json!({"country_code": "FR", "country_name": "France", "city": "Paris",
                       "as_num": 64496, "as_name": "EXAMPLE-AS"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            )),
            ..Records::default()
        };
        let origin = Origin {
            answered_by: crate::enrich::AnsweredBy::Snapshot("g1".into()),
            description: "test".into(),
            at: "2026-01-01T00:00:00Z".into(),
        };
        let observable = Observable::parse("192.0.2.10").unwrap();
        // Combinations: subsets of up to three kinds, with a placement each.
        let mut combinations: Vec<Vec<(usize, Placement)>> = vec![vec![]];
        for size in 1..=3 {
            let mut next = Vec::new();
            for combo in combinations.iter().filter(|c| c.len() == size - 1) {
                let start = combo.last().map_or(0, |(k, _)| k + 1);
                for k in start..kinds.len() {
                    for p in placements {
                        let mut c = combo.clone();
                        c.push((k, p));
                        next.push(c);
                    }
                }
            }
            combinations.extend(next);
        }
        let (mut cases, mut sent, mut refused) = (0usize, 0usize, 0usize);
        for combo in &combinations {
            for hidden in [false, true] {
                if hidden && combo.iter().any(|(_, p)| *p != Placement::Message) {
                    // The platform shows no marking of a hidden entity; covered by the
                    // message-only placements.
                    continue;
                }
                let mut refs = Vec::new();
                let mut shown = Vec::new();
                let mut expected = Tlp::Clear;
                let mut must_carry: Vec<String> = Vec::new();
                let mut unresolved = false;
                for (k, placement) in combo {
                    let kind = &kinds[*k];
                    if *placement != Placement::Platform {
                        refs.push(kind.message_id.clone());
                        must_carry.push(kind.message_id.to_ascii_lowercase());
                    }
                    if *placement != Placement::Message {
                        if let Some(d) = &kind.platform {
                            shown.push(d.clone());
                            must_carry
                                .push(d.standard_id.clone().unwrap_or_default().to_lowercase());
                        }
                    }
                    if let Some(t) = (kind.expected)(*placement, hidden) {
                        expected = expected.max(t);
                        unresolved |= t == Tlp::Red && kind.name != "TLP:RED";
                    }
                }
                let platform = if hidden {
                    PlatformMarkings::Hidden
                } else {
                    PlatformMarkings::Shown(shown)
                };
                let names: Vec<String> = combo
                    .iter()
                    .map(|(k, p)| format!("{} in {p:?}", kinds[*k].name))
                    .collect();
                let entity = json!({"type": "ipv4-addr", "spec_version": "2.1",
                    "id": "ipv4-addr--2f689bf9-0ff2-545f-aa61-e495eb8cecc7",
                    "value": "192.0.2.10", "object_marking_refs": refs});
                let entity = entity.as_object().cloned().unwrap_or_default();
                // The request does not depend on the maximum: its bundle is built once.
                let mut checked: Option<Vec<String>> = None;
                for max in maxima {
                    cases += 1;
                    let gated =
                        gated_request(observable.clone(), entity.clone(), &platform, vec![], max);
                    let request = match gated {
                        Err(refusal) => {
                            refused += 1;
                            assert!(
                                !expected.allowed_under(max),
                                "{names:?} hidden={hidden} refused under {max}: {refusal:?}"
                            );
                            assert_eq!(refusal.assessment.tlp, expected, "{names:?}");
                            continue;
                        }
                        Ok(request) => request,
                    };
                    assert!(
                        expected.allowed_under(max),
                        "{names:?} hidden={hidden}: {expected} sent under {max}"
                    );
                    sent += 1;
                    if let Some(markings) = &checked {
                        assert_eq!(&request.markings, markings, "{names:?}");
                        continue;
                    }
                    checked = Some(request.markings.clone());
                    let bundle = build(&request, &options, &records, &origin).bundle;
                    let objects = bundle["objects"].as_array().cloned().unwrap_or_default();
                    assert!(objects.len() > 5, "derived objects: {bundle}");
                    for object in &objects {
                        if object["type"] == "identity" && object["name"] == options.author_name {
                            continue; // the author: a fixed identity, not data (docs/reliability/gate.md)
                        }
                        let carried: Vec<&str> = object["object_marking_refs"]
                            .as_array()
                            .map(|a| a.iter().filter_map(Value::as_str).collect())
                            .unwrap_or_default();
                        for id in &must_carry {
                            assert!(
                                carried.contains(&id.as_str()),
                                "{names:?} hidden={hidden}: {} lacks {id}",
                                object["id"]
                            );
                        }
                        if unresolved {
                            assert!(
                                carried.contains(&Tlp::Red.marking_id()),
                                "{names:?}: an unresolved marking adds TLP:RED on {}",
                                object["id"]
                            );
                        }
                    }
                }
            }
        }
        // 13 kinds: 1 + 39 + 702 + 7722 combinations shown, 378 of them hidden too, under
        // 5 maxima (WHITE is CLEAR).
        eprintln!("gate: {cases} cases, {sent} sent, {refused} refused");
        assert_eq!(cases, 8842 * 5);
        assert!(sent > 1000 && refused > 1000, "{sent} {refused}");
    }
}
