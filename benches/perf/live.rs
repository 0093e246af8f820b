//! `live` suite: the same lookups answered from our snapshot and by a real IVRE 0.9.20 web
//! API (`ivre httpd` on PostgreSQL, started by `scripts/ivre-lab`), in the same run.
//!
//! Dataset: `H` generated hosts (10,000; 500 with `--quick`) as `ivre scancli --json`
//! records (host names, SSH/HTTP/HTTPS ports, `ssl-cert` with hashes, AS in `infos`) loaded
//! with `ivre scan2db`, and passive records as IVRE's Zeek `passiverecon` log (DNS answers,
//! MAC addresses, HTTP server headers) loaded with `ivre passiverecon2db`. Then both sides
//! hold the same records: IVRE's own exports (`ivre scancli --json`, `ivre ipinfo --json`,
//! the lab fixtures included) are imported into our snapshot with `snapshot::import`, with
//! the lab's MaxMind files.
//!
//! Per observable type, the same observables (hits spread over the dataset) are looked up:
//! ours with `lookup::lookup` (plus the JSON line `lookup` prints), IVRE's with the
//! connector's live web source (`live::web::WebSource`: the `f=` searches of the fallback,
//! one after the other as the fallback sends them, paging by 200, plus `/cgi/ipdata` for
//! addresses). MAC: IVRE 0.9.20's PostgreSQL nmap backend has no MAC search (HTTP 500), so
//! IVRE answers the passive MAC search only while our lookup runs both.

use crate::stats::{Latency, Report, Target};
use crate::Args;
use anyhow::Context as _;
use ivre_connector::index::Query;
use ivre_connector::ivre::RecordKind;
use ivre_connector::live::web::WebSource;
use ivre_connector::lookup;
use ivre_connector::observable::Observable;
use ivre_connector::snapshot::{import, DataDir, ImportOptions, Snapshot};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SUITE: &str = "live";
const TARGET_RATIO: f64 = 200.0;
/// Records per search, as `IVRE_MAX_RECORDS`' default.
const MAX_RECORDS: usize = 1000;
/// The `source` of the generated scans, to find them in IVRE.
const SOURCE: &str = "bench-scanner";
/// Observables of each type looked up before measuring.
const WARMUP: usize = 5;
const VARS: [&str; 3] = [
    "IVRE_TEST_WEB_URL",
    "IVRE_TEST_IVRE_BIN",
    "IVRE_TEST_IVRE_CONF",
];

struct Lab {
    web_url: String,
    ivre: PathBuf,
    conf: String,
}

pub fn run(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    let mut values = Vec::new();
    for var in VARS {
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => values.push(v),
            _ => {
                eprintln!(
                    "live: skipped: {var} is not set (run `bash scripts/bench live`, which starts IVRE 0.9.20's web API on a private PostgreSQL)"
                );
                return Ok(());
            }
        }
    }
    let lab = Lab {
        web_url: values[0].clone(),
        ivre: Path::new(&values[1]).join("ivre"),
        conf: values[2].clone(),
    };
    let (hosts, samples, reps) = if args.quick {
        (500, 20, 20)
    } else {
        (10_000usize.min(args.records.max(100) as usize), 100, 20)
    };
    let dir = args.out.join("live");
    std::fs::create_dir_all(&dir)?;
    let dir = std::fs::canonicalize(&dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    // ---- the dataset, in IVRE -------------------------------------------------------------
    let mut data = Dataset::generate(hosts, args.seed);
    let scans_file = dir.join("hosts.jsonl");
    let passive_file = dir.join("passive_recon.log");
    data.write(&scans_file, &passive_file)?;
    let loaded = runtime.block_on(count(&lab.web_url, "scans", &format!("source:{SOURCE}")))?;
    if loaded == 0 {
        let started = Instant::now();
        lab.ivre(&["scan2db", "-c", "BENCH", "-s", SOURCE], &scans_file)?;
        let scans_time = started.elapsed();
        let started = Instant::now();
        lab.ivre(&["passiverecon2db", "-s", "BENCH-SENSOR"], &passive_file)?;
        let passive_time = started.elapsed();
        report.add(
            SUITE,
            "IVRE load (scan2db + passiverecon2db)",
            (scans_time + passive_time).as_secs_f64(),
            "s",
            None,
            format!(
                "{hosts} hosts in {:.1} s ({:.0} hosts/s), {} passive log lines in {:.1} s, PostgreSQL",
                scans_time.as_secs_f64(),
                hosts as f64 / scans_time.as_secs_f64().max(1e-9),
                data.passive_lines,
                passive_time.as_secs_f64()
            ),
        );
    } else if loaded != hosts as u64 {
        anyhow::bail!(
            "the IVRE lab already holds {loaded} generated hosts, not {hosts}: restart it (`bash scripts/bench live` starts a fresh one)"
        );
    }

    // ---- the same records in our snapshot -------------------------------------------------
    let scans_export = dir.join("scancli.jsonl");
    let passive_export = dir.join("ipinfo.jsonl");
    lab.export("scancli", &scans_export)?;
    lab.export("ipinfo", &passive_export)?;
    let data_dir = dir.join("data");
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir)?;
    }
    std::fs::create_dir_all(&data_dir)?;
    let data_dir = DataDir::new(&data_dir);
    let imported = import(
        &data_dir,
        &ImportOptions {
            inputs: vec![
                (RecordKind::Scan, scans_export),
                (RecordKind::Passive, passive_export),
            ],
            geoip_dir: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/geoip")),
            strict: true,
            ..ImportOptions::default()
        },
    )
    .context("importing IVRE's exports into the snapshot")?;
    let snapshot = Snapshot::open(&data_dir)?;
    let web = WebSource::new(&lab.web_url, Duration::from_secs(120))?;
    let dataset_text =
        format!(
        "{} scan hosts and {} passive records in both (IVRE's exports, the lab fixtures included)",
        imported.manifest.counts.get("scans").copied().unwrap_or(0),
        imported.manifest.counts.get("passive").copied().unwrap_or(0)
    );

    // ---- lookups, per type ------------------------------------------------------------------
    for (type_name, observables) in data.observables(samples)? {
        // Warm-up (PostgreSQL and page caches): a few observables on each side.
        for observable in observables.iter().take(WARMUP) {
            ours(&snapshot, observable)?;
            runtime.block_on(ivre_web(&web, observable))?;
        }
        // Both sides must find the same records: counted on the first pass.
        let mut counts = Vec::with_capacity(observables.len());
        let mut records = 0usize;
        let mut snapshot_latency = Latency::new();
        for rep in 0..reps {
            for observable in &observables {
                let started = Instant::now();
                let found = ours(&snapshot, observable)?;
                snapshot_latency.record(started.elapsed());
                if rep == 0 {
                    counts.push(found);
                    records += found.0 + found.1;
                }
            }
        }
        let mut mismatches = Vec::new();
        let mut http_requests = 0usize;
        let mut web_latency = Latency::new();
        for (observable, ours) in observables.iter().zip(&counts) {
            let started = Instant::now();
            let theirs = runtime.block_on(ivre_web(&web, observable))?;
            web_latency.record(started.elapsed());
            http_requests += theirs.requests;
            if (ours.0, ours.1) != (theirs.scans, theirs.passive) {
                mismatches.push(format!(
                    "{observable}: snapshot {}/{}, IVRE {}/{}",
                    ours.0, ours.1, theirs.scans, theirs.passive
                ));
            }
        }
        let n = observables.len().max(1);
        let mut detail = format!(
            "snapshot p50 {:.1} µs, p99 {:.1} µs ({} lookups); IVRE web API p50 {:.2} ms, p99 {:.2} ms ({} lookups, {:.1} HTTP requests each); {:.1} records per lookup; {dataset_text}",
            snapshot_latency.quantile_us(0.5),
            snapshot_latency.quantile_us(0.99),
            snapshot_latency.count(),
            web_latency.quantile_us(0.5) / 1000.0,
            web_latency.quantile_us(0.99) / 1000.0,
            web_latency.count(),
            http_requests as f64 / n as f64,
            records as f64 / n as f64,
        );
        if type_name == "mac" {
            detail.push_str(
                "; IVRE: passive MAC search only (its PostgreSQL nmap backend has no MAC search)",
            );
        }
        if !mismatches.is_empty() {
            let _ = write!(
                detail,
                "; {} of {n} lookups differ in record counts (scans/passive), e.g. {}",
                mismatches.len(),
                mismatches[0]
            );
        }
        let ratio = |q: f64| web_latency.quantile_us(q) / snapshot_latency.quantile_us(q).max(1e-3);
        report.add(
            SUITE,
            &format!("{type_name}: IVRE web / snapshot, p50"),
            ratio(0.5),
            "×",
            Some(Target::AtLeast(TARGET_RATIO)),
            detail,
        );
        report.add(
            SUITE,
            &format!("{type_name}: IVRE web / snapshot, p99"),
            ratio(0.99),
            "×",
            Some(Target::AtLeast(TARGET_RATIO)),
            "",
        );
    }
    Ok(())
}

impl Lab {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.ivre);
        cmd.env("IVRE_CONF", &self.conf).env("TZ", "UTC");
        cmd
    }

    /// `ivre ARGS… FILE`, its output kept in FILE.log.
    fn ivre(&self, args: &[&str], file: &Path) -> anyhow::Result<()> {
        let log_path = file.with_extension("load.log");
        let log = std::fs::File::create(&log_path)?;
        let status = self
            .command()
            .args(args)
            .arg(file)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .with_context(|| format!("running {}", self.ivre.display()))?;
        anyhow::ensure!(
            status.success(),
            "`ivre {}` failed ({status}); see {}",
            args.join(" "),
            log_path.display()
        );
        Ok(())
    }

    /// `ivre PURPOSE --json > OUT`.
    fn export(&self, purpose: &str, out: &Path) -> anyhow::Result<()> {
        let file = std::fs::File::create(out)?;
        let status = self
            .command()
            .args([purpose, "--json"])
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::inherit())
            .status()?;
        anyhow::ensure!(
            status.success(),
            "`ivre {purpose} --json` failed ({status})"
        );
        Ok(())
    }
}

/// `GET {base}/{route}/count?q=…`.
async fn count(base: &str, route: &str, q: &str) -> anyhow::Result<u64> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let text = client
        .get(format!("{base}/{route}/count"))
        .query(&[("q", q)])
        .header("X-API-Key", "bench")
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    text.trim()
        .parse()
        .with_context(|| format!("/cgi/{route}/count answered {text:?}"))
}

/// Our side: the records (scans + view, passive) of one lookup, and its JSON line built.
fn ours(snapshot: &Snapshot, observable: &Observable) -> anyhow::Result<(usize, usize)> {
    let found = lookup::lookup(snapshot, observable, Some(MAX_RECORDS))?;
    let line = found.to_json_line(false);
    std::hint::black_box(line);
    Ok((found.scans.len() + found.view.len(), found.passive.len()))
}

struct WebAnswer {
    scans: usize,
    passive: usize,
    requests: usize,
}

/// IVRE's side: the connector's live searches for one observable, one after the other.
async fn ivre_web(web: &WebSource, observable: &Observable) -> anyhow::Result<WebAnswer> {
    let (host_queries, passive_queries) = lookup::queries(observable);
    let mut answer = WebAnswer {
        scans: 0,
        passive: 0,
        requests: 0,
    };
    for query in &host_queries {
        if matches!(query, Query::Mac(_)) {
            continue; // HTTP 500 on PostgreSQL (no searchmac)
        }
        let records = web
            .search(RecordKind::Scan, query, Some(MAX_RECORDS))
            .await?;
        answer.requests += 1 + records.len() / ivre_connector::live::web::PAGE;
        answer.scans += records.len();
    }
    let mut seen = std::collections::HashSet::new();
    for query in &passive_queries {
        let records = web
            .search(RecordKind::Passive, query, Some(MAX_RECORDS))
            .await?;
        answer.requests += 1 + records.len() / ivre_connector::live::web::PAGE;
        for record in records {
            if seen.insert(record.to_string()) {
                answer.passive += 1;
            }
        }
    }
    if let Some(ip) = observable.ip() {
        std::hint::black_box(web.ipdata(ip).await?);
        answer.requests += 1;
    }
    Ok(answer)
}

// ------------------------------------------------------------------------------------------
// The generated dataset
// ------------------------------------------------------------------------------------------

/// splitmix64: deterministic values from (seed, host, salt).
fn mix(seed: u64, i: u64, salt: u64) -> u64 {
    let mut z = seed
        .wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_add(salt.wrapping_mul(0xd1b5_4a32_d192_ed03));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hex(seed: u64, i: u64, salt: u64, bytes: usize) -> String {
    let mut out = String::with_capacity(bytes * 2);
    let mut n = 0;
    while out.len() < bytes * 2 {
        let _ = write!(out, "{:016x}", mix(seed, i, salt * 64 + n));
        n += 1;
    }
    out.truncate(bytes * 2);
    out
}

struct Dataset {
    hosts: usize,
    seed: u64,
    passive_lines: usize,
}

impl Dataset {
    fn generate(hosts: usize, seed: u64) -> Dataset {
        Dataset {
            hosts,
            seed,
            passive_lines: 0,
        }
    }

    fn addr(i: usize) -> String {
        let n = i + 1;
        format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255)
    }

    fn fqdn(i: usize) -> String {
        format!("w{i}.d{}.bench.test", i / 10)
    }

    fn asn(i: usize) -> u32 {
        65_000 + (i / 25) as u32
    }

    fn has_cert(i: usize) -> bool {
        i.is_multiple_of(2)
    }

    fn has_mac(i: usize) -> bool {
        i.is_multiple_of(3)
    }

    fn mac(&self, i: usize) -> String {
        let v = mix(self.seed, i as u64, 7);
        let b: Vec<String> = (0..5)
            .map(|k| format!("{:02x}", (v >> (8 * k)) & 255))
            .collect();
        format!("02:{}", b.join(":"))
    }

    fn sha256(&self, i: usize) -> String {
        hex(self.seed, i as u64, 3, 32)
    }

    fn host(&self, i: usize) -> Value {
        let fqdn = Self::fqdn(i);
        let parent = format!("d{}.bench.test", i / 10);
        let asn = Self::asn(i);
        let mut ports = vec![
            json!({"port": 22, "protocol": "tcp", "state_state": "open", "state_reason": "syn-ack",
            "service_name": "ssh", "service_product": "OpenSSH", "service_version": "9.2p1"}),
        ];
        if i % 3 != 1 {
            ports.push(json!({"port": 80, "protocol": "tcp", "state_state": "open", "state_reason": "syn-ack",
                "service_name": "http", "service_product": "nginx", "service_version": "1.24.0",
                "scripts": [{"id": "http-title", "output": format!("Welcome to {fqdn}"), "http-title": {"title": format!("Welcome to {fqdn}")}}]}));
        }
        if Self::has_cert(i) {
            let cert = json!({
                "subject": {"commonName": fqdn}, "issuer": {"commonName": "Bench CA", "organizationName": "Bench"},
                "subject_text": format!("commonName={fqdn}"), "issuer_text": "commonName=Bench CA/organizationName=Bench",
                "self_signed": false, "not_before": "2026-01-01 00:00:00", "not_after": "2027-01-01 00:00:00",
                "serial_number": format!("{}", mix(self.seed, i as u64, 5)),
                "md5": hex(self.seed, i as u64, 1, 16), "sha1": hex(self.seed, i as u64, 2, 20), "sha256": self.sha256(i),
                "pubkey": {"type": "rsa", "bits": 2048, "exponent": 65537},
                "san": [format!("DNS:{fqdn}")],
            });
            ports.push(json!({"port": 443, "protocol": "tcp", "state_state": "open", "state_reason": "syn-ack",
                "service_name": "http", "service_tunnel": "ssl", "service_product": "nginx", "service_version": "1.24.0",
                "scripts": [{"id": "ssl-cert", "output": format!("Subject: commonName={fqdn}\nIssuer: commonName=Bench CA"), "ssl-cert": [cert]}]}));
        }
        let day = 1 + i % 28;
        json!({
            "addr": Self::addr(i), "source": SOURCE,
            "infos": {"as_num": asn, "as_name": format!("BENCH-AS-{asn}"), "country_code": "FR", "country_name": "France"},
            "starttime": format!("2026-10-{day:02} 10:00:00"), "endtime": format!("2026-10-{day:02} 10:05:00"),
            "state": "up", "state_reason": "syn-ack", "state_reason_ttl": 64, "schema_version": 21,
            "categories": ["BENCH"],
            "hostnames": [
                {"name": fqdn, "type": "PTR", "domains": [fqdn, parent, "bench.test", "test"]},
            ],
            "ports": ports,
        })
    }

    /// `hosts.jsonl` (scan2db) and the Zeek `passiverecon` log (passiverecon2db).
    fn write(&mut self, scans: &Path, passive: &Path) -> anyhow::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(scans)?);
        for i in 0..self.hosts {
            serde_json::to_writer(&mut out, &self.host(i))?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        let mut out = std::io::BufWriter::new(std::fs::File::create(passive)?);
        out.write_all(
            b"#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tpassive_recon\n#open\t2026-11-01-00-00-00\n#fields\tts\tuid\thost\tsrvport\trecon_type\tsource\tvalue\ttargetval\n#types\ttime\tstring\taddr\tport\tenum\tstring\tstring\tstring\n",
        )?;
        let mut lines = 0;
        for i in 0..self.hosts {
            let ts = 1_793_000_000 + (i as u64) * 60;
            let addr = Self::addr(i);
            let fqdn = Self::fqdn(i);
            // The same answer seen twice (IVRE aggregates them), then once more later.
            for k in 0..2 {
                writeln!(
                    out,
                    "{}.000000\tCD{i}\t{addr}\t-\tPassiveRecon::DNS_ANSWER\tA-10.255.0.53-53\t{fqdn}\t-",
                    ts + k * 3600
                )?;
                lines += 1;
            }
            if Self::has_mac(i) {
                writeln!(
                    out,
                    "{}.000000\t-\t{addr}\t-\tPassiveRecon::MAC_ADDRESS\tARP_REPLY_SRC\t{}\t-",
                    ts + 10,
                    self.mac(i)
                )?;
                lines += 1;
            }
            if i.is_multiple_of(4) {
                writeln!(
                    out,
                    "{}.000000\tCH{i}\t{addr}\t80\tPassiveRecon::HTTP_SERVER_HEADER\tSERVER\tnginx/1.24.0\t-",
                    ts + 20
                )?;
                lines += 1;
            }
        }
        out.write_all(b"#close\t2026-11-01-01-00-00\n")?;
        out.flush()?;
        self.passive_lines = lines;
        Ok(())
    }

    /// Up to `samples` observables of each type, spread over the hosts (all hits).
    fn observables(&self, samples: usize) -> anyhow::Result<Vec<(&'static str, Vec<Observable>)>> {
        let pick = |filter: &dyn Fn(usize) -> bool| -> Vec<usize> {
            let candidates: Vec<usize> = (0..self.hosts).filter(|i| filter(*i)).collect();
            let step = (candidates.len() / samples.max(1)).max(1);
            candidates.into_iter().step_by(step).take(samples).collect()
        };
        let parse = |ty: &str, values: Vec<String>| -> anyhow::Result<Vec<Observable>> {
            values
                .iter()
                .map(|v| Observable::parse_typed(ty, v).map_err(|e| anyhow::anyhow!("{v}: {e}")))
                .collect()
        };
        let all = pick(&|_| true);
        let mut asns: Vec<String> = (0..self.hosts)
            .step_by(25)
            .map(|i| Self::asn(i).to_string())
            .collect();
        let step = (asns.len() / samples.max(1)).max(1);
        asns = asns.into_iter().step_by(step).take(samples).collect();
        Ok(vec![
            (
                "ipv4",
                parse("ipv4-addr", all.iter().map(|i| Self::addr(*i)).collect())?,
            ),
            (
                "domain",
                parse("domain-name", all.iter().map(|i| Self::fqdn(*i)).collect())?,
            ),
            ("asn", parse("autonomous-system", asns)?),
            (
                "mac",
                parse(
                    "mac-addr",
                    pick(&Self::has_mac).iter().map(|i| self.mac(*i)).collect(),
                )?,
            ),
            (
                "cert",
                parse(
                    "x509-certificate",
                    pick(&Self::has_cert)
                        .iter()
                        .map(|i| format!("sha256:{}", self.sha256(*i)))
                        .collect(),
                )?,
            ),
        ])
    }
}
