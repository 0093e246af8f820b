//! IVRE 0.9.20's MongoDB filters for the connector's searches.
//!
//! Each function reproduces what `ivre.db.mongo` builds (`docs/ivre-records.md` §3.2; printed in
//! `tests/data/ivre-0.9.20/mongo-filters.txt`): same keys, same values, same BSON
//! integer types as pymongo sends them (Python ints that fit 32 bits become `Int32`,
//! others `Int64`; the address halves are always `Int64` here, which MongoDB compares
//! numerically with either).
//!
//! User values only ever appear as BSON strings or integers in value position, under
//! keys chosen here: a name such as `{"$ne": 1}` or `/.*/` is matched literally, never
//! read as an operator or a regular expression.

use crate::index::keys::format_mac;
use crate::index::{CertHash, Query};
use crate::ivre::normalize::ip_to_halves;
use crate::ivre::RecordKind;
use mongodb::bson::{doc, Bson, Document};
use std::net::{IpAddr, Ipv4Addr};

/// The filter IVRE 0.9.20 builds for `query` on `kind`, or `None` when that search does
/// not apply there (DNS searches on hosts, domain searches on passive, and AS searches
/// on passive, which need the AS's address ranges: see [`passive_asn_filter`]).
///
/// | query | scans / view | passive |
/// |---|---|---|
/// | host | `searchhost`: `{addr_0, addr_1}` | same |
/// | AS | `searchasnum`: `{"infos.as_num": n}` | `None` |
/// | domain | `searchdomain`: `{"hostnames.domains": name}` | `None` |
/// | DNS name / target | `None` | `searchdns(name[, reverse=True])` |
/// | MAC | `searchmac`: `{"addresses.mac": mac}` | `searchmac` |
/// | certificate | `searchcert(<algo>=h)` on `ssl-cert` scripts | `searchcert` (`SSL_SERVER`/`cert`) |
pub fn filter(kind: RecordKind, query: &Query) -> Option<Document> {
    match (kind, query) {
        (_, Query::Host(ip)) => Some(host(*ip)),
        (RecordKind::Scan | RecordKind::View, Query::Asn(n)) => {
            Some(doc! { "infos.as_num": python_int(i64::from(*n)) })
        }
        (RecordKind::Scan | RecordKind::View, Query::Domain(name)) => {
            Some(doc! { "hostnames.domains": name.as_str() })
        }
        (RecordKind::Scan | RecordKind::View, Query::Mac(mac)) => {
            Some(doc! { "addresses.mac": format_mac(mac) })
        }
        (RecordKind::Scan | RecordKind::View, Query::Cert(hash)) => Some(host_cert(hash)),
        (RecordKind::Scan | RecordKind::View, Query::DnsName(_) | Query::DnsTarget(_)) => None,
        (RecordKind::Passive, Query::DnsName(name)) => {
            Some(doc! { "recontype": "DNS_ANSWER", "value": name.as_str() })
        }
        (RecordKind::Passive, Query::DnsTarget(name)) => {
            Some(doc! { "recontype": "DNS_ANSWER", "targetval": name.as_str() })
        }
        (RecordKind::Passive, Query::Mac(mac)) => {
            Some(doc! { "recontype": "MAC_ADDRESS", "value": format_mac(mac) })
        }
        (RecordKind::Passive, Query::Cert(hash)) => Some(passive_cert(hash)),
        (RecordKind::Passive, Query::Asn(_) | Query::Domain(_)) => None,
    }
}

/// `passive.searchasnum(n)` of IVRE 0.9.20, given the IPv4 ranges of AS `n` (the lines
/// `start,stop,n` of `GeoLite2-ASN.dump-IPv4.csv`).
///
/// As `MongoDBPassive.searchranges`: ranges sorted by start, each
/// `{"addr_0": …, "addr_1": {"$gte": lo, "$lte": hi}}` (IPv4-mapped addresses share
/// `addr_0`), one range alone, several joined with `$or`, none `{"_id": 0}` (matches
/// nothing). A range given backwards is swapped.
pub fn passive_asn_filter(ranges: &[(Ipv4Addr, Ipv4Addr)]) -> Document {
    let mut sorted: Vec<(Ipv4Addr, Ipv4Addr)> = ranges
        .iter()
        .map(|&(a, b)| if a <= b { (a, b) } else { (b, a) })
        .collect();
    sorted.sort_unstable();
    let mut flts: Vec<Document> = sorted
        .into_iter()
        .map(|(start, stop)| {
            let (start_0, start_1) = ip_to_halves(IpAddr::V4(start));
            let (_, stop_1) = ip_to_halves(IpAddr::V4(stop));
            doc! { "addr_0": start_0, "addr_1": { "$gte": start_1, "$lte": stop_1 } }
        })
        .collect();
    match flts.len() {
        0 => doc! { "_id": 0 },
        1 => flts.swap_remove(0),
        _ => doc! { "$or": flts },
    }
}

/// `searchhost(ip)`: `{"addr_0": a0, "addr_1": a1}`.
fn host(ip: IpAddr) -> Document {
    let (addr_0, addr_1) = ip_to_halves(ip);
    doc! { "addr_0": addr_0, "addr_1": addr_1 }
}

/// `nmap|view.searchcert(<algo>=h)`.
fn host_cert(hash: &CertHash) -> Document {
    let mut elem = doc! { "id": "ssl-cert" };
    elem.insert(
        format!("ssl-cert.{}", hash.algorithm()),
        hex::encode(hash.bytes()),
    );
    doc! { "ports.scripts": { "$elemMatch": elem } }
}

/// `passive.searchcert(<algo>=h)`.
fn passive_cert(hash: &CertHash) -> Document {
    let mut flt = doc! { "recontype": "SSL_SERVER", "source": "cert" };
    flt.insert(
        format!("infos.{}", hash.algorithm()),
        hex::encode(hash.bytes()),
    );
    flt
}

/// An integer as pymongo encodes a Python `int`: `Int32` when it fits, else `Int64`.
fn python_int(n: i64) -> Bson {
    match i32::try_from(n) {
        Ok(small) => Bson::Int32(small),
        Err(_) => Bson::Int64(n),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::index::keys::parse_mac;
    use std::collections::BTreeMap;

    fn data(path: &str) -> String {
        let path = format!("{}/tests/data/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap()
    }

    /// `label → filter` of IVRE's printed filters (`label  json` per line).
    fn ivre_filters() -> BTreeMap<String, Bson> {
        data("ivre-0.9.20/mongo-filters.txt")
            .lines()
            .filter_map(|line| {
                let brace = line.find('{')?;
                let (label, json) = line.split_at(brace);
                let value: serde_json::Value = serde_json::from_str(json).ok()?;
                Some((label.trim().to_owned(), Bson::try_from(value).unwrap()))
            })
            .collect()
    }

    /// Sorts document keys recursively (IVRE's key order comes from set iteration).
    fn canonical(value: Bson) -> Bson {
        match value {
            Bson::Document(d) => {
                let mut entries: Vec<(String, Bson)> =
                    d.into_iter().map(|(k, v)| (k, canonical(v))).collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                Bson::Document(entries.into_iter().collect())
            }
            Bson::Array(items) => Bson::Array(items.into_iter().map(canonical).collect()),
            other => other,
        }
    }

    fn ours(kind: RecordKind, query: &Query) -> Bson {
        Bson::Document(filter(kind, query).unwrap())
    }

    fn assert_same(label: &str, ivre: &BTreeMap<String, Bson>, ours: Bson) {
        let expected = ivre
            .get(label)
            .unwrap_or_else(|| panic!("no line `{label}` in mongo-filters.txt"));
        assert_eq!(canonical(ours), canonical(expected.clone()), "{label}");
    }

    const MD5: &str = "7f91d7ef022276698aa7d233c1ad820f";
    const SHA1: &str = "ba868aae4f039691fac508f02d5636d02db65f80";
    const SHA256: &str = "fcf2200c62f5e3ff8dcf0c7581f41ececa21ced836cf0e2930e4662c66f59277";

    fn cert(hex_str: &str) -> Query {
        Query::Cert(CertHash::from_hex(hex_str).unwrap())
    }

    #[test]
    fn host_filters_equal_ivre_for_scans_and_view() {
        let ivre = ivre_filters();
        let mac = Query::Mac(parse_mac("00:1B:21:3A:4F:5C").unwrap());
        for (prefix, kind) in [("nmap", RecordKind::Scan), ("view", RecordKind::View)] {
            let cases = [
                (
                    "searchhost('192.0.2.10')",
                    Query::Host("192.0.2.10".parse().unwrap()),
                ),
                (
                    "searchhost('2001:db8::53')",
                    Query::Host("2001:db8::53".parse().unwrap()),
                ),
                ("searchasnum(64496)", Query::Asn(64496)),
                (
                    "searchdomain('example.com')",
                    Query::Domain("example.com".into()),
                ),
                ("searchmac('00:1B:21:3A:4F:5C')", mac.clone()),
                ("searchcert(md5=...)", cert(MD5)),
                ("searchcert(sha1=...)", cert(SHA1)),
                ("searchcert(sha256=...)", cert(SHA256)),
            ];
            for (call, query) in cases {
                assert_same(&format!("{prefix}.{call}"), &ivre, ours(kind, &query));
            }
            assert_eq!(
                filter(kind, &Query::DnsName("www.example.com".into())),
                None
            );
            assert_eq!(
                filter(kind, &Query::DnsTarget("www.example.com".into())),
                None
            );
        }
    }

    #[test]
    fn passive_filters_equal_ivre() {
        let ivre = ivre_filters();
        let p = RecordKind::Passive;
        let cases = [
            (
                "passive.searchhost('192.0.2.10')",
                Query::Host("192.0.2.10".parse().unwrap()),
            ),
            (
                "passive.searchhost('2001:db8::53')",
                Query::Host("2001:db8::53".parse().unwrap()),
            ),
            (
                "passive.searchdns('www.example.com')",
                Query::DnsName("www.example.com".into()),
            ),
            (
                "passive.searchdns('www.example.com', reverse=True)",
                Query::DnsTarget("www.example.com".into()),
            ),
            (
                "passive.searchmac('00:1B:21:3A:4F:5C')",
                Query::Mac(parse_mac("00:1B:21:3A:4F:5C").unwrap()),
            ),
            ("passive.searchcert(md5=...)", cert(MD5)),
            ("passive.searchcert(sha1=...)", cert(SHA1)),
            ("passive.searchcert(sha256=...)", cert(SHA256)),
        ];
        for (label, query) in cases {
            assert_same(label, &ivre, ours(p, &query));
        }
        assert_eq!(filter(p, &Query::Asn(64496)), None);
        assert_eq!(filter(p, &Query::Domain("example.com".into())), None);
    }

    /// The ranges of `asnum` in the test ASN dump (`start,stop,asnum`, integers).
    fn csv_ranges(asnum: u32) -> Vec<(Ipv4Addr, Ipv4Addr)> {
        data("geoip/GeoLite2-ASN.dump-IPv4.csv")
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(',').collect();
                (fields.get(2)? == &asnum.to_string()).then(|| {
                    let start: u32 = fields[0].parse().unwrap();
                    let stop: u32 = fields[1].parse().unwrap();
                    (Ipv4Addr::from(start), Ipv4Addr::from(stop))
                })
            })
            .collect()
    }

    #[test]
    fn passive_asn_filters_equal_ivre() {
        let ivre = ivre_filters();
        let label_of = |n: u32| {
            ivre.keys()
                .find(|l| l.starts_with(&format!("passive.searchasnum({n})")))
                .unwrap()
                .clone()
        };
        for n in [64496, 64497, 1] {
            let ranges = csv_ranges(n);
            assert_eq!(ranges.is_empty(), n == 1);
            let label = label_of(n);
            assert_same(&label, &ivre, Bson::Document(passive_asn_filter(&ranges)));
        }
    }

    #[test]
    fn several_asn_ranges_are_sorted_and_joined_with_or() {
        let a = (
            Ipv4Addr::new(198, 51, 100, 0),
            Ipv4Addr::new(198, 51, 100, 255),
        );
        let b = (Ipv4Addr::new(192, 0, 2, 0), Ipv4Addr::new(192, 0, 2, 255));
        let flt = passive_asn_filter(&[a, b]);
        let ivre = ivre_filters();
        // Each branch is IVRE's filter for that range alone (`searchnet`).
        let net = ivre["nmap.searchnet('192.0.2.0/24')"].clone();
        let ors = flt.get_array("$or").unwrap();
        assert_eq!(ors.len(), 2);
        assert_eq!(canonical(ors[0].clone()), canonical(net));
        assert_eq!(
            Bson::Document(passive_asn_filter(&[a])),
            ors[1].clone(),
            "{flt}"
        );
    }

    #[test]
    fn addresses_are_int64_and_small_asns_int32() {
        let flt = filter(
            RecordKind::Scan,
            &Query::Host("192.0.2.10".parse().unwrap()),
        )
        .unwrap();
        assert!(matches!(flt.get("addr_0"), Some(Bson::Int64(_))));
        assert!(matches!(flt.get("addr_1"), Some(Bson::Int64(_))));
        let asn = filter(RecordKind::View, &Query::Asn(64496)).unwrap();
        assert_eq!(asn.get("infos.as_num"), Some(&Bson::Int32(64496)));
        let big = filter(RecordKind::View, &Query::Asn(4_200_000_000)).unwrap();
        assert_eq!(big.get("infos.as_num"), Some(&Bson::Int64(4_200_000_000)));
    }

    #[test]
    fn hostile_names_stay_plain_strings() {
        for name in [
            r#"{"$ne": 1}"#,
            "/.*/",
            "a.b$where",
            "$where",
            "^.*$",
            "$gt",
        ] {
            let cases = [
                (
                    RecordKind::Scan,
                    Query::Domain(name.into()),
                    "hostnames.domains",
                ),
                (
                    RecordKind::View,
                    Query::Domain(name.into()),
                    "hostnames.domains",
                ),
                (RecordKind::Passive, Query::DnsName(name.into()), "value"),
                (
                    RecordKind::Passive,
                    Query::DnsTarget(name.into()),
                    "targetval",
                ),
            ];
            for (kind, query, key) in cases {
                let flt = filter(kind, &query).unwrap();
                assert_eq!(flt.get(key), Some(&Bson::String(name.to_owned())), "{flt}");
                // No key is an operator, and no value is anything but a string.
                for (k, v) in &flt {
                    assert!(!k.starts_with('$'), "{flt}");
                    assert!(matches!(v, Bson::String(_)), "{flt}");
                }
                // What is sent: the name, JSON-escaped, as a string value.
                let json = Bson::Document(flt).into_relaxed_extjson();
                assert_eq!(json[key], serde_json::Value::String(name.to_owned()));
            }
        }
    }
}
