//! Tests of [`Geo`] on the lab databases, MaxMind's test databases and broken files.

use super::*;
use serde_json::json;
use std::panic::catch_unwind;
use tempfile::TempDir;

const LAB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/geoip");
const MAXMIND: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/maxmind");
const IPDATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/ivre-0.9.20/ipdata.jsonl"
);

fn ip(addr: &str) -> IpAddr {
    addr.parse().unwrap()
}

fn keys(map: &Map<String, Value>) -> Vec<&str> {
    map.keys().map(String::as_str).collect()
}

/// A temporary directory holding copies of `files`: (source path, name in the copy).
fn dir_with(files: &[(String, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (source, name) in files {
        fs::copy(source, dir.path().join(name)).unwrap();
    }
    dir
}

fn lab(name: &str) -> String {
    format!("{LAB}/{name}")
}

fn maxmind(name: &str) -> String {
    format!("{MAXMIND}/{name}")
}

/// The lines of `ivre ipdata --json`, `addr` removed (key order kept).
fn expected_ipdata() -> Vec<(IpAddr, Map<String, Value>)> {
    fs::read_to_string(IPDATA)
        .unwrap()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let mut map: Map<String, Value> = serde_json::from_str(line).unwrap();
            let addr = map.shift_remove("addr").unwrap();
            (ip(addr.as_str().unwrap()), map)
        })
        .collect()
}

#[test]
fn geo_is_send_sync_default_empty() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Geo>();
    let geo = Geo::empty();
    assert!(geo.is_empty());
    assert!(geo.files().is_empty());
    assert_eq!(geo.infos_byip(ip("8.8.8.8")), None);
    assert_eq!(
        geo.infos_byip(ip("192.0.2.10"))
            .map(|m| Value::Object((*m).clone())),
        Some(json!({"address_type": "Documentation"}))
    );
    assert_eq!(geo.asn(ip("192.0.2.10")), None);
}

#[test]
fn lab_files_roles() {
    let geo = Geo::open_dir(Path::new(LAB)).unwrap();
    let roles: Vec<_> = geo
        .files()
        .iter()
        .map(|f| (f.role, f.database_type.as_str()))
        .collect();
    assert_eq!(
        roles,
        [
            (Role::City, "GeoLite2-City"),
            (Role::Country, "GeoLite2-Country"),
            (Role::Asn, "GeoLite2-ASN")
        ]
    );
    assert!(geo.files()[0].path.ends_with("GeoLite2-City.mmdb"));
    assert_eq!(geo.files()[2].build_epoch, 1_795_900_842);
}

/// `Geo::ipdata` is exactly `ivre ipdata --json` without `addr`: values, value types
/// and key order.
#[test]
fn lab_ipdata_matches_ivre_cli() {
    let geo = Geo::open_dir(Path::new(LAB)).unwrap();
    let expected = expected_ipdata();
    assert_eq!(expected.len(), 3);
    for (addr, want) in expected {
        let got = geo.ipdata(addr);
        assert_eq!(
            Value::Object(got.clone()),
            Value::Object(want.clone()),
            "{addr}"
        );
        assert_eq!(keys(&got), keys(&want), "{addr}");
        // Same JSON text, so same number types (ints vs floats).
        assert_eq!(
            serde_json::to_string(&got).unwrap(),
            serde_json::to_string(&want).unwrap()
        );
    }
}

/// `Geo::infos_byip` has the same values as the CLI for the lab addresses (the Country
/// and City databases agree), with IVRE's `infos_byip` key order: the Country
/// database's `country_code` / `country_name` come right after the AS fields.
#[test]
fn lab_infos_byip_matches_ivre() {
    let geo = Geo::open_dir(Path::new(LAB)).unwrap();
    for (addr, want) in expected_ipdata() {
        let got = geo.infos_byip(addr);
        if want.is_empty() {
            assert_eq!(got, None, "{addr}");
            continue;
        }
        let got = got.unwrap();
        assert_eq!(
            Value::Object((*got).clone()),
            Value::Object(want.clone()),
            "{addr}"
        );
        assert_eq!(
            keys(&got),
            [
                "address_type",
                "as_num",
                "as_name",
                "country_code",
                "country_name",
                "region_code",
                "region_name",
                "continent_code",
                "continent_name",
                "registered_country_code",
                "registered_country_name",
                "city",
                "postal_code",
                "coordinates",
                "coordinates_accuracy_radius"
            ],
            "{addr}"
        );
    }
    assert_eq!(geo.infos_byip(ip("8.8.8.8")), None);
}

#[test]
fn lab_other_addresses() {
    let geo = Geo::open_dir(Path::new(LAB)).unwrap();
    assert_eq!(
        geo.infos_byip(ip("203.0.113.5"))
            .map(|m| Value::Object((*m).clone())),
        Some(json!({
            "address_type": "Documentation",
            "as_num": 64498, "as_name": "EXAMPLE-AS-3 Passive Sensors",
            "country_code": "DE", "country_name": "Germany",
            "continent_code": "EU", "continent_name": "Europe",
            "registered_country_code": "DE", "registered_country_name": "Germany",
            "coordinates": [51.2993, 9.491], "coordinates_accuracy_radius": 200
        }))
    );
    let v6 = geo.infos_byip(ip("2001:db8::1")).unwrap();
    assert_eq!(v6["address_type"], "Documentation");
    assert_eq!(v6["as_num"], 64499);
    assert_eq!(v6["country_code"], "FR");
    assert_eq!(v6["coordinates"], json!([48.8582, 2.3387]));
    // An IPv4-mapped IPv6 address is looked up as given, like IVRE does: the lab
    // files (unlike MaxMind's) do not alias ::ffff:0:0/96 to the IPv4 tree.
    assert_eq!(
        geo.infos_byip(ip("::ffff:192.0.2.10"))
            .map(|m| Value::Object((*m).clone())),
        Some(json!({"address_type": "Documentation"}))
    );
    assert_eq!(geo.asn(ip("192.0.2.10")), Some(64496));
    assert_eq!(geo.asn(ip("198.51.100.7")), Some(64497));
    assert_eq!(geo.asn(ip("8.8.8.8")), None);
    assert_eq!(geo.asn(ip("2001:db8::1")), Some(64499));
}

#[test]
fn maxmind_test_databases() {
    let dir = dir_with(&[
        (maxmind("GeoIP2-City-Test.mmdb"), "GeoIP2-City-Test.mmdb"),
        (maxmind("GeoLite2-ASN-Test.mmdb"), "GeoLite2-ASN-Test.mmdb"),
        (
            maxmind("GeoLite2-Country-Test.mmdb"),
            "GeoLite2-Country-Test.mmdb",
        ),
    ]);
    let geo = Geo::open_dir(dir.path()).unwrap();
    let types: Vec<_> = geo
        .files()
        .iter()
        .map(|f| f.database_type.as_str())
        .collect();
    assert_eq!(types, ["GeoIP2-City", "GeoLite2-Country", "GeoLite2-ASN"]);

    let london = geo.infos_byip(ip("81.2.69.160")).unwrap();
    assert_eq!(london["city"], "London");
    assert_eq!(london["country_code"], "GB");
    assert_eq!(london["country_name"], "United Kingdom");
    assert!(!london.contains_key("address_type"));

    let telstra = geo.infos_byip(ip("1.128.0.0")).unwrap();
    assert_eq!(telstra["as_num"], 1221);
    assert_eq!(telstra["as_name"], "Telstra Pty Ltd");
    assert_eq!(keys(&telstra)[..2], ["as_num", "as_name"]);
    assert_eq!(geo.asn(ip("1.128.0.0")), Some(1221));
}

#[test]
fn geoip2_serves_city_over_geolite2() {
    let dir = dir_with(&[
        (
            maxmind("GeoLite2-City-Test.mmdb"),
            "GeoLite2-City-Test.mmdb",
        ),
        (maxmind("GeoIP2-City-Test.mmdb"), "GeoIP2-City-Test.mmdb"),
    ]);
    let geo = Geo::open_dir(dir.path()).unwrap();
    assert_eq!(geo.files().len(), 1);
    assert_eq!(geo.files()[0].role, Role::City);
    assert_eq!(geo.files()[0].database_type, "GeoIP2-City");
    assert!(geo.files()[0].path.ends_with("GeoIP2-City-Test.mmdb"));
}

#[test]
fn newest_geolite2_city_wins() {
    // Both are GeoLite2-City; the lab file (build_epoch 1795900842) is newer than
    // MaxMind's test file (1770245369), which sorts first by name.
    let dir = dir_with(&[
        (maxmind("GeoLite2-City-Test.mmdb"), "a-older.mmdb"),
        (lab("GeoLite2-City.mmdb"), "b-newer.mmdb"),
    ]);
    let geo = Geo::open_dir(dir.path()).unwrap();
    assert_eq!(geo.files().len(), 1);
    assert!(geo.files()[0].path.ends_with("b-newer.mmdb"));
    assert_eq!(geo.files()[0].build_epoch, 1_795_900_842);
    assert_eq!(geo.infos_byip(ip("192.0.2.10")).unwrap()["city"], "Paris");
}

#[test]
fn directory_scan_rules() {
    let dir = dir_with(&[
        (lab("GeoLite2-ASN.mmdb"), "UPPER.MMDB"),
        (lab("GeoLite2-City.mmdb"), "city.mmdb.bak"),
    ]);
    fs::write(dir.path().join("notes.txt"), "not a database").unwrap();
    let sub = dir.path().join("nested.mmdb");
    fs::create_dir(&sub).unwrap();
    fs::copy(
        lab("GeoLite2-Country.mmdb"),
        sub.join("GeoLite2-Country.mmdb"),
    )
    .unwrap();
    let geo = Geo::open_dir(dir.path()).unwrap();
    assert_eq!(geo.files().len(), 1);
    assert_eq!(geo.files()[0].role, Role::Asn);
    assert!(geo.files()[0].path.ends_with("UPPER.MMDB"));
}

#[test]
fn empty_and_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let geo = Geo::open_dir(dir.path()).unwrap();
    assert!(geo.is_empty());
    assert_eq!(geo.infos_byip(ip("8.8.8.8")), None);
    assert_eq!(
        geo.infos_byip(ip("10.0.0.1"))
            .map(|m| Value::Object((*m).clone())),
        Some(json!({"address_type": "Private"}))
    );

    let missing = dir.path().join("missing");
    let error = Geo::open_dir(&missing).unwrap_err();
    assert!(matches!(error, GeoError::ReadDir { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&missing.display().to_string()),
        "{error}"
    );
}

/// Every broken file makes `open_dir` fail with an error naming it, without panicking,
/// even next to a sound database.
#[test]
fn broken_files_are_rejected_at_open() {
    let mut cases: Vec<(String, Vec<u8>)> = [
        "GeoIP2-City-Test-Broken-Double-Format.mmdb",
        "GeoIP2-City-Test-Invalid-Node-Count.mmdb",
        "MaxMind-DB-test-broken-pointers-24.mmdb",
        "MaxMind-DB-test-broken-search-tree-24.mmdb",
    ]
    .iter()
    .map(|name| (name.to_string(), fs::read(maxmind(name)).unwrap()))
    .collect();
    let city = fs::read(lab("GeoLite2-City.mmdb")).unwrap();
    cases.push(("truncated.mmdb".into(), city[..city.len() / 2].to_vec()));
    cases.push((
        "garbage.mmdb".into(),
        (0..4096u32).map(|i| (i * 7 + 3) as u8).collect(),
    ));
    cases.push(("empty.mmdb".into(), Vec::new()));
    // The metadata survives but the data section is cut short.
    let mut cut = city[..200].to_vec();
    let marker = b"\xab\xcd\xefMaxMind.com";
    let meta = city
        .windows(marker.len())
        .rposition(|w| w == marker)
        .unwrap();
    cut.extend_from_slice(&city[meta..]);
    cases.push(("cut-data.mmdb".into(), cut));

    for (name, bytes) in cases {
        let dir = dir_with(&[(lab("GeoLite2-ASN.mmdb"), "GeoLite2-ASN.mmdb")]);
        let path = dir.path().join(&name);
        fs::write(&path, bytes).unwrap();
        let outcome = catch_unwind(|| Geo::open_dir(dir.path())).expect("open_dir panicked");
        let error = outcome.expect_err(&name);
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(
            matches!(error, GeoError::Open { .. } | GeoError::Corrupt { .. }),
            "{error:?}"
        );
        println!("{name}: {message}");
    }
}

/// Queries on broken databases that bypass the open-time check never panic: lookup
/// and decoding failures read as "unknown".
#[test]
fn broken_files_never_panic_at_query_time() {
    for (name, role) in [
        ("GeoIP2-City-Test-Broken-Double-Format.mmdb", Role::City),
        ("MaxMind-DB-test-broken-pointers-24.mmdb", Role::Asn),
        ("MaxMind-DB-test-broken-search-tree-24.mmdb", Role::Country),
    ] {
        let reader = Reader::from_source(fs::read(maxmind(name)).unwrap()).unwrap();
        let mut geo = Geo::default();
        geo.files.push(GeoFile {
            role,
            path: maxmind(name).into(),
            database_type: reader.metadata().database_type.clone(),
            build_epoch: reader.metadata().build_epoch,
        });
        geo.dbs[role.index()] = Some(reader);
        let addrs: Vec<IpAddr> = (0..=255u8)
            .flat_map(|i| {
                [
                    IpAddr::V4(Ipv4Addr::new(1, 1, 1, i)),
                    IpAddr::V4(Ipv4Addr::new(81, 2, 69, i)),
                    IpAddr::V4(Ipv4Addr::new(2, 125, 160, i)),
                    IpAddr::V4(Ipv4Addr::new(i, i, i, i)),
                    IpAddr::V6(Ipv6Addr::new(0x2001, 0x480, 0, 0, 0, 0, 0, u16::from(i))),
                    IpAddr::V6(Ipv6Addr::new(
                        0,
                        0,
                        0,
                        0,
                        0,
                        0xffff,
                        0x0101,
                        0x0100 + u16::from(i),
                    )),
                ]
            })
            .collect();
        let geo = &geo;
        catch_unwind(|| {
            for addr in &addrs {
                let _ = geo.infos_byip(*addr);
                let _ = geo.ipdata(*addr);
                let _ = geo.asn(*addr);
            }
        })
        .unwrap_or_else(|_| panic!("{name}: a query panicked"));
        // The record whose double is malformed reads as unknown.
        if role == Role::City {
            assert_eq!(geo.infos_byip(ip("81.2.69.160")), None, "{name}");
        }
    }
}
