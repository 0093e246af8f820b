//! Deterministic scale data for benchmarks (step 5): IVRE exports in the form of
//! `ivre scancli --json` and `ivre ipinfo --json`, with realistic shapes (ports, scripts,
//! certificates, host names; passive DNS, TLS, MAC, HTTP and SSH records; IPv4 and IPv6).
//!
//! ```text
//! cargo run --release --example scale_data -- OUT_DIR RECORDS [SEED]
//! ```
//!
//! Writes `OUT_DIR/scans.jsonl` (a tenth of RECORDS, as hosts) and
//! `OUT_DIR/passive.jsonl` (the rest). The same arguments give the same bytes.
//! Addresses fall in 10.0.0.0/8, 172.16.0.0/12 and 2001:db8::/32.

use serde_json::{json, Value};
use std::io::{BufWriter, Write};

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

const WORDS: [&str; 16] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa",
];
const TLDS: [&str; 4] = ["com", "net", "org", "io"];

fn date(rng: &mut Rng) -> String {
    let secs = 1_780_000_000 + rng.below(20_000_000) as i64;
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

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
        "addr": addr(rng, i), "source": "scale", "starttime": start, "endtime": start, "state": "up",
        "schema_version": 21, "categories": ["SCALE"],
        "infos": {"as_num": 64496 + rng.below(8), "as_name": "SCALE-AS", "country_code": "FR"},
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

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(out), Some(n)) = (args.get(1), args.get(2)) else {
        anyhow::bail!("usage: scale_data OUT_DIR RECORDS [SEED]");
    };
    let n: u64 = n.parse()?;
    let seed: u64 = args
        .get(3)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(0x1f2e_3d4c_5b6a_7988);
    let mut rng = Rng(seed | 1);
    std::fs::create_dir_all(out)?;
    let mut scans = BufWriter::new(std::fs::File::create(
        std::path::Path::new(out).join("scans.jsonl"),
    )?);
    let mut passives = BufWriter::new(std::fs::File::create(
        std::path::Path::new(out).join("passive.jsonl"),
    )?);
    for i in 0..n {
        if i % 10 == 0 {
            serde_json::to_writer(&mut scans, &host(&mut rng, i / 10))?;
            scans.write_all(b"\n")?;
        } else {
            serde_json::to_writer(&mut passives, &passive(&mut rng, i))?;
            passives.write_all(b"\n")?;
        }
    }
    scans.flush()?;
    passives.flush()?;
    Ok(())
}
