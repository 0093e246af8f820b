//! Deterministic scale data for the benchmarks: IVRE exports in the form of
//! `ivre scancli --json` and `ivre ipinfo --json`, with realistic shapes (ports, scripts,
//! certificates, host names; passive DNS, TLS, MAC, HTTP and SSH records; IPv4 and IPv6),
//! a 1 % update of them, and GeoLite2-style MaxMind files covering the generated addresses.
//!
//! [`generate`] writes, in a directory:
//!
//! - `scans.jsonl` (a tenth of the records, as scan hosts) and `passive.jsonl` (the rest);
//! - `delta-scans.jsonl` and `delta-passive.jsonl`: an update of 1 % of the records, half
//!   of it records already in the exports (same identity: a scan run's address, source
//!   and start time; a passive record's aggregation key) changed, half new records, as an
//!   incremental pull or a `*.delta.jsonl` drop brings them;
//! - `geoip/GeoLite2-{City,Country,ASN}.mmdb` (written with `mmdb-writer`; `database_type`
//!   `GeoLite2-City` … so the snapshot gives them their roles): one network per /20 of
//!   10.0.0.0/8 and 172.16.0.0/12 and per used /48 of 2001:db8::/32. Every network belongs
//!   to one of eight ASes (64496..=64503, [`as_of`]), each with its country and city; scan
//!   hosts carry the same `infos.as_num` / `as_name` / `country_code`.
//!
//! - after the uniform records, the shapes of real scans (certificates shared by many
//!   hosts, domains with many names, names and MACs on many addresses, small ASes; see
//!   [`write_shapes`]) and `shapes.json`, the observables that find them.
//!
//! Addresses fall in 10.0.0.0/8, 172.16.0.0/12 and 2001:db8::/32 (the shapes: 198.18.0.0/15
//! and 3fff::/48). The same arguments give
//! the same bytes (the `.mmdb` build epoch is fixed).

use anyhow::Context as _;
use mmdb_writer::ipnet::{IpNet, Ipv4Net, Ipv6Net};
use mmdb_writer::{Value as MmdbValue, Writer};
use serde_json::{json, Value};
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

/// The seed of the harness's `--seed` default (used by `benches/lookup.rs`).
#[allow(dead_code)]
pub const DEFAULT_SEED: u64 = 0x1f2e_3d4c_5b6a_7988;
/// The first of the eight generated AS numbers (RFC 5398 documentation ASes).
pub const FIRST_AS: u32 = 64496;
/// Scan exports, passive exports and their 1 % update, in a generated directory.
pub const SCANS: &str = "scans.jsonl";
pub const PASSIVE: &str = "passive.jsonl";
pub const DELTA_SCANS: &str = "delta-scans.jsonl";
pub const DELTA_PASSIVE: &str = "delta-passive.jsonl";
/// The MaxMind files' subdirectory.
pub const GEOIP: &str = "geoip";

/// xorshift64*: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn hex(&mut self, bytes: usize) -> String {
        (0..bytes)
            .map(|_| format!("{:02x}", self.below(256)))
            .collect()
    }
}

/// splitmix64 finalizer: picks the changed records independently of the record stream.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const WORDS: [&str; 16] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa",
];
const TLDS: [&str; 4] = ["com", "net", "org", "io"];

/// Where an AS is (GeoLite2 City and Country fields).
struct Place {
    cc: &'static str,
    country: &'static str,
    continent_code: &'static str,
    continent: &'static str,
    city: &'static str,
    lat: f64,
    lon: f64,
    tz: &'static str,
}

const fn at(
    (cc, country, continent_code, continent): (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    ),
    city: &'static str,
    (lat, lon): (f64, f64),
    tz: &'static str,
) -> Place {
    Place {
        cc,
        country,
        continent_code,
        continent,
        city,
        lat,
        lon,
        tz,
    }
}

const FR: (&str, &str, &str, &str) = ("FR", "France", "EU", "Europe");
const DE: (&str, &str, &str, &str) = ("DE", "Germany", "EU", "Europe");
const US: (&str, &str, &str, &str) = ("US", "United States", "NA", "North America");
const JP: (&str, &str, &str, &str) = ("JP", "Japan", "AS", "Asia");

/// The place of AS `FIRST_AS + i` at index `i`.
const PLACES: [Place; 8] = [
    at(FR, "Paris", (48.8534, 2.3488), "Europe/Paris"),
    at(FR, "Lyon", (45.7485, 4.8467), "Europe/Paris"),
    at(DE, "Berlin", (52.5244, 13.4105), "Europe/Berlin"),
    at(DE, "Munich", (48.1374, 11.5755), "Europe/Berlin"),
    at(US, "New York", (40.7143, -74.006), "America/New_York"),
    at(US, "Chicago", (41.85, -87.65), "America/Chicago"),
    at(JP, "Tokyo", (35.6895, 139.6917), "Asia/Tokyo"),
    at(JP, "Osaka", (34.6937, 135.5022), "Asia/Tokyo"),
];

/// The AS of a generated address, as the generated ASN database gives it: by /20 for
/// IPv4, by /48 for IPv6.
pub fn as_of(ip: IpAddr) -> u32 {
    let block = match ip {
        IpAddr::V4(v4) => u32::from(v4) >> 12,
        IpAddr::V6(v6) => u32::from(v6.segments()[2]),
    };
    FIRST_AS + block % 8
}

/// The name of a generated AS.
pub fn as_name(asn: u32) -> String {
    format!("SCALE-AS-{asn}")
}

/// The place of an AS.
fn place(asn: u32) -> &'static Place {
    &PLACES[(asn.saturating_sub(FIRST_AS) % 8) as usize]
}

fn date(rng: &mut Rng) -> String {
    let secs = 1_780_000_000 + rng.below(20_000_000) as i64;
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// The `i`-th address: IPv6 a tenth of the time, else IPv4 (172.16/12 three times in
/// nine, 10/8 otherwise). The /48 of an IPv6 address is `2001:db8:(i % 65536)::/48`.
fn addr(rng: &mut Rng, i: u64) -> String {
    match rng.below(10) {
        0 => format!("2001:db8:{:x}::{:x}", i % 65536, rng.below(65536)),
        1..=3 => format!("172.{}.{}.{}", 16 + (i >> 16) % 16, (i >> 8) % 256, i % 256),
        _ => format!("10.{}.{}.{}", (i >> 16) % 256, (i >> 8) % 256, i % 256),
    }
}

fn name(rng: &mut Rng) -> (String, Vec<String>) {
    let host = WORDS[rng.below(16) as usize];
    let domain = format!("{}{}", WORDS[rng.below(16) as usize], rng.below(5000));
    let tld = TLDS[rng.below(4) as usize];
    let fqdn = format!("{host}.{domain}.{tld}");
    let domains = vec![fqdn.clone(), format!("{domain}.{tld}"), tld.to_owned()];
    (fqdn, domains)
}

fn cert(rng: &mut Rng, cn: &str) -> Value {
    json!({
        "md5": rng.hex(16), "sha1": rng.hex(20), "sha256": rng.hex(32),
        "subject_text": format!("commonName={cn}"), "issuer_text": "commonName=Example CA",
        "self_signed": false, "not_before": date(rng), "not_after": date(rng),
        "serial_number": rng.below(u64::MAX).to_string(),
        "pubkey": {"type": "rsa", "bits": 2048, "exponent": 65537, "modulus": rng.below(u64::MAX).to_string()},
        "san": [format!("DNS:{cn}")],
    })
}

fn host(rng: &mut Rng, i: u64) -> Value {
    let address = addr(rng, i);
    let asn = address.parse().map(as_of).unwrap_or(FIRST_AS);
    let (fqdn, domains) = name(rng);
    let mut ports = Vec::new();
    for p in [22, 80, 443, 8443].iter().take(1 + rng.below(4) as usize) {
        let mut port = json!({"port": p, "protocol": "tcp", "state_state": "open", "state_reason": "syn-ack",
            "service_name": if *p == 22 { "ssh" } else { "http" }, "service_product": "nginx", "service_version": "1.24"});
        if *p == 443 || *p == 8443 {
            port["service_tunnel"] = "ssl".into();
            port["scripts"] = json!([{"id": "ssl-cert", "output": format!("Subject: commonName={fqdn}"), "ssl-cert": [cert(rng, &fqdn)]}]);
        } else if *p == 80 {
            port["scripts"] = json!([{"id": "http-title", "output": "Welcome", "http-title": {"title": "Welcome"}}]);
        }
        ports.push(port);
    }
    let start = date(rng);
    json!({
        "addr": address, "source": "scale", "starttime": start, "endtime": start, "state": "up",
        "schema_version": 21, "categories": ["SCALE"],
        "infos": {"as_num": asn, "as_name": as_name(asn), "country_code": place(asn).cc},
        "hostnames": [{"name": fqdn, "type": "PTR", "domains": domains}],
        "ports": ports,
    })
}

fn passive(rng: &mut Rng, i: u64) -> Value {
    let address = addr(rng, i / 4);
    let (fqdn, domains) = name(rng);
    let (first, last) = (date(rng), date(rng));
    let (first, last) = if first <= last {
        (first, last)
    } else {
        (last, first)
    };
    let base = json!({"addr": address, "sensor": "SCALE", "count": 1 + rng.below(100), "firstseen": first, "lastseen": last, "schema_version": 3});
    let mut r = base;
    match rng.below(10) {
        0..=4 => {
            r["recontype"] = "DNS_ANSWER".into();
            r["source"] = "A-192.0.2.53-53".into();
            r["value"] = fqdn.into();
            r["infos"] = json!({"domain": domains});
        }
        5 | 6 => {
            r["recontype"] = "SSL_SERVER".into();
            r["source"] = "cert".into();
            r["port"] = 443.into();
            r["value"] = rng.hex(600).into();
            r["infos"] = cert(rng, &fqdn);
        }
        7 => {
            r["recontype"] = "MAC_ADDRESS".into();
            r["source"] = "ARP_REPLY_SRC".into();
            r["value"] = (0..6)
                .map(|_| format!("{:02x}", rng.below(256)))
                .collect::<Vec<_>>()
                .join(":")
                .into();
            r["infos"] = json!({});
        }
        8 => {
            r["recontype"] = "HTTP_SERVER_HEADER".into();
            r["source"] = "SERVER".into();
            r["port"] = 80.into();
            r["value"] = "nginx/1.24.0".into();
            r["infos"] = json!({"service_name": "http", "service_product": "nginx"});
        }
        _ => {
            r["recontype"] = "SSH_SERVER".into();
            r["port"] = 22.into();
            r["value"] = "SSH-2.0-OpenSSH_9.2p1".into();
            r["infos"] = json!({"service_name": "ssh", "service_product": "OpenSSH"});
        }
    }
    r
}

/// The `i`-th record: a scan host every tenth record, a passive record otherwise.
fn record(rng: &mut Rng, i: u64) -> (bool, Value) {
    if i.is_multiple_of(10) {
        (true, host(rng, i / 10))
    } else {
        (false, passive(rng, i))
    }
}

/// A stored record seen again: same identity, newer data. A scan run gets a later end
/// time and one more category; a passive record more hits and a later last seen (the
/// first seen is kept), as IVRE's aggregation updates it.
fn changed(mut record: Value) -> Value {
    const LATER: &str = "2026-11-01 00:00:00";
    if record.get("recontype").is_some() {
        let count = record.get("count").and_then(Value::as_u64).unwrap_or(0);
        record["count"] = (count + 5).into();
        record["lastseen"] = LATER.into();
    } else {
        record["endtime"] = LATER.into();
        record["categories"] = json!(["SCALE", "UPDATED"]);
    }
    record
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generated {
    pub scans: u64,
    pub passive: u64,
    /// Records of the update that change stored ones, and new ones.
    pub delta_changed: u64,
    pub delta_new: u64,
    /// Records of the shapes of real scans ([`SHAPES`]), in the exports after the others.
    pub shapes: u64,
}

fn create(path: &Path) -> anyhow::Result<BufWriter<std::fs::File>> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    Ok(BufWriter::new(file))
}

fn write_line(out: &mut impl Write, value: &Value) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Writes `records` records (and their update and MaxMind files, see the module
/// documentation) into `dir`, created if needed. The same `records` and `seed` give the
/// same bytes.
pub fn generate(dir: &Path, records: u64, seed: u64) -> anyhow::Result<Generated> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut rng = Rng(seed | 1);
    let mut scans = create(&dir.join(SCANS))?;
    let mut passives = create(&dir.join(PASSIVE))?;
    let mut delta_scans = create(&dir.join(DELTA_SCANS))?;
    let mut delta_passives = create(&dir.join(DELTA_PASSIVE))?;
    let mut out = Generated {
        scans: 0,
        passive: 0,
        delta_changed: 0,
        delta_new: 0,
        shapes: 0,
    };
    // 0.5 % of the records change, 0.5 % are new: 1 % in all.
    let changes = |i: u64| mix(i ^ seed).is_multiple_of(200);
    for i in 0..records {
        let (is_scan, r) = record(&mut rng, i);
        let (file, delta) = if is_scan {
            out.scans += 1;
            (&mut scans, &mut delta_scans)
        } else {
            out.passive += 1;
            (&mut passives, &mut delta_passives)
        };
        write_line(file, &r)?;
        if changes(i) {
            write_line(delta, &changed(r))?;
            out.delta_changed += 1;
        }
    }
    // Its own generator: the uniform records and their update stay the bytes they were.
    out.shapes = write_shapes(
        dir,
        &mut Rng(seed ^ 0x5a5a_5a5a | 1),
        records,
        &mut scans,
        &mut passives,
    )?;
    for i in records..records + records.div_ceil(200) {
        let (is_scan, r) = record(&mut rng, i);
        write_line(
            if is_scan {
                &mut delta_scans
            } else {
                &mut delta_passives
            },
            &r,
        )?;
        out.delta_new += 1;
    }
    for mut file in [scans, passives, delta_scans, delta_passives] {
        file.flush()?;
    }
    // The update's new records use indexes up to `records * 1.005`.
    write_mmdb(&dir.join(GEOIP), records + records.div_ceil(200))?;
    Ok(out)
}

/// Every network of the generated address space with its AS: the /20s of 10.0.0.0/8 and
/// 172.16.0.0/12, and the /48s of 2001:db8::/32 that `records` records can use.
fn networks(records: u64) -> Vec<(IpNet, u32)> {
    let mut out = Vec::new();
    for (base, prefix) in [
        (Ipv4Addr::new(10, 0, 0, 0), 8u32),
        (Ipv4Addr::new(172, 16, 0, 0), 12),
    ] {
        let base = u32::from(base);
        for block in 0..(1u32 << (20 - prefix)) {
            let start = Ipv4Addr::from(base + (block << 12));
            if let Ok(net) = Ipv4Net::new(start, 20) {
                out.push((IpNet::V4(net), as_of(IpAddr::V4(start))));
            }
        }
    }
    // Host `i / 10` and passive `i / 4` use the /48 `i % 65536`.
    let used = records.div_ceil(4).clamp(1, 65536);
    for block in 0..used {
        let start = Ipv6Addr::new(0x2001, 0xdb8, block as u16, 0, 0, 0, 0, 0);
        if let Ok(net) = Ipv6Net::new(start, 48) {
            out.push((IpNet::V6(net), as_of(IpAddr::V6(start))));
        }
    }
    out
}

fn names(name: &str) -> MmdbValue {
    MmdbValue::map([("en", MmdbValue::from(name))])
}

/// GeoLite2's `continent`, `country` (also `registered_country`), for an AS.
fn continent_country(asn: u32) -> (MmdbValue, MmdbValue) {
    let Place {
        cc,
        country,
        continent_code,
        continent,
        ..
    } = place(asn);
    let geoname = 1000 + asn.saturating_sub(FIRST_AS) / 2;
    let continent = MmdbValue::map([
        ("code", MmdbValue::from(*continent_code)),
        ("geoname_id", MmdbValue::from(geoname + 100)),
        ("names", names(continent)),
    ]);
    let country = MmdbValue::map([
        ("geoname_id", MmdbValue::from(geoname)),
        ("iso_code", MmdbValue::from(*cc)),
        ("names", names(country)),
    ]);
    (continent, country)
}

/// Writes `GeoLite2-City.mmdb`, `GeoLite2-Country.mmdb` and `GeoLite2-ASN.mmdb` covering
/// the addresses `records` generated records use (see [`networks`]) into `dir`.
pub fn write_mmdb(dir: &Path, records: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let epoch = UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    let writer = |kind: &str| {
        Writer::builder(format!("GeoLite2-{kind}"))
            .description(&[("en", "ivre-connector benchmark data (synthetic)")])
            .build_epoch(epoch)
            .build()
    };
    let (mut city, mut country, mut asn_db) = (writer("City"), writer("Country"), writer("ASN"));
    for (net, asn) in networks(records).into_iter().chain(shape_networks()) {
        let Place {
            cc,
            city: city_name,
            lat,
            lon,
            tz,
            ..
        } = place(asn);
        let (continent, country_value) = continent_country(asn);
        asn_db.insert_value(
            net,
            MmdbValue::map([
                ("autonomous_system_number", MmdbValue::from(asn)),
                (
                    "autonomous_system_organization",
                    MmdbValue::from(as_name(asn)),
                ),
            ]),
        )?;
        country.insert_value(
            net,
            MmdbValue::map([
                ("continent", continent.clone()),
                ("country", country_value.clone()),
                ("registered_country", country_value.clone()),
            ]),
        )?;
        city.insert_value(
            net,
            MmdbValue::map([
                (
                    "city",
                    MmdbValue::map([
                        ("geoname_id", MmdbValue::from(2000 + asn - FIRST_AS)),
                        ("names", names(city_name)),
                    ]),
                ),
                ("continent", continent),
                ("country", country_value.clone()),
                (
                    "location",
                    MmdbValue::map([
                        ("accuracy_radius", MmdbValue::from(20u16)),
                        ("latitude", MmdbValue::from(*lat)),
                        ("longitude", MmdbValue::from(*lon)),
                        ("time_zone", MmdbValue::from(*tz)),
                    ]),
                ),
                (
                    "postal",
                    MmdbValue::map([("code", MmdbValue::from(format!("{cc}-{}", asn % 100)))]),
                ),
                ("registered_country", country_value),
            ]),
        )?;
    }
    for (kind, db) in [("City", city), ("Country", country), ("ASN", asn_db)] {
        let path = dir.join(format!("GeoLite2-{kind}.mmdb"));
        std::fs::write(&path, db.to_bytes()?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The shapes of real scans, written after the uniform records (see [`write_shapes`]).
pub const SHAPES: &str = "shapes.json";

/// One answer shape: `instances` observables of `scope`, each matching `size` records.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    /// What it models (`certificate on 20 hosts`).
    pub name: String,
    /// OpenCTI scope of its observables (`x509-certificate` …).
    pub scope: String,
    /// Records each observable matches (before `IVRE_MAX_RECORDS`).
    pub size: u64,
    /// The observables (one per instance).
    pub values: Vec<String>,
}

/// The records of a shape's answers, nominal size scaled down with the dataset: at most
/// a twentieth of the uniform records (but at least 2).
fn scaled(nominal: u64, records: u64) -> u64 {
    nominal.min((records / 20).max(2))
}

/// Instances of a shape of `size` records: 8 small ones, fewer big ones (a big answer
/// is slow enough to be timed on its own).
fn instances(size: u64) -> u64 {
    (2000 / size).clamp(1, 8)
}

/// Addresses of the shapes: 198.18.0.0/16 and 3fff::/48 (RFC 9637), alternately, so
/// every shape mixes IPv4 and IPv6 hosts; the `j`-th is unique.
fn shape_addr(j: u64) -> String {
    if j.is_multiple_of(2) {
        let v4 = u32::from(Ipv4Addr::new(198, 18, 0, 0)) + (j / 2 % 65536) as u32;
        Ipv4Addr::from(v4).to_string()
    } else {
        let n = j / 2;
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, (n >> 16) as u16, n as u16).to_string()
    }
}

/// The AS of the `k`-th AS shape network (`198.19.k.0/24`, its own AS).
const SHAPE_AS: u32 = 65100;

/// Writes the shapes of real scans after the uniform records, and `shapes.json` listing
/// the observables that find them: certificates shared by 2, 20, 1,000 and 50,000 scan
/// hosts; domains with 1, 20, 1,000 and 10,000 host names under them (scan hosts);
/// names resolving to 20 and 1,000 addresses and MACs on 20 and 1,000 addresses
/// (passive); ASes of 10, 20 and 1,000 passive records (the eight uniform ASes hold a
/// ninth of the records each: the big ones). Sizes scale down with `records` ([`scaled`]).
fn write_shapes(
    dir: &Path,
    rng: &mut Rng,
    records: u64,
    scans: &mut impl Write,
    passives: &mut impl Write,
) -> anyhow::Result<u64> {
    let mut shapes = Vec::new();
    let mut j = 0u64;
    let mut written = 0u64;
    let mut next_addr = || {
        j += 1;
        shape_addr(j)
    };
    let host = |rng: &mut Rng, address: String, fqdn: &str, cert: Option<&Value>| {
        let start = date(rng);
        let asn = address.parse().map(as_of).unwrap_or(FIRST_AS);
        let mut port = json!({"port": 443, "protocol": "tcp", "state_state": "open", "state_reason": "syn-ack",
            "service_name": "http", "service_product": "nginx", "service_version": "1.24", "service_tunnel": "ssl"});
        if let Some(cert) = cert {
            port["scripts"] = json!([{"id": "ssl-cert", "output": "Subject: commonName=shared", "ssl-cert": [cert]}]);
        }
        let labels: Vec<&str> = fqdn.split('.').collect();
        let domains: Vec<String> = (0..labels.len()).map(|k| labels[k..].join(".")).collect();
        json!({
            "addr": address, "source": "scale", "starttime": start, "endtime": start, "state": "up",
            "schema_version": 21, "categories": ["SCALE", "SHAPE"],
            "infos": {"as_num": asn, "as_name": as_name(asn), "country_code": place(asn).cc},
            "hostnames": [{"name": fqdn, "type": "PTR", "domains": domains}],
            "ports": [port],
        })
    };
    let passive_base = |rng: &mut Rng, address: String| {
        let (first, last) = (date(rng), date(rng));
        let (first, last) = if first <= last {
            (first, last)
        } else {
            (last, first)
        };
        json!({"addr": address, "sensor": "SCALE", "count": 1 + rng.below(100), "firstseen": first, "lastseen": last, "schema_version": 3})
    };
    // Certificates shared by many hosts (CDN, shared hosting).
    for nominal in [2, 20, 1_000, 50_000] {
        let size = scaled(nominal, records);
        let mut values = Vec::new();
        for k in 0..instances(size) {
            let cn = format!("cdn{k}-{nominal}.example.com");
            let cert = cert(rng, &cn);
            values.push(format!(
                "sha256:{}",
                cert["sha256"].as_str().unwrap_or_default()
            ));
            for h in 0..size {
                let fqdn = format!("edge{h}.cdn{k}-{nominal}.example.com");
                write_line(scans, &host(rng, next_addr(), &fqdn, Some(&cert)))?;
                written += 1;
            }
        }
        shapes.push(Shape {
            name: format!("certificate on {size} hosts"),
            scope: "x509-certificate".into(),
            size,
            values,
        });
    }
    // Domains with many names under them (parking, hosting): scan hosts, one name each.
    for nominal in [1, 20, 1_000, 10_000] {
        let size = scaled(nominal, records);
        let mut values = Vec::new();
        for k in 0..instances(size) {
            let domain = format!("park{k}-{nominal}.net");
            values.push(domain.clone());
            for h in 0..size {
                let fqdn = format!("n{h}.{domain}");
                write_line(scans, &host(rng, next_addr(), &fqdn, None))?;
                written += 1;
            }
        }
        shapes.push(Shape {
            name: format!("domain with {size} names"),
            scope: "domain-name".into(),
            size,
            values,
        });
    }
    // A name resolving to many addresses (round robin, CDN), a MAC on many addresses
    // (a gateway seen through ARP): passive records.
    for nominal in [20, 1_000] {
        let size = scaled(nominal, records);
        let mut names = Vec::new();
        let mut macs = Vec::new();
        for k in 0..instances(size) {
            let name = format!("rr{k}-{nominal}.example.org");
            let mac = format!(
                "02:5e:{:02x}:{:02x}:{:02x}:01",
                k,
                nominal >> 8 & 0xff,
                nominal & 0xff
            );
            for _ in 0..size {
                let mut r = passive_base(rng, next_addr());
                r["recontype"] = "DNS_ANSWER".into();
                r["source"] = "A-192.0.2.53-53".into();
                r["value"] = name.clone().into();
                r["infos"] = json!({"domain": [name.clone(), "example.org", "org"]});
                write_line(passives, &r)?;
                let mut r = passive_base(rng, next_addr());
                r["recontype"] = "MAC_ADDRESS".into();
                r["source"] = "ARP_REPLY_SRC".into();
                r["value"] = mac.clone().into();
                r["infos"] = json!({});
                write_line(passives, &r)?;
                written += 2;
            }
            names.push(name);
            macs.push(mac);
        }
        shapes.push(Shape {
            name: format!("name on {size} addresses"),
            scope: "domain-name".into(),
            size,
            values: names,
        });
        shapes.push(Shape {
            name: format!("MAC on {size} addresses"),
            scope: "mac-addr".into(),
            size,
            values: macs,
        });
    }
    // Small ASes: passive records (four per address) in their own /24, [`SHAPE_AS`] + k.
    let mut network = 0u32;
    for nominal in [10, 20, 1_000] {
        let size = scaled(nominal, records);
        let mut values = Vec::new();
        for _ in 0..instances(size).min(4) {
            values.push((SHAPE_AS + network).to_string());
            for r in 0..size {
                let address = Ipv4Addr::new(198, 19, network as u8, (r / 4 % 254 + 1) as u8);
                let mut p = passive_base(rng, address.to_string());
                p["recontype"] = "HTTP_SERVER_HEADER".into();
                p["source"] = "SERVER".into();
                p["port"] = 80.into();
                p["value"] = format!("nginx/1.{r}").into();
                p["infos"] = json!({"service_name": "http", "service_product": "nginx"});
                write_line(passives, &p)?;
                written += 1;
            }
            network += 1;
        }
        shapes.push(Shape {
            name: format!("AS of {size} records"),
            scope: "autonomous-system".into(),
            size,
            values,
        });
    }
    std::fs::write(dir.join(SHAPES), serde_json::to_vec_pretty(&shapes)?)?;
    Ok(written)
}

/// Networks of the shapes: 198.18.0.0/16 by /20 (the uniform ASes), 3fff::/48, and one
/// /24 of 198.19.0.0/16 per AS shape (its own AS).
fn shape_networks() -> Vec<(IpNet, u32)> {
    let mut out = Vec::new();
    let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
    for block in 0..16u32 {
        let start = Ipv4Addr::from(base + (block << 12));
        if let Ok(net) = Ipv4Net::new(start, 20) {
            out.push((IpNet::V4(net), as_of(IpAddr::V4(start))));
        }
    }
    if let Ok(net) = Ipv6Net::new(Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 48) {
        out.push((IpNet::V6(net), FIRST_AS));
    }
    for k in 0..16u32 {
        if let Ok(net) = Ipv4Net::new(Ipv4Addr::new(198, 19, k as u8, 0), 24) {
            out.push((IpNet::V4(net), SHAPE_AS + k));
        }
    }
    out
}
