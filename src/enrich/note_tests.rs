//! The freshness Note depends on IVRE's answer only (issue: one more Note per generation).

use super::*;
use crate::ivre::PassiveSummary;
use serde_json::json;

fn passive(first: &str, last: &str, value: &str) -> PassiveSummary {
    let record = json!({
        "addr": "192.0.2.10", "sensor": "S", "count": 1, "firstseen": first,
        "lastseen": last, "port": 80, "recontype": "HTTP_SERVER_HEADER",
        "source": "SERVER", "targetval": "", "value": value,
    });
    PassiveSummary::from_export(record.as_object().unwrap()).unwrap()
}

fn records(passive: Vec<PassiveSummary>) -> Records {
    Records {
        passive,
        ..Records::default()
    }
}

fn origin(name: &str, at: &str) -> Origin {
    Origin {
        answered_by: AnsweredBy::Snapshot(name.into()),
        description: "Enriched by IVRE from its local snapshot".into(),
        at: at.into(),
    }
}

fn notes(options: &EnrichOptions, records: &Records, origin: &Origin) -> Vec<Value> {
    let request = EnrichRequest::new(Observable::parse("192.0.2.10").unwrap(), vec![]);
    let bundle = build(&request, options, records, origin).bundle;
    bundle["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type"] == "note")
        .cloned()
        .collect()
}

#[test]
fn the_same_answer_on_another_generation_gives_the_same_note() {
    let options = EnrichOptions::default();
    let answer = records(vec![
        passive("2026-11-27 17:30:00", "2026-11-28 09:00:00", "nginx"),
        passive("2026-11-20 08:00:00", "2026-11-27 18:00:00", "Apache"),
    ]);
    let first = notes(&options, &answer, &origin("g1", "2026-12-01T00:00:00Z"));
    let second = notes(&options, &answer, &origin("g2", "2026-12-05T12:00:00Z"));
    assert_eq!(first.len(), 1);
    assert_eq!(
        first, second,
        "generation name and build time leak into the Note"
    );
    let note = &first[0];
    let content = note["content"].as_str().unwrap();
    assert!(
        content.contains("2 passive and 0 scan record(s) used")
            && content.contains("first seen 2026-11-20T08:00:00.000Z")
            && content.contains("last seen 2026-11-28T09:00:00.000Z"),
        "{content}"
    );
    assert_eq!(note["created"], "2026-11-28T09:00:00.000Z");
    assert_eq!(note["modified"], note["created"]);
    // The id is pycti's Note.generate_id(created, content).
    let id = ids::generate(
        "note",
        &ids::object([
            ("content", content.into()),
            ("created", "2026-11-28T09:00:00.000Z".into()),
        ]),
    );
    assert_eq!(note["id"], id.as_str());
}

#[test]
fn a_changed_answer_gives_another_note() {
    let options = EnrichOptions::default();
    let at = origin("g1", "2026-12-01T00:00:00Z");
    let before = notes(
        &options,
        &records(vec![passive(
            "2026-11-27 17:30:00",
            "2026-11-28 09:00:00",
            "nginx",
        )]),
        &at,
    );
    let seen_again = notes(
        &options,
        &records(vec![passive(
            "2026-11-27 17:30:00",
            "2026-12-02 10:00:00",
            "nginx",
        )]),
        &at,
    );
    let more = notes(
        &options,
        &records(vec![
            passive("2026-11-27 17:30:00", "2026-11-28 09:00:00", "nginx"),
            passive("2026-11-27 17:30:00", "2026-11-28 09:00:00", "Apache"),
        ]),
        &at,
    );
    assert_ne!(before[0]["id"], seen_again[0]["id"]);
    assert_ne!(before[0]["id"], more[0]["id"]);
    assert_ne!(seen_again[0]["id"], more[0]["id"]);
}

#[test]
fn ivre_note_false_sends_no_note() {
    let options = EnrichOptions {
        note: false,
        ..EnrichOptions::default()
    };
    let answer = records(vec![passive(
        "2026-11-27 17:30:00",
        "2026-11-28 09:00:00",
        "nginx",
    )]);
    assert!(notes(&options, &answer, &origin("g1", "2026-12-01T00:00:00Z")).is_empty());
    let on = notes(
        &EnrichOptions::default(),
        &answer,
        &origin("g1", "2026-12-01T00:00:00Z"),
    );
    assert_eq!(on.len(), 1);
}

/// The answer's name is part of every bundle id: it must not change between versions
/// (`live` and `none` as the strings they replaced); the work message has its words.
#[test]
fn who_answered_keeps_its_names_and_words() {
    let generation = AnsweredBy::Snapshot("gen-20260101T000000Z".into());
    assert_eq!(generation.name(), "gen-20260101T000000Z");
    assert_eq!(AnsweredBy::Live.name(), "live");
    assert_eq!(AnsweredBy::NoSnapshot.name(), "none");
    assert_eq!(generation.to_string(), "snapshot gen-20260101T000000Z");
    assert_eq!(AnsweredBy::Live.to_string(), "live IVRE");
    assert_eq!(AnsweredBy::NoSnapshot.to_string(), "no snapshot yet");
}
