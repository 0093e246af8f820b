//! Key layout of a snapshot's sled trees.
//!
//! Primary trees (`scans`, `view`, `passive`) map a record id (u64, big-endian, in
//! import order) to the encoded record. Each has a secondary tree (`scans.idx`, …) of
//! empty-valued keys `field | term | id`, scanned by prefix:
//!
//! | field | term |
//! |---|---|
//! | `h` host | 16 bytes, IPv4 mapped to `::ffff:a.b.c.d` (byte order = numeric order) |
//! | `a` AS | u32 big-endian |
//! | `d` host name (scans, view) | labels reversed, lower-case, ending with `.`, then `0x00` |
//! | `n` DNS name, `t` DNS target (passive) | same as `d` |
//! | `m` MAC | 6 bytes |
//! | `5` / `1` / `2` certificate MD5 / SHA-1 / SHA-256 | 16 / 20 / 32 raw bytes |
//!
//! Reversed names make a domain and all its subdomains one prefix scan
//! (`com.example.` covers `com.example.` and `com.example.www.`); the `0x00` after the
//! name makes an exact match another prefix (`com.example.\0`).

use std::net::IpAddr;

/// Length of a record id in keys.
pub const ID_LEN: usize = 8;

/// What a secondary entry indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Field {
    Host = b'h',
    Asn = b'a',
    Domain = b'd',
    DnsName = b'n',
    DnsTarget = b't',
    Mac = b'm',
    Md5 = b'5',
    Sha1 = b'1',
    Sha256 = b'2',
}

/// A certificate digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertHash {
    Md5([u8; 16]),
    Sha1([u8; 20]),
    Sha256([u8; 32]),
}

impl CertHash {
    /// From hex of length 32, 40 or 64 (any case).
    pub fn from_hex(hex_str: &str) -> Option<CertHash> {
        let bytes = hex::decode(hex_str.trim()).ok()?;
        match bytes.len() {
            16 => bytes.try_into().ok().map(CertHash::Md5),
            20 => bytes.try_into().ok().map(CertHash::Sha1),
            32 => bytes.try_into().ok().map(CertHash::Sha256),
            _ => None,
        }
    }

    /// `md5`, `sha1` or `sha256`: IVRE's name for the digest.
    pub fn algorithm(&self) -> &'static str {
        match self {
            CertHash::Md5(_) => "md5",
            CertHash::Sha1(_) => "sha1",
            CertHash::Sha256(_) => "sha256",
        }
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            CertHash::Md5(b) => b,
            CertHash::Sha1(b) => b,
            CertHash::Sha256(b) => b,
        }
    }

    fn field(&self) -> Field {
        match self {
            CertHash::Md5(_) => Field::Md5,
            CertHash::Sha1(_) => Field::Sha1,
            CertHash::Sha256(_) => Field::Sha256,
        }
    }
}

/// One search, as IVRE's `search*` functions define it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// `searchhost(ip)`.
    Host(IpAddr),
    /// `nmap.searchasnum(n)`; passive: addresses the snapshot's ASN data puts in AS n.
    Asn(u32),
    /// `nmap.searchdomain(name)`: hosts with a host name equal to `name` or under it.
    Domain(String),
    /// `passive.searchdns(name)`: DNS answers whose `value` is `name`.
    DnsName(String),
    /// `passive.searchdns(name, reverse=True)`: DNS answers whose `targetval` is `name`.
    DnsTarget(String),
    /// `searchmac(mac)`.
    Mac([u8; 6]),
    /// `searchcert(md5|sha1|sha256=h)`.
    Cert(CertHash),
}

impl Query {
    /// Every matching key is `prefix | id`, so a scan yields the ids in ascending order and
    /// can stop once it has as many as it needs. Only a host-name query (a name and every
    /// name under it: several terms) yields them in term order instead.
    pub fn ids_ascending(&self) -> bool {
        !matches!(self, Query::Domain(_))
    }

    /// The key prefix holding every matching entry; `None` when nothing can match
    /// (e.g. an empty name).
    pub fn prefix(&self) -> Option<Vec<u8>> {
        let mut key = Vec::with_capacity(40);
        match self {
            Query::Host(ip) => {
                key.push(Field::Host as u8);
                key.extend_from_slice(&ip_bytes(*ip));
            }
            Query::Asn(n) => {
                key.push(Field::Asn as u8);
                key.extend_from_slice(&asn_term(*n));
            }
            Query::Domain(name) => {
                key.push(Field::Domain as u8);
                key.extend_from_slice(&reversed_name(name)?);
            }
            Query::DnsName(name) | Query::DnsTarget(name) => {
                let field = if matches!(self, Query::DnsName(_)) {
                    Field::DnsName
                } else {
                    Field::DnsTarget
                };
                key.push(field as u8);
                key.extend_from_slice(&reversed_name(name)?);
                key.push(0);
            }
            Query::Mac(mac) => {
                key.push(Field::Mac as u8);
                key.extend_from_slice(mac);
            }
            Query::Cert(hash) => {
                key.push(hash.field() as u8);
                key.extend_from_slice(hash.bytes());
            }
        }
        Some(key)
    }
}

/// The primary key of record `id`.
pub fn record_key(id: u64) -> [u8; ID_LEN] {
    id.to_be_bytes()
}

/// The record id at the end of a secondary key.
pub fn id_of(index_key: &[u8]) -> Option<u64> {
    let start = index_key.len().checked_sub(ID_LEN)?;
    let bytes: [u8; ID_LEN] = index_key[start..].try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// A secondary key: `field | term | id` (the term of name fields ends with `0x00`).
pub fn index_key(field: Field, term: &[u8], id: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + term.len() + 1 + ID_LEN);
    push_index_key(&mut key, field, term, id);
    key
}

/// [`index_key`], appended to `key`.
pub fn push_index_key(key: &mut Vec<u8>, field: Field, term: &[u8], id: u64) {
    let is_name = matches!(field, Field::Domain | Field::DnsName | Field::DnsTarget);
    key.push(field as u8);
    key.extend_from_slice(term);
    if is_name {
        key.push(0);
    }
    key.extend_from_slice(&record_key(id));
}

/// An identity key (sled's `<kind>.ids` trees, the rows of `<kind>.ids.sorted`):
/// `identity (16 bytes) | id`.
pub fn identity_key(identity: &[u8; 16], id: u64) -> [u8; 16 + ID_LEN] {
    let mut key = [0u8; 16 + ID_LEN];
    key[..16].copy_from_slice(identity);
    key[16..].copy_from_slice(&record_key(id));
    key
}

/// A key of the `meta` tree: `<name>.<kind>` (`count.scans`, `next_id.passive`, …).
pub fn meta_key(name: &str, kind: crate::ivre::RecordKind) -> String {
    format!("{name}.{}", kind.as_str())
}

/// The term of an AS number: u32 BE.
pub fn asn_term(n: u32) -> [u8; 4] {
    n.to_be_bytes()
}

/// 16 bytes, IPv4 mapped into IPv6 as IVRE does.
pub fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// `www.Example.com.` → `com.example.www.`; `None` for names that cannot be indexed
/// (empty, empty labels, NUL bytes).
pub fn reversed_name(name: &str) -> Option<Vec<u8>> {
    let name = name.trim().trim_end_matches('.').to_lowercase();
    if name.is_empty() || name.contains('\0') {
        return None;
    }
    let mut out = Vec::with_capacity(name.len() + 1);
    for label in name.rsplit('.') {
        if label.is_empty() {
            return None;
        }
        out.extend_from_slice(label.as_bytes());
        out.push(b'.');
    }
    Some(out)
}

/// `00:1B:21:3a:4f:5c` or `00-1b-…` → 6 bytes.
pub fn parse_mac(mac: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = mac.trim().split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut out = [0u8; 6];
    for (byte, part) in out.iter_mut().zip(&parts) {
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    Some(out)
}

/// 6 bytes → `00:1b:21:3a:4f:5c` (IVRE's form).
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_reverse_and_subdomains_share_a_prefix() {
        assert_eq!(
            reversed_name("www.Example.COM.").unwrap(),
            b"com.example.www."
        );
        assert_eq!(reversed_name(""), None);
        assert_eq!(reversed_name("a..b"), None);
        let parent = Query::Domain("example.com".into()).prefix().unwrap();
        let child = index_key(Field::Domain, b"com.example.www.", 7);
        let sibling = index_key(Field::Domain, b"com.example2.", 8);
        assert!(child.starts_with(&parent));
        assert!(!sibling.starts_with(&parent));
        let exact = Query::DnsName("example.com".into()).prefix().unwrap();
        assert!(index_key(Field::DnsName, b"com.example.", 1).starts_with(&exact));
        assert!(!index_key(Field::DnsName, b"com.example.www.", 1).starts_with(&exact));
    }

    #[test]
    fn ids_round_trip_and_order() {
        let k = index_key(Field::Host, &ip_bytes("192.0.2.10".parse().unwrap()), 42);
        assert_eq!(id_of(&k), Some(42));
        assert!(record_key(1) < record_key(256));
        assert!(ip_bytes("192.0.2.10".parse().unwrap()) < ip_bytes("192.0.2.11".parse().unwrap()));
    }

    #[test]
    fn macs_and_hashes_parse() {
        assert_eq!(
            parse_mac("00-1B-21-3A-4F-5C"),
            parse_mac("00:1b:21:3a:4f:5c")
        );
        assert_eq!(
            format_mac(&parse_mac("00:1B:21:3A:4F:5C").unwrap()),
            "00:1b:21:3a:4f:5c"
        );
        assert_eq!(parse_mac("00:1b:21:3a:4f"), None);
        assert_eq!(parse_mac("00:1b:21:3a:4f:5g"), None);
        assert_eq!(
            CertHash::from_hex(&"AB".repeat(20)).unwrap().algorithm(),
            "sha1"
        );
        assert_eq!(CertHash::from_hex("abc"), None);
    }
}
