//! Observables as the CLI takes them: `TYPE:VALUE`, TYPE being one of the connector's
//! scopes, or a bare value whose type is detected; and as the platform gives them, a scope
//! name and a value ([`Observable::parse_typed`]).

use crate::index::keys::{self, CertHash};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The connector's scopes, as OpenCTI names the observable types.
pub const SCOPES: [&str; 6] = [
    "ipv4-addr",
    "ipv6-addr",
    "domain-name",
    "mac-addr",
    "autonomous-system",
    "x509-certificate",
];

/// A parsed observable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observable {
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    /// Lower-case, without a trailing dot.
    Domain(String),
    Mac([u8; 6]),
    Asn(u32),
    Cert(CertHash),
}

/// Why a value is not an observable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObservableError {
    #[error("unknown observable type `{0}` (expected one of: {scopes})", scopes = SCOPES.join(", "))]
    UnknownType(String),
    #[error("`{value}` is not a valid {kind}: {reason}")]
    Invalid {
        kind: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("cannot tell the type of `{0}`: write it as TYPE:VALUE")]
    Undetected(String),
}

fn invalid(kind: &'static str, value: &str, reason: &'static str) -> ObservableError {
    ObservableError::Invalid {
        kind,
        value: value.to_owned(),
        reason,
    }
}

impl Observable {
    /// Parses `TYPE:VALUE`, or detects the type of a bare value.
    pub fn parse(input: &str) -> Result<Observable, ObservableError> {
        let input = input.trim();
        let typed = input.split_once(':');
        if let Some((ty, value)) = typed {
            if SCOPES.contains(&ty) {
                return Observable::parse_typed(ty, value);
            }
        }
        Observable::detect(input).map_err(|e| match typed {
            Some((ty, _))
                if !ty.is_empty() && ty.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') =>
            {
                ObservableError::UnknownType(ty.to_owned())
            }
            _ => e,
        })
    }

    /// Parses a value of a known type (an OpenCTI scope name).
    pub fn parse_typed(ty: &str, value: &str) -> Result<Observable, ObservableError> {
        let value = value.trim();
        match ty {
            "ipv4-addr" => value
                .parse::<Ipv4Addr>()
                .map(Observable::Ipv4)
                .map_err(|_| invalid(ty_name(ty), value, "expected an IPv4 address such as 192.0.2.10")),
            "ipv6-addr" => match value.parse::<Ipv6Addr>() {
                Ok(v6) => Ok(Observable::Ipv6(v6)),
                Err(_) => Err(invalid(ty_name(ty), value, "expected an IPv6 address such as 2001:db8::53")),
            },
            "domain-name" => parse_domain(value).map(Observable::Domain),
            "mac-addr" => keys::parse_mac(value)
                .map(Observable::Mac)
                .ok_or_else(|| invalid("mac-addr", value, "expected six hex bytes separated by `:` or `-`")),
            "autonomous-system" => parse_asn(value)
                .map(Observable::Asn)
                .ok_or_else(|| invalid("autonomous-system", value, "expected an AS number such as 64497 or AS64497")),
            "x509-certificate" => parse_cert(value)
                .map(Observable::Cert)
                .ok_or_else(|| invalid("x509-certificate", value, "expected sha256:HEX, sha1:HEX, md5:HEX or a bare hex digest of 32, 40 or 64 digits")),
            other => Err(ObservableError::UnknownType(other.to_owned())),
        }
    }

    fn detect(value: &str) -> Result<Observable, ObservableError> {
        if let Ok(ip) = value.parse::<IpAddr>() {
            return Ok(match ip {
                IpAddr::V4(v4) => Observable::Ipv4(v4),
                IpAddr::V6(v6) => Observable::Ipv6(v6),
            });
        }
        if let Some(mac) = keys::parse_mac(value) {
            return Ok(Observable::Mac(mac));
        }
        if let Some(asn) = parse_asn(value) {
            return Ok(Observable::Asn(asn));
        }
        if let Some(hash) = parse_cert(value) {
            return Ok(Observable::Cert(hash));
        }
        if value.contains(['.', '\u{3002}', '\u{ff0e}', '\u{ff61}']) {
            return parse_domain(value).map(Observable::Domain);
        }
        Err(ObservableError::Undetected(value.to_owned()))
    }

    /// The scope name of this observable's type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Observable::Ipv4(_) => "ipv4-addr",
            Observable::Ipv6(_) => "ipv6-addr",
            Observable::Domain(_) => "domain-name",
            Observable::Mac(_) => "mac-addr",
            Observable::Asn(_) => "autonomous-system",
            Observable::Cert(_) => "x509-certificate",
        }
    }

    /// The normalized value (`sha256:HEX` for certificates).
    pub fn value(&self) -> String {
        match self {
            Observable::Ipv4(ip) => ip.to_string(),
            Observable::Ipv6(ip) => ip.to_string(),
            Observable::Domain(d) => d.clone(),
            Observable::Mac(m) => keys::format_mac(m),
            Observable::Asn(n) => n.to_string(),
            Observable::Cert(h) => format!("{}:{}", h.algorithm(), hex::encode(h.bytes())),
        }
    }

    /// The address, for IP observables.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Observable::Ipv4(ip) => Some(IpAddr::V4(*ip)),
            Observable::Ipv6(ip) => Some(IpAddr::V6(*ip)),
            _ => None,
        }
    }

    /// The address IVRE files the observable's records under: the IPv4 address of an
    /// IPv4-mapped IPv6 address (`::ffff:192.0.2.1` → `192.0.2.1`, as IVRE stores
    /// addresses), else [`Observable::ip`].
    pub fn lookup_ip(&self) -> Option<IpAddr> {
        match self {
            Observable::Ipv6(ip) => Some(match ip.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(*ip),
            }),
            _ => self.ip(),
        }
    }
}

impl fmt::Display for Observable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.type_name(), self.value())
    }
}

fn ty_name(ty: &str) -> &'static str {
    SCOPES
        .iter()
        .find(|s| **s == ty)
        .copied()
        .unwrap_or("observable")
}

/// `64497` or `AS64497` (any case).
fn parse_asn(value: &str) -> Option<u32> {
    let digits = value
        .strip_prefix("AS")
        .or_else(|| value.strip_prefix("as"))
        .or_else(|| value.strip_prefix("As"))
        .or_else(|| value.strip_prefix("aS"))
        .unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u32>().ok()
}

/// `sha256:HEX`, `sha1:HEX`, `md5:HEX` or bare hex of a matching length.
fn parse_cert(value: &str) -> Option<CertHash> {
    let (algo, hex_str) = match value.split_once(':') {
        Some((algo, hex_str)) => (Some(algo.to_ascii_lowercase().replace('-', "")), hex_str),
        None => (None, value),
    };
    let hash = CertHash::from_hex(hex_str)?;
    match algo.as_deref() {
        None => Some(hash),
        Some(a) if a == hash.algorithm() => Some(hash),
        Some(_) => None,
    }
}

/// Why a value is not a domain name (see [`normalize_domain`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainError {
    /// The value is dotted numbers (or ends in a number, as a browser reads it): an IPv4
    /// address, and not a valid one since it did not parse as one.
    Ipv4Like,
    /// Not a DNS name; the reason.
    Invalid(&'static str),
}

impl DomainError {
    /// The reason, for messages and logs.
    pub fn reason(self) -> &'static str {
        match self {
            DomainError::Ipv4Like => {
                "expected an IPv4 address of four decimal numbers 0-255 such as 192.0.2.10"
            }
            DomainError::Invalid(reason) => reason,
        }
    }
}

/// True when the last label is a number (decimal, or `0x` hex), as the WHATWG URL
/// standard decides that a host is an IPv4 address: `192.0.2.256`, `192.0.2`,
/// `0300.0000.0002.0012`, `0x7f.1`.
fn ends_in_a_number(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let last = name.rsplit('.').next().unwrap_or(name);
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    last.strip_prefix("0x")
        .or_else(|| last.strip_prefix("0X"))
        .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The one check and normalisation of domain names, for observables given by users or
/// the platform and for the names IVRE records hold (host names, DNS values and
/// targets): trims, drops a trailing dot, maps the name as a browser does (UTS #46:
/// Unicode compatibility normalisation, case folding, full-width dots, then IDNA to
/// punycode: `BÜCHER.example` → `xn--bcher-kva.example`) and rejects what cannot be a
/// DNS name: control characters, spaces, NUL, more than 253 bytes, empty labels, labels
/// over 63 bytes, characters other than letters, digits, `-`, `_` and `*`, and dotted
/// numbers (an IPv4 address, never a name).
pub fn normalize_domain(value: &str) -> Result<String, DomainError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(DomainError::Invalid("empty name"));
    }
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(DomainError::Invalid(
            "control characters and spaces are not allowed in names",
        ));
    }
    // Checked before the mapping too: IDNA would happily map a 10 MB value.
    if value.len() > 4 * 253 {
        return Err(DomainError::Invalid("longer than 253 bytes"));
    }
    let ascii = idna::domain_to_ascii(value)
        .map_err(|_| DomainError::Invalid("not a valid internationalised name (IDNA)"))?;
    let name = ascii.strip_suffix('.').unwrap_or(&ascii).to_owned();
    if name.is_empty() {
        return Err(DomainError::Invalid("empty name"));
    }
    if ends_in_a_number(&name) {
        return Err(DomainError::Ipv4Like);
    }
    if name.len() > 253 {
        return Err(DomainError::Invalid("longer than 253 bytes"));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(DomainError::Invalid("empty label"));
        }
        if label.len() > 63 {
            return Err(DomainError::Invalid("label longer than 63 bytes"));
        }
        let ok = label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*');
        if !ok {
            return Err(DomainError::Invalid(
                "only letters, digits, `-` and `_` are allowed in labels",
            ));
        }
    }
    Ok(name)
}

/// A domain observable: [`normalize_domain`], dotted numbers being an invalid IPv4
/// address rather than a name.
fn parse_domain(value: &str) -> Result<String, ObservableError> {
    normalize_domain(value).map_err(|e| match e {
        DomainError::Ipv4Like => invalid("ipv4-addr", value.trim(), e.reason()),
        DomainError::Invalid(reason) => invalid("domain-name", value.trim(), reason),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(input: &str) -> String {
        Observable::parse(input).unwrap().to_string()
    }

    #[test]
    fn typed_and_detected_forms() {
        assert_eq!(s("ipv4-addr:192.0.2.10"), "ipv4-addr:192.0.2.10");
        assert_eq!(s("192.0.2.10"), "ipv4-addr:192.0.2.10");
        assert_eq!(s("2001:db8::53"), "ipv6-addr:2001:db8::53");
        assert_eq!(s("ipv6-addr:2001:DB8::53"), "ipv6-addr:2001:db8::53");
        assert_eq!(
            s("domain-name:WWW.Example.COM."),
            "domain-name:www.example.com"
        );
        assert_eq!(s("www.example.com"), "domain-name:www.example.com");
        assert_eq!(
            s("mac-addr:00-1B-21-3A-4F-5C"),
            "mac-addr:00:1b:21:3a:4f:5c"
        );
        assert_eq!(s("00:1B:21:3A:4F:5C"), "mac-addr:00:1b:21:3a:4f:5c");
        assert_eq!(s("autonomous-system:AS64497"), "autonomous-system:64497");
        assert_eq!(s("AS64497"), "autonomous-system:64497");
        assert_eq!(s("64497"), "autonomous-system:64497");
        let sha256 = "fcf2200c62f5e3ff8dcf0c7581f41ececa21ced836cf0e2930e4662c66f59277";
        assert_eq!(
            s(&format!("x509-certificate:{sha256}")),
            format!("x509-certificate:sha256:{sha256}")
        );
        assert_eq!(
            s(&format!("sha256:{}", sha256.to_uppercase())),
            format!("x509-certificate:sha256:{sha256}")
        );
        assert_eq!(
            s("md5:7f91d7ef022276698aa7d233c1ad820f"),
            "x509-certificate:md5:7f91d7ef022276698aa7d233c1ad820f"
        );
    }

    #[test]
    fn bad_values_say_why() {
        for bad in [
            "ipv4-addr:2001:db8::1",
            "ipv4-addr:192.0.2.0/24",
            "mac-addr:00:1b",
            "autonomous-system:ASX",
            "autonomous-system:99999999999",
            "x509-certificate:sha1:abcd",
            "x509-certificate:md5:fcf2200c62f5e3ff8dcf0c7581f41ececa21ced836cf0e2930e4662c66f59277",
            "domain-name:a..b",
            "domain-name:{\"$ne\": 1}",
            "url:http://x",
            "nothing",
        ] {
            let err = Observable::parse(bad).unwrap_err().to_string();
            assert!(!err.is_empty(), "{bad}");
        }
        assert_eq!(
            Observable::parse("url:http://x").unwrap_err(),
            ObservableError::UnknownType("url".into())
        );
    }

    #[test]
    fn dotted_numbers_are_invalid_ipv4_addresses_not_names() {
        for bad in [
            "192.0.2.256",
            "192.0.2",
            "0300.0000.0002.0012",
            "1.2.3.4.5",
            "0x7f.1",
            "192.0.2.1.",
            "domain-name:192.0.2.256",
            "ipv4-addr:192.0.2.256",
            "ipv4-addr:0300.0000.0002.0012",
        ] {
            match Observable::parse(bad) {
                Err(ObservableError::Invalid { kind, value, .. }) => {
                    assert_eq!(kind, "ipv4-addr", "{bad}");
                    assert!(bad.ends_with(&value), "{bad}: the error names `{value}`");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        let err = Observable::parse("192.0.2.256").unwrap_err().to_string();
        assert!(
            err.contains("`192.0.2.256` is not a valid ipv4-addr"),
            "{err}"
        );
        // A name with a numeric label that is not the last one is still a name.
        assert_eq!(s("1.2.example.com"), "domain-name:1.2.example.com");
        assert_eq!(s("3com.com"), "domain-name:3com.com");
    }

    #[test]
    fn internationalised_names_are_normalised_as_a_browser_does() {
        assert_eq!(s("BÜCHER.example"), "domain-name:xn--bcher-kva.example");
        assert_eq!(
            s("domain-name:BÜCHER.example"),
            "domain-name:xn--bcher-kva.example"
        );
        // Full-width letters and dot (NFKC), ideographic full stop.
        assert_eq!(s("ｅｘａｍｐｌｅ．ｃｏｍ"), "domain-name:example.com");
        assert_eq!(s("example\u{3002}com"), "domain-name:example.com");
        assert_eq!(
            s("xn--bcher-kva.example"),
            "domain-name:xn--bcher-kva.example"
        );
        assert_eq!(s("_dmarc.example.com"), "domain-name:_dmarc.example.com");
        assert_eq!(s("*.example.com"), "domain-name:*.example.com");
    }

    #[test]
    fn record_names_that_are_not_domain_names_are_refused() {
        let long_label = "a".repeat(64);
        let long_name = format!("{}.example", ["abcdefghi"; 30].join("."));
        assert!(long_name.len() > 253);
        for bad in [
            "",
            ".",
            "a\0b.example",
            "a b.example",
            "a\tb.example",
            "a\u{7f}b.example",
            "a..b",
            ".example.com",
            long_label.as_str(),
            &format!("{long_label}.example"),
            long_name.as_str(),
            &"x".repeat(300),
            "exa%mple.com",
            "a/b.example",
            "192.0.2.1",
        ] {
            assert!(normalize_domain(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            normalize_domain(" WWW.Example.COM. ").as_deref(),
            Ok("www.example.com")
        );
        assert_eq!(
            normalize_domain(&format!("{}.example", "a".repeat(63))).map(|n| n.len()),
            Ok(71)
        );
    }

    #[test]
    fn ipv4_mapped_ipv6_is_an_ipv6_observable_looked_up_as_ipv4() {
        let o = Observable::parse("::ffff:192.0.2.1").unwrap();
        assert_eq!(o.to_string(), "ipv6-addr:::ffff:192.0.2.1");
        assert_eq!(o.ip(), Some("::ffff:192.0.2.1".parse().unwrap()));
        assert_eq!(o.lookup_ip(), Some("192.0.2.1".parse().unwrap()));
        let plain = Observable::parse("2001:db8::53").unwrap();
        assert_eq!(plain.lookup_ip(), plain.ip());
        let v4 = Observable::parse("192.0.2.1").unwrap();
        assert_eq!(v4.lookup_ip(), v4.ip());
    }
}
