//! The exposition text, and for each metric family: a known event changes exactly the
//! series it should, by the amount it should, and no other.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

/// Every sample of the exposition: series (name and labels) → value.
fn samples(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("a sample line");
            (series.to_owned(), value.to_owned())
        })
        .collect()
}

/// The samples that `event` changed, as `series value` lines (sorted).
fn changes(event: impl FnOnce(&Metrics)) -> Vec<String> {
    let m = Metrics::new("", "").unwrap();
    let before = samples(&m.render());
    event(&m);
    let after = samples(&m.render());
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "an event created or removed a series"
    );
    after
        .into_iter()
        .filter(|(series, value)| before.get(series) != Some(value))
        .map(|(series, value)| format!("{series} {value}"))
        .collect()
}

fn sorted(lines: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    out.sort();
    out
}

#[test]
fn names_without_prefix() {
    let m = Metrics::new("", "").unwrap();
    let text = m.render();
    for line in [
        "# TYPE bundles_sent_total counter",
        "bundles_sent_total 0",
        "records_sent_total 0",
        "ping_api_total 0",
        "ping_api_errors_total 0",
        "errors_total 0",
        "client_errors_total 0",
        "# TYPE state gauge",
        "state{state=\"idle\"} 1",
        "state{state=\"running\"} 0",
        "state{state=\"stopped\"} 0",
        "# TYPE enrichment_duration_seconds histogram",
        "enrichment_duration_seconds_bucket{le=\"0.00001\"} 0",
        "enrichment_duration_seconds_bucket{le=\"10\"} 0",
        "enrichment_duration_seconds_bucket{le=\"+Inf\"} 0",
        "enrichment_duration_seconds_count 0",
        "lookups_total{outcome=\"hit\"} 0",
        "lookups_total{outcome=\"miss\"} 0",
        "lookups_total{outcome=\"fallback\"} 0",
        "fallback_breaker_open 0",
        "snapshot_age_seconds 0",
        "messages_total{result=\"ok\"} 0",
        "messages_total{result=\"error\"} 0",
        "messages_total{result=\"invalid\"} 0",
        "messages_total{result=\"redelivered\"} 0",
        "messages_total{result=\"out_of_scope\"} 0",
        "messages_total{result=\"tlp_refused\"} 0",
        "snapshot_served 0",
        "sync_runs_total{outcome=\"ok\",source=\"pull\"} 0",
        "sync_runs_total{outcome=\"error\",source=\"publish\"} 0",
        "sync_last_success_timestamp_seconds 0",
        "snapshot_open_failures_total 0",
        "snapshot_open_failed 0",
        "skipped_values_total 0",
    ] {
        assert!(has_line(&text, line), "missing {line:?} in\n{text}");
    }
    // No identity until it is set; pycti's runs_total is not exported.
    assert!(!text.contains("identity_info{"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("runs_total")), "{text}");
    // Every name is rendered, and every labelled series exists from the start.
    for name in names::ALL.into_iter().filter(|n| *n != names::IDENTITY) {
        assert!(text.contains(&format!("# TYPE {name} ")), "{name}: {text}");
    }
    let series = samples(&text);
    assert_eq!(
        series
            .keys()
            .filter(|s| s.starts_with("sync_runs_total{"))
            .count(),
        SyncSource::ALL.len() * SyncOutcome::ALL.len()
    );
    assert_eq!(
        series
            .keys()
            .filter(|s| s.starts_with("messages_total{"))
            .count(),
        MessageResult::ALL.len()
    );
}

#[test]
fn names_with_prefix() {
    let text = Metrics::new("opencti", "connector").unwrap().render();
    assert!(
        has_line(&text, "opencti_connector_bundles_sent_total 0"),
        "{text}"
    );
    assert!(
        has_line(
            &text,
            "opencti_connector_state{opencti_connector_state=\"idle\"} 1"
        ),
        "{text}"
    );
    assert!(
        has_line(&text, "opencti_connector_lookups_total{outcome=\"hit\"} 0"),
        "{text}"
    );
    let text = Metrics::new("ns", "").unwrap().render();
    assert!(has_line(&text, "ns_ping_api_total 0"), "{text}");
    assert!(has_line(&text, "ns_state{ns_state=\"idle\"} 1"), "{text}");
    let text = Metrics::new("", "sub").unwrap().render();
    assert!(has_line(&text, "sub_errors_total 0"), "{text}");
    assert!(has_line(&text, "sub_snapshot_age_seconds 0"), "{text}");
    for (ns, sub) in [("my-ns", ""), ("", "1sub"), ("a:b", ""), ("é", "")] {
        let err = Metrics::new(ns, sub).unwrap_err();
        assert!(matches!(err, MetricsError::InvalidPrefix { .. }), "{err}");
        assert!(err.to_string().contains("CONNECTOR_METRICS_"), "{err}");
    }
}

#[test]
fn bundles_and_records_sent() {
    assert_eq!(
        changes(|m| {
            m.bundle_sent(3);
            m.clone().bundle_sent(2);
        }),
        sorted(&["bundles_sent_total 2", "records_sent_total 5"])
    );
}

#[test]
fn pings_count_apart_from_their_errors() {
    assert_eq!(
        changes(|m| {
            m.ping(true);
            m.ping(true);
        }),
        sorted(&["ping_api_total 2"])
    );
    assert_eq!(
        changes(|m| m.ping(false)),
        sorted(&["ping_api_errors_total 1"])
    );
}

#[test]
fn errors_and_client_errors() {
    assert_eq!(changes(Metrics::error), sorted(&["errors_total 1"]));
    assert_eq!(
        changes(Metrics::client_error),
        sorted(&["client_errors_total 1"])
    );
}

#[test]
fn state_is_one_value_at_a_time() {
    assert_eq!(
        changes(|m| m.set_state(State::Running)),
        sorted(&["state{state=\"idle\"} 0", "state{state=\"running\"} 1"])
    );
    assert_eq!(
        changes(|m| {
            m.set_state(State::Running);
            m.set_state(State::Stopped);
        }),
        sorted(&["state{state=\"idle\"} 0", "state{state=\"stopped\"} 1"])
    );
}

#[test]
fn identity_is_one_series() {
    let m = Metrics::new("", "").unwrap();
    m.set_identity("c1", "IVRE", "INTERNAL_ENRICHMENT", "ipv4-addr,ipv6-addr");
    m.set_identity("c2", "IVRE", "INTERNAL_ENRICHMENT", "ipv4-addr");
    let text = m.render();
    let identities: Vec<_> = samples(&text)
        .into_iter()
        .filter(|(s, _)| s.starts_with("identity_info{"))
        .collect();
    assert_eq!(
        identities,
        vec![(
            "identity_info{id=\"c2\",name=\"IVRE\",scope=\"ipv4-addr\",type=\"INTERNAL_ENRICHMENT\"}"
                .to_owned(),
            "1".to_owned()
        )],
        "{text}"
    );
}

#[test]
fn enrichment_duration_fills_its_buckets() {
    let mut expected: Vec<String> = ENRICHMENT_BUCKETS
        .iter()
        .filter(|le| **le >= 0.000_02)
        .map(|le| format!("enrichment_duration_seconds_bucket{{le=\"{le}\"}} 1"))
        .collect();
    expected.extend([
        "enrichment_duration_seconds_bucket{le=\"+Inf\"} 1".to_owned(),
        "enrichment_duration_seconds_count 1".to_owned(),
        "enrichment_duration_seconds_sum 0.00002".to_owned(),
    ]);
    expected.sort();
    assert_eq!(
        changes(|m| m.observe_enrichment(Duration::from_micros(20))),
        expected
    );
    let beyond = changes(|m| m.observe_enrichment(Duration::from_secs(20)));
    assert_eq!(
        beyond,
        sorted(&[
            "enrichment_duration_seconds_bucket{le=\"+Inf\"} 1",
            "enrichment_duration_seconds_count 1",
            "enrichment_duration_seconds_sum 20",
        ])
    );
}

#[test]
fn each_lookup_outcome_counts_in_its_own_series() {
    for outcome in LookupOutcome::ALL {
        assert_eq!(
            changes(|m| m.lookup(*outcome)),
            vec![format!(
                "lookups_total{{outcome=\"{}\"}} 1",
                outcome.as_str()
            )],
            "{outcome:?}"
        );
    }
}

#[test]
fn each_message_result_counts_in_its_own_series() {
    for result in MessageResult::ALL {
        assert_eq!(
            changes(|m| m.message(*result)),
            vec![format!(
                "messages_total{{result=\"{}\"}} 1",
                result.as_str()
            )],
            "{result:?}"
        );
    }
}

#[test]
fn breaker_and_skipped_values() {
    assert_eq!(
        changes(|m| m.set_breaker_open(true)),
        sorted(&["fallback_breaker_open 1"])
    );
    assert!(changes(|m| {
        m.set_breaker_open(true);
        m.set_breaker_open(false);
    })
    .is_empty());
    assert_eq!(
        changes(|m| m.skipped_values(4)),
        sorted(&["skipped_values_total 4"])
    );
}

#[test]
fn served_snapshot() {
    assert_eq!(
        changes(|m| {
            m.set_snapshot_served(true);
            m.set_snapshot_age(3600.5);
        }),
        sorted(&["snapshot_age_seconds 3600.5", "snapshot_served 1"])
    );
    assert_eq!(
        changes(|m| {
            m.set_snapshot_open_failures(2, true);
            m.set_snapshot_open_failures(3, true);
        }),
        sorted(&["snapshot_open_failed 1", "snapshot_open_failures_total 3"])
    );
}

#[test]
fn each_upkeep_run_counts_in_its_own_series() {
    for source in SyncSource::ALL {
        let failed = changes(|m| m.sync_run(*source, false));
        assert_eq!(
            failed,
            vec![format!(
                "sync_runs_total{{outcome=\"error\",source=\"{}\"}} 1",
                source.as_str()
            )]
        );
        let ok = changes(|m| m.sync_run(*source, true));
        assert_eq!(ok.len(), 2, "{ok:?}");
        assert!(
            ok[0].starts_with("sync_last_success_timestamp_seconds 1"),
            "{ok:?}"
        );
        assert_eq!(
            ok[1],
            format!(
                "sync_runs_total{{outcome=\"ok\",source=\"{}\"}} 1",
                source.as_str()
            )
        );
    }
}

#[test]
fn docs_list_every_metric() {
    let doc = include_str!("../../docs/metrics.md");
    for name in names::ALL {
        assert!(
            doc.contains(&format!("`{name}`")),
            "docs/metrics.md does not document `{name}`"
        );
    }
    for label in MessageResult::ALL
        .iter()
        .map(|v| v.as_str())
        .chain(LookupOutcome::ALL.iter().map(|v| v.as_str()))
        .chain(State::ALL.iter().map(|v| v.as_str()))
        .chain(SyncSource::ALL.iter().map(|v| v.as_str()))
        .chain(SyncOutcome::ALL.iter().map(|v| v.as_str()))
    {
        assert!(
            doc.contains(&format!("`{label}`")),
            "docs/metrics.md does not list `{label}`"
        );
    }
}
