//! `ivre-connector demo`: a snapshot built from real IVRE 0.9.20 exports embedded in
//! the binary (the lab dataset of `tests/data/`), then lookups and enrichments of each
//! observable type.

use anyhow::{Context, Result};
use ivre_connector::enrich::{self, EnrichOptions, EnrichRequest};
use ivre_connector::ivre::RecordKind;
use ivre_connector::lookup;
use ivre_connector::observable::Observable;
use ivre_connector::snapshot::{self, DataDir, ImportOptions, Snapshot};
use std::path::Path;

/// Embedded exports: `ivre scancli --json`, `ivre view --json`, `ivre ipinfo --json`.
const EXPORTS: [(&str, RecordKind, &[u8]); 3] = [
    (
        "scancli.jsonl",
        RecordKind::Scan,
        include_bytes!("../../../tests/data/ivre-0.9.20/scancli.jsonl"),
    ),
    (
        "view.jsonl",
        RecordKind::View,
        include_bytes!("../../../tests/data/ivre-0.9.20/view.jsonl"),
    ),
    (
        "ipinfo.jsonl",
        RecordKind::Passive,
        include_bytes!("../../../tests/data/ivre-0.9.20/ipinfo.jsonl"),
    ),
];

/// Embedded GeoLite2-style test databases covering the demo addresses.
const MMDB: [(&str, &[u8]); 3] = [
    (
        "GeoLite2-City.mmdb",
        include_bytes!("../../../tests/data/geoip/GeoLite2-City.mmdb"),
    ),
    (
        "GeoLite2-Country.mmdb",
        include_bytes!("../../../tests/data/geoip/GeoLite2-Country.mmdb"),
    ),
    (
        "GeoLite2-ASN.mmdb",
        include_bytes!("../../../tests/data/geoip/GeoLite2-ASN.mmdb"),
    ),
];

/// What the demo looks up: one observable of each type.
pub const OBSERVABLES: [&str; 7] = [
    "ipv4-addr:192.0.2.10",
    "ipv6-addr:2001:db8::53",
    "domain-name:example.com",
    "mac-addr:00:1B:21:3A:4F:5C",
    "autonomous-system:AS64497",
    "x509-certificate:sha256:fcf2200c62f5e3ff8dcf0c7581f41ececa21ced836cf0e2930e4662c66f59277",
    "198.51.100.99",
];

/// Runs the demo; returns the exit code.
pub fn run(json: bool, keep: Option<&Path>) -> Result<i32> {
    let work = tempfile::tempdir().context("cannot create a temporary directory")?;
    let inputs_dir = work.path().join("exports");
    let geoip_dir = work.path().join("geoip");
    std::fs::create_dir_all(&inputs_dir)?;
    std::fs::create_dir_all(&geoip_dir)?;
    let mut inputs = Vec::new();
    for (name, kind, bytes) in EXPORTS {
        let path = inputs_dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        inputs.push((kind, path));
    }
    for (name, bytes) in MMDB {
        std::fs::write(geoip_dir.join(name), bytes)?;
    }
    let data_root = keep
        .map(Path::to_owned)
        .unwrap_or_else(|| work.path().join("data"));
    let data = DataDir::new(&data_root);
    let report = snapshot::import(
        &data,
        &ImportOptions {
            inputs,
            geoip_dir: Some(geoip_dir),
            strict: true,
            ..Default::default()
        },
    )
    .context("cannot build the demo snapshot")?;
    let m = &report.manifest;
    println!(
        "Built snapshot {} in {}: {} scan hosts, {} view hosts, {} passive records, geo: {}",
        m.generation,
        data_root.display(),
        m.counts.get("scans").unwrap_or(&0),
        m.counts.get("view").unwrap_or(&0),
        m.counts.get("passive").unwrap_or(&0),
        m.geoip
            .iter()
            .map(|g| format!("{} ({})", g.database_type, g.role))
            .collect::<Vec<_>>()
            .join(", "),
    );
    println!();
    let snap = Snapshot::open(&data)?;
    for input in OBSERVABLES {
        let obs = Observable::parse(input)?;
        let result = lookup::lookup(&snap, &obs, None)?;
        if json {
            println!("{}", result.to_json_line(true));
            continue;
        }
        let geo = result
            .data
            .as_ref()
            .map(|d| {
                let field = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or("-").to_owned();
                let asn = d
                    .get("as_num")
                    .map(|v| format!("AS{v}"))
                    .unwrap_or_else(|| "-".into());
                format!(
                    " | geo: {} {} {} ({})",
                    field("country_code"),
                    field("city"),
                    asn,
                    field("address_type")
                )
            })
            .unwrap_or_default();
        println!(
            "{:<40} {} passive, {} scans, {} view{}",
            obs.to_string().chars().take(40).collect::<String>(),
            result.passive.len(),
            result.scans.len(),
            result.view.len(),
            geo
        );
    }
    println!();
    println!("Enrichment (one STIX 2.1 bundle per observable, as the connector sends them):");
    let options = EnrichOptions::default();
    for input in OBSERVABLES {
        let obs = Observable::parse(input)?;
        let result = enrich::enrich(
            &snap,
            &EnrichRequest::new(obs.clone(), Vec::new()),
            &options,
        )?;
        if json {
            println!("{}", result.bundle);
            continue;
        }
        let objects = result.bundle["objects"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let relationships = objects
            .iter()
            .filter(|o| o["type"] == "relationship")
            .count();
        let labels: Vec<String> = objects
            .iter()
            .flat_map(|o| {
                o["x_opencti_labels"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|l| l.as_str().map(str::to_owned))
            .collect();
        println!(
            "{:<40} {} objects, {} relationships{}",
            obs.to_string().chars().take(40).collect::<String>(),
            objects.len() - relationships,
            relationships,
            if labels.is_empty() {
                String::new()
            } else {
                format!(", labels: {}", labels.join(", "))
            }
        );
    }
    println!();
    match keep {
        Some(dir) => println!(
            "Try: ivre-connector --data-dir {0} lookup www.example.com\n     ivre-connector --data-dir {0} enrich --pretty www.example.com",
            dir.display()
        ),
        None => {
            println!("Run with --json for the full records and bundles, or --keep DIR to keep the snapshot.")
        }
    }
    Ok(0)
}
