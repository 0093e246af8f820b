//! Tests of the daemon's settings ([`super::daemon`]): pycti's defaults, every problem
//! reported at once, sub-configurations validated together.

use super::daemon::*;
use super::s3::S3Settings;
use super::sync::SyncSettings;
use super::{ConfigFile, SettingsError};
use crate::net::NetSettings;
use crate::stix::markings::Tlp;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

fn parse(yaml: &str) -> Result<Settings, SettingsError> {
    Settings::from_config(&ConfigFile::parse(yaml, None).unwrap())
}

const BASE: &str = "opencti:\n  url: http://opencti:8080/\n  token: secret-token\nconnector:\n  id: 6c3f2a4e-8d2b-4a7e-9a36-1b2c3d4e5f60\nivre:\n  max_tlp: TLP:AMBER\n";

#[test]
fn defaults_follow_pycti() {
    let s = parse(BASE).unwrap();
    assert_eq!(s.opencti_url, "http://opencti:8080");
    assert_eq!(s.listen, ListenProtocol::Amqp);
    assert_eq!(s.queue_protocol, QueueProtocol::Amqp);
    assert_eq!(s.push_strategy, PushStrategy::Auto);
    assert_eq!(s.max_tlp, Tlp::Amber);
    assert_eq!(s.metrics_port, 9095);
    assert_eq!(s.ping_interval, Duration::from_secs(40));
    assert_eq!(s.concurrency, 1);
    assert!(s.in_scope("IPv4-Addr") && s.in_scope("x509-certificate") && !s.in_scope("Report"));
    assert_eq!(s.api_listen.uri, "http://127.0.0.1:7070");
    assert!(
        !format!("{s:?}").contains("secret-token"),
        "the token never shows"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let err = parse("connector:\n  id: nope\n  concurrency: 0\n  listen_protocol: carrier-pigeon\nivre:\n  max_tlp: amber\n").unwrap_err();
    let text = err.to_string();
    for needle in [
        "OPENCTI_URL",
        "OPENCTI_TOKEN",
        "CONNECTOR_ID",
        "CONNECTOR_CONCURRENCY",
        "carrier-pigeon",
        "IVRE_MAX_TLP",
        "`amber`",
    ] {
        assert!(text.contains(needle), "{needle} missing in:\n{text}");
    }
    let empty_tlp =
        parse(&BASE.replace("  max_tlp: TLP:AMBER\n", "  max_tlp: \"\"\n")).unwrap_err();
    assert!(
        empty_tlp
            .to_string()
            .contains("IVRE_MAX_TLP) is set but empty"),
        "{empty_tlp}"
    );
    let null_tlp = parse(&BASE.replace("  max_tlp: TLP:AMBER\n", "  max_tlp:\n")).unwrap_err();
    assert!(
        null_tlp.to_string().contains("is set but empty"),
        "{null_tlp}"
    );
    let missing_tlp = parse(&BASE.replace("  max_tlp: TLP:AMBER\n", "  x: y\n")).unwrap_err();
    assert!(missing_tlp
        .to_string()
        .contains("IVRE_MAX_TLP) is required"));
}

#[test]
fn push_strategy_is_read() {
    let with = |v: &str| {
        parse(&BASE.replace(
            "connector:\n",
            &format!("connector:\n  push_strategy: {v}\n"),
        ))
    };
    assert_eq!(with("Bundle").unwrap().push_strategy, PushStrategy::Bundle);
    assert_eq!(with("pieces").unwrap().push_strategy, PushStrategy::Pieces);
    let err = with("split").unwrap_err().to_string();
    assert!(
        err.contains("CONNECTOR_PUSH_STRATEGY") && err.contains("split") && err.contains("pieces"),
        "{err}"
    );
}

#[test]
fn headers_and_scope_parse() {
    assert_eq!(
        custom_headers("a: 1 ;b:2:3").unwrap(),
        vec![("a".into(), "1".into()), ("b".into(), "2:3".into())]
    );
    assert!(custom_headers("nocolon").is_err());
    let s = parse(&format!("{BASE}  x: 1\n")).unwrap();
    assert_eq!(s.scope.len(), 6);
    let bad = parse(&BASE.replace("connector:\n", "connector:\n  scope: ipv4-addr, report\n"))
        .unwrap_err();
    assert!(bad.to_string().contains("`report`"));
}

#[test]
fn the_connector_id_is_derived_from_the_name_when_unset() {
    let base = BASE.replace("  id: 6c3f2a4e-8d2b-4a7e-9a36-1b2c3d4e5f60\n", "");
    let s = parse(&base).unwrap();
    assert!(s.connector_id_derived);
    assert_eq!(s.connector_id, derived_connector_id("IVRE"));
    assert!(looks_like_uuid(&s.connector_id));
    let named = parse(&base.replace("connector:\n", "connector:\n  name: IVRE lab\n")).unwrap();
    assert_ne!(named.connector_id, s.connector_id);
    assert_eq!(parse(&base).unwrap().connector_id, s.connector_id, "stable");
    let given = parse(BASE).unwrap();
    assert!(!given.connector_id_derived);
    assert_eq!(given.connector_id, "6c3f2a4e-8d2b-4a7e-9a36-1b2c3d4e5f60");
}

#[test]
fn sub_configurations_and_new_settings_are_read_together() {
    let config = ConfigFile::parse(BASE, None).unwrap().with_env(
        [
            ("IVRE_USE_SCANS", "maybe"),
            ("IVRE_MAX_RECORDS", "0"),
            ("IVRE_FALLBACK_TTL", "soon"),
            ("IVRE_SYNC_INTERVAL", "1w"),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("SSL_CERT_FILE", "/nonexistent/ca.pem"),
            ("CONNECTOR_HEALTH_BIND", "localhost"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    );
    let text = Settings::from_config(&config).unwrap_err().to_string();
    for needle in [
        "IVRE_USE_SCANS",
        "IVRE_MAX_RECORDS",
        "IVRE_FALLBACK_TTL",
        "IVRE_SYNC_INTERVAL",
        "AWS_SECRET_ACCESS_KEY",
        "/nonexistent/ca.pem",
        "CONNECTOR_HEALTH_BIND",
    ] {
        assert!(text.contains(needle), "{needle} missing in:\n{text}");
    }
    let s = parse(BASE).unwrap();
    assert_eq!(s.health_bind, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    assert_eq!(s.sync, SyncSettings::default());
    assert_eq!(s.s3, S3Settings::default());
    assert_eq!(s.net, NetSettings::default());
}
