//! Tests of the configuration sources and the table: YAML keys and pycti's booleans, the
//! environment before the YAML, durations, the table's consistency, every sub-configuration's
//! `Default` being the table's defaults, and variable names quoted only in the table.
use super::table::{self, Kind, SETTINGS};
use super::*;
use std::collections::HashSet;

fn env(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn yaml_keys_and_pycti_booleans() {
    let c = ConfigFile::parse(
        "ivre:\n  data_dir: /srv/ivre\n  use_scans: 'no'\n  geoip_dir:\nopencti:\n  url: http://x\n",
        None,
    )
    .unwrap();
    assert_eq!(c.value(&table::IVRE_DATA_DIR).as_deref(), Some("/srv/ivre"));
    assert_eq!(c.data_dir(None), PathBuf::from("/srv/ivre"));
    assert_eq!(c.data_dir(Some(Path::new("/cli"))), PathBuf::from("/cli"));
    assert!(!c.flag(&table::IVRE_USE_SCANS).unwrap());
    assert!(c.flag(&table::IVRE_USE_PASSIVE).unwrap(), "the default");
    assert_eq!(c.value(&table::IVRE_GEOIP_DIR), None, "empty is unset");
    let bad = ConfigFile::parse("ivre:\n  use_scans: 'TRUE'\n", None).unwrap();
    let err = bad.flag(&table::IVRE_USE_SCANS).unwrap_err();
    assert!(err.to_string().contains("ivre.use_scans"), "{err}");
}

#[test]
fn the_environment_wins_and_empty_means_unset() {
    let c = ConfigFile::parse("ivre:\n  data_dir: /yaml\n  use_scans: 'no'\n", None)
        .unwrap()
        .with_env(env(&[("IVRE_USE_SCANS", "True"), ("IVRE_DATA_DIR", "")]));
    assert!(c.flag(&table::IVRE_USE_SCANS).unwrap());
    // A set but empty variable still wins over the file (pycti), and counts as unset.
    assert_eq!(c.value(&table::IVRE_DATA_DIR), None);
    assert_eq!(c.data_dir(None), PathBuf::from(DEFAULT_DATA_DIR));
    let only_env = ConfigFile::from_env(env(&[("CONNECTOR_METRICS_PORT", "70000")]));
    let err = only_env.port(&table::CONNECTOR_METRICS_PORT).unwrap_err();
    assert!(err.to_string().contains("CONNECTOR_METRICS_PORT"), "{err}");
}

#[test]
fn the_sample_configuration_parses() {
    let sample = include_str!("../../config.yml.sample");
    let c = ConfigFile::parse(sample, None).unwrap();
    assert_eq!(c.value(&table::IVRE_MAX_TLP).as_deref(), Some("TLP:AMBER"));
    assert_eq!(c.data_dir(None), PathBuf::from("./ivre-data"));
    assert!(!c.flag(&table::IVRE_USE_SCANS_AS).unwrap());
    assert!(c.flag(&table::IVRE_USE_PASSIVE).unwrap());
    assert_eq!(c.value(&table::IVRE_DB_URL), None);
    // With the required values filled in (CONNECTOR_ID may stay unset), the sample is a
    // valid daemon configuration.
    let settings = super::daemon::Settings::from_config(&c);
    assert!(
        settings.is_ok(),
        "{:?}",
        settings.err().map(|e| e.to_string())
    );
}

#[test]
fn bad_yaml_names_the_file() {
    let err = ConfigFile::parse("ivre: [", Some(PathBuf::from("x.yml"))).unwrap_err();
    assert!(err.to_string().contains("x.yml"));
}

#[test]
fn durations_parse() {
    let d = |s| parse_duration(s).map(|d| d.as_secs());
    assert_eq!(d("90"), Ok(90));
    assert_eq!(d("30s"), Ok(30));
    assert_eq!(d("30m"), Ok(1800));
    assert_eq!(d(" 1h "), Ok(3600));
    assert_eq!(d("1d"), Ok(86400));
    assert!(matches!(d("0"), Err(DurationError::Zero(_))));
    assert!(matches!(d("1w"), Err(DurationError::Unit(_))));
    assert!(matches!(d("h"), Err(DurationError::Number(_))));
    assert!(matches!(
        d("99999999999999999d"),
        Err(DurationError::Number(_))
    ));
}

#[test]
fn the_table_is_consistent() {
    let mut envs = HashSet::new();
    let mut keys = HashSet::new();
    for s in SETTINGS {
        assert!(envs.insert(s.env), "{} declared twice", s.env);
        if let Some(key) = s.yaml_key() {
            assert!(keys.insert(key.clone()), "YAML key {key} declared twice");
        }
        if let Some(default) = s.default {
            check(s, default).unwrap_or_else(|e| panic!("default of {}: {e}", s.env));
        }
        assert!(
            !(s.required && s.default.is_some()),
            "{} is required and has a default",
            s.env
        );
        assert!(!s.description.is_empty(), "{} has no description", s.env);
        if let Kind::Int { min, max } = s.kind {
            assert!(min <= max, "{}", s.env);
        }
        assert_eq!(table::by_env(s.env), Some(*s));
    }
    assert_eq!(
        table::CONNECTOR_SCOPE.default.map(parse_list),
        Some(crate::observable::SCOPES.map(String::from).to_vec()),
        "CONNECTOR_SCOPE's default is every type the connector enriches"
    );
    for name in table::TLP_NAMES {
        assert!(crate::stix::markings::Tlp::parse(name).is_ok(), "{name}");
    }
    assert_eq!(
        table::IVRE_MAX_RECORDS.default,
        Some(
            crate::enrich::EnrichOptions::default()
                .max_records
                .to_string()
                .as_str()
        )
    );
}

/// The `Default` of every sub-configuration is what an empty configuration reads (the
/// table's defaults), and those defaults raise no problem.
#[test]
fn the_defaults_of_every_sub_configuration_are_the_tables() {
    let empty = ConfigFile::default();
    let net = crate::net::NetSettings::from_config(&empty).unwrap();
    assert_eq!(net, crate::net::NetSettings::default());
    assert_eq!(
        net.servers.max_connections.to_string(),
        table::CONNECTOR_HTTP_MAX_CONNECTIONS.default.unwrap()
    );
    assert_eq!(
        crate::enrich::EnrichOptions::from_config(&empty).unwrap(),
        crate::enrich::EnrichOptions::default()
    );
    let fallback = crate::live::fallback::FallbackSettings::from_config(&empty).unwrap();
    assert!(!fallback.enabled);
    assert_eq!(
        fallback.ttl.as_secs().to_string(),
        table::IVRE_FALLBACK_TTL.default.unwrap()
    );
    assert_eq!(
        sync::SyncSettings::from_config(&empty).unwrap(),
        sync::SyncSettings::default()
    );
    let s3 = s3::S3Settings::from_config(&empty).unwrap();
    assert_eq!(Some(s3.region.as_str()), table::AWS_REGION.default);
    assert_eq!(Some(DEFAULT_DATA_DIR), table::IVRE_DATA_DIR.default);
}

#[test]
fn readers_apply_defaults_and_bounds() {
    let none = ConfigFile::default();
    assert_eq!(none.port(&table::CONNECTOR_METRICS_PORT).unwrap(), 9095);
    assert_eq!(
        none.duration(&table::IVRE_SYNC_INTERVAL).unwrap().as_secs(),
        3600
    );
    assert_eq!(
        none.choice(&table::CONNECTOR_LISTEN_PROTOCOL).unwrap(),
        Some("AMQP")
    );
    assert_eq!(none.optional_integer(&table::MQ_PORT).unwrap(), None);
    assert!(matches!(
        none.integer(&table::MQ_PORT),
        Err(ConfigError::Required { .. })
    ));
    let c = ConfigFile::from_env(env(&[
        ("CONNECTOR_CONCURRENCY", "0"),
        ("CONNECTOR_LISTEN_PROTOCOL", "api"),
        ("IVRE_SNAPSHOT_POLL", "2x"),
        ("CONNECTOR_HEALTH_BIND", "::1"),
    ]));
    let err = c.integer(&table::CONNECTOR_CONCURRENCY).unwrap_err();
    assert_eq!(
        err.to_string(),
        "connector.concurrency (CONNECTOR_CONCURRENCY): 0 is not between 1 and 256"
    );
    assert_eq!(
        c.choice(&table::CONNECTOR_LISTEN_PROTOCOL).unwrap(),
        Some("API")
    );
    assert!(c.duration(&table::IVRE_SNAPSHOT_POLL).is_err());
    assert_eq!(
        c.ip(&table::CONNECTOR_HEALTH_BIND).unwrap().to_string(),
        "::1"
    );
}

/// No setting's variable name is written outside the table (test code and the test hooks
/// aside): everything reads it through `table`. The test hooks are read only inside items
/// compiled with the `test-hooks` feature.
#[test]
fn env_names_are_only_written_in_the_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exempt = [
        "IVRE_SYNC_PAUSE_AT",
        "IVRE_CONNECTOR_TEST_DELAY_MS",
        "IVRE_CONNECTOR_TEST_PUSH_MAX_BYTES",
    ];
    let mut offenders = Vec::new();
    let mut stack = vec![root.join("src"), root.join("sync/src")];
    while let Some(path) = stack.pop() {
        if path.ends_with("src/config/table.rs") {
            continue;
        }
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.extension().is_none_or(|e| e != "rs") || name.ends_with("tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // Unit tests sit at the end of a file.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for prefix in ["\"OPENCTI_", "\"CONNECTOR_", "\"IVRE_", "\"MQ_", "\"AWS_"] {
            for (at, _) in code.match_indices(prefix) {
                let name: String = code[at + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if !exempt.contains(&name.as_str()) {
                    offenders.push(format!("{}: {name}", path.display()));
                } else {
                    // A test hook is read only in code behind the `test-hooks` feature:
                    // the nearest item attribute before it says so.
                    let before = &code[..at];
                    let gated = before
                        .rfind("#[cfg(feature = \"test-hooks\")]")
                        .is_some_and(|g| !before[g..].contains("\n}\n"));
                    if !gated {
                        offenders.push(format!(
                            "{}: {name} outside #[cfg(feature = \"test-hooks\")]",
                            path.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "read these through config::table: {offenders:?}"
    );
}
