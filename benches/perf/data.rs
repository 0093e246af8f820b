//! The benchmark data: a generated dataset (reused when present), its snapshot, and
//! probes drawn from it. Shared by the `perf` harness and the criterion bench.

use crate::scale_data;
use anyhow::Context as _;
use ivre_connector::geo::Geo;
use ivre_connector::ivre::RecordKind;
use ivre_connector::observable::Observable;
use ivre_connector::snapshot::{import, DataDir, ImportOptions, ImportReport};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The observable types, as (short name, OpenCTI scope).
pub const TYPES: [(&str, &str); 6] = [
    ("ipv4", "ipv4-addr"),
    ("ipv6", "ipv6-addr"),
    ("domain", "domain-name"),
    ("asn", "autonomous-system"),
    ("mac", "mac-addr"),
    ("certificate", "x509-certificate"),
];

/// Written last in a dataset directory: a directory without it is generated again.
/// (`COMPLETE-2`: datasets with the shapes of real scans.)
const COMPLETE: &str = "COMPLETE-2";

/// A generated dataset: `<out>/data-<records>-<seed>/`.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub dir: PathBuf,
    pub records: u64,
}

impl Dataset {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The exports (scans, then passive) as import inputs.
    pub fn inputs(&self) -> Vec<(RecordKind, PathBuf)> {
        vec![
            (RecordKind::Scan, self.path(scale_data::SCANS)),
            (RecordKind::Passive, self.path(scale_data::PASSIVE)),
        ]
    }

    /// The 1 % update (changed and new records of both kinds) as import inputs.
    pub fn delta_inputs(&self) -> Vec<(RecordKind, PathBuf)> {
        vec![
            (RecordKind::Scan, self.path(scale_data::DELTA_SCANS)),
            (RecordKind::Passive, self.path(scale_data::DELTA_PASSIVE)),
        ]
    }

    /// Bytes of the NDJSON exports (`scans.jsonl` + `passive.jsonl`).
    pub fn input_bytes(&self) -> anyhow::Result<u64> {
        let mut total = 0;
        for (_, path) in self.inputs() {
            total += std::fs::metadata(&path)
                .with_context(|| format!("{}", path.display()))?
                .len();
        }
        Ok(total)
    }
}

/// The dataset of `records` records and `seed` under `out`, generated when missing
/// (or left incomplete), then checked with [`check_geo`].
pub fn ensure(out: &Path, records: u64, seed: u64) -> anyhow::Result<Dataset> {
    let dir = out.join(format!("data-{records}-{seed}"));
    let marker = dir.join(COMPLETE);
    if !marker.exists() {
        let started = Instant::now();
        eprintln!("generating {records} records into {}", dir.display());
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let generated = scale_data::generate(&dir, records, seed)?;
        std::fs::write(&marker, format!("{generated:?}\n"))?;
        eprintln!(
            "generated in {:.1} s: {generated:?}",
            started.elapsed().as_secs_f64()
        );
    }
    let dataset = Dataset { dir, records };
    check_geo(&dataset)?;
    Ok(dataset)
}

/// The generated `.mmdb` files must open with the snapshot's geo code, serve the three
/// roles, and give the first scan hosts the AS, country and city their records carry.
pub fn check_geo(dataset: &Dataset) -> anyhow::Result<()> {
    let geo = Geo::open_dir(&dataset.path(scale_data::GEOIP))?;
    anyhow::ensure!(
        geo.files().len() == 3,
        "the generated MaxMind files serve {} roles, not 3",
        geo.files().len()
    );
    let scans = BufReader::new(std::fs::File::open(dataset.path(scale_data::SCANS))?);
    for line in scans.lines().take(20) {
        let host: Value = serde_json::from_str(&line?)?;
        let addr = host["addr"].as_str().unwrap_or_default();
        let ip = addr.parse().with_context(|| format!("address {addr:?}"))?;
        let expected = host["infos"]["as_num"].as_u64().map(|n| n as u32);
        anyhow::ensure!(
            geo.asn(ip) == expected && expected.is_some(),
            "the ASN database gives {addr} {:?}, its scan record says {expected:?}",
            geo.asn(ip)
        );
        let infos = geo.infos_byip(ip).unwrap_or_default();
        anyhow::ensure!(
            infos.get("country_code") == Some(&host["infos"]["country_code"])
                && infos.get("city").is_some_and(Value::is_string),
            "the City/Country databases give {addr} {infos:?}"
        );
    }
    Ok(())
}

/// Imports the dataset into a new snapshot in `data` (made empty first); returns the
/// report and the time it took.
pub fn import_full(dataset: &Dataset, data: &Path) -> anyhow::Result<(ImportReport, Duration)> {
    if data.exists() {
        std::fs::remove_dir_all(data).with_context(|| format!("removing {}", data.display()))?;
    }
    std::fs::create_dir_all(data)?;
    let options = ImportOptions {
        inputs: dataset.inputs(),
        geoip_dir: Some(dataset.path(scale_data::GEOIP)),
        ..ImportOptions::default()
    };
    let started = Instant::now();
    let report = import(&DataDir::new(data), &options)?;
    Ok((report, started.elapsed()))
}

/// Observables of one type to look up: 90 % drawn from the data (hits), every tenth a
/// value absent from it (miss).
#[derive(Debug, Clone)]
pub struct Probes {
    pub name: &'static str,
    pub observables: Vec<Observable>,
}

/// A value of type `short` that the generated data does not hold.
fn miss(short: &str, k: usize) -> String {
    match short {
        "ipv4" => format!("100.64.{}.{}", (k >> 8) % 256, k % 256),
        "ipv6" => format!("2001:db8:{:x}:1::{:x}", k % 65536, k),
        "domain" => format!("miss{k}.example"),
        "asn" => format!("{}", 65000 + k % 500),
        "mac" => format!("fe:ed:00:00:{:02x}:{:02x}", (k >> 8) % 256, k % 256),
        _ => format!("sha256:{:064x}", k + 1),
    }
}

/// Every observable of one record, as (type, value).
fn observables_of(record: &Value, out: &mut Vec<(&'static str, String)>) {
    if let Some(addr) = record["addr"].as_str() {
        out.push((
            if addr.contains(':') { "ipv6" } else { "ipv4" },
            addr.to_owned(),
        ));
    }
    if let Some(asn) = record["infos"]["as_num"].as_u64() {
        out.push(("asn", asn.to_string()));
    }
    // A host name; for scan hosts also its registered domain (scan searches include
    // subdomains, passive DNS searches match the exact name).
    let mut domain = |names: &Value, parent: bool| {
        if let Some(fqdn) = names.get(0).and_then(Value::as_str) {
            out.push(("domain", fqdn.to_owned()));
        }
        if let Some(name) = names.get(1).and_then(Value::as_str).filter(|_| parent) {
            out.push(("domain", name.to_owned()));
        }
    };
    match record["recontype"].as_str() {
        Some("DNS_ANSWER") => domain(&record["infos"]["domain"], false),
        Some("MAC_ADDRESS") => {
            if let Some(mac) = record["value"].as_str() {
                out.push(("mac", mac.to_owned()));
            }
        }
        Some("SSL_SERVER") => {
            if let Some(sha256) = record["infos"]["sha256"].as_str() {
                out.push(("certificate", format!("sha256:{sha256}")));
            }
        }
        Some(_) => {}
        None => {
            domain(&record["hostnames"][0]["domains"], true);
            for port in record["ports"].as_array().into_iter().flatten() {
                for script in port["scripts"].as_array().into_iter().flatten() {
                    if let Some(sha256) = script["ssl-cert"][0]["sha256"].as_str() {
                        out.push(("certificate", format!("sha256:{sha256}")));
                    }
                }
            }
        }
    }
}

/// `per_type` probes of each type ([`TYPES`] order), drawn deterministically from records
/// spread over the exports (cached in the dataset directory).
pub fn probes(dataset: &Dataset, per_type: usize) -> anyhow::Result<Vec<Probes>> {
    let cache = dataset.path(&format!("probes-{per_type}.json"));
    let values: Vec<(String, Vec<String>)> = match std::fs::read(&cache) {
        Ok(bytes) => serde_json::from_slice(&bytes)?,
        Err(_) => {
            let values = draw(dataset, per_type)?;
            std::fs::write(&cache, serde_json::to_vec(&values)?)?;
            values
        }
    };
    let mut out = Vec::new();
    for ((short, scope), (_, values)) in TYPES.iter().zip(values) {
        let observables = values
            .iter()
            .map(|v| Observable::parse_typed(scope, v))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(Probes {
            name: short,
            observables,
        });
    }
    Ok(out)
}

fn draw(dataset: &Dataset, per_type: usize) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let mut found: Vec<(&'static str, String)> = Vec::new();
    // Scan hosts are a tenth of the records; MAC records a tenth of the passive ones:
    // read about 10 * per_type lines of each file, evenly spread.
    let scans = dataset.records.div_ceil(10);
    let passive = dataset.records - scans;
    for (name, lines) in [(scale_data::SCANS, scans), (scale_data::PASSIVE, passive)] {
        let stride = (lines / (10 * per_type as u64).max(1)).max(1) as usize;
        let file = BufReader::new(std::fs::File::open(dataset.path(name))?);
        // The uniform records only: the shapes of real scans follow them.
        for line in file.lines().take(lines as usize).step_by(stride) {
            let record: Value = serde_json::from_str(&line?)?;
            observables_of(&record, &mut found);
        }
    }
    let mut out = Vec::new();
    for (short, _) in TYPES {
        let hits: Vec<&String> = found
            .iter()
            .filter(|(t, _)| *t == short)
            .map(|(_, v)| v)
            .collect();
        anyhow::ensure!(!hits.is_empty(), "no {short} value in the data");
        // Evenly spaced hits, every tenth probe a miss.
        let step = (hits.len() as f64 / (per_type as f64 * 0.9)).max(1.0);
        let mut values = Vec::with_capacity(per_type);
        let mut h = 0.0;
        for k in 0..per_type {
            if k % 10 == 9 {
                values.push(miss(short, k));
            } else {
                values.push(hits[(h as usize) % hits.len()].clone());
                h += step;
            }
        }
        out.push((short.to_owned(), values));
    }
    Ok(out)
}

/// The shapes of real scans of a dataset (`shapes.json`), each with its observables.
pub fn shapes(dataset: &Dataset) -> anyhow::Result<Vec<(scale_data::Shape, Vec<Observable>)>> {
    let path = dataset.path(scale_data::SHAPES);
    let bytes = std::fs::read(&path).with_context(|| format!("{}", path.display()))?;
    let shapes: Vec<scale_data::Shape> = serde_json::from_slice(&bytes)?;
    shapes
        .into_iter()
        .map(|shape| {
            let observables = shape
                .values
                .iter()
                .map(|v| Observable::parse_typed(&shape.scope, v))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((shape, observables))
        })
        .collect()
}

/// Allocated bytes (`blocks * 512`) and apparent bytes of the files under `dir`, skipping
/// the subdirectories named in `skip`.
pub fn disk_usage(dir: &Path, skip: &[&str]) -> anyhow::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let (mut allocated, mut apparent) = (0, 0);
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            if skip.iter().any(|s| entry.file_name() == *s) {
                continue;
            }
            let (a, b) = disk_usage(&entry.path(), &[])?;
            allocated += a;
            apparent += b;
        } else {
            allocated += meta.blocks() * 512;
            apparent += meta.len();
        }
    }
    Ok((allocated, apparent))
}

/// The allocated size of an index directory's parts, as text: files grouped by
/// extension (`.bin` record files, `.keys` search keys…) and subdirectories (the sled
/// database) by name.
pub fn index_parts(index: &Path) -> anyhow::Result<String> {
    let mut parts = std::collections::BTreeMap::<String, u64>::new();
    for entry in std::fs::read_dir(index).with_context(|| format!("{}", index.display()))? {
        let entry = entry?;
        let path = entry.path();
        let (name, bytes) = if entry.file_type()?.is_dir() {
            let name = entry.file_name().to_string_lossy().into_owned();
            (format!("{name}/"), disk_usage(&path, &[])?.0)
        } else {
            use std::os::unix::fs::MetadataExt;
            let ext = path
                .extension()
                .map_or_else(String::new, |e| e.to_string_lossy().into_owned());
            (format!("*.{ext}"), entry.metadata()?.blocks() * 512)
        };
        *parts.entry(name).or_default() += bytes;
    }
    Ok(parts
        .iter()
        .map(|(name, bytes)| format!("{name} {:.1} MB", *bytes as f64 / 1e6))
        .collect::<Vec<_>>()
        .join(", "))
}
